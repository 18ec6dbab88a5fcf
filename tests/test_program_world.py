"""rexlib.program over the embedded world: every answer re-derived, every family, every split."""

import json
import re

import pytest

from rexlib.gqa import load_questions, load_scene_graphs, split_files
from rexlib.program import agreement_by_family, compare_answer, execute
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
    results = []
    for question in questions.values():
        scene = scenes[question.image_id]
        execution = execute(question, scene, categories)
        assert execute(question, scene, categories) == execution  # deterministic
        assert execution.decided_by == "scene graph" and execution.derived_answer == question.answer
        for object_id in re.findall(r"\(obj:([^)]+)\)", execution.explanation):
            assert object_id in scene.objects
        results.append(compare_answer(question, execution))
    table = agreement_by_family(results)
    assert table["all"]["questions"] == len(questions)
    disagreeing = {family: row["disagreements"] for family, row in table.items() if row["rate"] < 1.0}
    assert not disagreeing, disagreeing


def test_agreement_report_counts_each_family():
    from rexlib.program import AnswerComparison

    results = [AnswerComparison("a", ("select", "query"), "white", "white", True),
               AnswerComparison("b", ("select", "verify"), "yes", "no", False),
               AnswerComparison("c", ("select",), None, "no", False)]
    table = agreement_by_family(results)
    assert table["all"] == {"questions": 2, "agree": 1, "undecided": 0, "disagreements": ["b"], "rate": 0.5}
    assert table["query"]["rate"] == 1.0 and table["verify"]["disagreements"] == ["b"]
