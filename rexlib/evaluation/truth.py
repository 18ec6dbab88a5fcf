"""What a split's store files say about each of its questions: ids, answers, types, families, images.

Read by the metrics (answers, GQA-OOD groups, faithfulness) and by `evaluate`; it needs no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from rexlib import layout
from rexlib.io import decode_strings, read_json


@dataclass
class SplitTruth:
    """What ``{split}.h5`` and ``vocab.json`` say about each question of a split."""

    question_ids: list[str]
    row_of: dict[str, int]  # question id -> row in {split}.h5
    image_index: np.ndarray  # (N,) row in regions.h5
    answers: dict[str, str | None]  # None: the answer is not in the answer vocabulary
    types: dict[str, dict[str, str]]
    families: dict[str, str]
    local_groups: dict[str, str] = field(default_factory=dict)  # GQA `groups.local` ("" unknown)


def load_split_truth(data_dir: str | Path, split: str) -> SplitTruth:
    """Read question ids, answers, types and families of ``split`` from ``DATA/{split}.h5``."""
    data_dir = Path(data_dir)
    answer_vocabulary = read_json(data_dir / layout.VOCAB).get("answer")
    if not isinstance(answer_vocabulary, list):
        raise ValueError(f"{data_dir / layout.VOCAB}: no 'answer' list")  # noqa: TRY004 - a bad file
    path = data_dir / layout.split_file(split)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found (is '{split}' a built split?)")
    with h5py.File(path, "r") as store:
        missing = [
            key
            for key in ("question_ids", "image_index", "answers", "types_structural", "types_semantic")
            if key not in store
        ]
        if missing:
            raise ValueError(f"{path}: missing datasets {', '.join(missing)}")
        question_ids = decode_strings(store["question_ids"])
        image_index = np.asarray(store["image_index"][()], dtype=np.int64)
        answer_ids = np.asarray(store["answers"][()], dtype=np.int64)
        kinds = {
            kind: decode_strings(store[f"types_{kind}"])
            for kind in ("structural", "semantic", "detailed")
            if f"types_{kind}" in store
        }
        families = decode_strings(store["families"]) if "families" in store else [""] * len(question_ids)
        local_groups = decode_strings(store["groups_local"]) if "groups_local" in store else [""] * len(question_ids)
    answers: dict[str, str | None] = {}
    for question_id, answer_id in zip(question_ids, answer_ids):
        if answer_id >= len(answer_vocabulary):
            raise ValueError(f"{path}: question {question_id}: answer id {answer_id} outside vocab.json")
        answers[question_id] = answer_vocabulary[answer_id] if answer_id >= 0 else None
    return SplitTruth(
        question_ids=question_ids,
        row_of={question_id: row for row, question_id in enumerate(question_ids)},
        image_index=image_index,
        answers=answers,
        types={
            qid: {kind: values[row] for kind, values in kinds.items()} for row, qid in enumerate(question_ids)
        },
        families=dict(zip(question_ids, families)),
        local_groups=dict(zip(question_ids, local_groups)),
    )
