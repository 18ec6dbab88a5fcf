"""Box geometry, once for the whole package: IoU, exact union areas, the 4x4 position grid.

Boxes are (x1, y1, x2, y2) in pixels. Union areas are exact, not rasterised: the box edges cut the plane
into cells, a cell belongs to a union when a box contains it, and the union's area is the sum of its
cells' areas (vectorised in numpy; :func:`union_iou_small` is the plain-Python fast path for the few
boxes of one explanation, used in the build's hot loop).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NUM_REGIONS = 36  # detector regions per image (bottom-up features)
GRID_SIZE = 4  # positions are cells of a GRID_SIZE x GRID_SIZE grid: @1..@16, row-major from the top-left


def as_boxes(boxes: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """(n, 4) float64; a malformed array raises ValueError naming its shape."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4))
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (n, 4) as x1, y1, x2, y2; got {array.shape}")
    return array


def clip_boxes(boxes: np.ndarray, image_size: tuple[float, float] | None) -> np.ndarray:
    """Clip to ``image_size = (width, height)``; None leaves the boxes as they are."""
    if image_size is None:
        return boxes
    width, height = image_size
    return np.clip(boxes, 0.0, [width, height, width, height])


def grid_cell_box(cell: int, width: float, height: float) -> tuple[float, float, float, float]:
    """The pixel box x1,y1,x2,y2 of grid cell ``@cell`` (1..16, row by row from the top left)."""
    if not 1 <= cell <= GRID_SIZE * GRID_SIZE:
        raise ValueError(f"grid cell @{cell} is outside 1..{GRID_SIZE * GRID_SIZE}")
    row, column = divmod(cell - 1, GRID_SIZE)
    cell_width, cell_height = width / GRID_SIZE, height / GRID_SIZE
    return (column * cell_width, row * cell_height, (column + 1) * cell_width, (row + 1) * cell_height)


def grid_cell(x: float, y: float) -> int:
    """The 4x4 grid cell (1..16, row-major from the top-left) of a normalised position.

    column = ceil(x * 4) clamped to 1..4 (so x <= 0.25 is column 1, x = 0 too); row likewise.
    """
    column = min(max(math.ceil(x * GRID_SIZE), 1), GRID_SIZE)
    row = min(max(math.ceil(y * GRID_SIZE), 1), GRID_SIZE)
    return (row - 1) * GRID_SIZE + column


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``boxes_a`` (M, 4) with every box in ``boxes_b`` (K, 4): (M, K) float64.

    Boxes are x1, y1, x2, y2. The overlap extents are clamped at zero before multiplying, so boxes
    apart on both axes get IoU 0 (the reference code's bug gives them a positive value). Degenerate
    pairs (union area 0) get IoU 0.
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    return paired_iou(a[:, None, :], b[None, :, :])


def paired_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``(..., 4)`` paired by numpy broadcasting (the rule of :func:`iou_matrix`).

    ``paired_iou(a[:, None], b)`` with ``a`` (N, 4) and ``b`` (N, K, 4) gives each box of ``a`` against
    the K boxes of its own row of ``b``: the best regions of every object of many images in one pass.
    The arithmetic is elementwise and in the same order as :func:`iou_matrix`, so equal pairs give
    equal bits however they are batched.
    """
    a = np.asarray(boxes_a, dtype=np.float64)
    b = np.asarray(boxes_b, dtype=np.float64)
    width = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    height = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    intersection = np.clip(width, 0.0, None) * np.clip(height, 0.0, None)
    area_a = np.clip(a[..., 2] - a[..., 0], 0.0, None) * np.clip(a[..., 3] - a[..., 1], 0.0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0.0, None) * np.clip(b[..., 3] - b[..., 1], 0.0, None)
    union = area_a + area_b - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / np.where(union > 0, union, 1.0), 0.0)


def union_iou(boxes_a, boxes_b, image_size: tuple[float, float] | None = None) -> float:
    """IoU between the union of the boxes in ``boxes_a`` and the union of those in ``boxes_b``.

    Exact: the plane is cut along every box edge into cells, each cell is inside a union or not, and
    areas are summed. Boxes are clipped to ``image_size = (width, height)`` when given. Either set
    empty, or an empty union, gives 0.
    """
    a = clip_boxes(as_boxes(boxes_a), image_size)
    b = clip_boxes(as_boxes(boxes_b), image_size)
    if len(a) == 0 or len(b) == 0:
        return 0.0
    both = np.concatenate([a, b])
    xs = np.unique(np.concatenate([both[:, 0], both[:, 2]]))
    ys = np.unique(np.concatenate([both[:, 1], both[:, 3]]))
    if len(xs) < 2 or len(ys) < 2:
        return 0.0
    centre_x = (xs[:-1] + xs[1:]) / 2  # (X,)
    centre_y = (ys[:-1] + ys[1:]) / 2  # (Y,)
    cell_area = np.diff(xs)[:, None] * np.diff(ys)[None, :]  # (X, Y)

    def covered(boxes: np.ndarray) -> np.ndarray:
        inside_x = (boxes[:, None, 0] <= centre_x) & (centre_x <= boxes[:, None, 2])  # (n, X)
        inside_y = (boxes[:, None, 1] <= centre_y) & (centre_y <= boxes[:, None, 3])  # (n, Y)
        return (inside_x[:, :, None] & inside_y[:, None, :]).any(axis=0)  # (X, Y)

    cover_a, cover_b = covered(a), covered(b)
    union = float((cell_area * (cover_a | cover_b)).sum())
    return float((cell_area * (cover_a & cover_b)).sum()) / union if union > 0 else 0.0


def _union_area(boxes) -> float:
    """Area of a union of up to 4 rectangles by inclusion-exclusion (at most 15 terms).

    The terms are visited level by level (subsets of size 1, 2, ...), each level in the order of
    ``itertools.combinations``, and a subset is grown from its prefix's intersection; a subset whose
    intersection is empty is dropped with all its supersets (they add nothing). The additions, and
    so the float result, are exactly those of summing over every subset in that order.
    """
    if len(boxes) == 1:  # the usual case (one object, one region): its area, or 0 when degenerate
        x1, y1, x2, y2 = boxes[0]
        return 0.0 + (x2 - x1) * (y2 - y1) if x2 > x1 and y2 > y1 else 0.0
    if len(boxes) == 2:  # the next most usual: the loop below unrolled, the same additions in the same order
        (x1, y1, x2, y2), (other_x1, other_y1, other_x2, other_y2) = boxes
        total, first_kept = 0.0, x2 > x1 and y2 > y1
        if first_kept:
            total += (x2 - x1) * (y2 - y1)
        if other_x2 > other_x1 and other_y2 > other_y1:
            total += (other_x2 - other_x1) * (other_y2 - other_y1)
        if first_kept:
            left, top = max(x1, other_x1), max(y1, other_y1)
            right, bottom = min(x2, other_x2), min(y2, other_y2)
            if right > left and bottom > top:
                total += -1.0 * (right - left) * (bottom - top)
        return total
    return _union_area_by_levels(boxes)


def _union_area_by_levels(boxes) -> float:
    """:func:`_union_area`'s inclusion-exclusion, level by level, for any count."""
    total = 0.0
    level = []  # (index of the subset's last box, intersection rectangle), combinations order
    for index, (x1, y1, x2, y2) in enumerate(boxes):
        if x2 > x1 and y2 > y1:
            total += (x2 - x1) * (y2 - y1)
            level.append((index, (x1, y1, x2, y2)))
    count, sign = len(boxes), -1.0
    while level:
        grown = []
        for last, (x1, y1, x2, y2) in level:
            for index in range(last + 1, count):
                other_x1, other_y1, other_x2, other_y2 = boxes[index]
                left, top = max(x1, other_x1), max(y1, other_y1)
                right, bottom = min(x2, other_x2), min(y2, other_y2)
                if right > left and bottom > top:
                    total += sign * (right - left) * (bottom - top)
                    grown.append((index, (left, top, right, bottom)))
        level, sign = grown, -sign
    return total


def union_iou_small(boxes_a, boxes_b) -> float:
    """:func:`union_iou` in plain Python for the usual case (a few boxes each, at most 4 pairs).

    |A n B| is the union of the pairwise intersections a_i n b_j, each a rectangle; with at most four
    of them inclusion-exclusion is exact and cheaper than building numpy arrays.
    """
    pieces = []
    for a_x1, a_y1, a_x2, a_y2 in boxes_a:  # each a_i n b_j that is not empty (plain Python: the hot loop)
        for b_x1, b_y1, b_x2, b_y2 in boxes_b:
            x1, y1, x2, y2 = max(a_x1, b_x1), max(a_y1, b_y1), min(a_x2, b_x2), min(a_y2, b_y2)
            if x2 > x1 and y2 > y1:
                pieces.append((x1, y1, x2, y2))
    intersection = _union_area(pieces)
    union = _union_area(boxes_a) + _union_area(boxes_b) - intersection
    return intersection / union if union > 0 else 0.0


def union_area(boxes, image_size: tuple[float, float] | None = None) -> float:
    """Exact area of the union of ``boxes`` (clipped to ``image_size`` when given)."""
    array = clip_boxes(as_boxes(boxes), image_size)
    if len(array) == 0:
        return 0.0
    return _union_area(tuple(map(tuple, array))) if len(array) <= 4 else _union_area_cells(array)


def _union_area_cells(array: np.ndarray) -> float:
    xs = np.unique(np.concatenate([array[:, 0], array[:, 2]]))
    ys = np.unique(np.concatenate([array[:, 1], array[:, 3]]))
    centre_x, centre_y = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    inside_x = (array[:, None, 0] <= centre_x) & (centre_x <= array[:, None, 2])  # (n, X)
    inside_y = (array[:, None, 1] <= centre_y) & (centre_y <= array[:, None, 3])  # (n, Y)
    covered = (inside_x[:, :, None] & inside_y[:, None, :]).any(axis=0)  # (X, Y)
    return float((np.diff(xs)[:, None] * np.diff(ys)[None, :] * covered).sum())
