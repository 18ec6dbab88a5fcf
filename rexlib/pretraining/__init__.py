"""Pretraining the backbone: scene-graph captions x regions -> a small VisualBERT (a Hugging Face directory).

Takes a GQA-layout folder (scene graphs) and a GQA-REX store (regions, question vocabulary); gives the
directory `python -m rexlib train --pretrained DIR` loads. `captions` writes the text, `data` the batches,
`loop` the two objectives and the saved directory, `cli` the `pretrain` command.
"""
