"""GQA-REX creation: takes GQA questions + scene graphs (or the world) and regions.h5, gives a store.

``grounding`` ties the executor's object references to detector regions (``#k``) and positions to the
4x4 grid (``@k``); ``vocab`` and ``store`` encode and write the official json files, ``vocab.json`` and
``{split}.h5``; ``build`` is the ``build`` command (sharded, resumable), ``merge`` joins shards,
``release`` imports the official GQA-REX files, ``regions_tsv`` converts LXMERT tsv features.
"""
