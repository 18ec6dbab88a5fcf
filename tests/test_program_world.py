"""rexlib.program over the embedded world: every answer re-derived, every family, every split."""

import json
import re
from collections import defaultdict

import pytest

from rexlib.gqa import load_questions, load_scene_graphs, split_files
from rexlib.program import execute
from rexlib.program.attributes import CategoryTable

pytest.importorskip("rexlib.world.build")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from rexlib.cli import main

    out = tmp_path_factory.mktemp("world")
    assert main(["build-world", "--out", str(out), "--images", "50", "--seed", "0", "--no-images", "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def categories(world):
    """Value -> category mined from the world's own programs, over every split (as the builder does)."""
    records = []
    for split in ("train", "val", "testdev"):
        records.extend(json.loads(split_files(world, split)[0].read_text(encoding="utf-8")).values())
    return CategoryTable.mine(records)


@pytest.mark.parametrize("split", ["train", "val", "testdev"])
def test_the_executor_agrees_with_every_world_answer(world, categories, split):
    question_file, scene_file = split_files(world, split)
    scenes = load_scene_graphs(scene_file)
    questions, rejects = load_questions(question_file, scenes)
    assert questions and not rejects
    disagreeing = defaultdict(list)  # family -> questions whose answer the scene graph did not derive
    for question in questions.values():
        scene = scenes[question.image_id]
        execution = execute(question, scene, categories)
        assert execute(question, scene, categories) == execution  # deterministic
        if execution.decided_by != "scene graph" or execution.derived_answer != question.answer:
            for family in dict.fromkeys(step.family for step in question.program):
                disagreeing[family].append(question.question_id)
        for object_id in re.findall(r"\(obj:([^)]+)\)", execution.explanation):
            assert object_id in scene.objects
    assert not disagreeing, dict(disagreeing)
