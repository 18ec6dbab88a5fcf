"""rexlib: REX (Reasoning-aware and grounded EXplanation, CVPR 2022) as a readable package.

Data flows one way, one folder per stage (docs/architecture.md):
GQA files (``gqa``, or the embedded ``world``) -> ``program`` (the executor) -> ``dataset`` (grounding,
vocab, store, build) -> ``model`` (REX, decoding) -> ``training`` -> ``evaluation`` (metrics, evaluate,
submission) -> ``notebook_support`` (experiments, viz, widgets, runner). ``io`` (atomic files), ``boxes``
(geometry), ``layout`` (file names) and ``options`` (dataclass fields -> flags) are the plumbing every stage
shares; ``cli`` is ``python -m rexlib <command>``.
"""

__version__ = "0.1.0"
