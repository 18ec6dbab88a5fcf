"""Attribute recall per category: does the predicted explanation keep the attributes it should state?

For each question, the attribute values stated by the reference explanation are found by looking its
words up in a value -> category table (``{"red": "color", "wooden": "material", "light blue":
"color"}``); the table is an argument so the embedded world's ontology or GQA's own tables plug in the
same way. A value counts as recalled when the prediction states it too. Recall for a category is

    recalled (question, value) pairs / stated (question, value) pairs      (×100)

pooled over questions, each value counted once per question, as the authors' evaluator does. Values
can span several words; they are matched as whole-word sequences: ``"red"`` does not match the word
``"reddish"``, ``"light blue"`` needs both words in order, and the longest value wins (``"light blue"``
states only ``"light blue"``, not ``"blue"`` as well).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def _values_in(tokens: list[str], table: Mapping[str, str], longest: int) -> set[str]:
    """Attribute values stated in ``tokens``, reading left to right and preferring the longest value.

    ``"the light blue cup"`` states ``"light blue"``, not also ``"blue"``: each word belongs to at most
    one value.
    """
    found: set[str] = set()
    start = 0
    while start < len(tokens):
        for size in range(min(longest, len(tokens) - start), 0, -1):
            phrase = " ".join(tokens[start : start + size])
            if phrase in table:
                found.add(phrase)
                start += size
                break
        else:
            start += 1
    return found


def _table(value_to_category: Mapping[str, str]) -> tuple[dict[str, str], int]:
    table = {" ".join(value.split()): category for value, category in value_to_category.items()}
    return table, max((len(value.split()) for value in table), default=0)


def stated_attributes(explanation: str, value_to_category: Mapping[str, str]) -> set[str]:
    """The attribute values (keys of ``value_to_category``) an explanation states."""
    table, longest = _table(value_to_category)
    return _values_in(explanation.split(), table, longest)


def attribute_recall(
    references: Mapping[str, str],
    predictions: Mapping[str, str],
    value_to_category: Mapping[str, str],
    *,
    per_question: bool = False,
) -> dict:
    """Recall ×100 per attribute category, plus ``"overall"`` over all categories.

    Args:
        references: question id -> reference explanation tokens.
        predictions: question id -> predicted explanation tokens; every predicted question id must be in
            ``references``.
        value_to_category: attribute value (one or more words) -> category name.
        per_question: also return ``"per_question": {question id: {category: recall ×100}}``.

    Returns:
        ``{"per_category": {category: recall or None when never stated}, "counts": {category: stated
        pairs}, "overall": recall or None, "questions": questions stating at least one attribute}``.
    """
    table, longest = _table(value_to_category)
    hits: dict[str, list[int]] = {category: [] for category in sorted(set(table.values()))}
    per_question_recall: dict[str, dict[str, float]] = {}
    for question_id, prediction in predictions.items():
        if question_id not in references:
            raise ValueError(f"question {question_id}: a prediction without a reference explanation")
        stated = _values_in(references[question_id].split(), table, longest)
        if not stated:
            continue
        predicted = _values_in(prediction.split(), table, longest)
        question_hits: dict[str, list[int]] = {}
        for value in sorted(stated):
            recalled = int(value in predicted)
            hits[table[value]].append(recalled)
            question_hits.setdefault(table[value], []).append(recalled)
        per_question_recall[question_id] = {
            category: float(np.mean(found)) * 100.0 for category, found in question_hits.items()
        }
    pooled = [found for category_hits in hits.values() for found in category_hits]
    result = {
        "per_category": {
            category: float(np.mean(found)) * 100.0 if found else None for category, found in hits.items()
        },
        "counts": {category: len(found) for category, found in hits.items()},
        "overall": float(np.mean(pooled)) * 100.0 if pooled else None,
        "questions": len(per_question_recall),
    }
    if per_question:
        result["per_question"] = per_question_recall
    return result
