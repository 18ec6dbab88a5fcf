"""Evaluation: takes a run and a store, gives predictions and metrics.

``metrics`` (captions, grounding, attributes, answers + GQA-OOD), ``evaluate`` (decode a split and
score it: the ``evaluate`` command) and ``submission`` (GQA test answers).
"""
