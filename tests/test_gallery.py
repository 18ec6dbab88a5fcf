"""Galleries in the notebooks: questions from different images and families, with their objects visible."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from store_fixture import build_world_store

from rexlib import gqa
from rexlib.notebook_support import experiments, gallery


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("gallery")
    world, data = build_world_store(root, images=30, feature_dim=8)
    return world, data


def test_pick_gallery_spreads_over_images_and_families(store):
    world, data = store
    frame = experiments.load_examples(data, "train", per_question_grounding=False)
    visible = gallery.ObjectVisibility(world)
    objects = gallery.explanation_objects(data, "train")
    picked = gallery.pick_gallery(frame, 6, visible=visible, objects=objects, seed=0)
    assert len(picked) == 6
    assert picked["image_id"].is_unique
    families = [gallery.answering_family(f) for f in picked["families"]]
    available = {gallery.answering_family(f) for f in frame["families"]}
    assert len(set(families)) == min(6, len(available)), families
    for row in picked.itertuples():
        assert objects[row.question_id] and visible(row.image_id, objects[row.question_id])
    assert gallery.pick_gallery(frame, 6, visible=visible, objects=objects, seed=0).equals(picked)


def test_pick_gallery_alternates_right_and_wrong_and_skips_hidden_objects(store):
    _world, data = store
    frame = experiments.load_examples(data, "train", per_question_grounding=False)
    frame = frame.assign(correct=[k % 3 == 0 for k in range(len(frame))])
    objects = gallery.explanation_objects(data, "train")
    hidden_image = frame["image_id"].iloc[0]
    picked = gallery.pick_gallery(frame, 4, mix_correct=True, objects=objects,
                                       visible=lambda image_id, ids: bool(ids) and image_id != hidden_image)
    assert list(picked["correct"]) == [True, False, True, False]
    assert hidden_image not in set(picked["image_id"])
    assert gallery.pick_gallery(frame.head(0), 3).empty


def test_object_visibility_sees_a_hidden_object(tmp_path):
    """A cup drawn behind a bus that covers it is not visible; the bus is."""
    scene = {"width": 480, "height": 360, "location": "street", "objects": {
        "1": {"name": "cup", "x": 200, "y": 240, "w": 20, "h": 26, "attributes": ["red"], "relations": []},
        "2": {"name": "bus", "x": 150, "y": 150, "w": 220, "h": 160, "attributes": ["blue"], "relations": []},
    }}
    (tmp_path / "sceneGraphs").mkdir()
    (tmp_path / "sceneGraphs" / "val_sceneGraphs.json").write_text(json.dumps({"7": scene}))
    (tmp_path / "world.json").write_text("{}")
    visible = gallery.ObjectVisibility(tmp_path)
    assert visible("7", ["2"]) and not visible("7", ["1"]) and not visible("7", [])
    assert visible.shares("7")["1"] < 0.6
    (tmp_path / "world.json").unlink()  # not a rendered world: boxes of a usable size count as visible
    assert gallery.ObjectVisibility(tmp_path)("7", ["1", "2"])


def test_pick_question_follows_a_visible_multi_step_question_per_image(store):
    world, _data = store
    question_file, scene_file = gqa.split_files(world, "val")
    scene_graphs = gqa.load_scene_graphs(scene_file)
    questions, _rejects = gqa.load_questions(question_file, scene_graphs, strict=False)
    visible = gallery.ObjectVisibility(world)
    picked = [experiments.pick_question(questions, index, visible=visible, scene_graphs=scene_graphs)
              for index in range(3)]
    from rexlib.program import execute

    for question in picked:
        assert len(question.program) >= 3 and any(step.family == "relate" for step in question.program)
        assert visible(question.image_id, execute(question, scene_graphs[question.image_id]).object_ids)
    assert len({q.image_id for q in picked}) == len(picked)
    assert isinstance(experiments.pick_question(questions, 0), type(picked[0]))  # no visibility: as before


def test_answering_family():
    assert gallery.answering_family("select,relate,query") == "query"
    assert gallery.answering_family("") == ""
    assert list(pd.Series(["select,filter,verify"]).map(gallery.answering_family)) == ["verify"]


def test_gallery_figures_draw_one_picture_per_row_and_nothing_for_no_rows(store):
    _world, data = store
    frame = experiments.load_examples(data, "train", per_question_grounding=False).head(3)
    frame = frame.assign(explanation_pred=frame["explanation_gt"], answer_pred=frame["answer_gt"], correct=True)
    boxes = experiments.ImageRowBoxes(data)
    figure = gallery.comparison_figure(frame, boxes, None, columns=2, title="examples", mark_correct=True)
    assert len([ax for ax in figure.axes if ax.images]) == 3 and figure._suptitle.get_text() == "examples"
    assert gallery.comparison_titles(frame.head(1), mark_correct=True)[0].startswith("right: ")
    assert gallery.comparison_figure(frame.head(0), boxes, None) is None


def test_unfaithful_examples_take_one_question_per_image_right_answers_first():
    class Judgement:
        def __init__(self, false):
            self.false = false

    frame = pd.DataFrame({"question_id": list("abcdef"), "image_id": ["1", "1", "2", "3", "4", "5"],
                          "correct": [False, True, True, False, False, True]})
    judgements = {"a": Judgement(1), "b": Judgement(1), "c": Judgement(0), "d": Judgement(2), "e": Judgement(1),
                  "f": Judgement(1)}
    shown = gallery.unfaithful_examples(frame, judgements, 4)
    assert list(shown["question_id"]) == ["f", "a", "d", "e"]  # image 1 once (its first row), c states nothing false
