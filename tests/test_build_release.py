"""import-release: official-form json files are validated, regrounded and written as the same store."""

import json

import pytest
from test_build_fixture import make_tiny_gqa

from rexlib.dataset.release import check_converted, import_release
from rexlib.dataset.store import read_split


@pytest.fixture()
def release(tmp_path):
    gqa_dir, regions = make_tiny_gqa(tmp_path / "gqa", malformed=False)
    release_dir = tmp_path / "release"
    release_dir.mkdir()
    processed = {
        "t1000": "the (obj:1000) is red",
        "t1001": "there is a (obj:1001) at (0.9,0.1), not a (obj*:cat)",
        "t1002": "the (obj:1002 is broken",  # malformed reference
        "nope": "the (obj:1000) is red",  # not a GQA question
        "t1010": "the (obj:424242) is red",  # object not in the scene graph
    }
    (release_dir / "processed_explanation_train.json").write_text(json.dumps(processed))
    (release_dir / "converted_explanation_train.json").write_text(json.dumps({"t1000": "the #10 is red"}))
    (release_dir / "converted_explanation_val.json").write_text(
        json.dumps({"v2000": "the #3 is red at @16", "v2001": "the #36 is red", "v2002": "the @0 is"}))
    return release_dir, gqa_dir, regions, tmp_path / "out"


def test_import_release_regrounds_and_validates(release):
    release_dir, gqa_dir, regions, out = release
    reports = import_release(release_dir, gqa_dir, regions, out, log=lambda *_: None)
    assert set(reports) == {"train", "val"}
    converted = json.loads((out / "converted_explanation_train.json").read_text())
    assert converted == {"t1000": "the #10 is red", "t1001": "there is a #11 at @4 , not a cat"}
    train = json.loads((out / "build_report_train.json").read_text())
    reasons = {entry["question_id"]: entry["reason"] for entry in train["skipped_questions"]}
    assert "unclosed" in reasons["t1002"] and "not in" in reasons["nope"] and "424242" in reasons["t1010"]
    assert train["release"]["regrounded_same_as_release"] == 1
    val = json.loads((out / "converted_explanation_val.json").read_text())
    assert val == {"v2000": "the #3 is red at @16"}
    grounding = json.loads((out / "grounding_val.json").read_text())
    assert grounding["v2000"] == {"objects": [], "boxes": [], "regions": [3], "upper_bound": 0.0}
    assert list(read_split(out / "train.h5")["question_ids"]) == ["t1000", "t1001"]
    assert (out / "vocab.json").exists() and (out / "dataset.json").exists()


def test_check_converted():
    assert check_converted(["the", "#35", "@1", "@16"]) is None
    assert "out of range" in check_converted(["#36"])
    assert "out of range" in check_converted(["@17"])
    assert "neither" in check_converted(["#x"])
    assert check_converted([]) == "empty explanation"


def test_release_without_files_is_a_clear_error(tmp_path):
    gqa_dir, regions = make_tiny_gqa(tmp_path / "gqa", malformed=False)
    with pytest.raises(FileNotFoundError, match="no processed_explanation"):
        import_release(tmp_path, gqa_dir, regions, tmp_path / "out", log=lambda *_: None)
