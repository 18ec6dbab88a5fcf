"""The grounding score: how well the regions an explanation names cover the objects it should name.

For one question, the prediction's region tokens ``#k`` select detector boxes; the ground truth is the
boxes of the objects the reference explanation refers to (``grounding_{split}.json``). The score is

    IoU(union of predicted boxes, union of ground-truth boxes) / upper_bound

where ``upper_bound`` is the best IoU any choice of detector regions could reach for that question (also
in ``grounding_{split}.json``). Questions whose upper bound is 0 are left out (no region can ground
them); the rest are averaged and multiplied by 100, like the paper's tables. An explanation with no
region token has IoU 0.

Union areas are exact, not rasterised: the box edges cut the plane into a small grid of cells, a cell
belongs to a union when some box contains it, and the union's area is the sum of its cells' areas.
This is vectorised in numpy and independent of the image's resolution. Boxes are not clipped to the
image, like the upper bound ``rexlib.dataset.grounding`` writes, so the two are measured the same way.

**Where we differ from the authors' code, on purpose.** Their evaluator assigns the ground-truth mask
after its loop over the objects, so only the *last* ground-truth box is painted. ``mode="union"`` (the
default) uses every ground-truth box, as the paper describes. ``mode="reference"`` reproduces their
number for comparison: the last ground-truth box only, every box truncated to integer pixels as their
``mask[int(y1):int(y2), int(x1):int(x2)]`` does, clipped to the image (their slicing would wrap around on
a negative coordinate; we clip instead).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import numpy as np

from rexlib.boxes import as_boxes as _as_boxes
from rexlib.boxes import union_iou

GROUNDING_MODES = ("union", "reference")
REGION_TOKEN = re.compile(r"#(\d+)")


def region_indices(explanation: str) -> list[int]:
    """The detector regions an explanation names: ``"the #3 left of #12"`` -> ``[3, 12]`` (in order, distinct)."""
    seen: dict[int, None] = {}
    for token in explanation.split():
        match = REGION_TOKEN.fullmatch(token)
        if match:
            seen.setdefault(int(match.group(1)), None)
    return list(seen)


def question_iou(
    predicted_boxes: np.ndarray,
    ground_truth_boxes: np.ndarray,
    image_size: tuple[float, float] | None,
    mode: str = "union",
) -> float:
    """IoU for one question under ``mode`` (see the module docstring).

    ``image_size`` clips boxes in ``"reference"`` mode only (their masks live on the image grid). The
    ``"union"`` mode does not clip, so that it matches ``upper_bound``, which ``rexlib.dataset.grounding``
    computes on the unclipped boxes: naming exactly the upper bound's regions then scores 100.
    """
    if mode == "union":
        return union_iou(predicted_boxes, ground_truth_boxes)
    if mode == "reference":
        predicted = np.trunc(_as_boxes(predicted_boxes))
        last_ground_truth = np.trunc(_as_boxes(ground_truth_boxes)[-1:])
        return union_iou(predicted, last_ground_truth, image_size)
    raise ValueError(f"grounding mode must be one of {GROUNDING_MODES}, not {mode!r}")


def grounding_score(
    predictions: Mapping[str, str],
    ground_truth: Mapping[str, Mapping],
    region_boxes: Mapping[str, np.ndarray] | Callable[[str], np.ndarray],
    image_sizes: Mapping[str, tuple[float, float]] | Callable[[str], tuple[float, float]] | None = None,
    *,
    mode: str = "union",
    per_question: bool = False,
) -> dict:
    """Average grounding score ×100 over the predicted questions whose upper bound is > 0.

    Args:
        predictions: question id -> predicted explanation tokens (``#k`` tokens name regions).
        ground_truth: question id -> ``{"boxes": [[x1, y1, x2, y2], ...], "upper_bound": float}``
            (entries of ``grounding_{split}.json``). A predicted question without an entry is counted in
            ``"without_ground_truth"`` and left out.
        region_boxes: question id -> the image's detector boxes, shape (regions, 4), pixels; or a
            function of the question id returning them.
        image_sizes: question id -> (width, height), used to clip boxes in ``"reference"`` mode.
        mode: ``"union"`` (correct, every ground-truth box) or ``"reference"`` (the authors' code).
        per_question: also return ``"per_question": {question id: score ×100}``.
    """
    if mode not in GROUNDING_MODES:
        raise ValueError(f"grounding mode must be one of {GROUNDING_MODES}, not {mode!r}")
    boxes_of = region_boxes if callable(region_boxes) else region_boxes.__getitem__
    size_of = image_sizes if callable(image_sizes) or image_sizes is None else image_sizes.__getitem__
    scores: dict[str, float] = {}
    excluded = without_ground_truth = 0
    for question_id, explanation in predictions.items():
        entry = ground_truth.get(question_id)
        if entry is None:
            without_ground_truth += 1
            continue
        try:
            upper_bound = float(entry["upper_bound"])
            ground_truth_boxes = _as_boxes(entry["boxes"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"question {question_id}: bad grounding entry ({error})") from error
        if upper_bound <= 0.0 or len(ground_truth_boxes) == 0:
            excluded += 1
            continue
        regions = region_indices(explanation)
        if regions:
            detector_boxes = np.asarray(boxes_of(question_id))
            if max(regions) >= len(detector_boxes):
                raise ValueError(
                    f"question {question_id}: region #{max(regions)} named but the image has "
                    f"{len(detector_boxes)} regions"
                )
            predicted_boxes = detector_boxes[regions]
        else:
            predicted_boxes = np.zeros((0, 4))
        image_size = None if size_of is None else tuple(size_of(question_id))
        scores[question_id] = (
            question_iou(predicted_boxes, ground_truth_boxes, image_size, mode) / upper_bound
        )
    result = {
        "score": float(np.mean(list(scores.values())) * 100.0) if scores else None,
        "questions": len(scores),
        "excluded_upper_bound_zero": excluded,
        "without_ground_truth": without_ground_truth,
        "mode": mode,
    }
    if per_question:
        result["per_question"] = {question_id: score * 100.0 for question_id, score in scores.items()}
    return result
