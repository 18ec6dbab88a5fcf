"""`python -m rexlib merge --out DIR`: join the shards of a sharded build into one store.

Each shard (``DIR/shards/i-of-n/``, written by ``build --shard i/n``) holds stage-1 partial files whose
records carry their index in the question file; merging puts them back in file order and runs the
same finalize stage as an unsharded build, so the result is byte-identical to it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rexlib import layout
from rexlib.dataset.build import finalize, load_category_table, load_partials, summary_table
from rexlib.io import read_json


def find_shards(out_dir: str | Path) -> tuple[list[Path], dict]:
    """The shard folders of a build, checked: all n present, complete, with the same settings."""
    root = Path(out_dir) / "shards"
    folders = sorted(root.glob("*-of-*")) if root.exists() else []
    if not folders:
        raise FileNotFoundError(f"{root}: no shards (run `python -m rexlib build --shard i/n` first)")
    counts = {folder.name.split("-of-")[1] for folder in folders}
    if len(counts) != 1:
        raise ValueError(f"{root}: shards of different counts {sorted(counts)}; remove the stale ones")
    count = int(counts.pop())
    expected = [root / f"{part}-of-{count}" for part in range(1, count + 1)]
    missing = [folder.name for folder in expected if not (folder / layout.SHARD_MANIFEST).exists()]
    if missing:
        raise FileNotFoundError(f"{root}: shards not finished: {', '.join(missing)}")
    settings = None
    for folder in expected:
        manifest = read_json(folder / layout.SHARD_MANIFEST)
        manifest.pop("shard", None)
        if settings is None:
            settings = manifest
        elif manifest != settings:
            raise ValueError(f"{folder}: built with other settings than {expected[0].name}")
    return expected, settings


def merge(out_dir: str | Path, *, log=print) -> dict:
    """Finalize a sharded build into ``out_dir``; returns the build reports per split."""
    folders, settings = find_shards(out_dir)
    records = {split: load_partials([folder / "partial" / split for folder in folders])
               for split in settings["splits"]}
    reports = finalize(out_dir, records, settings["regions"],
                       max_explanation_length=settings["max_explanation_length"],
                       drop_disagreements=settings["drop_disagreements"], categories=load_category_table(folders[0]),
                       source=settings["source"], log=log)
    log(summary_table(reports))
    return reports


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="the folder the shards were built into")


def run(args: argparse.Namespace) -> int:
    try:
        merge(args.out)
    except (ValueError, FileNotFoundError) as error:
        print(f"merge: {error}", file=sys.stderr)
        return 1
    return 0
