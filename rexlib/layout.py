"""File names, once: the GQA folder, the GQA-REX store a build writes, and a training run's folder.

Every module that reads or writes one of these files takes its name from here, so a renamed file is one
edit. The formats themselves are pinned in docs/contracts.md.
"""

from __future__ import annotations

# ------------------------------------------------------------------- GQA folder (real, or the embedded world)
QUESTIONS_DIR = "questions"
SCENE_GRAPHS_DIR = "sceneGraphs"
QUESTIONS_SUFFIX = "_balanced_questions.json"
REGIONS = "regions.h5"                       # detector boxes and features (also named in the store's dataset.json)
WORLD_MANIFEST = "world.json"                # the embedded world's build settings and counts


def questions_file(split: str) -> str:
    """``questions/{split}_balanced_questions.json``, relative to the GQA folder."""
    return f"{QUESTIONS_DIR}/{split}{QUESTIONS_SUFFIX}"


def scene_graphs_file(split: str) -> str:
    """``sceneGraphs/{split}_sceneGraphs.json``, relative to the GQA folder."""
    return f"{SCENE_GRAPHS_DIR}/{split}_sceneGraphs.json"


# ---------------------------------------------------------------------------------- GQA-REX store (a build)
DATASET_INFO = "dataset.json"                # splits, lengths, the regions file
VOCAB = "vocab.json"                         # explanation / answer / question vocabularies (also in every run)
ATTRIBUTE_CATEGORIES = "attribute_categories.json"  # attribute value -> category, mined by the build
ATTRIBUTE_CATEGORY_COUNTS = "attribute_category_counts.json"  # the mined table with its counts, for the metrics
SHARD_MANIFEST = "shard.json"                # one shard of a sharded build (`merge` joins them)


def split_file(split: str) -> str:
    """The encoded split: ``{split}.h5``."""
    return f"{split}.h5"


def processed_explanations_file(split: str) -> str:
    """Raw explanations (program steps realised): ``processed_explanation_{split}.json``."""
    return f"processed_explanation_{split}.json"


def converted_explanations_file(split: str) -> str:
    """Explanations with #k / @k grounding tokens: ``converted_explanation_{split}.json``."""
    return f"converted_explanation_{split}.json"


def grounding_file(split: str) -> str:
    """Ground-truth boxes per question: ``grounding_{split}.json``."""
    return f"grounding_{split}.json"


def build_report_file(split: str) -> str:
    """Counts and skips of a build: ``build_report_{split}.json``."""
    return f"build_report_{split}.json"


# ------------------------------------------------------------------------------ training run (outputs/runs/x)
RUN_CONFIG = "config.json"                   # {"train": TrainConfig, "model": REXConfig, "dataset": ..., ...}
RUN_VOCAB = VOCAB                            # the store's vocab.json, copied: the run decodes with it
METRICS_LOG = "metrics.csv"                  # training and validation rows
RUN_SUMMARY = "summary.json"                 # steps, best metric, last validation, speed
CHECKPOINTS = ("best", "last")


def checkpoint_file(which: str) -> str:
    """``checkpoint_best.pt`` (the weights chosen by validation) or ``checkpoint_last.pt`` (resumable state)."""
    if which not in CHECKPOINTS:
        raise ValueError(f"which must be one of {CHECKPOINTS}, got {which!r}")
    return f"checkpoint_{which}.pt"


def predictions_file(name: str) -> str:
    """Decoded questions of an evaluation: ``predictions_{split}.json`` (``name`` is the split, or
    ``{split}-regions-{regions}`` for a diagnostic)."""
    return f"predictions_{name}.json"


def metrics_file(name: str) -> str:
    """Scores of an evaluation: ``metrics_{split}.json`` (``name`` as in :func:`predictions_file`)."""
    return f"metrics_{name}.json"

# A pretrained backbone directory (`python -m rexlib pretrain`): a Hugging Face VisualBERT directory plus
BACKBONE_GEOMETRY = "box_geometry.safetensors"  # the box projection REX adds to the visual embedding
BACKBONE_RECIPE = "pretraining.json"            # the command, config, metrics, regions file and sha256 of each file
