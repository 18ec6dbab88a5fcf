"""Captions written from a GQA scene graph: the text side of VisualBERT-style pretraining.

VisualBERT was pretrained on COCO captions; GQA's scene graphs say the same things in a structured form,
so captions are written from them: what an object is and looks like, where it is in the picture, and
how it relates to another object. Each caption is a list of words with a role per word (`NAME`,
`ATTRIBUTE`, `RELATION`, `POSITION`, or None for glue words): the roles decide what gets masked (content
words, which can only be recovered from the image) and how a caption is corrupted into a hard negative
(one content word swapped for another of the same kind). Each word of an object's phrase also carries the
scene-graph id of the object it describes: what word-region alignment points the word at.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

NAME, ATTRIBUTE, RELATION, POSITION = "name", "attribute", "relation", "position"
CONTENT_ROLES = (NAME, ATTRIBUTE, RELATION, POSITION)
HORIZONTAL = ("left", "middle", "right")   # thirds of the image width, by the box centre
VERTICAL = ("top", "middle", "bottom")


class Caption(NamedTuple):
    words: list[str]
    roles: list[str | None]
    objects: list[str | None] | None = None  # per word: the scene-graph object it names (None: no object)

    def object_of(self, word: int) -> str | None:
        return self.objects[word] if self.objects else None


def _phrase(text: str, role: str | None, object_id: str | None = None) -> Caption:
    words = text.split()
    return Caption(words, [role] * len(words), [object_id] * len(words))


def _join(*parts: Caption) -> Caption:
    return Caption([w for p in parts for w in p.words], [r for p in parts for r in p.roles],
                   [p.object_of(i) for p in parts for i in range(len(p.words))])


def _described(object_id: str, obj: dict, rng: np.random.Generator, max_attributes: int = 2) -> Caption:
    """"the white wooden table": the object's name with up to `max_attributes` of its attributes."""
    attributes = list(obj.get("attributes") or [])
    count = int(rng.integers(0, min(max_attributes, len(attributes)) + 1)) if attributes else 0
    chosen = [attributes[i] for i in sorted(rng.choice(len(attributes), count, replace=False))] if count else []
    return _join(_phrase("the", None), *(_phrase(a, ATTRIBUTE, object_id) for a in chosen),
                 _phrase(obj["name"], NAME, object_id))


def _position(obj: dict, width: float, height: float) -> tuple[str, str]:
    centre_x = (obj["x"] + obj["w"] / 2) / max(width, 1.0)
    centre_y = (obj["y"] + obj["h"] / 2) / max(height, 1.0)
    return HORIZONTAL[min(int(centre_x * 3), 2)], VERTICAL[min(int(centre_y * 3), 2)]


def scene_caption(scene: dict, rng: np.random.Generator) -> Caption | None:
    """One random caption of the scene (None for a scene without objects)."""
    objects = scene.get("objects") or {}
    if not objects:
        return None
    ids = sorted(objects)
    object_id = ids[int(rng.integers(len(ids)))]
    obj = objects[object_id]
    relations = [r for r in obj.get("relations") or [] if r.get("object") in objects]
    kind = rng.random()
    if relations and kind < 0.45:
        relation = relations[int(rng.integers(len(relations)))]
        return _join(_described(object_id, obj, rng), _phrase("is", None), _phrase(relation["name"], RELATION),
                     _described(relation["object"], objects[relation["object"]], rng))
    if obj.get("attributes") and kind < 0.75:
        attribute = obj["attributes"][int(rng.integers(len(obj["attributes"])))]
        return _join(_described(object_id, obj, rng, max_attributes=1), _phrase("is", None),
                     _phrase(attribute, ATTRIBUTE, object_id))
    if kind < 0.9:
        horizontal, vertical = _position(obj, scene.get("width", 1), scene.get("height", 1))
        side = horizontal if rng.random() < 0.5 else vertical
        where = "in the middle of" if side == "middle" else ("at the" if side in VERTICAL[::2] else "on the")
        where = where if side == "middle" else f"{where} {side} of"
        return _join(_described(object_id, obj, rng), _phrase("is", None), _phrase(where, POSITION),
                     _phrase("the image", None))
    described = _described(object_id, obj, rng)  # "there is a white cup": existence, told apart from corrupted ones
    return _join(_phrase("there is a", None), Caption(described.words[1:], described.roles[1:], described.objects[1:]))


class Vocabularies(NamedTuple):
    """The words of each role seen in the scene graphs: what a corrupted caption may swap in."""

    names: list[str]
    attributes: list[str]
    relations: list[str]


def scene_vocabularies(scenes: dict) -> Vocabularies:
    names, attributes, relations = set(), set(), set()
    for scene in scenes.values():
        for obj in (scene.get("objects") or {}).values():
            names.add(obj["name"])
            attributes.update(obj.get("attributes") or [])
            relations.update(r["name"] for r in obj.get("relations") or [])
    return Vocabularies(sorted(names), sorted(attributes), sorted(relations))


def corrupt(caption: Caption, vocabularies: Vocabularies, rng: np.random.Generator,
            attribute_category: dict[str, str] | None = None) -> Caption | None:
    """A hard negative: one content phrase swapped for another of its kind (an attribute for one of the
    same category, when categories are known); None when the caption has nothing to swap."""
    spans = []
    start = 0
    while start < len(caption.words):
        stop = start + 1
        while stop < len(caption.words) and caption.roles[stop] == caption.roles[start] and caption.roles[start] in (
                RELATION, POSITION, NAME):
            stop += 1
        if caption.roles[start] in (NAME, ATTRIBUTE, RELATION):
            spans.append((start, stop))
        start = stop
    rng.shuffle(spans)
    for start, stop in spans:
        role, phrase = caption.roles[start], " ".join(caption.words[start:stop])
        if role == NAME:
            pool = vocabularies.names
        elif role == RELATION:
            pool = vocabularies.relations
        else:
            category = (attribute_category or {}).get(phrase)
            pool = [a for a in vocabularies.attributes
                    if category is None or (attribute_category or {}).get(a) == category]
        pool = [p for p in pool if p != phrase]
        if not pool:
            continue
        replacement = _phrase(pool[int(rng.integers(len(pool)))], role)
        # A swapped phrase names no object of this image (and a negative is never aligned).
        return _join(Caption(caption.words[:start], caption.roles[:start], [None] * start), replacement,
                     Caption(caption.words[stop:], caption.roles[stop:], [None] * (len(caption.words) - stop)))
    return None
