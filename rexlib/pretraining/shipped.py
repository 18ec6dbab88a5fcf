"""The backbone rex ships (`weights/visualbert-world-tiny`), and when it applies.

Its weights were pretrained against one regions file: the default world's (`make pretrain` wrote them).
Region features are the image as the model reads it, so the backbone only fits a store whose regions
file is that very file (checked by size, then sha256). Real GQA or another world gets a randomly
initialised backbone unless `--pretrained DIR` names one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rexlib import layout
from rexlib.io import file_sha256, read_json

SHIPPED_BACKBONE = Path(__file__).resolve().parents[2] / "weights" / "visualbert-world-tiny"
AUTO = "auto"


def backbone_for(regions_file: str | Path, folder: Path = SHIPPED_BACKBONE) -> Path | None:
    """`folder` when it holds a backbone pretrained against `regions_file`, else None."""
    recipe_file = Path(folder) / layout.BACKBONE_RECIPE
    regions_file = Path(regions_file)
    if not recipe_file.is_file() or not regions_file.is_file():
        return None
    trained_on = read_json(recipe_file)["regions"]
    stat = regions_file.stat()  # the size is a cheap first check: real GQA's features are tens of GB
    if trained_on.get("bytes", stat.st_size) != stat.st_size:
        return None
    if _regions_digest(str(regions_file.resolve()), stat.st_size, stat.st_mtime_ns) != trained_on["sha256"]:
        return None
    return Path(folder)


@lru_cache(maxsize=8)
def _regions_digest(path: str, size: int, mtime_ns: int) -> str:
    """Hashed once per file version: every TrainConfig resolves `auto`, and notebooks make dozens."""
    return file_sha256(path)


def verify(folder: Path = SHIPPED_BACKBONE) -> list[str]:
    """Files of `folder` whose sha256 differs from the one its recipe records (empty: all intact)."""
    recipe = read_json(Path(folder) / layout.BACKBONE_RECIPE)
    return [name for name, digest in recipe["sha256"].items() if file_sha256(Path(folder) / name) != digest]
