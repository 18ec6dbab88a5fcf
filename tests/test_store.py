"""Store: atomic writes leave nothing behind on failure, arrays follow the contract, truncation flagged."""

import json

import h5py
import numpy as np
import pytest

from rexlib.dataset.store import Row, encode_split, read_split, write_split
from rexlib.dataset.vocab import build_vocabularies
from rexlib.io import atomic_h5, write_json


def test_atomic_json_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "a.json"
    write_json(path, {"x": 1})
    with pytest.raises(ValueError):
        write_json(path, {"x": float("nan")})  # NaN is not json
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_h5_and_reproducible_bytes(tmp_path):
    for name in ("a.h5", "b.h5"):
        with atomic_h5(tmp_path / name) as handle:
            handle.create_dataset("x", data=np.arange(3), track_times=False)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    with pytest.raises(RuntimeError), atomic_h5(tmp_path / "c.h5"):
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5"]


def test_encode_split_truncates_and_flags(tmp_path):
    long = ("the", "#1", "is", "on", "the", "#2", "and", "the", "#3", "is", "near", "the", "#4", "too")  # 14
    rows = [Row("q1", 0, "Is the cup red?", "yes", ("the", "#5", "is", "red"), {"structural": "verify"},
                "select,verify"),
            Row("q2", 3, "Where?", "left", long, {}, "select,relate")]
    vocabularies = build_vocabularies([r.tokens for r in rows], ["yes"], [r.question for r in rows])
    arrays = encode_split(rows, vocabularies, max_explanation_length=12, max_question_length=6)
    assert arrays["explanations"].shape == (2, 13) and arrays["questions"].shape == (2, 6)
    assert arrays["explanation_lengths"].tolist() == [5, 13]
    assert arrays["explanation_truncated"].tolist() == [False, True]
    assert arrays["gate_targets"][0].tolist() == [1, 0, 1, 1, 1] + [0] * 8
    assert arrays["explanations"][1, 12] == 2  # <end> after 12 tokens
    assert arrays["answers"].tolist() == [0, -1]
    q = vocabularies.question
    assert arrays["questions"][0].tolist() == [2, q.id("is"), q.id("the"), q.id("cup"), q.id("red"), 3]
    write_split(tmp_path / "s.h5", arrays)
    back = read_split(tmp_path / "s.h5")
    assert list(back["question_ids"]) == ["q1", "q2"] and back["types_structural"].tolist() == ["verify", ""]
    with h5py.File(tmp_path / "s.h5") as handle:
        assert handle["question_ids"].dtype.kind == "O" and handle["image_index"].dtype == np.int32


def test_atomic_target_commits_or_discards_one_temporary_name(tmp_path):
    from rexlib.io import AtomicTarget, write_bytes

    target = AtomicTarget(tmp_path / "sub" / "a.ipynb", keep_ending=True)
    assert target.temporary.name.startswith(".a.ipynb.") and target.temporary.name.endswith(".tmp.ipynb")
    target.temporary.write_text("partial")
    assert not (tmp_path / "sub" / "a.ipynb").exists()
    target.commit()
    assert (tmp_path / "sub" / "a.ipynb").read_text() == "partial"
    dropped = AtomicTarget(tmp_path / "sub" / "b.h5")
    assert dropped.temporary.name.startswith(".b.h5.") and dropped.temporary.suffix == ".tmp"
    dropped.discard()
    write_bytes(tmp_path / "sub" / "c.png", b"\x89PNG")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.ipynb", "c.png"]
