"""The embedded world: reproducible bytes, GQA's file layout, every operation family, the CLI's rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from rexlib.world import WorldExistsError, build_world, format_counts
from rexlib.world.build import FAMILY_ORDER
from rexlib.world.cli import add_arguments, run
from rexlib.world.ontology import ATTRIBUTE_CATEGORIES, KINDS, OBJECT_NAMES, SPATIAL_RELATIONS
from rexlib.world.questions import families

TINY = {"images": 20, "feature_dim": 16, "progress": False, "log": lambda _: None}
REFERENCE_OPERATIONS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "operation_mapping.json"


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tiny") / "world"
    return out, build_world(out, seed=0, **TINY)


def load_questions(out: Path) -> dict:
    questions = {}
    for split in ("train", "val", "testdev"):
        questions.update(json.loads((out / "questions" / f"{split}_balanced_questions.json").read_text()))
    return questions


def test_layout_and_manifest(tiny_world):
    out, manifest = tiny_world
    for split in ("train", "val", "testdev"):
        assert (out / "questions" / f"{split}_balanced_questions.json").is_file()
        assert (out / "sceneGraphs" / f"{split}_sceneGraphs.json").is_file()
    assert json.loads((out / "world.json").read_text()) == manifest
    totals = manifest["counts"]["total"]
    assert totals["images"] == 20 and totals["questions"] >= 200
    assert [manifest["counts"]["splits"][s]["images"] for s in ("train", "val", "testdev")] == [16, 2, 2]
    assert not list(out.rglob(".*.tmp")), "temporary files left behind"
    images = sorted((out / "images").glob("*.png"))
    assert len(images) == 20
    with Image.open(images[0]) as picture:
        assert picture.size == (480, 360) and picture.mode == "RGB"
    assert "yes/no balance" in format_counts(manifest)


def test_scene_graphs_in_gqa_form(tiny_world):
    out, _ = tiny_world
    scenes = {}
    for split in ("train", "val", "testdev"):
        scenes.update(json.loads((out / "sceneGraphs" / f"{split}_sceneGraphs.json").read_text()))
    assert len(scenes) == 20
    for image_id, scene in scenes.items():
        assert image_id.isdigit() and (scene["width"], scene["height"]) == (480, 360)
        assert 4 <= len(scene["objects"]) <= 16
        for object_id, obj in scene["objects"].items():
            assert object_id.isdigit() and obj["name"] in OBJECT_NAMES
            assert 0 <= obj["x"] and obj["x"] + obj["w"] <= 480 and 0 <= obj["y"] and obj["y"] + obj["h"] <= 360
            for edge in obj["relations"]:
                assert edge["object"] in scene["objects"] and edge["object"] != object_id
                reverse = SPATIAL_RELATIONS.get(edge["name"])
                if reverse:  # spatial relations are stored in both directions
                    assert {"name": reverse, "object": object_id} in scene["objects"][edge["object"]]["relations"]


def test_regions_file(tiny_world):
    out, _ = tiny_world
    with h5py.File(out / "regions.h5", "r") as regions:
        assert regions["boxes"].shape == (20, 36, 4) and regions["boxes"].dtype == np.float32
        assert regions["features"].shape == (20, 36, 16) and regions["features"].dtype == np.float16
        assert regions["sizes"].shape == (20, 2) and regions["sizes"].dtype == np.int32
        assert regions["image_ids"].shape == (20,)
        for name in ("image_ids", "boxes", "features", "sizes"):  # no timestamps: same world, same bytes
            info = h5py.h5o.get_info(regions[name].id)
            assert info.ctime == info.mtime == 0
        boxes = regions["boxes"][:]
        assert (boxes[..., 2] > boxes[..., 0]).all() and (boxes[..., 3] > boxes[..., 1]).all()
        assert boxes.min() >= 0 and boxes[..., 2].max() < 480 and boxes[..., 3].max() < 360
        assert (regions["sizes"][:] == [480, 360]).all()
        assert np.isfinite(regions["features"][:].astype(np.float32)).all()


def test_region_features_carry_identity(tiny_world):
    """The best region for an object looks more like that object's name than other names do."""
    from rexlib.world.detector import FeatureSpace

    out, _ = tiny_world
    space = FeatureSpace(0, 16)
    scenes = json.loads((out / "sceneGraphs" / "train_sceneGraphs.json").read_text())
    with h5py.File(out / "regions.h5", "r") as regions:
        row = {image_id.decode(): k for k, image_id in enumerate(regions["image_ids"][:])}
        correct = total = 0
        for image_id, scene in scenes.items():
            boxes, features = regions["boxes"][row[image_id]], regions["features"][row[image_id]].astype(np.float32)
            for obj in scene["objects"].values():
                truth = np.array([obj["x"], obj["y"], obj["x"] + obj["w"], obj["y"] + obj["h"]])
                overlap = np.clip(np.minimum(boxes[:, 2:], truth[2:]) - np.maximum(boxes[:, :2], truth[:2]), 0, None)
                inter = overlap.prod(1)
                union = (boxes[:, 2:] - boxes[:, :2]).prod(1) + obj["w"] * obj["h"] - inter
                best = features[int(np.argmax(inter / union))]
                names = sorted(OBJECT_NAMES)
                scores = [best @ space.vector(n) for n in names]
                correct += names[int(np.argmax(scores))] == obj["name"]
                total += 1
    assert correct / total > 0.6


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path, tiny_world):
    out, _ = tiny_world
    again = tmp_path / "again"
    build_world(again, seed=0, **TINY)
    assert digests(again) == digests(out)
    other = tmp_path / "other"
    build_world(other, seed=1, **TINY)
    first, second = digests(out), digests(other)
    for name in ("questions/train_balanced_questions.json", "sceneGraphs/train_sceneGraphs.json", "regions.h5"):
        assert first[name] != second[name]


def test_same_bytes_in_another_process_with_another_hash_seed(tmp_path, tiny_world):
    """Set iteration order changes with PYTHONHASHSEED; the world must not depend on it."""
    import os
    import subprocess
    import sys

    out, _ = tiny_world
    again = tmp_path / "subprocess"
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-m", "rexlib", "build-world", "--out", str(again), "--images", "20",
                    "--seed", "0", "--feature-dim", "16", "--quiet"], check=True, env=environment,
                   capture_output=True)
    assert digests(again) == digests(out)


def test_every_operation_family_appears(tiny_world):
    out, manifest = tiny_world
    seen = set()
    for question in load_questions(out).values():
        seen.update(families(question["semantic"]))
    assert seen == set(FAMILY_ORDER)
    totals = {f: sum(manifest["counts"]["families"][s][f] for s in manifest["counts"]["families"]) for f in FAMILY_ORDER}
    assert all(totals[f] > 0 for f in FAMILY_ORDER), totals


def test_operations_are_gqa_names_and_cover_the_forms(tiny_world):
    out, _ = tiny_world
    operations = {step["operation"] for q in load_questions(out).values() for step in q["semantic"]}
    arguments = {(step["operation"], step["argument"]) for q in load_questions(out).values() for step in q["semantic"]}
    if REFERENCE_OPERATIONS.exists():
        assert operations <= set(json.loads(REFERENCE_OPERATIONS.read_text()))
    try:
        from rexlib.gqa import OPERATIONS
    except ImportError:
        OPERATIONS = None
    if OPERATIONS is not None:
        assert operations <= set(OPERATIONS)
    for needed in ("select", "relate", "query", "exist", "and", "or", "common", "verify rel", "choose rel",
                   "choose name", "filter hposition", "choose hposition", "verify hposition", "same", "different"):
        assert needed in operations, needed
    assert any(op.startswith("choose ") and op.split(" ", 1)[1] in ("older", "younger", "taller", "shorter", "larger",
               "smaller", "healthier", "less healthy", "higher", "lower") for op in operations)
    assert any(op == "relate" and arg.endswith("(-)") for op, arg in arguments), "no relate with an absent target"
    assert any(op == "relate" and ",s (" in arg for op, arg in arguments)
    assert any(op == "relate" and ",o (" in arg for op, arg in arguments)
    assert {op for op in operations if op.startswith(("same ", "different "))}


def test_yes_no_balanced(tiny_world):
    _, manifest = tiny_world
    totals = manifest["counts"]["total"]
    assert 0.4 < totals["yes"] / (totals["yes"] + totals["no"]) < 0.6


def test_ontology_size():
    assert len(OBJECT_NAMES) >= 40 and len(KINDS) >= 7
    assert len(ATTRIBUTE_CATEGORIES) >= 10
    assert len(SPATIAL_RELATIONS) == 8


def test_identical_world_is_a_no_op_and_different_is_refused(tmp_path):
    messages = []
    out = tmp_path / "world"
    build_world(out, seed=0, images=4, render=False, feature_dim=4, progress=False, log=messages.append)
    stamp = (out / "regions.h5").stat().st_mtime_ns
    build_world(out, seed=0, images=4, render=False, feature_dim=4, progress=False, log=messages.append)
    assert (out / "regions.h5").stat().st_mtime_ns == stamp
    assert any("nothing to do" in m for m in messages)
    with pytest.raises(WorldExistsError, match="overwrite"):
        build_world(out, seed=1, images=4, render=False, feature_dim=4, progress=False, log=messages.append)
    manifest = build_world(out, seed=1, images=4, render=False, feature_dim=4, progress=False,
                           log=messages.append, overwrite=True)
    assert manifest["parameters"]["seed"] == 1


def test_cli(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    out = tmp_path / "cli"
    assert run(parser.parse_args(["--out", str(out), "--images", "3", "--no-images", "--feature-dim", "4",
                                  "--quiet"])) == 0
    printed = capsys.readouterr().out
    assert "questions" in printed and "compare" in printed
    assert not (out / "images").exists()
    assert run(parser.parse_args(["--out", str(out), "--images", "5", "--quiet"])) == 1
    assert "--overwrite" in capsys.readouterr().out
    with pytest.raises(ValueError, match="images"):
        build_world(tmp_path / "bad", images=0)


def test_object_masks_only_when_asked(tmp_path, tiny_world):
    """Masks are not written by default; with masks=True each picture gets one, equal to the renderer's."""
    from rexlib.world.render import object_mask

    out, manifest = tiny_world
    assert not (out / "masks").exists() and manifest["files"]["masks"] is None
    masked = tmp_path / "masked"
    manifest = build_world(masked, seed=0, masks=True, **TINY)
    assert manifest["files"]["masks"] == "masks/{image_id}.png"
    scenes = json.loads((masked / "sceneGraphs" / "train_sceneGraphs.json").read_text())
    image_id, scene = next(iter(scenes.items()))
    with Image.open(masked / "masks" / f"{image_id}.png") as picture:
        assert picture.mode == "L" and np.array_equal(np.asarray(picture), object_mask(scene))
    assert len(list((masked / "masks").glob("*.png"))) == 20
    assert digests(masked)["images/" + image_id + ".png"] == digests(out)["images/" + image_id + ".png"]
