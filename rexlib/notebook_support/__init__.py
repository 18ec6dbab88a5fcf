"""Notebook support: what the numbered notebooks call, on top of every stage (never imported by them).

``experiments`` (workspace, runs, analysis tables), ``viz`` (pictures), ``widgets`` (the explorer),
``runner`` (the ``run-notebooks`` papermill command).
"""
