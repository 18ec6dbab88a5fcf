"""LXMERT / bottom-up-attention tsv files -> ``regions.h5`` (docs/contracts.md), streaming.

Each tsv row is one image: ``img_id, img_h, img_w, objects_id, objects_conf, attrs_id, attrs_conf,
num_boxes, boxes, features`` where ``boxes`` (num_boxes x 4, x1 y1 x2 y2 pixels) and ``features``
(num_boxes x D) are base64-encoded float32 arrays. Rows are read one at a time and appended to
resizable datasets, so memory stays at one row whatever the file size (GQA's tsv is ~30 GB).

Images with fewer than 36 boxes are padded with zero boxes (IoU 0 with everything, so never chosen
by grounding) and zero features; more than 36 are cut to the first 36 (the detector's order, by
confidence). Malformed rows are counted and named, never fatal.
"""

from __future__ import annotations

import base64
import binascii
import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from rexlib.boxes import NUM_REGIONS
from rexlib.io import atomic_h5

IMAGE_ID_BYTES = 64
IMAGE_ID_DTYPE = f"S{IMAGE_ID_BYTES}"  # fixed-length bytes, as the world writes image ids
BLOCK = 1024  # rows written to the h5 file at once
TSV_FIELDS = ("img_id", "img_h", "img_w", "objects_id", "objects_conf", "attrs_id", "attrs_conf",
              "num_boxes", "boxes", "features")


@dataclass
class ConversionReport:
    images: int = 0
    padded: int = 0  # images with fewer than 36 boxes
    truncated: int = 0  # images with more than 36 boxes
    duplicates: int = 0
    malformed: list = field(default_factory=list)  # (file, line, image id or None, reason)


def _decode(text: str, rows: int, name: str) -> np.ndarray:
    values = np.frombuffer(base64.b64decode(text, validate=True), dtype=np.float32)
    if rows <= 0 or values.size % rows:
        raise ValueError(f"{name} hold {values.size} floats, not a multiple of num_boxes={rows}")
    return values.reshape(rows, -1)


def parse_row(row: dict, feature_dim: int | None) -> tuple[str, np.ndarray, np.ndarray, tuple[int, int]]:
    """One tsv row -> (image id, boxes (36,4) float32, features (36,D) float16, (w, h))."""
    image_id = row["img_id"]
    if not image_id:
        raise ValueError("empty img_id")
    width, height = int(float(row["img_w"])), int(float(row["img_h"]))
    count = int(row["num_boxes"])
    boxes = _decode(row["boxes"], count, "boxes")
    if boxes.shape[1] != 4:
        raise ValueError(f"boxes have {boxes.shape[1]} columns, expected 4")
    features = _decode(row["features"], count, "features")
    if feature_dim is not None and features.shape[1] != feature_dim:
        raise ValueError(f"features have dimension {features.shape[1]}, earlier rows {feature_dim}")
    if not (np.isfinite(boxes).all() and np.isfinite(features).all()):
        raise ValueError("non-finite values")
    padded_boxes = np.zeros((NUM_REGIONS, 4), np.float32)
    padded_features = np.zeros((NUM_REGIONS, features.shape[1]), np.float16)
    keep = min(count, NUM_REGIONS)
    padded_boxes[:keep] = boxes[:keep]
    padded_features[:keep] = features[:keep]
    return image_id, padded_boxes, padded_features, (width, height)


def convert_tsv(tsv_paths: Sequence[str | Path], out_path: str | Path, *, log=print) -> ConversionReport:
    """Stream LXMERT tsv files into ``regions.h5``; returns the counts and the malformed rows."""
    csv.field_size_limit(sys.maxsize)  # a row's features column is ~100 kB of base64
    report = ConversionReport()
    seen: set[str] = set()
    buffer: list[tuple] = []  # rows waiting to be written, flushed in blocks

    def flush(datasets: dict) -> None:
        start = datasets["boxes"].shape[0]
        for dataset in datasets.values():
            dataset.resize(start + len(buffer), axis=0)
        datasets["image_ids"][start:] = np.array([row[0].encode("utf-8") for row in buffer], IMAGE_ID_DTYPE)
        datasets["boxes"][start:] = np.stack([row[1] for row in buffer])
        datasets["features"][start:] = np.stack([row[2] for row in buffer])
        datasets["sizes"][start:] = np.array([row[3] for row in buffer], np.int32)
        buffer.clear()

    with atomic_h5(out_path) as handle:
        datasets = None
        for tsv_path in tsv_paths:
            with open(tsv_path, newline="", encoding="utf-8") as source:
                reader = csv.DictReader(source, fieldnames=TSV_FIELDS, delimiter="\t")
                for line, row in enumerate(reader, start=1):
                    image_id = row.get("img_id") or None
                    try:
                        if None in row or any(row.get(name) is None for name in TSV_FIELDS):
                            raise ValueError(f"expected {len(TSV_FIELDS)} tab-separated fields")
                        if len(image_id.encode("utf-8")) > IMAGE_ID_BYTES:
                            raise ValueError(f"img_id longer than {IMAGE_ID_BYTES} bytes")
                        feature_dim = None if datasets is None else datasets["features"].shape[2]
                        image_id, boxes, features, size = parse_row(row, feature_dim)
                        count = int(row["num_boxes"])
                    except (ValueError, binascii.Error, KeyError) as error:
                        report.malformed.append((str(tsv_path), line, image_id, str(error)))
                        continue
                    if image_id in seen:
                        report.duplicates += 1
                        continue
                    seen.add(image_id)
                    if datasets is None:
                        datasets = _create(handle, features.shape[1])
                    buffer.append((image_id, boxes, features, size))
                    report.images += 1
                    report.padded += count < NUM_REGIONS
                    report.truncated += count > NUM_REGIONS
                    if len(buffer) == BLOCK:
                        flush(datasets)
                        log(f"{report.images} images")
        if datasets is None:
            raise ValueError(f"no valid rows in {', '.join(map(str, tsv_paths))}")
        if buffer:
            flush(datasets)
    log(f"regions.h5: {report.images} images ({report.padded} padded, {report.truncated} truncated, "
        f"{report.duplicates} duplicates, {len(report.malformed)} malformed rows)")
    for file, line, image_id, reason in report.malformed[:20]:
        log(f"  malformed: {file} line {line} image {image_id}: {reason}")
    return report


def _create(handle: h5py.File, feature_dim: int) -> dict:
    def make(name, shape, dtype):
        return handle.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                                     chunks=(1, *shape) if shape else (BLOCK,), track_times=False)

    return {
        "image_ids": make("image_ids", (), IMAGE_ID_DTYPE),
        "boxes": make("boxes", (NUM_REGIONS, 4), np.float32),
        "features": make("features", (NUM_REGIONS, feature_dim), np.float16),
        "sizes": make("sizes", (2,), np.int32),
    }
