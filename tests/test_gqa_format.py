"""The executor and the builder on a hand-written GQA-format corpus (tests/gqa_format_fixture.py)."""

from __future__ import annotations

import json

import pytest
from gqa_format_fixture import CASES, NOT_WELL_FORMED, SCENE_GRAPHS, questions, write_gqa_format_corpus

from rexlib import gqa
from rexlib.dataset.build import build, mine_categories
from rexlib.dataset.grounding import tokenize_raw
from rexlib.program import ExecutionError, execute

SCENES = {image_id: gqa.parse_scene_graph(image_id, raw) for image_id, raw in SCENE_GRAPHS.items()}
CATEGORIES, _UNKNOWN = mine_categories({"val": (questions(), SCENE_GRAPHS)})


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_each_case_explains_gqa_answer(case):
    question_id, image_id, text, answer, semantic, explanation, decided_by = case
    question = gqa.parse_question(question_id, {"imageId": image_id, "question": text, "answer": answer,
                                                "semantic": semantic}, scene_graphs=SCENES)
    execution = execute(question, SCENES[image_id], CATEGORIES)
    assert (execution.explanation, execution.answer, execution.decided_by) == (explanation, answer, decided_by)
    tokenize_raw(execution.explanation)  # well formed: no nested or unbalanced parentheses
    if decided_by == "scene graph":
        assert execution.derived_answer == answer


def test_without_gqa_answer_the_undecidable_steps_are_named():
    by_id = {case[0]: case for case in CASES}
    _qid, image_id, text, _answer, semantic, _explanation, _decided = by_id["02"]
    question = gqa.parse_question("02", {"imageId": image_id, "question": text, "semantic": semantic},
                                  scene_graphs=SCENES)
    with pytest.raises(ExecutionError) as caught:
        execute(question, SCENES[image_id], CATEGORIES)
    assert "object 271882 has no color attribute" in str(caught.value)


def test_the_corpus_covers_every_family():
    families = {step.family for case in CASES
                for step in gqa.parse_program(case[4], question_id=case[0])}
    assert families == set(gqa.FAMILIES)


def test_build_on_the_corpus(tmp_path):
    gqa_dir, _regions = write_gqa_format_corpus(tmp_path / "gqa")
    out = tmp_path / "out"
    reports = build(gqa_dir, None, out, log=lambda *_: None)
    assert list(reports) == ["train", "val"]
    report = reports["val"]
    assert report["well_formed"] == len(CASES) and report["explanations"] == len(CASES)
    assert report["explained_rate"] == 1.0 and report["malformed_raw_explanations"] == 0
    assert [(entry["question_id"], entry["kind"], entry["reason"]) for entry in report["skipped_questions"]] == [
        (qid, "parse", reason) for qid, (*_rest, reason) in NOT_WELL_FORMED.items()]
    decided = sum(case[6] == "answer" for case in CASES)
    answers = report["answers"]
    assert answers["decided_by_gqa_answer"] + answers["disagree"] == decided
    assert answers["agree"] == len(CASES) - decided
    assert report["families"]["compare"] == {"questions": 1, "agree": 0, "decided_by_gqa_answer": 1,
                                             "disagree": 0, "agreement": 0.0}
    processed = json.loads((out / "processed_explanation_val.json").read_text())
    assert processed == {case[0]: case[5] for case in CASES}
    assert (out / "val.h5").exists() and (out / "train.h5").exists()


def test_thinned_world_is_explained_by_its_answers(tmp_path):
    """The world's questions over scene graphs missing 30% of their attributes and relations (as GQA's
    do): still >= 99% explained, no malformed explanation, and each explanation states GQA's answer."""
    from gqa_format_fixture import thin_scene_graphs

    from rexlib.world import build_world

    world = tmp_path / "world"
    build_world(world, images=40, seed=1, feature_dim=4, render=False, progress=False, log=lambda _: None)
    thinned = thin_scene_graphs(world, tmp_path / "thin", seed=2)
    out = tmp_path / "out"
    reports = build(thinned, None, out, log=lambda *_: None)
    questions = {}
    for split in reports:
        questions.update(json.loads((thinned / "questions" / f"{split}_balanced_questions.json").read_text()))
    for split, report in reports.items():
        assert report["explained_rate"] >= 0.99 and report["malformed_raw_explanations"] == 0
        assert all(entry["reason"] for entry in report["skipped_questions"])
        assert sum(report["answers"].values()) == report["executed"]
    assert sum(report["answers"]["decided_by_gqa_answer"] for report in reports.values()) > 0
    checked = 0
    for split in reports:
        explanations = json.loads((out / f"processed_explanation_{split}.json").read_text())
        for question_id, explanation in explanations.items():
            record = questions[question_id]
            last = record["semantic"][-1]
            tokenize_raw(explanation)
            if last["operation"] == "query" and last["argument"] not in ("name", "hposition", "vposition"):
                assert record["answer"] in explanation.split(), (question_id, explanation)
                checked += 1
            elif last["operation"].startswith("verify") and last["operation"] not in (
                    "verify rel", "verify hposition", "verify vposition"):
                assert (record["answer"] == "no") == ("not" in explanation.split()), (question_id, explanation)
                checked += 1
    assert checked > 50
