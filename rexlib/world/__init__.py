"""The embedded synthetic world: GQA-format scene graphs, questions with programs, pictures, regions.

Real GQA cannot be downloaded everywhere, so the repository can build a seeded world written in
GQA's exact file formats (``questions/``, ``sceneGraphs/``, ``images/``, ``regions.h5``) and run the
whole pipeline on it. ``build_world`` is the entry point; the modules are ontology (the tables),
scenes, questions (templates + programs), semantics (the world's own answers), render, detector.
"""

from rexlib.world.build import SPLITS, WorldExistsError, build_world, format_counts

__all__ = ["SPLITS", "WorldExistsError", "build_world", "format_counts"]
