"""`python -m rexlib grow-world`: a world with more training images and the same val and testdev.

A world's scenes, questions and region features are seeded per image, so two worlds of one seed agree on
every image they share; only the split an image falls in depends on the world's size. Growing keeps the
base world's val and testdev (so runs over either world are scored on the same questions) and trains on the
base world's train images plus the larger world's train images that are not among the base's val/testdev.
The result is a GQA-format folder (questions, scene graphs, regions.h5, world.json) for `rexlib build`.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import h5py

from rexlib.io import atomic_path, read_json, write_json
from rexlib.world.detector import RegionWriter

HELD_OUT = ("val", "testdev")


def _files(world: Path) -> dict:
    manifest = world / "world.json"
    if not manifest.is_file():
        raise ValueError(f"{manifest}: not found; grow-world reads worlds written by `rexlib build-world`")
    return read_json(manifest)["files"]


def _read(world: Path, files: dict, kind: str, split: str) -> dict:
    return read_json(world / files[kind][split])


def _regions(path: Path, wanted: set[str]) -> dict[str, tuple]:
    with h5py.File(path, "r") as handle:
        ids = [value.decode() for value in handle["image_ids"][:]]
        rows = [index for index, image_id in enumerate(ids) if image_id in wanted]
        boxes, features, sizes = (handle[name][rows] for name in ("boxes", "features", "sizes"))
    return {ids[row]: (boxes[n], features[n], sizes[n]) for n, row in enumerate(rows)}


def grow_world(base: str | Path, larger: str | Path, out: str | Path) -> dict:
    """Write ``out``: ``base``'s val and testdev, and for training its train images plus ``larger``'s train
    images outside ``base``'s val/testdev. Questions of the added images get ids prefixed ``g`` (the two
    worlds number their questions independently). Returns the counts written (also in out/world.json)."""
    base, larger, out = Path(base), Path(larger), Path(out)
    base_files, larger_files = _files(base), _files(larger)
    held_out = set()
    for split in HELD_OUT:
        held_out |= set(_read(base, base_files, "scene_graphs", split))
    scenes = _read(base, base_files, "scene_graphs", "train")
    questions = _read(base, base_files, "questions", "train")
    larger_scenes = _read(larger, larger_files, "scene_graphs", "train")
    added = [image_id for image_id in larger_scenes if image_id not in held_out and image_id not in scenes]
    for image_id in set(larger_scenes) & set(scenes):
        if larger_scenes[image_id] != scenes[image_id]:
            raise ValueError(f"image {image_id}: its scene graph differs between {base} and {larger}; "
                             f"grow-world needs two worlds of the same seed and version")
    scenes.update((image_id, larger_scenes[image_id]) for image_id in added)
    added_set = set(added)
    for question_id, question in _read(larger, larger_files, "questions", "train").items():
        if question["imageId"] in added_set:
            questions["g" + question_id] = question
    regions = _regions(base / "regions.h5", set(scenes) | held_out)
    for image_id, row in _regions(larger / "regions.h5", added_set).items():
        regions[image_id] = row
    missing = (set(scenes) | held_out) - set(regions)
    if missing:
        raise ValueError(f"regions.h5 lacks {len(missing)} images, e.g. {min(missing)}")
    write_json(out / base_files["scene_graphs"]["train"], scenes)
    write_json(out / base_files["questions"]["train"], questions)
    for split in HELD_OUT:
        for kind in ("scene_graphs", "questions"):
            with atomic_path(out / base_files[kind][split]) as temporary:
                shutil.copyfile(base / base_files[kind][split], temporary)
    order = sorted(regions)
    writer = RegionWriter(out / "regions.h5", len(order), regions[order[0]][1].shape[-1])  # the world's own layout
    try:
        for image_id in order:
            writer.add(image_id, *regions[image_id])
    except BaseException:
        writer.abort()
        raise
    writer.close()
    counts = {"train_images": len(scenes), "added_images": len(added), "train_questions": len(questions),
              "regions": len(order)}
    manifest = read_json(base / "world.json")
    manifest["files"] = {**manifest["files"], "images": None, "masks": None}  # the added images have no pictures
    manifest["grown"] = {"base": str(base), "larger": str(larger), **counts}
    write_json(out / "world.json", manifest, indent=1)
    return counts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, help="the world whose val and testdev are kept")
    parser.add_argument("--larger", required=True, help="a larger world of the same seed (build-world --images N)")
    parser.add_argument("--out", required=True, help="directory to write the grown world into")


def run(args: argparse.Namespace) -> int:
    try:
        counts = grow_world(args.base, args.larger, args.out)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as error:
        print(f"grow-world: {error}")
        return 1
    print(f"grow-world: {counts['train_images']} train images ({counts['added_images']} added), "
          f"{counts['train_questions']} train questions, {counts['regions']} images in regions.h5 -> {args.out}")
    return 0
