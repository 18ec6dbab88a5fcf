"""A simulated bottom-up detector: 36 regions per image with a feature each, written to regions.h5.

Real bottom-up regions (Anderson et al.) are not the ground-truth boxes: they are jittered, some
cover two objects at once, some only part of one, and some lie on background. Their features carry
what the object is and looks like, which is why a model can read "white cup" off them. This module
imitates both properties: each object has a fixed random embedding (its name plus its attributes,
seeded by the world seed), and each region's feature is the embedding of what it covers plus noise.
Rows are sorted by a simulated confidence, as the detector's files are.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import h5py
import numpy as np

from rexlib.io import AtomicTarget

REGIONS_PER_IMAGE = 36
IMAGE_ID_BYTES = 16


class FeatureSpace:
    """A fixed random vector per word (object name, attribute value, location), seeded by the world seed."""

    def __init__(self, seed: int, dimension: int):
        self.seed = seed
        self.dimension = dimension
        self._vectors: dict[str, np.ndarray] = {}

    def vector(self, word: str) -> np.ndarray:
        if word not in self._vectors:
            rng = np.random.default_rng([self.seed, zlib.crc32(word.encode("utf-8"))])
            self._vectors[word] = rng.standard_normal(self.dimension).astype(np.float32)
        return self._vectors[word]

    def object_feature(self, obj: dict) -> np.ndarray:
        """Name first, attributes weaker: the nearest name vector recovers the object's name."""
        feature = self.vector(obj["name"]).copy()
        for value in obj["attributes"]:
            feature += 0.5 * self.vector(value)
        return feature


def _clip(box: np.ndarray, width: int, height: int) -> np.ndarray:
    x1, y1, x2, y2 = box
    x1, x2 = np.clip([x1, x2], 0, width - 1)
    y1, y2 = np.clip([y1, y2], 0, height - 1)
    return np.array([x1, y1, max(x2, x1 + 2), max(y2, y1 + 2)], dtype=np.float32)


def detect(scene: dict, rng: np.random.Generator, space: FeatureSpace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """36 boxes (x1, y1, x2, y2 pixels, float32), their features (float16) and confidences (float32).

    Rows come sorted by confidence, most confident first, as a real detector's file lists them: a
    clean detection of a whole object scores highest (a small object a little lower), boxes over two
    objects, over part of one, or loose duplicates score in the middle, background boxes lowest.
    """
    width, height = scene["width"], scene["height"]
    objects = list(scene["objects"].values())
    truth = np.array([[o["x"], o["y"], o["x"] + o["w"], o["y"] + o["h"]] for o in objects], dtype=np.float32)
    features = [space.object_feature(o) for o in objects]
    boxes_out: list[np.ndarray] = []
    features_out: list[np.ndarray] = []
    scores_out: list[float] = []

    def emit(box: np.ndarray, feature: np.ndarray, noise: float, confidence: tuple[float, float]) -> None:
        boxes_out.append(_clip(box, width, height))
        features_out.append(feature + noise * rng.standard_normal(space.dimension).astype(np.float32))
        scores_out.append(float(rng.uniform(*confidence)))

    def jitter(box: np.ndarray, amount: float) -> np.ndarray:
        size = np.array([box[2] - box[0], box[3] - box[1]] * 2, dtype=np.float32)
        return box + amount * size * rng.uniform(-1, 1, 4).astype(np.float32)

    for box, feature in zip(truth, features):  # one good detection per object
        small = min(1.0, float(np.sqrt((box[2] - box[0]) * (box[3] - box[1]))) / 60)
        emit(jitter(box, 0.08), feature, 0.3, (0.55 + 0.3 * small, 0.7 + 0.29 * small))
    count = len(objects)
    for _ in range(min(3, count // 3)):  # a box over two objects
        first, second = rng.choice(count, 2, replace=False)
        union = np.concatenate([np.minimum(truth[first][:2], truth[second][:2]),
                                np.maximum(truth[first][2:], truth[second][2:])])
        emit(jitter(union, 0.05), 0.5 * (features[first] + features[second]), 0.5, (0.3, 0.7))
    for _ in range(min(3, count // 2)):  # a box over part of an object
        index = int(rng.integers(count))
        x1, y1, x2, y2 = truth[index]
        part = (np.array([x1, y1, (x1 + x2) / 2, y2]) if rng.random() < 0.5
                else np.array([x1, y1, x2, (y1 + y2) / 2]))
        emit(jitter(part.astype(np.float32), 0.05), 0.7 * features[index], 0.5, (0.25, 0.65))
    while len(boxes_out) < 28 and count:  # looser second detections, as NMS leaves them
        index = int(rng.integers(count))
        emit(jitter(truth[index], 0.2), features[index], 0.6, (0.2, 0.6))
    background = space.vector("background") + 0.5 * space.vector(scene.get("location", "room"))
    while len(boxes_out) < REGIONS_PER_IMAGE:  # background distractors
        w, h = rng.uniform(30, width / 2), rng.uniform(20, height / 2)
        x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
        emit(np.array([x, y, x + w, y + h], dtype=np.float32), background, 0.8, (0.02, 0.3))
    scores = np.array(scores_out, dtype=np.float32)
    order = np.argsort(-scores, kind="stable")
    boxes = np.stack(boxes_out)[order].astype(np.float32)
    region_features = np.stack(features_out)[order].astype(np.float16)
    return boxes, region_features, scores[order]  # (36, 4), (36, D), (36,)


class RegionWriter:
    """Writes regions.h5 row by row in chunks, so a 100,000-image world never sits in memory.

    Datasets are created at their final size with ``track_times=False`` (no timestamps in the file:
    the same world gives the same bytes); the file is written under a temporary name and moved into
    place on :meth:`close`.
    """

    def __init__(self, path: str | Path, count: int, feature_dimension: int, flush_every: int = 256):
        self.path = Path(path)
        self.target = AtomicTarget(self.path)
        self.count, self.flush_every = count, flush_every
        self.file = h5py.File(self.target.temporary, "w", track_order=False)
        chunk = max(1, min(count, 64))
        common = {"track_times": False}
        self.image_ids = self.file.create_dataset("image_ids", (count,), dtype=f"S{IMAGE_ID_BYTES}", **common)
        self.boxes = self.file.create_dataset("boxes", (count, REGIONS_PER_IMAGE, 4), dtype="float32",
                                              chunks=(chunk, REGIONS_PER_IMAGE, 4), **common)
        self.features = self.file.create_dataset(
            "features", (count, REGIONS_PER_IMAGE, feature_dimension), dtype="float16",
            chunks=(chunk, REGIONS_PER_IMAGE, feature_dimension), **common)
        self.sizes = self.file.create_dataset("sizes", (count, 2), dtype="int32", **common)
        self.written = 0
        self._pending: list[tuple[str, np.ndarray, np.ndarray, tuple[int, int]]] = []

    def add(self, image_id: str, boxes: np.ndarray, features: np.ndarray, size: tuple[int, int]) -> None:
        self._pending.append((image_id, boxes, features, size))
        if len(self._pending) >= self.flush_every:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        start, stop = self.written, self.written + len(self._pending)
        self.image_ids[start:stop] = np.array([p[0].encode("ascii") for p in self._pending], dtype=f"S{IMAGE_ID_BYTES}")
        self.boxes[start:stop] = np.stack([p[1] for p in self._pending])
        self.features[start:stop] = np.stack([p[2] for p in self._pending])
        self.sizes[start:stop] = np.array([p[3] for p in self._pending], dtype=np.int32)
        self.written = stop
        self._pending = []

    def close(self) -> None:
        self._flush()
        self.file.close()
        if self.written != self.count:
            self.target.discard()
            raise RuntimeError(f"{self.path}: wrote {self.written} images, expected {self.count}")
        self.target.commit()

    def abort(self) -> None:
        self.file.close()
        self.target.discard()
