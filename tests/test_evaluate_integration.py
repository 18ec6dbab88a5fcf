"""evaluate and submission with the real model, trainer and decoder on the tiny in-code store."""

from __future__ import annotations

import json

import h5py
import pytest

from rexlib import cli
from tests.store_fixture import make_tiny_store


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from rexlib.training.config import TrainConfig
    from rexlib.training.loop import train

    root = tmp_path_factory.mktemp("evaluate_integration")
    data = make_tiny_store(root / "data", n_train=32, n_val=16)
    # the fixture writes no grounding file: ground each question on the regions its explanation names
    references = json.loads((data / "converted_explanation_val.json").read_text())
    with h5py.File(data / "val.h5", "r") as split:
        question_ids = [value.decode() for value in split["question_ids"][()]]
        image_rows = split["image_index"][()]
    with h5py.File(data / "regions.h5", "r") as regions:
        boxes = regions["boxes"][()]
    grounding = {}
    for question_id, row in zip(question_ids, image_rows):
        named = [int(token[1:]) for token in references[question_id].split() if token.startswith("#")]
        grounding[question_id] = {
            "objects": [],
            "boxes": boxes[row][named].tolist(),
            "regions": named,
            "upper_bound": 1.0 if named else 0.0,
        }
    (data / "grounding_val.json").write_text(json.dumps(grounding))
    (data / "attribute_categories.json").write_text(json.dumps({"red": "color", "blue": "color"}))
    run_dir = root / "run"
    train(TrainConfig(data=str(data), out=str(run_dir), epochs=1, max_steps=2, batch_size=16, progress=False))
    return run_dir, data, question_ids


def test_evaluate_real_run(trained_run, capsys):
    run_dir, _data, question_ids = trained_run
    assert cli.main(["evaluate", "--run", str(run_dir), "--split", "val", "--beam", "2", "--no-meteor"]) == 0
    predictions = json.loads((run_dir / "predictions_val.json").read_text())
    assert sorted(predictions) == sorted(question_ids)
    assert set(next(iter(predictions.values()))) == {"explanation", "answer", "answer_gt", "explanation_gt"}
    metrics = json.loads((run_dir / "metrics_val.json").read_text())
    assert set(metrics) >= {"captions", "grounding", "attributes", "accuracy", "ood", "spice", "decoding"}
    assert metrics["questions"] == 16 and metrics["decoding"]["beam_size"] == 2
    assert 0.0 <= metrics["accuracy"]["overall"] <= 100.0
    assert metrics["attributes"]["status"] == "computed"
    assert "split val: 16 questions" in capsys.readouterr().out


def test_submission_real_run(trained_run, tmp_path):
    run_dir, data, question_ids = trained_run
    out = tmp_path / "submission.json"
    assert (
        cli.main(
            ["submission", "--run", str(run_dir), "--data", str(data), "--split", "val", "--out", str(out)]
        )
        == 0
    )
    entries = json.loads(out.read_text())
    assert [entry["questionId"] for entry in entries] == question_ids
    assert all(isinstance(entry["prediction"], str) for entry in entries)
