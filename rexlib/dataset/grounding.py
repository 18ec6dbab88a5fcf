"""Grounding: turn a raw GQA-REX explanation into the tokens the model learns.

A raw explanation (the official ``processed_explanation`` form) mixes words with three kinds of
references:

* ``(obj:ID)``      an object of the scene graph. It becomes ``#k``, the detector region (k in 0..35)
                    whose box has the best IoU with the object's box. The model points at regions, not
                    at scene-graph objects, so this is where the explanation meets the image.
* ``(obj*:name)``   an object the program talks about that is not in the image ("there is no cat"). It
                    becomes the word(s) ``name``.
* ``(x,y)``         a position, normalised to [0, 1]. It becomes ``@1``..``@16``, its cell in a 4x4 grid
                    over the image (row-major, ``@1`` top-left).

Besides the tokens, each explanation gets a grounding record: the objects it refers to, their boxes,
the regions chosen for them, and the *upper bound* — the IoU between the union of the chosen regions'
boxes and the union of the objects' boxes. No prediction made of detector regions can do better with
this assignment, so the grounding metric is read against it.

Differences from the authors' reference code, on purpose:

* IoU clamps the intersection at zero. The reference multiplies the two overlap extents without
  clamping, so two boxes apart on both axes get a *positive* "intersection" (two negative extents
  multiply to a positive number) and can win the best-IoU assignment.
* An object that overlaps no region at all keeps its name as a word (the reference leaves its bare id
  in the text, which later needed a hand-written table of ids -> names).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rexlib.boxes import NUM_REGIONS, grid_cell, paired_iou, union_iou, union_iou_small

# Punctuation split off words: kept as tokens (a clause boundary the decoder can learn) or dropped
# (sentence ends carry nothing the model needs).
PUNCTUATION_KEPT = frozenset(",;:")
PUNCTUATION_DROPPED = frozenset(".?!")
_PUNCTUATION = PUNCTUATION_KEPT | PUNCTUATION_DROPPED

# Token kinds produced by tokenize_raw.
WORD, OBJECT, ABSENT, POSITION = "word", "object", "absent", "position"
_REGION_TOKENS = tuple(f"#{k}" for k in range(NUM_REGIONS))


class GroundingError(ValueError):
    """A raw explanation that cannot be grounded (malformed reference, unknown object)."""


# ----------------------------------------------------------------------------------------------
# Tokenizing the raw form


def _words(text: str, out: list) -> None:
    """Split plain text (no parentheses) into lower-cased words and punctuation tokens."""
    for chunk in text.split():
        if chunk[0] not in _PUNCTUATION and chunk[-1] not in _PUNCTUATION:  # the usual plain word
            out.append((WORD, chunk.lower()))
            continue
        # Peel punctuation off both ends; inner characters (apostrophes, hyphens) stay in the word.
        start, end = 0, len(chunk)
        leading = []
        while start < end and (chunk[start] in PUNCTUATION_KEPT or chunk[start] in PUNCTUATION_DROPPED):
            leading.append(chunk[start])
            start += 1
        trailing = []
        while end > start and (chunk[end - 1] in PUNCTUATION_KEPT or chunk[end - 1] in PUNCTUATION_DROPPED):
            trailing.append(chunk[end - 1])
            end -= 1
        for mark in leading:
            if mark in PUNCTUATION_KEPT:
                out.append((WORD, mark))
        if end > start:
            out.append((WORD, chunk[start:end].lower()))
        for mark in reversed(trailing):
            if mark in PUNCTUATION_KEPT:
                out.append((WORD, mark))


def _reference(inside: str) -> tuple:
    """Classify the text between a pair of parentheses."""
    if inside.startswith("obj:"):
        if inside[4:].isalnum():  # the usual single plain id: nothing to split or strip
            return (OBJECT, (inside[4:],))
        ids = tuple(part.strip() for part in inside[4:].split(",") if part.strip())
        if not ids:
            raise GroundingError(f"object reference '({inside})' has no id")
        return (OBJECT, ids)
    if inside.startswith("obj*:"):
        name = inside[5:].strip()
        if not name:
            raise GroundingError(f"absent-object reference '({inside})' has no name")
        return (ABSENT, name.lower())
    parts = inside.split(",")
    if len(parts) == 2:
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            pass
        else:
            if math.isfinite(x) and math.isfinite(y):
                return (POSITION, (x, y))
    raise GroundingError(f"unrecognised reference '({inside})'")


# Explanations are made of few distinct pieces: the text between references ("the", "is on the") and
# the references themselves recur across questions (on the 2,000-image world, 52,567 segments are 720
# distinct texts). Each distinct piece is split or classified once; the caches are bounded (cleared
# when full). Only well-formed pieces are cached: a malformed one raises every time.
_SEGMENT_WORDS: dict[str, tuple[str, ...]] = {}
_REFERENCES: dict[str, tuple] = {}
_CACHE_LIMIT = 200_000
_WORDS = "words"  # _scan's kind for a whole segment of words (tokenize_raw spreads it into WORD tokens)


def _segment_words(segment: str) -> tuple[str, ...]:
    words = _SEGMENT_WORDS.get(segment)
    if words is None:
        out: list = []
        _words(segment, out)
        words = tuple(word for _kind, word in out)
        if len(_SEGMENT_WORDS) >= _CACHE_LIMIT:
            _SEGMENT_WORDS.clear()
        _SEGMENT_WORDS[segment] = words
    return words


def _cached_reference(inside: str) -> tuple:
    reference = _REFERENCES.get(inside)
    if reference is None:
        reference = _reference(inside)
        if len(_REFERENCES) >= _CACHE_LIMIT:
            _REFERENCES.clear()
        _REFERENCES[inside] = reference
    return reference


def _scan(explanation: str) -> list[tuple]:
    """The explanation as ``(kind, value)`` pieces: ``("words", (...))`` for the text between
    references, and one classified reference for each parenthesised one (see :func:`tokenize_raw`)."""
    if not isinstance(explanation, str):
        raise GroundingError(f"explanation is a {type(explanation).__name__}, not a string")
    pieces: list[tuple] = []
    position, length = 0, len(explanation)
    while position < length:
        opening = explanation.find("(", position)
        segment = explanation[position:] if opening < 0 else explanation[position:opening]
        if ")" in segment:
            raise GroundingError(f"unbalanced ')' after character {position}")
        pieces.append((_WORDS, _segment_words(segment)))
        if opening < 0:
            break
        closing = explanation.find(")", opening + 1)
        if closing < 0:
            raise GroundingError(f"unclosed '(' at character {opening}")
        nested = explanation.find("(", opening + 1, closing)
        if nested >= 0:
            raise GroundingError(f"nested '(' at character {nested}")
        pieces.append(_cached_reference(explanation[opening + 1 : closing].strip()))
        position = closing + 1
    return pieces


def tokenize_raw(explanation: str) -> list[tuple]:
    """Scan a raw explanation once, left to right, into ``(kind, value)`` tokens.

    ``("word", "table")``, ``("object", ("123", ...))``, ``("absent", "cat")``, ``("position", (x, y))``.
    Text between references is split on whitespace with punctuation peeled off; each parenthesised
    reference is classified once. Nothing is rewritten with string replacements.
    """
    tokens: list[tuple] = []
    for kind, value in _scan(explanation):
        if kind == _WORDS:
            tokens.extend([(WORD, word) for word in value])
        else:
            tokens.append((kind, value))
    return tokens


# ----------------------------------------------------------------------------------------------
# Grounding one explanation


@dataclass
class ImageGrounding:
    """Best region per scene object of one image, computed once for all its objects (vectorised).

    ``scene_objects``: object id -> object with ``.box`` (x1, y1, x2, y2 pixels) and ``.name``.
    ``region_boxes``: (36, 4) detector boxes in the same pixel frame. :meth:`for_images` computes many
    images at once (the build does, per chunk of questions): the same values, one numpy pass.
    """

    scene_objects: dict
    region_boxes: np.ndarray
    best_region: dict | None = None  # object id -> region k, or -1 when it overlaps none
    best_iou: dict | None = None  # object id -> IoU of that region
    upper_bounds: dict = field(default_factory=dict)  # (regions, objects) -> union IoU, cached
    boxes: dict = field(default_factory=dict)  # object id -> (box, box rounded for the record), cached

    def __post_init__(self) -> None:
        if self.best_region is None or self.best_iou is None:
            self.best_region, self.best_iou = _best_regions(
                [list(self.scene_objects)], [self.scene_objects], np.asarray(self.region_boxes)[None])[0]

    @classmethod
    def for_images(cls, images: list[tuple[dict, np.ndarray]]) -> list[ImageGrounding]:
        """``[(scene_objects, region_boxes), ...]`` -> one :class:`ImageGrounding` each."""
        if not images:
            return []
        best = _best_regions([list(scene_objects) for scene_objects, _ in images],
                             [scene_objects for scene_objects, _ in images],
                             np.stack([region_boxes for _, region_boxes in images]))
        return [cls(scene_objects, region_boxes, best_region, best_iou)
                for (scene_objects, region_boxes), (best_region, best_iou) in zip(images, best)]

    def box(self, object_id: str) -> tuple[tuple, tuple]:
        """The object's box (x1, y1, x2, y2 floats) and the same rounded to 2 decimals, cached."""
        cached = self.boxes.get(object_id)
        if cached is None:
            x1, y1, x2, y2 = self.scene_objects[object_id].box
            box = (float(x1), float(y1), float(x2), float(y2))
            x1, y1, x2, y2 = box
            cached = self.boxes[object_id] = (box, (round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)))
        return cached


def _best_regions(ids: list[list[str]], scene_objects: list[dict], region_boxes: np.ndarray) -> list[tuple[dict, dict]]:
    """Per image, object id -> best region (-1 when none overlaps) and -> its IoU.

    ``region_boxes``: (images, 36, 4). Every object of every image against its own image's regions,
    in one :func:`~rexlib.boxes.paired_iou` over (objects, 36).
    """
    counts = [len(image_ids) for image_ids in ids]
    if not sum(counts):
        return [({}, {}) for _ in ids]
    object_boxes = np.array([objects[i].box for image_ids, objects in zip(ids, scene_objects) for i in image_ids],
                            dtype=np.float64)
    regions = np.repeat(np.asarray(region_boxes), counts, axis=0)  # (objects, 36, 4)
    ious = paired_iou(object_boxes[:, None, :], regions)  # (objects, 36)
    best = ious.argmax(axis=1)
    best_values = ious[np.arange(len(object_boxes)), best]
    regions_kept = np.where(best_values > 0, best, -1).tolist()
    values = best_values.tolist()
    out, start = [], 0
    for image_ids, count in zip(ids, counts):
        stop = start + count
        out.append((dict(zip(image_ids, regions_kept[start:stop])), dict(zip(image_ids, values[start:stop]))))
        start = stop
    return out


@dataclass(frozen=True)
class Grounded:
    """One explanation, converted: tokens for the model and the grounding record for evaluation."""

    tokens: tuple[str, ...]
    objects: tuple[str, ...]  # distinct referenced object ids, first-mention order
    boxes: tuple[tuple[float, float, float, float], ...]  # their boxes, x1 y1 x2 y2 pixels
    regions: tuple[int, ...]  # region chosen for each object, -1 when none overlaps it
    upper_bound: float
    rounded_boxes: tuple[tuple[float, ...], ...] | None = None  # boxes rounded to 2 decimals (the record's)

    @property
    def converted(self) -> str:
        return " ".join(self.tokens)

    def record(self) -> dict:
        """The ``grounding_{split}.json`` entry (docs/contracts.md)."""
        return {
            "objects": list(self.objects),
            "boxes": [list(box) for box in self.rounded_boxes] if self.rounded_boxes is not None
            else [[round(v, 2) for v in box] for box in self.boxes],
            "regions": list(self.regions),
            "upper_bound": round(self.upper_bound, 6),
        }

    def compact_record(self) -> dict:
        """:meth:`record` with tuples for its lists, which json writes alike; the rounded boxes come
        from the image's cache (:meth:`ImageGrounding.box`), so a pickle of many records holds each
        object's box once (the build's partial files)."""
        boxes = self.rounded_boxes
        if boxes is None:
            boxes = tuple(tuple(round(v, 2) for v in box) for box in self.boxes)
        return {"objects": self.objects, "boxes": boxes, "regions": self.regions,
                "upper_bound": round(self.upper_bound, 6)}


def ground(explanation: str, image: ImageGrounding, *, image_id: str = "?") -> Grounded:
    """Convert one raw explanation with the regions of its image (see the module docstring)."""
    tokens, objects, boxes, regions, upper_bound, rounded = _convert(explanation, image, image_id)
    return Grounded(tokens, objects, boxes, regions, upper_bound, rounded)


def ground_compact(explanation: str, image: ImageGrounding, *, image_id: str = "?") -> tuple[tuple[str, ...], dict]:
    """:func:`ground`'s tokens and :meth:`Grounded.compact_record`, without the :class:`Grounded` (the build's
    path: one fewer object per question)."""
    tokens, objects, _boxes, regions, upper_bound, rounded = _convert(explanation, image, image_id)
    return tokens, {"objects": objects, "boxes": rounded, "regions": regions, "upper_bound": round(upper_bound, 6)}


def _convert(explanation: str, image: ImageGrounding, image_id: str) -> tuple:
    """Tokens, referenced objects, their boxes, their regions, the upper bound and the rounded boxes.

    One left-to-right pass, as :func:`_scan` reads the text (the same pieces, the same errors: a
    malformed piece anywhere is reported before an unknown object, as when the text was scanned first).
    """
    if not isinstance(explanation, str):
        raise GroundingError(f"explanation is a {type(explanation).__name__}, not a string")
    tokens: list[str] = []
    objects: list[str] = []
    unknown = None  # the first object id the scene graph lacks (raised once the whole text is read)
    best_region = image.best_region
    find = explanation.find
    position, length = 0, len(explanation)
    while position < length:
        opening = find("(", position)
        segment = explanation[position:] if opening < 0 else explanation[position:opening]
        if ")" in segment:
            raise GroundingError(f"unbalanced ')' after character {position}")
        words = _SEGMENT_WORDS.get(segment)
        tokens.extend(words if words is not None else _segment_words(segment))
        if opening < 0:
            break
        closing = find(")", opening + 1)
        if closing < 0:
            raise GroundingError(f"unclosed '(' at character {opening}")
        nested = find("(", opening + 1, closing)
        if nested >= 0:
            raise GroundingError(f"nested '(' at character {nested}")
        position = closing + 1
        inside = explanation[opening + 1 : closing].strip()
        reference = _REFERENCES.get(inside)
        kind, value = reference if reference is not None else _cached_reference(inside)
        if kind == OBJECT:
            for object_id in value:
                region = best_region.get(object_id)
                if region is None:
                    if unknown is None:
                        unknown = object_id
                elif region >= 0:
                    tokens.append(_REGION_TOKENS[region] if region < len(_REGION_TOKENS) else f"#{region}")
                else:
                    tokens.extend(image.scene_objects[object_id].name.lower().split())
                if object_id not in objects:
                    objects.append(object_id)
        elif kind == ABSENT:
            tokens.extend(value.split())
        else:  # POSITION
            tokens.append(f"@{grid_cell(*value)}")
    if unknown is not None:
        raise GroundingError(f"explanation refers to object {unknown}, which is not in scene graph {image_id}")
    regions = tuple(map(best_region.__getitem__, objects))  # (map: no comprehension per question)
    cache, boxes, rounded = image.boxes, [], []
    for object_id in objects:
        cached = cache.get(object_id)
        if cached is None:
            cached = image.box(object_id)
        boxes.append(cached[0])
        rounded.append(cached[1])
    return (tuple(tokens), tuple(objects), tuple(boxes), regions, float(_upper_bound(image, objects, regions, boxes)),
            tuple(rounded))


def _upper_bound(image: ImageGrounding, objects: list[str], regions: tuple[int, ...], boxes: list[tuple]) -> float:
    """IoU of the union of the chosen regions' boxes with the union of the objects' boxes (cached per image)."""
    if len(objects) == 1:  # one box against its region's box: the IoU already computed (or no region)
        return image.best_iou[objects[0]] if regions[0] >= 0 else 0.0
    chosen = set(regions)  # the regions chosen, without -1 (an object no region overlaps)
    chosen.discard(-1)
    chosen = sorted(chosen)
    if not objects or not chosen:
        return 0.0
    key = (tuple(chosen), tuple(objects))
    upper_bound = image.upper_bounds.get(key)
    if upper_bound is None:
        region_boxes = [tuple(image.region_boxes[k].tolist()) for k in chosen]
        if len(region_boxes) * len(boxes) <= 4 and len(region_boxes) <= 4 and len(boxes) <= 4:
            upper_bound = union_iou_small(region_boxes, boxes)
        else:
            upper_bound = union_iou(region_boxes, boxes)
        image.upper_bounds[key] = upper_bound
    return upper_bound
