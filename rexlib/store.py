"""The GQA-REX store on disk: atomic writes, ``{split}.h5`` in the exact keys of docs/contracts.md,
``dataset.json``, and readers.

Every write goes to a temporary file beside the target and is moved into place with ``os.replace``, so
a crash never leaves a half-written file under the final name. HDF5 datasets are written with
``track_times=False`` so the same content gives the same bytes (builds are compared byte for byte).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from rexlib.vocab import Vocabularies, tokenize_question

MAX_EXPLANATION_LENGTH = 12
MAX_QUESTION_LENGTH = 24
STRING = h5py.string_dtype("utf-8")

# key -> (dtype, "row" shape after N) of {split}.h5; L = max_explanation_length, Lq = max_question_length
SPLIT_KEYS = (
    "question_ids", "image_index", "questions", "question_lengths", "answers", "explanations",
    "explanation_lengths", "gate_targets", "explanation_truncated", "types_structural", "types_semantic",
    "types_detailed", "families", "groups_local",
)
# Arrays a store written before they existed may lack (readers fall back): GQA's `groups.local`.
OPTIONAL_SPLIT_KEYS = ("groups_local",)


# ----------------------------------------------------------------------------------------------
# Atomic writes


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; move it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_json(path: str | os.PathLike, value, *, indent: int | None = None) -> None:
    """Atomically write ``value`` as json (utf-8, keys in insertion order, no NaN)."""
    # json.dumps, not json.dump: only the one-shot path uses the C encoder (several times faster).
    text = json.dumps(value, ensure_ascii=False, indent=indent, allow_nan=False)
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)


def read_json(path: str | os.PathLike):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """An h5py file opened on a temporary path, moved onto ``path`` when the block ends cleanly.

    ``track_order=False`` and datasets created through :func:`put` keep no timestamps, so equal
    content gives equal bytes.
    """
    with atomic_path(path) as temporary, h5py.File(temporary, "w", libver="earliest", track_order=False) as handle:
        yield handle


def put(handle: h5py.File, key: str, array) -> None:
    """Create one dataset without timestamps (byte-reproducible files)."""
    array = np.asarray(array) if not isinstance(array, np.ndarray) else array
    handle.create_dataset(key, data=array, track_times=False)


def strings(values: Sequence[str]) -> np.ndarray:
    """A variable-length utf-8 string array for h5py."""
    return np.array(list(values), dtype=object).astype(STRING) if len(values) else np.zeros(0, STRING)


# ----------------------------------------------------------------------------------------------
# Encoding one split


@dataclass(frozen=True)
class Row:
    """One kept question, everything the arrays need."""

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
                 max_question_length: int = MAX_QUESTION_LENGTH) -> dict[str, np.ndarray]:
    """The arrays of ``{split}.h5`` for ``rows`` (contract keys, shapes and dtypes).

    Explanations longer than L are cut to L tokens and flagged in ``explanation_truncated``; the json
    files keep them whole.
    """
    count, length = len(rows), max_explanation_length
    explanation_vocabulary, question_vocabulary = vocabularies.explanation, vocabularies.question
    end_id = explanation_vocabulary.index["<end>"]
    first_region, last_region = explanation_vocabulary.index["#0"], explanation_vocabulary.index["#35"]
    cls_id, sep_id = question_vocabulary.index["[CLS]"], question_vocabulary.index["[SEP]"]

    # Token ids of all rows are gathered into flat lists and placed with one mask assignment per
    # array: a (count, width) mask of "position < row length" lists its True cells in row-major
    # order, the order the flat lists were filled in.
    question_index, question_unknown = question_vocabulary.index, question_vocabulary.unknown
    explanation_index, explanation_unknown = explanation_vocabulary.index, explanation_vocabulary.unknown
    question_flat: list[int] = []
    question_lengths_list: list[int] = []
    explanation_flat: list[int] = []
    explanation_lengths_list: list[int] = []
    truncated_list: list[bool] = []
    for row in rows:
        words = tokenize_question(row.question)[: max_question_length - 2]
        question_flat.append(cls_id)
        question_flat.extend([question_index.get(word, question_unknown) for word in words])
        question_flat.append(sep_id)
        question_lengths_list.append(len(words) + 2)
        tokens = row.tokens[:length]
        explanation_flat.extend([explanation_index.get(token, explanation_unknown) for token in tokens])
        explanation_flat.append(end_id)
        explanation_lengths_list.append(len(tokens) + 1)
        truncated_list.append(len(row.tokens) > length)

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
    write_json(out_dir / "dataset.json", manifest, indent=1)
    return manifest


def read_dataset_json(data_dir: str | os.PathLike) -> dict:
    """``dataset.json`` with ``regions`` resolved to an absolute path."""
    data_dir = Path(data_dir)
    manifest = read_json(data_dir / "dataset.json")
    regions = Path(manifest["regions"])
    manifest["regions"] = str(regions if regions.is_absolute() else (data_dir / regions).resolve())
    return manifest


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
            image_ids = tuple(
                value.decode("utf-8") if isinstance(value, bytes) else str(value) for value in handle["image_ids"][()]
            )
            boxes = handle["boxes"][()].astype(np.float32, copy=False)
            sizes = handle["sizes"][()] if "sizes" in handle else np.zeros((len(image_ids), 2), np.int32)
    except OSError as error:
        raise ValueError(f"{path}: cannot read regions ({error})") from None
    if boxes.ndim != 3 or boxes.shape[2] != 4 or boxes.shape[0] != len(image_ids):
        raise ValueError(f"{path}: boxes have shape {boxes.shape}, expected ({len(image_ids)}, R, 4)")
    return RegionBoxes(str(path), image_ids, boxes, sizes)
