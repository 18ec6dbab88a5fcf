"""The builder: skipped questions with reasons, store keys, determinism (workers, shards), resume."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
from test_build_fixture import StandInError, make_tiny_gqa, stand_in_execute

from rexlib.dataset import build as builder
from rexlib.dataset.build import build
from rexlib.dataset.merge import merge
from rexlib.dataset.store import read_dataset_json, read_split
from rexlib.dataset.vocab import Vocabularies

OUTPUT_FILES = ("vocab.json", "dataset.json") + tuple(
    f"{name}_{split}.{ext}" if ext == "json" else f"{split}.h5"
    for split in ("train", "val", "testdev")
    for name, ext in (("processed_explanation", "json"), ("converted_explanation", "json"),
                      ("grounding", "json"), ("build_report", "json"), ("h5", "h5"))
)


def _build(gqa_dir, regions, out, **options):
    options.setdefault("chunk_size", 7)
    return build(gqa_dir, regions, out, executor=stand_in_execute, execution_error=StandInError,
                 log=lambda *_: None, **options)


def _bytes(folder):
    return {name: (folder / name).read_bytes() for name in OUTPUT_FILES}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("gqa")
    gqa_dir, regions = make_tiny_gqa(root)
    out = root / "out"
    reports = _build(gqa_dir, regions, out)
    return gqa_dir, regions, out, reports


def test_malformed_questions_are_skipped_with_reasons(built):
    _gqa_dir, _regions, out, reports = built
    report = json.loads((out / "build_report_train.json").read_text())
    assert report == json.loads(json.dumps(reports["train"]))
    skipped = {entry["question_id"]: entry for entry in report["skipped_questions"]}
    assert "unknown operation 'frobnicate'" in skipped["bad-operation"]["reason"]
    assert skipped["bad-operation"]["step"] == 0 and skipped["bad-operation"]["kind"] == "parse"
    assert "dependency 5" in skipped["bad-dependency"]["reason"] and skipped["bad-dependency"]["step"] == 1
    assert "object 999 is not in scene graph" in skipped["missing-object"]["reason"]
    assert "empty" in skipped["empty-scene"]["reason"] and skipped["empty-scene"]["kind"] == "scene graph"
    assert "img998 is not in" in skipped["no-regions"]["reason"]
    assert skipped["explodes"]["kind"] == "execution" and skipped["explodes"]["step"] == 1
    assert all(entry["file"].endswith("train_balanced_questions.json") for entry in skipped.values())
    assert report["disagreements"] == [{"question_id": "wrong-answer", "answer": "purple",
                                        "derived_answer": report["disagreements"][0]["derived_answer"],
                                        "families": "select,query"}]
    processed = json.loads((out / "processed_explanation_train.json").read_text())
    # GQA's answer is explained all the same (answer policy): kept, and counted as a disagreement.
    assert "wrong-answer" in processed and "t-absent" in processed
    assert report["explanations"] == len(processed) == report["questions"] - 6
    assert report["answers"]["disagree"] == 1 and report["families"]["query"]["disagree"] == 1
    assert report["families"]["query"]["agreement"] < 1.0 == report["families"]["exist"]["agreement"]
    assert report["operations"]["select"] == report["executed"]


def test_store_keys_shapes_and_dtypes(built):
    _gqa_dir, regions, out, _reports = built
    manifest = read_dataset_json(out)
    assert manifest["splits"] == ["train", "val", "testdev"]
    assert manifest["regions"] == str(regions.resolve())
    vocabularies = Vocabularies.load(out / "vocab.json")
    converted = json.loads((out / "converted_explanation_train.json").read_text())
    grounding = json.loads((out / "grounding_train.json").read_text())
    with h5py.File(out / "train.h5") as handle:
        n = len(converted)
        expected = {
            "question_ids": ((n,), "O"), "image_index": ((n,), np.int32), "questions": ((n, 24), np.int32),
            "question_lengths": ((n,), np.int32), "answers": ((n,), np.int32),
            "explanations": ((n, 13), np.int32), "explanation_lengths": ((n,), np.int32),
            "gate_targets": ((n, 13), np.uint8), "explanation_truncated": ((n,), np.bool_),
            "types_structural": ((n,), "O"), "types_semantic": ((n,), "O"), "types_detailed": ((n,), "O"),
            "families": ((n,), "O"), "groups_local": ((n,), "O"),
        }
        assert set(handle) == set(expected)
        for key, (shape, dtype) in expected.items():
            assert handle[key].shape == shape, key
            assert handle[key].dtype == np.dtype(dtype), key
    arrays = read_split(out / "train.h5")
    assert list(arrays["question_ids"]) == list(converted)
    row = list(converted).index("t1000")
    tokens = converted["t1000"].split()
    assert tokens[0] == "the" and tokens[1].startswith("#")
    assert int(tokens[1][1:]) == grounding["t1000"]["regions"][0] == 10  # the jittered box on object 0
    ids = arrays["explanations"][row]
    assert vocabularies.explanation.decode(ids, stop_at="<end>") == tokens
    assert arrays["gate_targets"][row][: len(tokens) + 1].tolist() == [1, 0] + [1] * (len(tokens) - 1)
    assert arrays["questions"][row][0] == 2 and 3 in arrays["questions"][row]
    assert vocabularies.answer.tokens[arrays["answers"][row]] == "red" or arrays["answers"][row] >= 0
    truncated = arrays["explanation_truncated"]
    assert truncated.any() and (arrays["explanation_lengths"][truncated] == 13).all()
    report = json.loads((out / "build_report_train.json").read_text())
    assert report["length"]["over_limit"] == int(truncated.sum())
    long_id = arrays["question_ids"][int(np.flatnonzero(truncated)[0])]
    assert len(converted[long_id].split()) > 12  # the json keeps the whole explanation
    assert json.loads((out / "converted_explanation_train.json").read_text())["t-absent"] == "there is no cat"
    testdev = json.loads((out / "build_report_testdev.json").read_text())
    assert testdev["explanations"] == 8  # testdev found its scene graphs in val's file
    # GQA's groups.local is kept per question ("" where the record has none, as in this fixture).
    assert set(arrays["groups_local"]) == {""}


def test_local_group_is_read_from_gqa_records():
    from rexlib.dataset.build import local_group_of

    assert local_group_of({"groups": {"global": None, "local": "14-cup_color"}}) == "14-cup_color"
    assert local_group_of({"groups": {"global": "color", "local": None}}) == ""
    assert local_group_of({}) == "" and local_group_of("not a record") == ""


def test_one_and_two_workers_give_the_same_bytes(built):
    gqa_dir, regions, out, _reports = built
    two = out.with_name("two-workers")  # beside `out`: dataset.json holds the regions path relative to it
    _build(gqa_dir, regions, two, workers=2)
    assert _bytes(two) == _bytes(out)


def test_shards_then_merge_equal_unsharded(built):
    gqa_dir, regions, out, _reports = built
    sharded = out.with_name("sharded")
    assert _build(gqa_dir, regions, sharded, shard="1/3") == {}
    with pytest.raises(FileNotFoundError, match="2-of-3"):
        merge(sharded, log=lambda *_: None)
    _build(gqa_dir, regions, sharded, shard="2/3")
    _build(gqa_dir, regions, sharded, shard=(3, 3), chunk_size=4)
    merge(sharded, log=lambda *_: None)
    assert _bytes(sharded) == _bytes(out)


def test_interrupted_build_resumes(built, monkeypatch):
    gqa_dir, regions, out, _reports = built
    resumed = out.with_name("resumed")
    real = builder.process_items
    calls = []

    def crash_on_third_chunk(data, items):
        calls.append(len(items))
        if len(calls) == 3:
            raise KeyboardInterrupt  # the machine went away mid-build
        return real(data, items)

    monkeypatch.setattr(builder, "process_items", crash_on_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        _build(gqa_dir, regions, resumed)
    partial = resumed / "partial" / "train"
    assert len(list(partial.glob("chunk-*.pkl"))) == 2 and not (partial / "complete.json").exists()
    assert not list(partial.glob(".*tmp"))  # nothing half-written
    monkeypatch.setattr(builder, "process_items", lambda data, items: calls.append(len(items)) or real(data, items))
    calls.clear()
    _build(gqa_dir, regions, resumed)
    train_chunks = -(-json.loads((partial / "complete.json").read_text())["questions"] // 7)
    assert len(calls) < train_chunks + 10  # the two finished train chunks were not redone
    assert _bytes(resumed) == _bytes(out)
    calls.clear()
    _build(gqa_dir, regions, resumed)
    assert calls == []  # everything processed: a rerun only rewrites the store


def test_cli_reports_missing_files(tmp_path):
    result = subprocess.run([sys.executable, "-m", "rexlib", "build", "--gqa", str(tmp_path), "--regions",
                             str(tmp_path / "nope.h5"), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "nope.h5" in result.stderr


def test_drop_disagreements_restores_dropping(built, tmp_path):
    gqa_dir, regions, _out, _reports = built
    out = tmp_path / "dropped"
    report = _build(gqa_dir, regions, out, drop_disagreements=True)["train"]
    processed = json.loads((out / "processed_explanation_train.json").read_text())
    assert "wrong-answer" not in processed and report["disagreements_dropped"] is True
    assert report["explanations"] == report["questions"] - 7


def test_default_splits_and_a_split_alone(built, tmp_path):
    """No --splits: the splits whose files exist; --splits val alone: json + report, h5 only with a vocab."""
    gqa_dir, regions, out, _reports = built
    said = []
    reports = build(gqa_dir, regions, tmp_path / "all", executor=stand_in_execute, execution_error=StandInError,
                    log=said.append)
    assert list(reports) == ["train", "val", "testdev"] and "train, val, testdev" in said[0]
    alone = tmp_path / "alone"
    report = _build(gqa_dir, regions, alone, splits=["val"])["val"]
    assert (alone / "processed_explanation_val.json").exists() and (alone / "build_report_val.json").exists()
    assert not (alone / "val.h5").exists() and "not written" in report["encoded"] and "--vocab" in report["encoded"]
    with_vocab = tmp_path / "with-vocab"
    _build(gqa_dir, regions, with_vocab, splits=["val"], vocab_file=out / "vocab.json")
    assert (with_vocab / "val.h5").exists()
    assert (with_vocab / "val.h5").read_bytes() == (out / "val.h5").read_bytes()


def test_cli_builds_a_split_alone_with_gqa_categories(built, tmp_path):
    """`build --splits val --vocab FILE --attribute-categories FILE --drop-disagreements` from the CLI."""
    gqa_dir, regions, out, _reports = built
    mapping = tmp_path / "attr_mapping.json"
    mapping.write_text(json.dumps({"categorized": {"material": ["wicker"]}}))
    command = [sys.executable, "-m", "rexlib", "build", "--gqa", str(gqa_dir), "--regions", str(regions),
               "--out", str(tmp_path / "cli"), "--splits", "val", "--vocab", str(out / "vocab.json"),
               "--attribute-categories", str(mapping), "--drop-disagreements"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cli" / "val.h5").exists()
    table = json.loads((tmp_path / "cli" / "attribute_categories.json").read_text())
    assert table["wicker"] == "material"
    report = json.loads((tmp_path / "cli" / "build_report_val.json").read_text())
    assert report["disagreements_dropped"] is True


def test_report_counts_region_and_grid_tokens_wherever_they_stand():
    # The report counts "#k" and "@k" in the joined converted text; a token that opens it counts too.
    from rexlib.dataset.build import AGREE, Executed, split_report

    def record(index, tokens):
        return Executed(index, f"q{index}", 0, "what?", "yes", {}, "select,exist", AGREE, "", "", tokens,
                        {"objects": (), "upper_bound": 0.0}, "yes", True)

    kept = [record(0, ("#3", "is", "on", "#4")), record(1, ("@2", "the", "#1", "@16"))]
    records = {"executed": kept, "skipped": [], "questions": 2, "operations": {}}
    for converted in (None, [" ".join(r.tokens) for r in kept]):
        report = split_report("val", records, kept, None, max_explanation_length=12, drop_disagreements=False,
                              converted=converted)
        assert report["grounded_tokens_per_explanation"] == 1.5
        assert report["grid_tokens_per_explanation"] == 1.0
