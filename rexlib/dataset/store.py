"""The GQA-REX store on disk: ``{split}.h5`` in the exact keys of docs/contracts.md, ``dataset.json``,
and readers. Files are written through :mod:`rexlib.io` (atomic, byte-reproducible).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

from rexlib import layout
from rexlib.dataset.vocab import CLS, END, SEP, Vocabularies, tokenize_question
from rexlib.io import atomic_h5, decode_strings, put, read_json, strings, write_json

MAX_EXPLANATION_LENGTH = 12
MAX_QUESTION_LENGTH = 24

# key -> (dtype, "row" shape after N) of {split}.h5; L = max_explanation_length, Lq = max_question_length
SPLIT_KEYS = (
    "question_ids", "image_index", "questions", "question_lengths", "answers", "explanations",
    "explanation_lengths", "gate_targets", "explanation_truncated", "types_structural", "types_semantic",
    "types_detailed", "families", "groups_local",
)
# Arrays a store written before they existed may lack (readers fall back): GQA's `groups.local`.
OPTIONAL_SPLIT_KEYS = ("groups_local",)


# ----------------------------------------------------------------------------------------------
# Encoding one split


class Row(NamedTuple):
    """One kept question, everything the arrays need (a tuple: one per question, made by the million)."""

    question_id: str
    image_index: int
    question: str
    answer: str | None
    tokens: tuple[str, ...]  # converted explanation tokens
    types: dict
    families: str
    local_group: str = ""  # GQA's `groups.local` (GQA-OOD's unit), "" when the record has none


def encode_split(rows: Sequence[Row], vocabularies: Vocabularies, *,
                 max_explanation_length: int = MAX_EXPLANATION_LENGTH,
                 max_question_length: int = MAX_QUESTION_LENGTH,
                 question_tokens: Sequence[Sequence[str]] | None = None) -> dict[str, np.ndarray]:
    """The arrays of ``{split}.h5`` for ``rows`` (contract keys, shapes and dtypes).

    Explanations longer than L are cut to L tokens and flagged in ``explanation_truncated``; the json
    files keep them whole. ``question_tokens``: each row's ``tokenize_question(row.question)`` when
    the caller has it already (the build tokenizes train once, for the vocabulary and here).
    """
    count, length = len(rows), max_explanation_length
    explanation_vocabulary, question_vocabulary = vocabularies.explanation, vocabularies.question
    first_region, last_region = explanation_vocabulary.index["#0"], explanation_vocabulary.index["#35"]

    # Tokens of all rows are gathered into flat lists (the specials as their own strings), mapped to
    # ids in one pass each, and placed with one mask assignment per array: a (count, width) mask of
    # "position < row length" lists its True cells in row-major order, the order the flat lists were
    # filled in.
    question_index, question_unknown = question_vocabulary.index, question_vocabulary.unknown
    explanation_index, explanation_unknown = explanation_vocabulary.index, explanation_vocabulary.unknown
    question_words: list[str] = []
    question_lengths_list: list[int] = []
    explanation_tokens: list[str] = []
    explanation_lengths_list: list[int] = []
    truncated_list: list[bool] = []
    if question_tokens is None:
        question_tokens = [tokenize_question(row.question) for row in rows]
    for row, row_words in zip(rows, question_tokens, strict=True):
        words = row_words[: max_question_length - 2]
        question_words.append(CLS)
        question_words.extend(words)
        question_words.append(SEP)
        question_lengths_list.append(len(words) + 2)
        tokens = row.tokens[:length]
        explanation_tokens.extend(tokens)
        explanation_tokens.append(END)
        explanation_lengths_list.append(len(tokens) + 1)
        truncated_list.append(len(row.tokens) > length)
    # index.get(token, unknown) for every token, called from C (map over two iterables) rather than a loop.
    question_flat = list(map(question_index.get, question_words, repeat(question_unknown)))
    explanation_flat = list(map(explanation_index.get, explanation_tokens, repeat(explanation_unknown)))

    question_lengths = np.array(question_lengths_list, np.int32).reshape(count)
    questions = np.zeros((count, max_question_length), np.int32)
    questions[np.arange(max_question_length) < question_lengths[:, None]] = question_flat
    explanation_lengths = np.array(explanation_lengths_list, np.int32).reshape(count)
    explanations = np.zeros((count, length + 1), np.int32)
    filled = np.arange(length + 1) < explanation_lengths[:, None]
    flat_ids = np.array(explanation_flat, np.int32)
    explanations[filled] = flat_ids
    gate_targets = np.zeros((count, length + 1), np.uint8)
    gate_targets[filled] = (flat_ids < first_region) | (flat_ids > last_region)
    truncated = np.array(truncated_list, bool).reshape(count)

    answer_vocabulary = vocabularies.answer
    return {
        "question_ids": strings([row.question_id for row in rows]),
        "image_index": np.array([row.image_index for row in rows], np.int32).reshape(count),
        "questions": questions,
        "question_lengths": question_lengths,
        "answers": np.array([answer_vocabulary.index.get(row.answer, -1) for row in rows],
                            np.int32).reshape(count),
        "explanations": explanations,
        "explanation_lengths": explanation_lengths,
        "gate_targets": gate_targets,
        "explanation_truncated": truncated,
        "types_structural": strings([str(row.types.get("structural") or "") for row in rows]),
        "types_semantic": strings([str(row.types.get("semantic") or "") for row in rows]),
        "types_detailed": strings([str(row.types.get("detailed") or "") for row in rows]),
        "families": strings([row.families for row in rows]),
        "groups_local": strings([row.local_group for row in rows]),
    }


def write_split(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    missing = set(SPLIT_KEYS) - set(arrays)
    if missing:
        raise ValueError(f"{path}: arrays lack {sorted(missing)}")
    with atomic_h5(path) as handle:
        for key in SPLIT_KEYS:
            put(handle, key, arrays[key])


def read_split(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of a ``{split}.h5`` in memory; strings decoded to ``str``."""
    out = {}
    with h5py.File(path, "r") as handle:
        for key in SPLIT_KEYS:
            if key not in handle:
                if key in OPTIONAL_SPLIT_KEYS:
                    continue
                raise ValueError(f"{path}: dataset {key!r} is missing")
            dataset = handle[key]
            out[key] = dataset.asstr()[()] if dataset.dtype.kind == "O" else dataset[()]
    return out


def write_dataset_json(out_dir: str | os.PathLike, regions_path: str | os.PathLike, splits: Sequence[str], *,
                       max_explanation_length: int = MAX_EXPLANATION_LENGTH,
                       max_question_length: int = MAX_QUESTION_LENGTH, source: str = "") -> dict:
    """``dataset.json``: the regions file (relative to ``out_dir`` when it can be), splits, limits."""
    out_dir = Path(out_dir).resolve()
    regions = Path(regions_path).resolve()
    try:
        regions_entry = os.path.relpath(regions, out_dir)
    except ValueError:  # another drive on Windows
        regions_entry = str(regions)
    manifest = {
        "regions": regions_entry,
        "splits": list(splits),
        "max_explanation_length": max_explanation_length,
        "max_question_length": max_question_length,
        "source": source,
    }
    write_json(out_dir / layout.DATASET_INFO, manifest, indent=1)
    return manifest


def read_dataset_json(data_dir: str | os.PathLike) -> dict:
    """``dataset.json`` with ``regions`` resolved to an absolute path (ValueError when it names none)."""
    data_dir = Path(data_dir)
    manifest = read_json(data_dir / layout.DATASET_INFO)
    if "regions" not in manifest:
        raise ValueError(f"{data_dir / layout.DATASET_INFO}: no 'regions' entry")
    regions = Path(manifest["regions"])
    manifest["regions"] = str(regions if regions.is_absolute() else (data_dir / regions).resolve())
    return manifest


def regions_path(data_dir: str | os.PathLike) -> Path:
    """The regions.h5 named by ``DATA/dataset.json`` (written relative to DATA, or absolute)."""
    return Path(read_dataset_json(data_dir)["regions"])


# ----------------------------------------------------------------------------------------------
# Regions


@dataclass(frozen=True)
class RegionBoxes:
    """The detector boxes of ``regions.h5`` (features stay on disk): one row per image."""

    path: str
    image_ids: tuple[str, ...]
    boxes: np.ndarray  # (N, 36, 4) float32 x1 y1 x2 y2 pixels
    sizes: np.ndarray  # (N, 2) int32 width, height

    def __post_init__(self) -> None:
        object.__setattr__(self, "row", {image_id: i for i, image_id in enumerate(self.image_ids)})


def read_region_boxes(path: str | os.PathLike) -> RegionBoxes:
    """Read every image's boxes once (N x 36 x 4 float32: 85 MB for GQA's 148k images)."""
    try:
        with h5py.File(path, "r") as handle:
            for key in ("image_ids", "boxes"):
                if key not in handle:
                    raise ValueError(f"{path}: dataset {key!r} is missing")
            image_ids = tuple(decode_strings(handle["image_ids"]))
            boxes = handle["boxes"][()].astype(np.float32, copy=False)
            sizes = handle["sizes"][()] if "sizes" in handle else np.zeros((len(image_ids), 2), np.int32)
    except OSError as error:
        raise ValueError(f"{path}: cannot read regions ({error})") from None
    if boxes.ndim != 3 or boxes.shape[2] != 4 or boxes.shape[0] != len(image_ids):
        raise ValueError(f"{path}: boxes have shape {boxes.shape}, expected ({len(image_ids)}, R, 4)")
    return RegionBoxes(str(path), image_ids, boxes, sizes)
