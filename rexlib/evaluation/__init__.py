"""Evaluation: takes a run and a store, gives predictions and metrics.

``metrics`` (captions, grounding, attributes, answers + GQA-OOD, statements + faithfulness), ``truth``
(what a split's store files say about each question), ``evaluate`` (decode a split with the run's model,
loaded by ``rexlib.model.pretrained``, and score it: the ``evaluate`` command) and ``submission`` (GQA test
answers).
"""
