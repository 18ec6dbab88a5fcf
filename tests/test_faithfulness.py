"""Faithfulness and consistency of explanations, checked on the scene graph (rexlib.evaluation.metrics.faithfulness).

Hand-written cases per statement form with their expected verdicts, on a five-object scene whose regions
are placed by hand; what each explanation implies for hand-written GQA programs; a GQA-format fixture with
real-GQA-like ids, names and quirks; and the tiny embedded world end to end (reference explanations ~100%,
a shuffled pairing near 0).
"""

from __future__ import annotations

import json
import random

import h5py
import numpy as np
import pytest

from rexlib import gqa
from rexlib.dataset.grounding import ImageGrounding, ground
from rexlib.evaluation.metrics.faithfulness import (
    MIN_RESOLUTION_IOU,
    SceneTruth,
    explanation_truth,
    find_gqa_dir,
    format_truth,
    judge,
    judge_split,
    summarise,
)
from rexlib.evaluation.metrics.statements import Lexicon, describe, read_explanation
from rexlib.program import execute
from rexlib.program.attributes import CategoryTable

# ------------------------------------------------------------------------------ a scene by hand
# 300 x 300 image. cup 1 on table 2, cup left of man 3 (stored one way only), man wearing shirt 4, boy 5.
SCENE_RECORD = {
    "width": 300, "height": 300, "location": "kitchen",
    "objects": {
        "1": {"name": "cup", "x": 10, "y": 200, "w": 40, "h": 40, "attributes": ["white", "ceramic", "small"],
              "relations": [{"name": "on", "object": "2"}, {"name": "to the left of", "object": "3"}]},
        "2": {"name": "table", "x": 0, "y": 150, "w": 300, "h": 150, "attributes": ["wood", "brown"], "relations": []},
        "3": {"name": "man", "x": 200, "y": 20, "w": 60, "h": 200, "attributes": ["young", "standing"],
              "relations": [{"name": "wearing", "object": "4"}]},
        "4": {"name": "shirt", "x": 205, "y": 40, "w": 50, "h": 60, "attributes": ["red"], "relations": []},
        "5": {"name": "boy", "x": 120, "y": 100, "w": 30, "h": 60, "attributes": [], "relations": []},
    },
}
# region k covers object k+1 exactly; region 5 covers nothing
REGIONS = np.zeros((36, 4))
for k, object_id in enumerate("12345"):
    o = SCENE_RECORD["objects"][object_id]
    REGIONS[k] = [o["x"], o["y"], o["x"] + o["w"], o["y"] + o["h"]]
REGIONS[5] = [150, 0, 190, 10]


@pytest.fixture(scope="module")
def scene():
    return gqa.parse_scene_graph("img1", SCENE_RECORD)


@pytest.fixture(scope="module")
def truth(scene):
    return SceneTruth(scene, REGIONS)


@pytest.fixture(scope="module")
def lexicon(scene):
    # absent objects are named by the questions' programs ("select: cat (-)"), not by the scene graph
    absent = gqa.parse_question("q", {"imageId": "img1", "question": "?", "semantic": [
        step("select", "cat (-)"), step("select", "dog (-)"), step("select", "hat (-)")]})
    return Lexicon.from_scene_graphs([scene]).add_program_nouns([absent])


def verdicts(explanation, truth, lexicon):
    reading = read_explanation(explanation, lexicon)
    return [truth.verdict(statement) for statement in reading.statements], reading


CASES = [
    # attribute, true / false / negated
    ("the #0 is white", [True]), ("the #0 is red", [False]),
    ("the #0 is not red", [True]), ("the #0 is not white", [False]),
    # modifiers before the noun are claims too
    ("the white #0 is small", [True]), ("the red #0 is small", [False]), ("the non-red #0 is small", [True]),
    # positions after the noun, by the executor's thirds
    ("the #0 on the left is white", [True]), ("the #0 on the right is white", [False]),
    # relations: stored direction, inverse direction, negated, finite verbs
    ("the #0 is on the #1", [True]), ("the #1 is on the #0", [False]),
    ("the #2 is to the right of the #0", [True]), ("the #0 is not on the #1", [False]),
    ("the #0 is not on the #2", [True]),
    ("the #2 is wearing the #3 , which is red", [True, True]),
    ("the #0 is on the #1 and is white", [True, True]),
    ("the #0 is on the #1 and is red", [True, False]),
    ("there is a #0 on the #1", [True]), ("there is a #4 on the #1", [False]),
    # positions with their grid cell: the cup's centre (0.1,0.7) rounds into cell 9 (row 3, column 1)
    ("the #0 is at @9 , on the left", [True]), ("the #0 is at @9 , on the right", [False]),
    ("the #0 is at @10 , on the left", [False]), ("the #2 is at @8 , on the right", [True]),
    ("the #2 is at @7 , on the right", [False]),
    # absence, by the scene graph
    ("there is no cat", [True]), ("there is no man", [False]), ("there is no white cup", [False]),
    ("there is no red cup", [True]), ("there is no dog on the #1", [True]), ("there is no cup on the #1", [False]),
    ("the #2 is not wearing a hat", [True]), ("the #2 is not wearing a shirt", [False]),
    ("the #2 is not wearing anything", [False]),
    # comparatives, by the executor's scales (height: box height; age: children < young adults)
    ("the #2 is taller than the #4", [True]), ("the #4 is taller than the #2", [False]),
    ("the #2 is older than the #4", [True]), ("the #0 is older than the #1", [None]),
    # the whole scene: a kitchen is indoors; no weather recorded
    ("it is indoors", [True]), ("it is outdoors", [False]), ("the weather is sunny", [None]),
    # several objects sharing a value
    ("both the #0 and the #3 are white", [True, False]),
    ("the #0 , the #1 and the #3 are red", [False, False, True]),
    # a region that covers no object stands for nothing
    ("the #5 is white", [False]),
    # an object kept by name (no region covers it well)
    ("the cup is on the #1", [True]), ("the boy is on the #1", [False]),
    # a model's stutter is read once
    ("the the #0 is is white", [True]),
]


@pytest.mark.parametrize("explanation, expected", CASES)
def test_statement_verdicts(explanation, expected, truth, lexicon):
    found, reading = verdicts(explanation, truth, lexicon)
    assert not reading.unparsed, reading.unparsed
    assert found == expected, [describe(s) for s in reading.statements]


@pytest.mark.parametrize("explanation, statements, unparsed", [
    ("the #0 is on the", 0, ["the #0 is on the"]),  # cut off at the length limit
    ("the #0 is white and the #1", 1, ["the #1"]),  # the first clause survives the cut
    ("<unk> #0 banana", 0, ["<unk> #0 banana"]),  # words outside the grammar
    ("the #0 is white , the #2 is flying the #1", 1, ["the #2 is flying the #1"]),  # unknown relation
    ("", 0, []),
])
def test_unparseable_spans_are_counted(explanation, statements, unparsed, lexicon):
    reading = read_explanation(explanation, lexicon)
    assert len(reading.statements) == statements
    assert list(reading.unparsed) == unparsed
    assert reading.complete == (not unparsed and statements > 0)


def test_resolution_threshold(scene):
    assert MIN_RESOLUTION_IOU == 0.5
    shifted = REGIONS.copy()
    shifted[0] = [30, 200, 70, 240]  # half the cup's width off: IoU 1/3 with the cup
    assert SceneTruth(scene, shifted).resolve(0) is None
    assert SceneTruth(scene, REGIONS).resolve(0) == "1"


# ------------------------------------------------------------------------------ what it implies


def question(question_id, text, answer, semantic, scene):
    raw = {"imageId": "img1", "question": text, "answer": answer, "semantic": semantic}
    return gqa.parse_question(question_id, raw, scene_graphs={"img1": scene})


def step(operation, argument, dependencies=()):
    return {"operation": operation, "argument": argument, "dependencies": list(dependencies)}


PROGRAMS = {
    "color": ("What color is the cup?", "white", [step("select", "cup (1)"), step("query", "color", [0])]),
    "on": ("Is the cup on the table?", "yes",
           [step("select", "table (2)"), step("verify rel", "cup,on,s (1)", [0])]),
    "cat": ("Is there a cat?", "no", [step("select", "cat (-)"), step("exist", "?", [0])]),
    "taller": ("Which is taller, the man or the boy?", "man",
               [step("select", "man (3)"), step("select", "boy (5)"), step("choose taller", "", [0, 1])]),
    "wearing": ("What is the man wearing?", "shirt",
                [step("select", "man (3)"), step("relate", "_,wearing,o (4)", [0]), step("query", "name", [1])]),
    "and": ("Is the cup white and the shirt red?", "yes",
            [step("select", "cup (1)"), step("verify color", "white", [0]), step("select", "shirt (4)"),
             step("verify color", "red", [2]), step("and", "", [1, 3])]),
    "same": ("Are the cup and the shirt the same color?", "no",
             [step("select", "cup (1)"), step("select", "shirt (4)"), step("same color", "", [0, 1])]),
    "left": ("Is the cup on the left or on the right of the image?", "left",
             [step("select", "cup (1)"), step("choose hposition", "left|right", [0])]),
    "place": ("Is it indoors or outdoors?", "indoors",
              [step("select", "scene"), step("choose location", "indoors|outdoors", [0])]),
}


@pytest.mark.parametrize("name, explanation, answer, implied, consistent", [
    ("color", "the #0 is white", "white", "white", True),
    ("color", "the #0 is white", "red", "white", False),  # the model's answer is not what it says
    ("color", "the #1 is brown", "brown", None, False),  # a statement about another object implies nothing
    ("on", "the #0 is on the #1", "yes", "yes", True),
    ("on", "the #0 is not on the #1", "no", "no", True),  # consistent, though false
    ("cat", "there is no cat", "no", "no", True),
    ("cat", "there is no dog", "no", None, False),
    ("taller", "the #2 is taller than the #4", "man", "man", True),
    ("taller", "the #4 is taller than the #2", "man", "boy", False),
    ("wearing", "the #2 is wearing the #3", "shirt", "shirt", True),
    ("and", "the #0 is white and the #3 is red", "yes", "yes", True),
    ("and", "the #3 is not red", "no", "no", True),  # one side failing decides "and"
    ("same", "the #0 is white and the #3 is red", "no", "no", True),
    ("left", "the #0 is at @9 , on the left", "left", "left", True),
    ("place", "it is indoors", "indoors", "indoors", True),
])
def test_implied_answers(name, explanation, answer, implied, consistent, scene, truth, lexicon):
    text, gqa_answer, semantic = PROGRAMS[name]
    # the split's table, mined from every program (as judge_split does): "same color" alone states no colour
    categories = CategoryTable.mine({"answer": a, "semantic": s} for _, a, s in PROGRAMS.values())
    found = judge(explanation, answer, question(name, text, gqa_answer, semantic, scene), scene, REGIONS,
                  lexicon, truth, categories)
    assert found.implied == implied
    assert found.consistent is consistent
    assert found.implies_gqa is (implied == gqa_answer)


def test_summary_counts_per_family(scene, truth, lexicon):
    text, answer, semantic = PROGRAMS["on"]
    asked = question("q", text, answer, semantic, scene)
    judgements = {"a": judge("the #0 is on the #1 and is red", "yes", asked, scene, REGIONS, lexicon, truth),
                  "b": judge("the #0 is on the", "yes", asked, scene, REGIONS, lexicon, truth)}
    summary = summarise(judgements, {"a": ["select", "verify"], "b": ["select"]})
    assert summary["statements"] == 2 and summary["true"] == 1 and summary["false"] == 1
    assert summary["faithfulness"] == pytest.approx(50.0)
    assert summary["consistency"] == pytest.approx(50.0)
    assert summary["parse_rate"] == pytest.approx(50.0)  # one clause read, one span not
    assert summary["families"]["verify"]["questions"] == 1
    assert summary["families"]["select"]["questions"] == 2
    assert summary["unparsed_examples"] == ["the #0 is on the"]
    assert "faithfulness 50.0" in format_truth({**summary, "status": "computed"})


# ------------------------------------------------------------------- a GQA-format fixture (real ids)

REAL_SCENES = {
    "2354786": {"width": 500, "height": 333, "objects": {  # no location, no weather
        "1231253": {"name": "fire hydrant", "x": 40, "y": 150, "w": 60, "h": 120, "attributes": ["red", "metal"],
                    "relations": [{"name": "to the left of", "object": "1231257"}]},
        "1231257": {"name": "tennis balls", "x": 300, "y": 200, "w": 50, "h": 40, "attributes": ["yellow"],
                    "relations": [{"name": "on", "object": "1231260"}]},
        "1231260": {"name": "sidewalk", "x": 0, "y": 180, "w": 500, "h": 153, "attributes": [], "relations": []},
        "1231262": {"name": "man", "x": 380, "y": 20, "w": 90, "h": 250, "attributes": ["standing"],
                    "relations": [{"name": "wearing", "object": "1231264"}]},
        "1231264": {"name": "hat", "x": 400, "y": 20, "w": 40, "h": 25, "attributes": ["blue"], "relations": []},
        "1231270": {"name": "pole", "x": 200, "y": 0, "w": 4, "h": 150, "attributes": [], "relations": []},
    }},
    "2417803": {"width": 640, "height": 480, "location": "beach", "weather": "sunny", "objects": {
        "3000001": {"name": "surfboard", "x": 100, "y": 300, "w": 200, "h": 60, "attributes": ["white"],
                    "relations": []},
        "3000002": {"name": "woman", "x": 350, "y": 100, "w": 100, "h": 300, "attributes": ["young", "smiling"],
                    "relations": [{"name": "holding", "object": "3000001"}]},
    }},
}
# GQA's quirks: trailing space on later selects, plural select, "(-)", the bare-word answer of choose rel
REAL_QUESTIONS = {
    "05515938": {"imageId": "2354786", "question": "What color is the fire hydrant?", "answer": "red",
                 "semantic": [step("select", "fire hydrant (1231253)"), step("query", "color", [0])]},
    "05515939": {"imageId": "2354786", "question": "What are the balls on?", "answer": "sidewalk",
                 "semantic": [step("select", "tennis balls (1231257)"), step("relate", "_,on,o (1231260)", [0]),
                              step("query", "name", [1])]},
    "05515940": {"imageId": "2354786", "question": "Is there a dog on the sidewalk?", "answer": "no",
                 "semantic": [step("select", "sidewalk (1231260)"), step("relate", "dog,on,s (-)", [0]),
                              step("exist", "?", [1])]},
    "05515941": {"imageId": "2354786", "question": "Is the man wearing a hat?", "answer": "yes",
                 "semantic": [step("select", "man (1231262)"), step("verify rel", "hat,wearing,o (1231264)", [0])]},
    "05515942": {"imageId": "2354786", "question": "Is the hydrant red and the hat blue?", "answer": "yes",
                 "semantic": [step("select", "fire hydrant (1231253)"), step("verify color", "red", [0]),
                              step("select", "hat (1231264)"), step("verify color", "blue", [2]),
                              step("and", "", [1, 3])]},
    "05515943": {"imageId": "2354786", "question": "Is the fire hydrant on the left of the image?", "answer": "yes",
                 "semantic": [step("select", "fire hydrant (1231253)"), step("verify hposition", "left", [0])]},
    "19012345": {"imageId": "2417803", "question": "What is the weather like?", "answer": "sunny",
                 "semantic": [step("select", "scene"), step("query", "weather", [0])]},
    "19012346": {"imageId": "2417803", "question": "Who is holding the surfboard?", "answer": "woman",
                 "semantic": [step("select", "surfboard (3000001)"), step("relate", "_,holding,s (3000002)", [0]),
                              step("query", "name", [1])]},
    "19012347": {"imageId": "2417803", "question": "Is it indoors or outdoors?", "answer": "outdoors",
                 "semantic": [step("select", "scene"), step("choose location", "indoors|outdoors", [0])]},
}


def _detector_regions(scene_record, miss=()):
    """36 boxes: one close to each object (shifted 5%), none for the ids in ``miss``, the rest far off."""
    boxes = np.tile([[0.0, 0.0, 1.0, 1.0]], (36, 1))
    for k, (object_id, o) in enumerate(scene_record["objects"].items()):
        if object_id in miss:
            continue
        dx = 0.05 * o["w"]
        boxes[k] = [o["x"] + dx, o["y"], o["x"] + o["w"] + dx, o["y"] + o["h"]]
    return boxes


@pytest.fixture(scope="module")
def real_gqa(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_gqa")
    (root / "questions").mkdir()
    (root / "sceneGraphs").mkdir()
    (root / "questions" / "val_balanced_questions.json").write_text(json.dumps(REAL_QUESTIONS))
    (root / "sceneGraphs" / "val_sceneGraphs.json").write_text(json.dumps(REAL_SCENES))
    # the thin pole overlaps no region well: its explanation keeps its name
    regions = {image_id: _detector_regions(record, miss={"1231270"}) for image_id, record in REAL_SCENES.items()}
    scenes = {image_id: gqa.parse_scene_graph(image_id, record) for image_id, record in REAL_SCENES.items()}
    references = {}
    for question_id, raw in REAL_QUESTIONS.items():
        image_id = raw["imageId"]
        asked = gqa.parse_question(question_id, raw, scene_graphs={image_id: scenes[image_id]})
        execution = execute(asked, scenes[image_id])
        assert execution.answer == raw["answer"], question_id
        references[question_id] = ground(execution.explanation, ImageGrounding(scenes[image_id].objects,
                                                                               regions[image_id])).converted
    return root, regions, references


def test_real_gqa_reference_explanations_are_true_and_consistent(real_gqa):
    root, regions, references = real_gqa
    answers = {qid: raw["answer"] for qid, raw in REAL_QUESTIONS.items()}
    judgements, skipped = judge_split(references, answers, root, "val",
                                      lambda qid: regions[REAL_QUESTIONS[qid]["imageId"]])
    assert skipped["counts"] == {}
    summary = summarise(judgements)
    assert summary["parse_rate"] == 100.0, summary["unparsed_examples"]
    assert summary["faithfulness"] == 100.0, {q: (references[q], j.verdicts) for q, j in judgements.items()}
    assert summary["consistency"] == 100.0, {q: (references[q], j.implied) for q, j in judgements.items()}
    assert "fire hydrant" not in references["05515938"]  # the hydrant is a region token
    assert references["19012345"] == "the weather is sunny"


def test_real_gqa_wrong_answers_and_missing_questions(real_gqa):
    root, regions, references = real_gqa
    wrong = {"05515938": "blue", "05515941": "no", "missing": "yes"}
    explanations = {qid: references[qid] for qid in ("05515938", "05515941")} | {"missing": "the #0 is red"}
    judgements, skipped = judge_split(explanations, wrong, root, "val",
                                      lambda qid: regions[REAL_QUESTIONS[qid]["imageId"]])
    assert set(judgements) == {"05515938", "05515941"}
    assert not any(j.consistent for j in judgements.values())  # the explanations imply GQA's answers
    assert all(j.implies_gqa for j in judgements.values())
    (reason,) = skipped["counts"]
    assert "val_balanced_questions.json" in reason and skipped["first_question"][reason] == "missing"


# ---------------------------------------------------------------------- the tiny world, end to end


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    from rexlib.dataset.build import build
    from rexlib.world.build import build_world

    root = tmp_path_factory.mktemp("faithfulness_world")
    build_world(root / "world", images=24, seed=3, render=False, progress=False, log=lambda *_: None)
    build(root / "world", root / "world" / "regions.h5", root / "data", splits=("train", "val"),
          log=lambda *_: None)
    return root / "data"


def _split(data, split="val"):
    from rexlib.dataset.store import regions_path
    from rexlib.evaluation.truth import load_split_truth

    truth = load_split_truth(data, split)
    references = json.loads((data / f"converted_explanation_{split}.json").read_text())
    world = find_gqa_dir(data)
    gqa_answers = {qid: raw["answer"] for qid, raw in
                   json.loads((world / "questions" / f"{split}_balanced_questions.json").read_text()).items()}
    with h5py.File(regions_path(data), "r") as regions:
        boxes = regions["boxes"][()]
    return truth, references, gqa_answers, lambda qid: boxes[truth.image_index[truth.row_of[qid]]]


def test_reference_explanations_are_faithful_and_consistent(tiny_world):
    truth, references, answers, boxes = _split(tiny_world)
    predictions = {qid: {"explanation": references[qid], "answer": answers[qid]} for qid in truth.question_ids}
    result = explanation_truth(predictions, tiny_world, "val", boxes, truth.families)
    assert result["status"] == "computed" and result["questions"] == len(predictions)
    assert result["parse_rate"] == 100.0 and result["faithfulness"] >= 99.0 and result["consistency"] >= 99.0
    assert result["gqa_consistency"] == result["consistency"]
    for family, rates in result["families"].items():
        assert rates["faithfulness"] >= 99.0 and rates["consistency"] >= 99.0, family


def test_shuffled_explanations_are_neither_true_nor_consistent(tiny_world):
    """Each question gets the explanation of a question about another image (a shift by one image)."""
    truth, references, answers, boxes = _split(tiny_world)
    by_image = {}
    for qid in truth.question_ids:
        by_image.setdefault(int(truth.image_index[truth.row_of[qid]]), []).append(qid)
    images = sorted(by_image)
    assert len(images) >= 2
    rng = random.Random(0)
    predictions = {}
    for position, image in enumerate(images):
        donors = by_image[images[(position + 1) % len(images)]]
        for qid in by_image[image]:
            predictions[qid] = {"explanation": references[rng.choice(donors)], "answer": answers[qid]}
    result = explanation_truth(predictions, tiny_world, "val", boxes, truth.families)
    assert result["parse_rate"] == 100.0
    # negated statements about unrelated objects are often true by chance ("there is no cat"): the
    # shuffled faithfulness stays far below the reference's 100, consistency near 0
    assert result["faithfulness"] < 30.0
    assert result["consistency"] < 10.0


def test_compute_metrics_reports_the_truth(tiny_world):
    from rexlib.evaluation.evaluate import compute_metrics, format_table

    truth, references, answers, _ = _split(tiny_world)
    predictions = {qid: {"explanation": references[qid], "answer": answers[qid]} for qid in truth.question_ids}
    metrics = compute_metrics(predictions, tiny_world, "val", include_meteor=False, include_spice=False)
    assert metrics["faithfulness"]["faithfulness"] >= 99.0
    assert "truth        faithfulness" in format_table(metrics)


def test_false_statements_are_marked_on_the_picture(scene, truth, lexicon):
    from PIL import Image

    from rexlib.notebook_support import viz

    text, answer, semantic = PROGRAMS["on"]
    judged = judge("the #0 is on the #1 and is red", "yes", question("q", text, answer, semantic, scene), scene,
                   REGIONS, lexicon, truth)
    assert judged.marks() == [("#0 is on #1", (0, 1), True), ("#0 is red", (0,), False)]
    assert [describe(s) for s in judged.false_statements()] == ["#0 is red"]
    picture = viz.mark_statements(Image.new("RGB", (300, 300), "white"), REGIONS, judged.marks())
    assert picture.size[0] == 300 and picture.size[1] > 300  # the statements are listed below the image
    red, green = (214, 39, 40), (44, 160, 44)
    cup, table = REGIONS[0].astype(int), REGIONS[1].astype(int)
    assert picture.getpixel((int(cup[0]), int(cup[3]) - 1)) == red  # the cup's box: named by a false statement
    assert picture.getpixel((int(table[2]) - 1, int(table[3]) - 1)) == green  # the table only by a true one
    below = picture.crop((0, 300, 300, picture.size[1]))
    assert red in {color for _, color in below.getcolors(1 << 16)}
