"""rexlib: REX (Reasoning-aware and grounded EXplanation, CVPR 2022) as a readable package.

Data flows one way: GQA files -> ``program`` (executor) -> ``grounding`` -> ``store``
-> ``data`` -> ``model`` -> ``train`` -> ``evaluate`` -> ``viz`` / ``widgets``.
"""

__version__ = "0.1.0"
