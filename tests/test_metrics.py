"""Hand-computed checks of every metric in rexlib.evaluation.metrics (no model, no dataset files)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rexlib.boxes import union_area, union_iou
from rexlib.evaluation.metrics import captions as captions_module
from rexlib.evaluation.metrics.answers import (
    answer_accuracy,
    derive_ood_splits,
    find_ood_files,
    ood_accuracy,
    ood_question_ids,
)
from rexlib.evaluation.metrics.attributes import attribute_recall, stated_attributes
from rexlib.evaluation.metrics.captions import caption_scores, spice_status
from rexlib.evaluation.metrics.grounding import grounding_score, question_iou, region_indices

# ------------------------------------------------------------------------------------------ captions

REFERENCES = {
    "q1": ["the #3 is on the left of the #7 , so the answer is yes"],
    "q2": ["there is a red cup on the @5 table"],
    "q3": ["the #12 is wooden so it is a chair"],
    "q4": ["the #0 is small"],
}


@pytest.fixture(scope="module")
def meteor_run():
    """One METEOR java start shared by every caption test: the identical corpus, with METEOR, recording
    the scorer process so the test can check it was closed."""
    started = []
    original = captions_module.meteor_scorer

    def recording_scorer():
        context = original()
        scorer = context.__enter__()
        started.append(scorer.meteor_p)

        class Wrapper:
            def __enter__(self):
                return scorer

            def __exit__(self, *exc):
                return context.__exit__(*exc)

        return Wrapper()

    captions_module.meteor_scorer = recording_scorer
    try:
        predictions = {qid: refs[0] for qid, refs in REFERENCES.items()}
        predictions["q4"] = ""  # empty: penalised
        result = caption_scores(REFERENCES, predictions, per_question=True)
    finally:
        captions_module.meteor_scorer = original
    return result, started


def test_meteor_runs_once_and_its_process_is_closed(meteor_run):
    result, processes = meteor_run
    assert result["METEOR_status"] == "computed"
    assert len(processes) == 1
    assert processes[0].poll() is not None  # the java process has exited
    # three identical explanations at METEOR 100, one empty prediction at 0
    assert result["METEOR"] == pytest.approx(75.0, abs=0.01)
    assert result["per_question"]["METEOR"]["q4"] == 0.0


def test_empty_prediction_contributes_zero_to_every_metric(meteor_run):
    result, _ = meteor_run
    assert result["questions"] == 4 and result["empty_predictions"] == 1
    # three of four questions perfect: 3/4 of the perfect score
    for name in ("BLEU-1", "BLEU-4", "ROUGE-L"):
        assert result[name] == pytest.approx(75.0, abs=1e-4), name
    # CIDEr-D of a perfect match is 10 per question (×100 -> 1000) when n-grams are not shared
    assert result["CIDEr"] == pytest.approx(750.0, rel=1e-3)
    assert result["per_question"]["ROUGE-L"] == {"q1": 100.0, "q2": 100.0, "q3": 100.0, "q4": 0.0}


def test_spice_unavailable_is_reported_without_failure(meteor_run, monkeypatch, tmp_path):
    result, _ = meteor_run
    status = spice_status()
    if status == "available":
        assert result["SPICE_status"] in ("computed",) or result["SPICE_status"].startswith("failed")
    else:
        assert result["SPICE"] is None
        assert result["SPICE_status"].startswith("unavailable: ")
    # force the jars missing: still a clean result, and the reason names the folder
    monkeypatch.setattr(captions_module, "spice_library_folder", lambda: tmp_path)
    forced = caption_scores({"a": ["x y"], "b": ["z w"]}, {"a": "x y", "b": "z"}, include_meteor=False)
    assert forced["SPICE"] is None
    assert forced["SPICE_status"].startswith("unavailable: Stanford CoreNLP jars not found in")
    assert str(tmp_path) in forced["SPICE_status"]
    assert forced["BLEU-1"] is not None and forced["ROUGE-L"] is not None


def test_identical_explanations_score_bleu4_100_without_meteor():
    predictions = {qid: refs[0] for qid, refs in REFERENCES.items()}
    result = caption_scores(REFERENCES, predictions, include_meteor=False, include_spice=False)
    assert result["BLEU-4"] == pytest.approx(100.0, abs=1e-4)
    assert result["ROUGE-L"] == pytest.approx(100.0)
    assert result["CIDEr"] == pytest.approx(1000.0, rel=1e-3)
    assert result["METEOR"] is None and result["METEOR_status"].startswith("skipped")


def test_meteor_failure_is_reported_not_raised(monkeypatch):
    class BrokenScorer:
        def __enter__(self):
            raise OSError("java: cannot reserve the heap")

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(captions_module, "meteor_scorer", BrokenScorer)
    result = caption_scores({"a": ["x y"]}, {"a": "x y"}, include_spice=False)
    assert result["METEOR"] is None and result["METEOR_status"].startswith("failed: OSError")
    assert result["ROUGE-L"] == pytest.approx(100.0)


def test_skip_policy_drops_empty_predictions():
    predictions = {"q1": REFERENCES["q1"][0], "q2": REFERENCES["q2"][0], "q3": ""}
    refs = {qid: REFERENCES[qid] for qid in predictions}
    skipped = caption_scores(refs, predictions, empty_predictions="skip", include_meteor=False)
    penalised = caption_scores(refs, predictions, include_meteor=False)
    assert skipped["ROUGE-L"] == pytest.approx(100.0) and skipped["questions"] == 2
    assert penalised["ROUGE-L"] == pytest.approx(200.0 / 3) and penalised["questions"] == 3


def test_region_tokens_are_whole_words():
    # a wrong region is a wrong word: unigram precision 4/5 (the tokenizer must not split "#3" into "# 3")
    refs = {"a": ["the #3 is red ."], "b": ["one two three four five"]}
    result = caption_scores(
        refs, {"a": "the #4 is red .", "b": "one two three four five"}, include_meteor=False
    )
    assert result["BLEU-1"] == pytest.approx(100.0 * 9 / 10, abs=1e-4)


def test_no_reference_question_left_out_and_unknown_question_rejected():
    result = caption_scores({"a": [""], "b": ["x y z"]}, {"a": "x", "b": "x y z"}, include_meteor=False)
    assert result["without_reference"] == 1 and result["questions"] == 1
    with pytest.raises(ValueError, match="question zz"):
        caption_scores({"a": ["x"]}, {"zz": "x"}, include_meteor=False)
    with pytest.raises(ValueError, match="empty_predictions"):
        caption_scores({"a": ["x"]}, {"a": "x"}, empty_predictions="drop")


def test_all_predictions_empty_score_zero():
    result = caption_scores({"a": ["x"], "b": ["y"]}, {"a": "", "b": " "}, include_meteor=False)
    assert result["BLEU-4"] == 0.0 and result["CIDEr"] == 0.0 and result["empty_predictions"] == 2


# ----------------------------------------------------------------------------------------- grounding

# detector regions of one 100x100 image: #0 = A, #1 = B, #2 covers A and the overlap with C, #3 nothing
DETECTOR = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [0, 0, 15, 15], [50, 50, 60, 60]], dtype=float)
A, B, C = [0, 0, 10, 10], [20, 0, 30, 10], [5, 5, 15, 15]


def test_region_indices_reads_only_hash_tokens():
    assert region_indices("the #3 left of #12 , the @5 #3 x#4 #") == [3, 12]


def test_union_iou_exact_areas():
    assert union_area([A, B]) == 200.0
    assert union_area([A, C]) == 175.0  # 100 + 100 - 25 overlap
    assert union_iou([A], [A, B]) == pytest.approx(0.5)
    assert union_iou([[0, 0, 15, 15]], [A, C]) == pytest.approx(175 / 225)
    assert union_iou([], [A]) == 0.0
    # clipped to the image: the part outside a 10x10 image does not count
    assert union_iou([[-10, 0, 10, 10]], [A], image_size=(10, 10)) == pytest.approx(1.0)


def test_reference_mode_paints_only_the_last_ground_truth_box():
    # union: prediction A against ground truth A ∪ B -> 100 / 200
    assert question_iou(DETECTOR[[0]], np.array([A, B]), (100, 100), "union") == pytest.approx(0.5)
    # reference: only B is painted, A does not touch it
    assert question_iou(DETECTOR[[0]], np.array([A, B]), (100, 100), "reference") == 0.0
    # predicting both: union 1.0, reference 100 / 200
    assert question_iou(DETECTOR[[0, 1]], np.array([A, B]), (100, 100), "union") == pytest.approx(1.0)
    assert question_iou(DETECTOR[[0, 1]], np.array([A, B]), (100, 100), "reference") == pytest.approx(0.5)
    # reference truncates to integer pixels as the authors' mask slicing does
    shifted = np.array([[0.9, 0.0, 10.9, 10.0]])
    assert question_iou(shifted, np.array([A]), (100, 100), "reference") == pytest.approx(1.0)
    assert question_iou(shifted, np.array([A]), (100, 100), "union") == pytest.approx(91 / 109)


def test_grounding_score_averages_over_questions_with_upper_bound():
    ground_truth = {
        "q1": {"boxes": [A, B], "upper_bound": 1.0},  # predicts A: 0.5
        "q2": {"boxes": [A, C], "upper_bound": 0.875},  # predicts #2: (175/225) / 0.875
        "q3": {"boxes": [A], "upper_bound": 1.0},  # empty prediction: 0
        "q4": {"boxes": [A], "upper_bound": 0.0},  # left out
    }
    predictions = {
        "q1": "the #0 is left of the cup",
        "q2": "the #2 is here",
        "q3": "nothing grounded",
        "q4": "the #0",
        "q5": "the #0 has no grounding entry",
    }
    result = grounding_score(
        predictions, ground_truth, lambda qid: DETECTOR, lambda qid: (100, 100), per_question=True
    )
    q2 = (175 / 225) / 0.875
    assert result["per_question"] == pytest.approx({"q1": 50.0, "q2": 100 * q2, "q3": 0.0})
    assert result["score"] == pytest.approx(100 * (0.5 + q2 + 0.0) / 3)
    assert result["questions"] == 3
    assert result["excluded_upper_bound_zero"] == 1 and result["without_ground_truth"] == 1

    reference = grounding_score(
        predictions, ground_truth, {q: DETECTOR for q in predictions}, mode="reference"
    )
    # q1: last box B vs A -> 0; q2: last box C vs [0,0,15,15] -> 100/225
    assert reference["score"] == pytest.approx(100 * (0.0 + (100 / 225) / 0.875 + 0.0) / 3)
    assert reference["score"] < result["score"]


def test_union_mode_matches_an_unclipped_upper_bound():
    # a ground-truth box reaching past the 100x100 image: naming the upper bound's region scores 100
    outside = [90, 90, 120, 120]
    regions = np.array([[80, 80, 110, 110]], dtype=float)
    upper_bound = union_iou(regions, [outside])
    assert upper_bound == pytest.approx(400 / 1400)
    result = grounding_score(
        {"q": "#0"},
        {"q": {"boxes": [outside], "upper_bound": upper_bound}},
        lambda q: regions,
        lambda q: (100, 100),
    )
    assert result["score"] == pytest.approx(100.0)


def test_grounding_rejects_bad_input():
    with pytest.raises(ValueError, match="question q1: region #9"):
        grounding_score({"q1": "#9"}, {"q1": {"boxes": [A], "upper_bound": 1}}, lambda q: DETECTOR)
    with pytest.raises(ValueError, match="question q1: bad grounding entry"):
        grounding_score({"q1": "#0"}, {"q1": {"upper_bound": 1}}, lambda q: DETECTOR)
    with pytest.raises(ValueError, match="grounding mode"):
        grounding_score({}, {}, lambda q: DETECTOR, mode="last")


# ---------------------------------------------------------------------------------------- attributes

TABLE = {"red": "color", "blue": "color", "light blue": "color", "wooden": "material", "small": "size"}


def test_attribute_values_longest_match_wins():
    assert stated_attributes("the light blue #3 is small", TABLE) == {"light blue", "small"}
    assert stated_attributes("the reddish #3", TABLE) == set()


def test_attribute_recall_per_category():
    references = {
        "q1": "the red #1 is wooden",
        "q2": "the light blue #3",
        "q3": "no attribute words here",
    }
    predictions = {"q1": "the red #1 is metal", "q2": "the blue #3", "q3": "red"}
    result = attribute_recall(references, predictions, TABLE, per_question=True)
    assert result["per_category"] == {"color": 50.0, "material": 0.0, "size": None}
    assert result["counts"] == {"color": 2, "material": 1, "size": 0}
    assert result["overall"] == pytest.approx(100 / 3)
    assert result["questions"] == 2
    assert result["per_question"]["q1"] == {"color": 100.0, "material": 0.0}
    with pytest.raises(ValueError, match="question q9"):
        attribute_recall(references, {"q9": "x"}, TABLE)


# ------------------------------------------------------------------------------------------- answers


def test_accuracy_per_type_and_family():
    truth = {"q1": "red", "q2": "cup", "q3": "yes", "q4": None}
    predicted = {"q1": "red", "q2": "plate", "q3": "yes", "q4": "no"}
    types = {
        "q1": {"structural": "query", "semantic": "attr", "detailed": "queryColor"},
        "q2": {"structural": "query", "semantic": "obj", "detailed": "queryObject"},
        "q3": {"structural": "verify", "semantic": "attr", "detailed": "verifyColor"},
        "q4": {"structural": "verify", "semantic": "rel", "detailed": "verifyRel"},
    }
    families = {
        "q1": "select,filter,query",
        "q2": "select,query",
        "q3": "select,verify",
        "q4": "select,relate,verify,verify",
    }
    result = answer_accuracy(predicted, truth, types, families)
    assert result["overall"] == 50.0 and result["questions"] == 4
    assert {k: v["accuracy"] for k, v in result["structural"].items()} == {"query": 50.0, "verify": 50.0}
    assert {k: v["accuracy"] for k, v in result["semantic"].items()} == {
        "attr": 100.0,
        "obj": 0.0,
        "rel": 0.0,
    }
    got = {k: (v["accuracy"], v["questions"]) for k, v in result["families"].items()}
    assert got == {
        "filter": (100.0, 1),
        "query": (50.0, 2),
        "relate": (0.0, 1),
        "select": (50.0, 4),
        "verify": (50.0, 2),
    }
    with pytest.raises(ValueError, match="question q5"):
        answer_accuracy({"q5": "x"}, truth)


def _ood_questions():
    """Group g1: yes x6, no x2, maybe x1 (mean 3, threshold 3.6 at alpha 0.2). Group g2: a x2, b x2."""
    answers = ["yes"] * 6 + ["no"] * 2 + ["maybe"] + ["a", "a", "b", "b"]
    groups = ["g1"] * 9 + ["g2"] * 4
    truth = {f"q{i}": answer for i, answer in enumerate(answers)}
    return truth, {f"q{i}": group for i, group in enumerate(groups)}


def test_ood_head_tail_rule():
    truth, groups = _ood_questions()
    splits = derive_ood_splits(truth, groups, alpha=0.2)
    assert splits["head"] == {f"q{i}" for i in range(6)}  # yes: 6 > 3.6
    assert splits["tail"] == {f"q{i}" for i in range(6, 13)}  # no 2, maybe 1 <= 3.6; g2 2 <= 2.4
    assert splits["all"] == set(truth)
    # at alpha = 1 the threshold is 6: frequency equal to it is tail
    assert derive_ood_splits(truth, groups, alpha=1.0)["head"] == set()
    # at alpha = 0 the threshold is the mean: g1 yes (6 > 3) head; g2 (2 = 2) tail
    assert derive_ood_splits(truth, groups, alpha=0.0)["head"] == {f"q{i}" for i in range(6)}

    correct = {qid: qid in {"q0", "q1", "q6"} for qid in truth if qid != "q12"}  # q12 not evaluated
    result = ood_accuracy(correct, splits)
    assert result["head"] == {"accuracy": pytest.approx(100 * 2 / 6), "questions": 6, "missing": 0}
    assert result["tail"] == {"accuracy": pytest.approx(100 / 6), "questions": 6, "missing": 1}
    assert result["all"]["questions"] == 12


def test_ood_files_are_preferred_and_accept_lists_and_objects(tmp_path):
    truth, groups = _ood_questions()
    (tmp_path / "testdev_all_questions.json").write_text(json.dumps({"q0": {}, "q7": {}}))
    (tmp_path / "testdev_head_questions.json").write_text(json.dumps(["q0"]))
    (tmp_path / "testdev_tail_questions.json").write_text(json.dumps([{"questionId": "q7"}]))
    assert find_ood_files([tmp_path / "absent", tmp_path], "val") is None
    splits, source = ood_question_ids("testdev", truth, groups, [tmp_path])
    assert splits == {"all": {"q0", "q7"}, "head": {"q0"}, "tail": {"q7"}}
    assert source.startswith("files:")
    splits, source = ood_question_ids("val", truth, groups, [tmp_path])
    assert source.startswith("derived:") and len(splits["head"]) == 6
    (tmp_path / "ood_val_all.json").write_text("[1, 2")
    (tmp_path / "ood_val_head.json").write_text("[]")
    (tmp_path / "ood_val_tail.json").write_text("[]")
    with pytest.raises(ValueError, match="ood_val_all.json"):
        ood_question_ids("val", truth, groups, [tmp_path])


def test_world_local_groups_reach_the_store_and_the_ood_split(tmp_path):
    """The world writes GQA-like `groups.local`; the store keeps it per question; GQA-OOD groups by it."""
    import h5py

    from rexlib.dataset.build import build
    from rexlib.evaluation.evaluate import ood_groups
    from rexlib.evaluation.truth import load_split_truth
    from rexlib.world import build_world

    world = tmp_path / "world"
    build_world(world, seed=0, images=6, render=False, feature_dim=4, progress=False, log=lambda _: None)
    build(world, world / "regions.h5", tmp_path / "store", log=lambda *_: None)
    questions = json.loads((world / "questions" / "train_balanced_questions.json").read_text())
    with h5py.File(tmp_path / "store" / "train.h5") as handle:
        kept = dict(zip(handle["question_ids"].asstr()[()], handle["groups_local"].asstr()[()]))
    assert kept and all(group == questions[qid]["groups"]["local"] for qid, group in kept.items())
    truth = load_split_truth(tmp_path / "store", "train")
    groups = ood_groups(truth, kept)
    assert groups == kept and len(set(groups.values())) > len({t["detailed"] for t in truth.types.values()})
