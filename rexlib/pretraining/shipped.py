"""The backbone rex ships (`weights/visualbert-world-tiny`), and when it applies.

Its weights were pretrained against one regions file (`make pretrain` wrote them), and may serve another:
a world grown from the default one (`rexlib grow-world`) holds every default-world image with the very same
boxes and features, so a backbone pretrained on the grown world reads the default world's regions as it read
its own; `pretrain --serves FILE` checks that image by image and records FILE. Region features are the image
as the model reads it, so the backbone only fits a store whose regions file is one of those files (checked by
size, then sha256). Real GQA or another world gets a randomly initialised backbone unless `--pretrained DIR`
names one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np

from rexlib import layout
from rexlib.io import decode_strings, file_sha256, read_json

SHIPPED_BACKBONE = Path(__file__).resolve().parents[2] / "weights" / "visualbert-world-tiny"
AUTO = "auto"


def backbone_for(regions_file: str | Path, folder: Path = SHIPPED_BACKBONE) -> Path | None:
    """`folder` when it holds a backbone pretrained against `regions_file`, else None."""
    recipe_file = Path(folder) / layout.BACKBONE_RECIPE
    regions_file = Path(regions_file)
    if not recipe_file.is_file() or not regions_file.is_file():
        return None
    recipe = read_json(recipe_file)
    stat = regions_file.stat()  # the size is a cheap first check: real GQA's features are tens of GB
    for fitted in (recipe["regions"], *recipe.get("serves", [])):
        if fitted.get("bytes", stat.st_size) != stat.st_size:
            continue
        if _regions_digest(str(regions_file.resolve()), stat.st_size, stat.st_mtime_ns) == fitted["sha256"]:
            return Path(folder)
    return None


def regions_record(path: Path) -> dict:
    """How a recipe names a regions file: path, size and sha256."""
    return {"file": str(path), "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def check_serves(trained_on: Path, served: Path) -> dict:
    """The record of `served` (`regions_record`, plus its image count) when every image it holds is in
    `trained_on` with equal boxes and features; a ValueError naming the first image that is missing or differs."""
    with h5py.File(trained_on, "r") as big, h5py.File(served, "r") as small:
        rows = {image_id: row for row, image_id in enumerate(decode_strings(big["image_ids"][:]))}
        wanted = decode_strings(small["image_ids"][:])
        missing = [image_id for image_id in wanted if image_id not in rows]
        if missing:
            raise ValueError(f"{served}: image {missing[0]} (and {len(missing) - 1} more) is not in {trained_on}")
        for name in ("boxes", "features"):
            theirs = small[name][:]
            for index, image_id in enumerate(wanted):
                if not np.array_equal(big[name][rows[image_id]], theirs[index]):
                    raise ValueError(f"{served}: image {image_id}'s {name} differ from {trained_on}'s")
    return {**regions_record(served), "images": len(wanted)}


@lru_cache(maxsize=8)
def _regions_digest(path: str, size: int, mtime_ns: int) -> str:
    """Hashed once per file version: every TrainConfig resolves `auto`, and notebooks make dozens."""
    return file_sha256(path)


def verify(folder: Path = SHIPPED_BACKBONE) -> list[str]:
    """Files of `folder` whose sha256 differs from the one its recipe records (empty: all intact)."""
    recipe = read_json(Path(folder) / layout.BACKBONE_RECIPE)
    return [name for name, digest in recipe["sha256"].items() if file_sha256(Path(folder) / name) != digest]
