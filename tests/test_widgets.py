"""The explorer driven from code: filters, dropdown and slider change what it shows."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("ipywidgets")

from rexlib.notebook_support.experiments import ImageRowBoxes, load_examples
from rexlib.notebook_support.widgets import Explorer
from tests.store_fixture import make_tiny_store


@pytest.fixture(scope="module")
def store_and_run(tmp_path_factory):
    """A tiny store and a fake run whose predictions are right on even rows and wrong on odd ones."""
    root = tmp_path_factory.mktemp("explorer")
    data_dir = make_tiny_store(root / "data", n_train=8, n_val=12)
    truth = load_examples(data_dir, "val")
    predictions = {}
    for row in truth.itertuples():
        right = row.Index % 2 == 0
        predictions[row.question_id] = {
            # the prediction points at region #35 (never a ground-truth colour choice) on wrong rows
            "explanation": row.explanation_gt if right else "the #35 is purple , so the answer is maybe",
            "answer": row.answer_gt if right else "maybe",
        }
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "predictions_val.json").write_text(json.dumps(predictions))
    return data_dir, run_dir


def test_explorer_shows_first_question_with_both_explanations(store_and_run):
    data_dir, run_dir = store_and_run
    explorer = Explorer.from_run(data_dir, run_dir, "val")
    row = explorer.current
    assert row is not None and row["question_id"] == explorer.filtered["question_id"].iloc[0]
    html = explorer.details.value
    assert row["question"] in html
    assert "ground truth (solid)" in html and "predicted (dashed)" in html
    # region words are coloured spans, one per grounded token
    assert html.count('class="rex-region"') >= row["explanation_gt"].count("#")
    assert explorer.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert "12 questions" in explorer.count.value


def test_filters_by_correctness_and_type(store_and_run):
    data_dir, run_dir = store_and_run
    explorer = Explorer.from_run(data_dir, run_dir, "val")
    explorer.correctness_filter.value = "wrong"
    assert len(explorer.filtered) == 6
    assert (explorer.filtered["answer_pred"] == "maybe").all()
    assert "#35" in explorer.details.value and "maybe" in explorer.details.value
    assert "(wrong)" in explorer.details.value
    explorer.correctness_filter.value = "correct"
    assert len(explorer.filtered) == 6 and "(correct)" in explorer.details.value

    explorer.set_filters(question_type="query", correctness="all")
    assert set(explorer.filtered["structural"]) == {"query"}
    assert explorer.current["structural"] == "query"
    assert "what color is" in explorer.details.value


def test_dropdown_and_slider_change_image_and_answer(store_and_run):
    data_dir, run_dir = store_and_run
    explorer = Explorer.from_run(data_dir, run_dir, "val")
    first_image, first_html = explorer.image.value, explorer.details.value
    second = explorer.filtered.iloc[1]
    explorer.question.value = second["question_id"]
    assert explorer.slider.value == 1
    assert explorer.details.value != first_html
    assert second["question"] in explorer.details.value
    # row 1 is a wrong prediction pointing at #35: its dashed box changes the picture
    assert explorer.image.value != first_image
    assert "maybe" in explorer.details.value

    explorer.slider.value = 2
    third = explorer.filtered.iloc[2]
    assert explorer.question.value == third["question_id"]
    assert f"<b>{third['answer_gt']}</b>" in explorer.details.value

    explorer.select(explorer.filtered["question_id"].iloc[0])
    assert explorer.slider.value == 0 and explorer.details.value == first_html


def test_explorer_without_predictions_and_with_empty_filter(store_and_run):
    data_dir, _ = store_and_run
    explorer = Explorer(load_examples(data_dir, "val"), ImageRowBoxes(data_dir))
    assert explorer.correctness_filter.disabled
    assert "predicted" not in explorer.details.value
    explorer.type_filter.options = [*explorer.type_filter.options, "nothing-like-this"]
    explorer.type_filter.value = "nothing-like-this"
    assert explorer.current is None and "no question passes" in explorer.details.value
    with pytest.raises(KeyError, match="not among"):
        explorer.select("val000000")


def test_explorer_rejects_a_table_without_the_needed_columns(store_and_run):
    data_dir, _ = store_and_run
    frame = load_examples(data_dir, "val").drop(columns=["image_id"])
    with pytest.raises(ValueError, match="image_id"):
        Explorer(frame, ImageRowBoxes(data_dir))
