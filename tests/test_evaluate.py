"""compute_metrics on a hand-made GQA-REX store, and the evaluate / submission commands end to end with a
stand-in model that follows docs/contracts.md (load_trained_run, REXDataset/collate, greedy/beam_search)."""

from __future__ import annotations

import json
import sys
import types

import h5py
import numpy as np
import pytest
import torch

from rexlib import cli
from rexlib.evaluation.evaluate import (
    compute_metrics,
    format_table,
    ood_groups,
)
from rexlib.evaluation.metrics.answers import derive_ood_splits
from rexlib.evaluation.submission import submission_entries
from rexlib.evaluation.truth import load_split_truth
from rexlib.model.decoding import tokens_to_text

A, B, WIDE = [0, 0, 10, 10], [20, 0, 30, 10], [0, 0, 20, 10]
EXPLANATION_WORDS = ["the", "red", "blue", "cup", "is", "wooden", "on", "table"]
EXPLANATION_VOCABULARY = (
    ["<pad>", "<start>", "<end>", "<unk>"]
    + [f"#{k}" for k in range(36)]
    + [f"@{k}" for k in range(1, 17)]
    + EXPLANATION_WORDS
)
ANSWERS = ["yes", "no", "red"]
REFERENCES = {
    "q1": "the #0 is on the #1",
    "q2": "the cup is red",
    "q3": "the #0 is on the table",
    "q4": "the cup is wooden",
}
PREDICTIONS = {
    "q1": {"explanation": "the #0 is on the #1", "answer": "yes"},  # right
    "q2": {"explanation": "the red cup is blue", "answer": "red"},  # right
    "q3": {"explanation": "the #1 is on the table", "answer": "yes"},  # wrong (no)
    "q4": {"explanation": "", "answer": "no"},  # wrong: its answer is not in the vocabulary
}
ATTRIBUTES = {"red": "color", "blue": "color", "wooden": "material"}


def _strings(values):
    return np.array(values, dtype=h5py.string_dtype("utf-8"))


@pytest.fixture
def data_dir(tmp_path):
    """Two 100x100 images; q1/q2 on image 0, q3/q4 on image 1."""
    root = tmp_path / "data"
    root.mkdir()
    boxes = np.tile(np.array([90, 90, 95, 95], np.float32), (2, 36, 1))
    boxes[0, 0], boxes[0, 1] = A, B
    boxes[1, 0], boxes[1, 1] = A, WIDE
    with h5py.File(root / "regions.h5", "w") as regions:
        regions["image_ids"] = np.array([b"img0", b"img1"])
        regions["boxes"] = boxes
        regions["features"] = np.zeros((2, 36, 4), np.float16)
        regions["sizes"] = np.array([[100, 100], [100, 100]], np.int32)
    (root / "dataset.json").write_text(
        json.dumps(
            {"regions": "regions.h5", "splits": ["val"], "max_explanation_length": 12, "source": "test"}
        )
    )
    vocabulary = {"explanation": EXPLANATION_VOCABULARY, "answer": ANSWERS, "question": ["<pad>", "<unk>"]}
    (root / "vocab.json").write_text(json.dumps(vocabulary))
    with h5py.File(root / "val.h5", "w") as split:
        split["question_ids"] = _strings(["q1", "q2", "q3", "q4"])
        split["image_index"] = np.array([0, 0, 1, 1], np.int32)
        split["answers"] = np.array([0, 2, 1, -1], np.int32)
        split["types_structural"] = _strings(["verify", "query", "verify", "query"])
        split["types_semantic"] = _strings(["rel", "attr", "rel", "obj"])
        split["types_detailed"] = _strings(["relVerify", "queryColor", "relVerify", "queryObject"])
        split["families"] = _strings(
            ["select,relate,verify", "select,query", "select,relate,verify", "select,query"]
        )
    (root / "converted_explanation_val.json").write_text(json.dumps(REFERENCES))
    grounding = {
        "q1": {"objects": ["1", "2"], "boxes": [A, B], "regions": [0, 1], "upper_bound": 1.0},
        "q2": {"objects": [], "boxes": [], "regions": [], "upper_bound": 0.0},
        "q3": {"objects": ["5"], "boxes": [A], "regions": [0], "upper_bound": 0.5},
    }
    (root / "grounding_val.json").write_text(json.dumps(grounding))
    return root


def test_split_truth_reads_answers_types_and_families(data_dir):
    truth = load_split_truth(data_dir, "val")
    assert truth.answers == {"q1": "yes", "q2": "red", "q3": "no", "q4": None}
    assert truth.types["q3"] == {"structural": "verify", "semantic": "rel", "detailed": "relVerify"}
    assert truth.families["q2"] == "select,query"
    assert list(truth.image_index) == [0, 0, 1, 1]


def test_compute_metrics_by_hand(data_dir):
    metrics = compute_metrics(
        PREDICTIONS, data_dir, "val", attribute_categories=ATTRIBUTES, include_meteor=False
    )
    # grounding, union: q1 IoU 1 / 1; q3 region #1 of image 1 (20x10 around A): 0.5 / 0.5; q2 bound 0
    assert metrics["grounding"]["score"] == pytest.approx(100.0)
    assert metrics["grounding"]["questions"] == 2
    assert metrics["grounding"]["excluded_upper_bound_zero"] == 1
    assert metrics["grounding"]["without_ground_truth"] == 1  # q4 has no entry
    # answers: q1, q2 right; q3 wrong; q4's answer is unknown to the vocabulary
    accuracy = metrics["accuracy"]
    assert accuracy["overall"] == 50.0
    assert accuracy["structural"]["verify"]["accuracy"] == 50.0
    assert accuracy["semantic"]["attr"]["accuracy"] == 100.0
    assert accuracy["families"]["relate"] == {"accuracy": 50.0, "questions": 2}
    # attributes: red stated and kept (q2), wooden stated and lost (q4)
    assert metrics["attributes"]["per_category"] == {"color": 100.0, "material": 0.0}
    # captions: q1 identical, q4 empty and penalised
    assert metrics["captions"]["empty_predictions"] == 1 and metrics["captions"]["questions"] == 4
    assert metrics["captions"]["METEOR"] is None
    assert metrics["spice"] == metrics["captions"]["SPICE_status"]
    # OOD derived: relVerify yes/no once each (mean 1, threshold 1.2): tail; queryColor red: tail
    ood = metrics["ood"]
    assert ood["source"].startswith("derived")
    assert ood["head"]["questions"] == 0 and ood["head"]["accuracy"] is None
    assert ood["tail"] == {"accuracy": pytest.approx(200 / 3), "questions": 3, "missing": 0}
    table = format_table(metrics)
    assert "grounding    100.00" in table and "OOD" in table
    json.dumps(metrics)  # everything is json-serialisable


def test_reference_grounding_mode_and_ood_files(data_dir):
    ood = data_dir / "ood"
    ood.mkdir()
    (ood / "ood_val_all.json").write_text(json.dumps({"q1": {}, "q3": {}, "q9": {}}))
    (ood / "ood_val_head.json").write_text(json.dumps({"q1": {}}))
    (ood / "ood_val_tail.json").write_text(json.dumps({"q3": {}, "q9": {}}))
    metrics = compute_metrics(
        PREDICTIONS, data_dir, "val", grounding_mode="reference", include_meteor=False, include_spice=False
    )
    # reference: only q1's last box B is painted: (A ∪ B) vs B = 0.5; q3 unchanged at 1.0
    assert metrics["grounding"]["score"] == pytest.approx(75.0)
    assert metrics["ood"]["head"] == {"accuracy": 100.0, "questions": 1, "missing": 0}
    assert metrics["ood"]["tail"] == {"accuracy": 0.0, "questions": 1, "missing": 1}
    assert metrics["attributes"]["status"].startswith("unavailable")


def test_compute_metrics_names_bad_input(data_dir):
    with pytest.raises(ValueError, match="question q7 is predicted but not in the split"):
        compute_metrics({"q7": {"explanation": "", "answer": "yes"}}, data_dir, "val", include_meteor=False)
    with pytest.raises(ValueError, match="question q1: a prediction needs"):
        compute_metrics({"q1": {"answer": "yes"}}, data_dir, "val", include_meteor=False)
    (data_dir / "grounding_val.json").write_text("{")
    with pytest.raises(ValueError, match="grounding_val.json: not valid json"):
        compute_metrics(PREDICTIONS, data_dir, "val", include_meteor=False)
    with pytest.raises(FileNotFoundError, match="testdev.h5"):
        compute_metrics(PREDICTIONS, data_dir, "testdev", include_meteor=False)


def test_tokens_to_text_stops_at_end_or_padding():
    ids = [EXPLANATION_VOCABULARY.index(word) for word in ["the", "#3", "is", "red"]]
    assert tokens_to_text([[1, *ids, 2, 0, 0], [1, *ids[:2], 0, *ids[2:], 2], [ids[0], 999, 2]],
                          EXPLANATION_VOCABULARY) == ["the #3 is red", "the #3", "the <unk>"]


# -------------------------------------------------------------------------- stand-in run (the contract)


class _StandInDataset(torch.utils.data.Dataset):
    def __init__(self, data_dir, split, indices=None, tokenizer=None, regions="image"):
        with h5py.File(f"{data_dir}/{split}.h5", "r") as store:
            self.size = len(store["question_ids"])

    def __len__(self):
        return self.size

    def __getitem__(self, row):
        return {"index": torch.tensor(row), "question_tokens": torch.zeros(3, dtype=torch.long)}


def _collate(items):
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}


def _decoder(calls):
    """greedy / beam_search stand-ins returning PREDICTIONS' explanations and answers by row."""
    rows = list(PREDICTIONS.values())

    def decode(model, batch, max_length=12, beam_size=None, repeat_regions=False):
        calls.append((beam_size, max_length) + ((True,) if repeat_regions else ()))
        tokens = torch.zeros(len(batch["index"]), max_length + 1, dtype=torch.long)
        logits = torch.zeros(len(batch["index"]), len(ANSWERS))
        for position, row in enumerate(batch["index"].tolist()):
            words = rows[row]["explanation"].split()
            ids = [EXPLANATION_VOCABULARY.index(word) for word in words] + [2]
            tokens[position, : len(ids)] = torch.tensor(ids)
            answer = rows[row]["answer"]
            logits[position, ANSWERS.index(answer) if answer in ANSWERS else 1] = 1.0
        return tokens, logits

    return decode


@pytest.fixture
def stand_in_run(tmp_path, monkeypatch, data_dir):
    calls = []
    decode = _decoder(calls)
    model = torch.nn.Linear(1, 1)
    model.config = types.SimpleNamespace(max_explanation_length=12)
    vocabulary = json.loads((data_dir / "vocab.json").read_text())
    pretrained = types.ModuleType("rexlib.model.pretrained")
    pretrained.load_trained_run = lambda run_dir, which="best": types.SimpleNamespace(
        model=model, vocab=vocabulary, tokenizer=None, train={"data": str(data_dir), "pretrained": None}
    )
    data = types.ModuleType("rexlib.training.data")
    data.REXDataset, data.collate = _StandInDataset, _collate
    decoding = types.ModuleType("rexlib.model.decoding")
    decoding.greedy = lambda model, batch, max_length=12, repeat_regions=False: decode(
        model, batch, max_length, repeat_regions=repeat_regions)
    decoding.beam_search = lambda model, batch, beam_size=3, max_length=12, repeat_regions=False: decode(
        model, batch, max_length, beam_size, repeat_regions
    )
    decoding.tokens_to_text = tokens_to_text
    for name, module in (("rexlib.model.pretrained", pretrained), ("rexlib.training.data", data),
                         ("rexlib.model.decoding", decoding)):
        monkeypatch.setitem(sys.modules, name, module)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (data_dir / "attribute_categories.json").write_text(json.dumps(ATTRIBUTES))
    return run_dir, calls


def test_evaluate_command_writes_predictions_and_metrics(stand_in_run, data_dir, capsys):
    run_dir, calls = stand_in_run
    code = cli.main(
        [
            "evaluate",
            "--run",
            str(run_dir),
            "--split",
            "val",
            "--beam",
            "2",
            "--no-meteor",
            "--batch-size",
            "3",
        ]
    )
    assert code == 0
    assert calls == [(2, 12), (2, 12)]  # two batches, beam search
    predictions = json.loads((run_dir / "predictions_val.json").read_text())
    assert predictions["q1"] == {
        "explanation": "the #0 is on the #1",
        "answer": "yes",
        "answer_gt": "yes",
        "explanation_gt": "the #0 is on the #1",
    }
    assert predictions["q4"]["answer_gt"] is None and predictions["q4"]["explanation"] == ""
    metrics = json.loads((run_dir / "metrics_val.json").read_text())
    assert metrics["accuracy"]["overall"] == 50.0
    assert metrics["grounding"]["score"] == pytest.approx(100.0)
    assert metrics["attributes"]["per_category"] == {"color": 100.0, "material": 0.0}
    assert metrics["decoding"]["beam_size"] == 2
    assert not list(run_dir.glob(".*.tmp"))  # atomic writes left nothing behind
    printed = capsys.readouterr().out
    assert "accuracy     overall 50.00" in printed and "predictions_val.json" in printed
    # The paper's decoding (regions may be named twice) is asked for by name and written beside the default's.
    assert cli.main(["evaluate", "--run", str(run_dir), "--split", "val", "--no-meteor", "--repeat-regions"]) == 0
    assert calls[-1] == (None, 12, True)
    repeated = json.loads((run_dir / "metrics_val-repeat-regions.json").read_text())
    assert repeated["decoding"]["repeat_regions"] is True and metrics["decoding"]["repeat_regions"] is False
    assert "predictions_val-repeat-regions.json" in capsys.readouterr().out


def test_submission_command(stand_in_run, tmp_path):
    run_dir, calls = stand_in_run
    out = tmp_path / "submission.json"
    assert cli.main(["submission", "--run", str(run_dir), "--split", "val", "--out", str(out)]) == 0
    assert calls and all(beam is None for beam, _ in calls)  # greedy
    entries = json.loads(out.read_text())
    assert entries == [
        {"questionId": "q1", "prediction": "yes"},
        {"questionId": "q2", "prediction": "red"},
        {"questionId": "q3", "prediction": "yes"},
        {"questionId": "q4", "prediction": "no"},
    ]
    saved = tmp_path / "predictions.json"
    saved.write_text(json.dumps({"7": {"answer": "no", "explanation": "x"}}))
    assert cli.main(["submission", "--predictions", str(saved), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == [{"questionId": "7", "prediction": "no"}]
    with pytest.raises(TypeError, match="question 8"):
        submission_entries({"8": {"explanation": "x"}})


def test_ood_groups_follow_groups_local(data_dir):
    """GQA-OOD's unit is GQA's local group: with `groups_local` in the store, head / tail follow it, not
    `types.detailed` (a store without it falls back to the detailed type and says so)."""
    without = compute_metrics(PREDICTIONS, data_dir, "val", include_meteor=False, include_spice=False)
    assert "types.detailed" in without["ood"]["source"]
    with h5py.File(data_dir / "val.h5", "a") as split:
        # q1 (yes) and q3 (no) ask about different relations; q2 (red) and q4 share a local group
        split["groups_local"] = _strings(["relVerify-on", "queryColor-cup", "relVerify-under", "queryColor-cup"])
    truth = load_split_truth(data_dir, "val")
    assert ood_groups(truth, ["q1", "q3"]) == {"q1": "relVerify-on", "q3": "relVerify-under"}
    metrics = compute_metrics(PREDICTIONS, data_dir, "val", include_meteor=False, include_spice=False)
    assert metrics["ood"]["source"] == "derived: group = groups.local, alpha = 0.2"
    answers = {question_id: truth.answers[question_id] for question_id in PREDICTIONS}
    expected = derive_ood_splits(answers, ood_groups(truth, PREDICTIONS))
    for part in ("head", "tail"):
        assert metrics["ood"][part]["questions"] == len(expected[part] & set(PREDICTIONS))
