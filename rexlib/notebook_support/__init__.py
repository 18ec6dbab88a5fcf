"""Notebook support: what the numbered notebooks call, on top of every stage (never imported by them).

``experiments`` (workspace, data, analysis tables, diagnostics), ``runs`` (a TrainConfig per run, trained
and evaluated two at a time, reused), ``lesson`` (02's tables of one batch through REX), ``gallery``
(which examples to show, and their figures), ``viz`` (pictures and plots), ``widgets`` (the explorer),
``runner`` (the ``run-notebooks`` papermill command).
"""
