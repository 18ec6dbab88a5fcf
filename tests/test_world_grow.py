"""grow-world: more training images over the same val and testdev, the shared images unchanged."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from rexlib import cli
from rexlib.world import build_world
from rexlib.world.grow import grow_world


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    root = tmp_path_factory.mktemp("worlds")
    for name, images in (("base", 20), ("larger", 40)):
        build_world(root / name, images=images, seed=0, feature_dim=8, render=False, progress=False)
    return root


def _json(path):
    return json.loads(path.read_text())


def _regions(path):
    with h5py.File(path) as handle:
        return {image_id.decode(): handle["features"][n] for n, image_id in enumerate(handle["image_ids"][:])}


def test_grown_world_keeps_val_and_testdev_and_adds_train_images(worlds, tmp_path):
    base, larger, out = worlds / "base", worlds / "larger", tmp_path / "grown"
    assert cli.main(["grow-world", "--base", str(base), "--larger", str(larger), "--out", str(out)]) == 0
    for split in ("val", "testdev"):
        for name in (f"questions/{split}_balanced_questions.json", f"sceneGraphs/{split}_sceneGraphs.json"):
            assert (out / name).read_bytes() == (base / name).read_bytes()
    held_out = set(_json(base / "sceneGraphs/val_sceneGraphs.json")) | set(_json(base / "sceneGraphs/testdev_sceneGraphs.json"))
    base_train = _json(base / "sceneGraphs/train_sceneGraphs.json")
    grown_train = _json(out / "sceneGraphs/train_sceneGraphs.json")
    larger_train = _json(larger / "sceneGraphs/train_sceneGraphs.json")
    added = set(grown_train) - set(base_train)
    assert set(base_train) <= set(grown_train) and added and not added & held_out
    assert added == set(larger_train) - set(base_train) - held_out
    assert all(grown_train[image_id] == larger_train[image_id] for image_id in added)
    questions = _json(out / "questions/train_balanced_questions.json")
    base_questions = _json(base / "questions/train_balanced_questions.json")
    assert {qid: q for qid, q in questions.items() if qid in base_questions} == base_questions
    assert {q["imageId"] for qid, q in questions.items() if qid.startswith("g")} == added
    grown_regions, larger_regions = _regions(out / "regions.h5"), _regions(larger / "regions.h5")
    assert set(grown_regions) == set(grown_train) | held_out
    assert all(np.array_equal(grown_regions[image_id], larger_regions[image_id]) for image_id in added)
    manifest = _json(out / "world.json")
    assert manifest["grown"]["added_images"] == len(added) and manifest["files"]["images"] is None


def test_worlds_of_different_seeds_are_refused(worlds, tmp_path, capsys):
    other = tmp_path / "other"
    build_world(other, images=40, seed=1, feature_dim=8, render=False, progress=False)
    with pytest.raises(ValueError, match="differs between"):
        grow_world(worlds / "base", other, tmp_path / "grown")
    assert cli.main(["grow-world", "--base", str(worlds / "base"), "--larger", str(tmp_path / "missing"),
                     "--out", str(tmp_path / "grown")]) == 1
    assert "world.json" in capsys.readouterr().out
