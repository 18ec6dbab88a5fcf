"""Answer accuracy: overall, per GQA question type, per operation family, and on GQA-OOD's splits.

GQA-OOD (Kervadec et al., CVPR 2021) measures how a model does on rare answers. It groups questions
(by their local group) and, inside a group, calls an answer *head* when it is frequent and *tail*
otherwise. The rule, with μ the group's mean answer frequency (questions in the group / distinct
answers in the group) and α = 0.2 by default:

    head:  frequency(answer) >  (1 + α) · μ
    tail:  frequency(answer) <= (1 + α) · μ

A question is head or tail as its ground-truth answer is. With GQA-OOD's own question-id files
(``ood_testdev_all.json`` / ``testdev_head_questions.json`` style) we use those; without them (the
embedded world) ``ood_question_ids`` derives the splits by the rule above, using the question's
``groups.local`` (GQA's local question group, which the store keeps as ``groups_local``) as its group
and the evaluated questions' answers as the distribution.

All accuracies are ×100. A question whose ground-truth answer is unknown (``None``: not in the answer
vocabulary) can never be answered correctly and counts as wrong, like any other miss.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

OOD_PARTS = ("all", "head", "tail")
TYPE_KINDS = ("structural", "semantic", "detailed")


def _percent(values: list[bool]) -> float | None:
    return 100.0 * sum(values) / len(values) if values else None


def _grouped(correct: Mapping[str, bool], key_of: Mapping[str, Iterable[str]]) -> dict[str, dict]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for question_id, is_correct in correct.items():
        for key in key_of.get(question_id, ()):
            groups[key].append(is_correct)
    return {
        key: {"accuracy": _percent(values), "questions": len(values)}
        for key, values in sorted(groups.items())
    }


def correctness(predicted: Mapping[str, str], truth: Mapping[str, str | None]) -> dict[str, bool]:
    """question id -> whether the predicted answer equals the ground truth (exact string match)."""
    result = {}
    for question_id, answer in predicted.items():
        if question_id not in truth:
            raise ValueError(f"question {question_id}: a predicted answer without a ground-truth answer")
        expected = truth[question_id]
        result[question_id] = expected is not None and answer == expected
    return result


def answer_accuracy(
    predicted: Mapping[str, str],
    truth: Mapping[str, str | None],
    types: Mapping[str, Mapping[str, str]] | None = None,
    families: Mapping[str, str] | None = None,
) -> dict:
    """Accuracy overall, per ``types`` kind and per operation family.

    Args:
        predicted: question id -> predicted answer.
        truth: question id -> ground-truth answer (``None`` when unknown: always wrong).
        types: question id -> GQA ``types`` (``{"structural": "query", "semantic": "attr", "detailed": ...}``).
        families: question id -> the program's operation families, ``"select,relate,query"``; a question
            counts once towards each distinct family of its program.

    Returns:
        ``{"overall": float, "questions": n, "structural" / "semantic" / "detailed": {type: {"accuracy",
        "questions"}}, "families": {family: {"accuracy", "questions"}}}``.
    """
    correct = correctness(predicted, truth)
    result: dict = {"overall": _percent(list(correct.values())), "questions": len(correct)}
    if types is not None:
        for kind in TYPE_KINDS:
            result[kind] = _grouped(
                correct, {qid: [value[kind]] for qid, value in types.items() if value.get(kind)}
            )
    if families is not None:
        result["families"] = _grouped(
            correct,
            {
                qid: sorted({part.strip() for part in text.split(",") if part.strip()})
                for qid, text in families.items()
            },
        )
    return result


def derive_ood_splits(
    truth: Mapping[str, str | None], groups: Mapping[str, str], alpha: float = 0.2
) -> dict[str, set[str]]:
    """GQA-OOD head / tail question ids by the rule in the module docstring.

    Args:
        truth: question id -> ground-truth answer; questions with ``None`` answers or no group are left out.
        groups: question id -> group: GQA's ``groups.local`` (``rexlib.evaluation.evaluate.ood_groups``).
        alpha: the margin α; GQA-OOD's default is 0.2.
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, not {alpha}")
    answers_in_group: dict[str, Counter] = defaultdict(Counter)
    for question_id, answer in truth.items():
        if answer is not None and groups.get(question_id):
            answers_in_group[groups[question_id]][answer] += 1
    splits: dict[str, set[str]] = {part: set() for part in OOD_PARTS}
    for question_id, answer in truth.items():
        group = groups.get(question_id)
        if answer is None or not group:
            continue
        counts = answers_in_group[group]
        mean_frequency = sum(counts.values()) / len(counts)
        part = "head" if counts[answer] > (1.0 + alpha) * mean_frequency else "tail"
        splits[part].add(question_id)
        splits["all"].add(question_id)
    return splits


def _read_question_ids(path: Path) -> set[str]:
    try:
        content = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot read GQA-OOD question ids ({error})") from error
    if isinstance(content, dict):
        return {str(question_id) for question_id in content}
    if isinstance(content, list):
        return {str(item["questionId"] if isinstance(item, dict) else item) for item in content}
    raise ValueError(
        f"{path}: expected a json object keyed by question id or a list, got {type(content).__name__}"
    )


def find_ood_files(folders: Iterable[str | Path], split: str) -> dict[str, Path] | None:
    """GQA-OOD's all/head/tail files for ``split`` in the first folder holding all three, else ``None``.

    Accepted names: ``ood_{split}_{part}.json`` (GQA-OOD's release), ``{split}_{part}_questions.json``
    and ``{split}_{part}.json``.
    """
    patterns = ("ood_{split}_{part}.json", "{split}_{part}_questions.json", "{split}_{part}.json")
    for folder in folders:
        folder = Path(folder)
        for pattern in patterns:
            paths = {part: folder / pattern.format(split=split, part=part) for part in OOD_PARTS}
            if all(path.is_file() for path in paths.values()):
                return paths
    return None


def ood_question_ids(
    split: str,
    truth: Mapping[str, str | None],
    groups: Mapping[str, str],
    folders: Iterable[str | Path] = (),
    alpha: float = 0.2,
    group_name: str = "groups.local",
) -> tuple[dict[str, set[str]], str]:
    """(all/head/tail question ids, where they came from): GQA-OOD's files if found, else derived."""
    paths = find_ood_files(folders, split)
    if paths is not None:
        return {
            part: _read_question_ids(path) for part, path in paths.items()
        }, f"files: {paths['all'].parent}"
    return derive_ood_splits(truth, groups, alpha), f"derived: group = {group_name}, alpha = {alpha}"


def ood_accuracy(correct: Mapping[str, bool], splits: Mapping[str, set[str]]) -> dict:
    """Accuracy ×100 on each OOD part, over the evaluated questions it holds.

    The authors divide by the size of the OOD file even when some of its questions were not evaluated;
    we divide by the questions evaluated and report the others as ``"missing"``.
    """
    result = {}
    for part, question_ids in splits.items():
        evaluated = [correct[question_id] for question_id in question_ids if question_id in correct]
        result[part] = {
            "accuracy": _percent(evaluated),
            "questions": len(evaluated),
            "missing": len(question_ids) - len(evaluated),
        }
    return result
