"""Torch dataset over the GQA-REX store: `{split}.h5` questions plus their rows of `regions.h5`.

Everything a training step needs is held in memory as numpy arrays (the split's arrays and the region
rows its questions use), so fetching a batch is a handful of vectorised index operations. When the
regions needed would not fit in `max_preload_bytes` (real GQA features, 2048-d), rows are read lazily
from regions.h5, which each DataLoader worker opens on first use (h5py handles do not survive fork).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch

from rexlib import layout
from rexlib.dataset.store import regions_path
from rexlib.dataset.vocab import Vocabularies
from rexlib.io import decode_strings, read_json

SPLIT_ARRAYS = (
    "image_index", "questions", "question_lengths", "answers", "explanations", "explanation_lengths",
    "gate_targets",
)
TYPE_ARRAYS = ("types_structural", "types_semantic", "types_detailed", "families", "groups_local")
# What a question sees as its regions: its own image's (training and evaluation), none (question-only:
# every feature and box zero), or another image's (every image's regions swapped for the next image's):
# the diagnostics that tell whether answers come from the image.
REGION_SOURCES = ("image", "none", "swapped")


class StoreError(ValueError):
    """A store file is missing or malformed; the message names the file (and question id if any)."""


def load_dataset_info(data_dir) -> dict:
    """Read DATA/dataset.json and resolve the regions path."""
    path = Path(data_dir) / layout.DATASET_INFO
    if not path.is_file():
        raise StoreError(f"{path}: not found; is {data_dir} a GQA-REX store built by `python -m rexlib build`?")
    info = read_json(path)
    info["regions_path"] = str(regions_path(data_dir))
    return info


def load_vocab(path) -> dict:
    """vocab.json (a store's or a run's; ``path`` may be its folder), checked by `Vocabularies.load`:
    {"explanation": [...], "answer": [...], "question": [...]}."""
    path = Path(path)
    if path.is_dir():
        path = path / layout.VOCAB
    return Vocabularies.load(path).to_json()


def _strings(dataset) -> np.ndarray:
    return np.array(decode_strings(dataset), dtype=object)


def question_texts(questions: np.ndarray, lengths: np.ndarray, question_vocab: list[str]) -> list[str]:
    """Turn word-level question ids back into text (without [CLS]/[SEP]) for a BERT tokenizer."""
    words = np.array(question_vocab, dtype=object)
    texts = []
    for row, length in zip(questions, lengths):
        tokens = [w if w != "<unk>" else "[UNK]" for w in words[row[:length]] if w not in ("[CLS]", "[SEP]", "<pad>")]
        texts.append(" ".join(tokens))
    return texts


class REXDataset(torch.utils.data.Dataset):
    """The questions of one split (optionally a subset `indices` of its rows) with their regions.

    `tokenizer`: a BERT tokenizer (pretrained backbones); questions are then re-tokenised from their text
    instead of using the store's word-level ids. `regions`: one of REGION_SOURCES.
    """

    def __init__(self, data_dir, split: str, indices=None, tokenizer=None, max_preload_bytes: int = 2 << 30,
                 regions: str = "image"):
        if regions not in REGION_SOURCES:
            raise ValueError(f"regions must be one of {REGION_SOURCES}, got {regions!r}")
        self.region_source = regions
        self.data_dir = Path(data_dir)
        self.split = split
        self.info = load_dataset_info(data_dir)
        self.vocab = load_vocab(self.data_dir / layout.VOCAB)
        self.split_path = self.data_dir / layout.split_file(split)
        if not self.split_path.is_file():
            raise StoreError(f"{self.split_path}: not found (splits in dataset.json: {self.info.get('splits')})")
        with h5py.File(self.split_path, "r") as handle:
            missing = [key for key in SPLIT_ARRAYS + ("question_ids",) if key not in handle]
            if missing:
                raise StoreError(f"{self.split_path}: missing datasets {missing}")
            total = len(handle["question_ids"])
            self.rows = np.arange(total) if indices is None else np.asarray(indices, dtype=np.int64)
            if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= total):
                raise StoreError(f"{self.split_path}: subset indices outside 0..{total - 1}")
            # Whole arrays are small (ints); read them once, then keep the subset's rows.
            self.arrays = {key: handle[key][:][self.rows] for key in SPLIT_ARRAYS}
            self.question_ids = _strings(handle["question_ids"])[self.rows]
            self.types = {key: _strings(handle[key])[self.rows] for key in TYPE_ARRAYS if key in handle}
        self._check_rows()
        if tokenizer is not None:
            self._tokenize(tokenizer)

        self.regions_path = Path(self.info["regions_path"])
        if not self.regions_path.is_file():
            raise StoreError(f"{self.regions_path}: regions file named in {self.data_dir / layout.DATASET_INFO} not found")
        self._regions = None  # opened lazily, once per worker process
        with h5py.File(self.regions_path, "r") as handle:
            for key in ("boxes", "features", "sizes"):
                if key not in handle:
                    raise StoreError(f"{self.regions_path}: missing dataset {key!r}")
            image_count, self.num_regions, self.feature_dim = handle["features"].shape
            bad = self.arrays["image_index"] >= image_count
            if bad.any():
                raise StoreError(f"{self.split_path}: question {self.question_ids[np.argmax(bad)]}: image_index "
                                 f"{int(self.arrays['image_index'][np.argmax(bad)])} >= {image_count} rows of {self.regions_path.name}")
            if regions == "swapped":
                self._swap_images(image_count)
            images, self.image_rows = np.unique(self.arrays["image_index"], return_inverse=True)
            self.images = images
            needed = len(images) * self.num_regions * self.feature_dim * 2
            self.preloaded = needed <= max_preload_bytes
            if self.preloaded:
                # h5py fancy indexing wants increasing indices: `images` is sorted and unique.
                self.features = handle["features"][images] if len(images) else np.zeros((0, self.num_regions, self.feature_dim), np.float16)
                self.boxes = self._normalise(handle["boxes"][images], handle["sizes"][images]) if len(images) else np.zeros((0, self.num_regions, 4), np.float32)

    def _swap_images(self, image_count: int) -> None:
        """Point every question at the regions of the next image its split uses (a derangement whenever the
        split has two images or more): the question stays, the picture is another one."""
        used = np.unique(self.arrays["image_index"])
        if len(used) < 2 and image_count > 1:
            used = np.array([used[0], (used[0] + 1) % image_count]) if len(used) else used
        following = dict(zip(used.tolist(), np.roll(used, -1).tolist()))
        self.arrays["image_index"] = np.array([following[int(row)] for row in self.arrays["image_index"]],
                                              dtype=self.arrays["image_index"].dtype)

    def _check_rows(self) -> None:
        """Reject rows that would silently train on garbage, naming the question."""
        lengths = self.arrays["explanation_lengths"]
        width = self.arrays["explanations"].shape[1]
        bad = (lengths < 1) | (lengths > width)
        if bad.any():
            row = int(np.argmax(bad))
            raise StoreError(f"{self.split_path}: question {self.question_ids[row]}: explanation length "
                             f"{int(lengths[row])} outside 1..{width}")

    def _tokenize(self, tokenizer) -> None:
        texts = question_texts(self.arrays["questions"], self.arrays["question_lengths"], self.vocab["question"])
        max_length = int(self.info.get("max_question_length", 24))
        encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="np")
        self.arrays["questions"] = encoded["input_ids"].astype(np.int32)
        self.arrays["question_lengths"] = encoded["attention_mask"].sum(axis=1).astype(np.int32)

    @staticmethod
    def _normalise(boxes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Pixel x1,y1,x2,y2 -> [0, 1] by the image's (w, h)."""
        scale = np.concatenate([sizes, sizes], axis=-1).astype(np.float32)[:, None, :]  # (N,1,4)
        return np.clip(boxes.astype(np.float32) / np.maximum(scale, 1.0), 0.0, 1.0)

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        # An open h5py handle cannot cross into a worker process; each worker reopens its own.
        state = dict(self.__dict__)
        state["_regions"] = None
        return state

    def _region_rows(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features (n,36,D) float32 and normalised boxes (n,36,4) for dataset positions."""
        if self.region_source == "none":
            count = len(positions)
            return (np.zeros((count, self.num_regions, self.feature_dim), np.float32),
                    np.zeros((count, self.num_regions, 4), np.float32))
        if self.preloaded:
            image_rows = self.image_rows[positions]
            return self.features[image_rows].astype(np.float32), self.boxes[image_rows]
        if self._regions is None or self._regions_pid != os.getpid():
            self._regions = h5py.File(self.regions_path, "r")
            self._regions_pid = os.getpid()
        image_index = self.arrays["image_index"][positions]
        order = np.argsort(image_index)
        unique, inverse = np.unique(image_index[order], return_inverse=True)
        features = self._regions["features"][unique][inverse]
        boxes = self._normalise(self._regions["boxes"][unique], self._regions["sizes"][unique])[inverse]
        restore = np.empty_like(order)
        restore[order] = np.arange(len(order))
        return features[restore].astype(np.float32), boxes[restore]

    def batch(self, positions) -> dict[str, torch.Tensor]:
        """The contract's batch dict for dataset positions (vectorised; what the DataLoader calls)."""
        positions = np.asarray(positions, dtype=np.int64)
        arrays = {key: value[positions] for key, value in self.arrays.items()}
        features, boxes = self._region_rows(positions)
        # Trim question columns that are padding in every row of this batch: shorter backbone sequences.
        width = max(int(arrays["question_lengths"].max(initial=1)), 1)
        questions = torch.from_numpy(arrays["questions"][:, :width].astype(np.int64))
        # Likewise explanation columns past the batch's longest explanation (with <end>): the decoder runs
        # one step per column, and explanations average 7 tokens of the 13 columns.
        explanation_width = max(int(arrays["explanation_lengths"].max(initial=1)), 1)
        explanation_tokens = torch.from_numpy(arrays["explanations"][:, :explanation_width].astype(np.int64))
        steps = torch.arange(explanation_tokens.shape[1])
        return {
            "question_tokens": questions,
            "question_mask": questions != 0,
            "region_features": torch.from_numpy(features),
            "region_boxes": torch.from_numpy(boxes),
            "answers": torch.from_numpy(arrays["answers"].astype(np.int64)),
            "explanation_tokens": explanation_tokens,
            "explanation_mask": steps[None, :] < torch.from_numpy(arrays["explanation_lengths"].astype(np.int64))[:, None],
            "gate_targets": torch.from_numpy(arrays["gate_targets"][:, :explanation_width].astype(np.float32)),
            "index": torch.from_numpy(self.rows[positions]),
        }

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.batch([position]).items()}

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        # DataLoader hands the whole list of a batch's positions here; `collate` passes the dict through.
        return self.batch(positions)


def collate(items) -> dict[str, torch.Tensor]:
    """Stack single items (from `dataset[i]`) into a batch; a batch from `__getitems__` passes through."""
    if isinstance(items, dict):
        return items
    if not items:
        raise ValueError("collate: empty batch")
    # Single items carry their own question and explanation widths; pad to the longest (then trim as
    # `batch` does).
    widths = {"question": max(max(int(item["question_mask"].sum()) for item in items), 1),
              "explanation": max(max(int(item["explanation_mask"].sum()) for item in items), 1)}
    batch = {}
    for key in items[0]:
        values = [item[key] for item in items]
        kind = {"question_tokens": "question", "question_mask": "question", "explanation_tokens": "explanation",
                "explanation_mask": "explanation", "gate_targets": "explanation"}.get(key)
        if kind is not None:
            width = widths[kind]
            values = [torch.nn.functional.pad(value[:width], (0, width - min(len(value), width))) for value in values]
        batch[key] = torch.stack(values)
    return batch


def stratified_subset(types_detailed, fraction: float, seed: int) -> np.ndarray:
    """Sorted row positions keeping `fraction` of each `types_detailed` group (at least one per group).

    The transfer setting (1/5/10/100% of training questions) must keep every question type present and
    be the same subset for a given seed.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    types_detailed = np.asarray(types_detailed, dtype=object)
    if fraction == 1.0:
        return np.arange(len(types_detailed))
    rng = np.random.default_rng(seed)
    chosen = []
    for group in sorted(set(types_detailed.tolist())):
        members = np.flatnonzero(types_detailed == group)
        keep = max(1, round(fraction * len(members)))
        chosen.append(rng.permutation(members)[:keep])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def split_types(data_dir, split: str, key: str = "types_detailed") -> np.ndarray:
    """One string array of `{split}.h5` (used to pick stratified subsets before building a dataset)."""
    path = Path(data_dir) / layout.split_file(split)
    with h5py.File(path, "r") as handle:
        if key not in handle:
            raise StoreError(f"{path}: missing dataset {key!r}")
        return _strings(handle[key])
