"""Scene generation: 4-16 objects with boxes, attributes and relations, as a GQA scene graph.

A scene is built in groups that give it something to ask about: furniture with things on it,
people wearing and holding things, animals eating, then free objects (sometimes a second object of
a name already present, so that questions need filters). Spatial relations are then derived from the
boxes for every pair, in both directions where GQA stores both.

Every random choice comes from the numpy Generator passed in, so a scene depends only on
(world seed, image index).
"""

from __future__ import annotations

import numpy as np

from rexlib.world.ontology import (
    AGE_VALUES_FOR,
    ATTRIBUTE_CATEGORIES,
    BASE_SIZE,
    GARMENT_PLACEMENT,
    GEOMETRY_MARGIN,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    KIND_OF_NAME,
    KINDS,
    LOCATIONS,
    NAME_GENDER,
    NAME_SIZE,
    RIDEABLE,
    SEATS,
    SPATIAL_RELATIONS,
    SURFACES,
    WEATHERS,
    categories_for,
    values_for,
)

MIN_OBJECTS, MAX_OBJECTS = 4, 16
SIZE_SCALE = {"tiny": 0.6, "small": 0.8, "large": 1.2, "huge": 1.45}
# Object ids are global digit strings, as in GQA: a block of this many ids per image.
OBJECT_ID_BLOCK = 20
OBJECT_ID_BASE = 1_000_000
IMAGE_ID_BASE = 2_300_000


def image_id_for(index: int) -> str:
    return str(IMAGE_ID_BASE + index)


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


class _SceneBuilder:
    def __init__(self, rng: np.random.Generator, index: int):
        self.rng = rng
        self.index = index
        self.location = _pick(rng, tuple(LOCATIONS))
        _sky, _ground, self.kinds, self.outdoor = LOCATIONS[self.location]
        self.horizon = int(IMAGE_HEIGHT * (0.42 if self.outdoor else 0.5))
        self.target = int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))
        self.objects: list[dict] = []  # in creation order; "id" added at the end
        self.semantic: list[tuple[int, str, int]] = []  # (subject index, relation, object index)

    # --- objects ---------------------------------------------------------------------------------
    def full(self) -> bool:
        return len(self.objects) >= self.target

    def attributes(self, name: str) -> list[str]:
        rng = self.rng
        values = []
        for category in categories_for(name):
            if rng.random() >= category.probability:
                continue
            if category.name == "gender":
                value = NAME_GENDER.get(name) or _pick(rng, category.values)
            elif category.name == "age":
                value = _pick(rng, AGE_VALUES_FOR[name])
            else:
                value = _pick(rng, values_for(category, name))
            values.append(value)
        return values

    def add(self, name: str, box: tuple[float, float, float, float], attributes: list[str] | None = None) -> int:
        x, y, w, h = box
        w, h = max(8.0, min(w, IMAGE_WIDTH - 2)), max(8.0, min(h, IMAGE_HEIGHT - 2))
        x = min(max(1.0, x), IMAGE_WIDTH - 1 - w)
        y = min(max(1.0, y), IMAGE_HEIGHT - 1 - h)
        self.objects.append({
            "name": name, "x": round(x), "y": round(y), "w": round(w), "h": round(h),
            "attributes": self.attributes(name) if attributes is None else attributes,
        })
        return len(self.objects) - 1

    def size_of(self, name: str, attributes: list[str], scale: float) -> tuple[float, float]:
        width, height = NAME_SIZE.get(name) or BASE_SIZE[KIND_OF_NAME[name]]
        factor = scale * next((SIZE_SCALE[v] for v in attributes if v in SIZE_SCALE), 1.0)
        jitter = 0.85 + 0.3 * self.rng.random()
        return width * factor * jitter, height * factor * jitter

    def add_on_ground(self, name: str) -> int:
        """An object standing on the ground (or flying, for birds), bigger when nearer the viewer."""
        rng = self.rng
        attributes = self.attributes(name)
        if name == "bird":
            bottom = 20 + rng.random() * (self.horizon - 20)
            scale = 1.0
        else:
            bottom = self.horizon + 15 + rng.random() * (IMAGE_HEIGHT - self.horizon - 17)
            scale = 0.65 + 0.6 * (bottom - self.horizon) / (IMAGE_HEIGHT - self.horizon)
        width, height = self.size_of(name, attributes, scale)
        x = rng.random() * (IMAGE_WIDTH - width)
        return self.add(name, (x, bottom - height, width, height), attributes)

    def add_on(self, name: str, surface: int) -> int:
        """An object resting on a surface's top: its bottom in the upper part of the surface's box."""
        base = self.objects[surface]
        attributes = self.attributes(name)
        scale = 0.6 + 0.5 * base["h"] / 100
        width, height = self.size_of(name, attributes, scale)
        x = base["x"] + self.rng.random() * max(1.0, base["w"] - width)
        bottom = base["y"] + base["h"] * (0.1 + 0.15 * self.rng.random())
        return self.add(name, (x, bottom - height, width, height), attributes)

    def add_held(self, name: str, person: int) -> int:
        body = self.objects[person]
        attributes = self.attributes(name)
        width, height = self.size_of(name, attributes, body["h"] / 150)
        x = body["x"] + body["w"] * (0.75 + 0.2 * self.rng.random())
        y = body["y"] + body["h"] * 0.4
        return self.add(name, (x, y, width, height), attributes)

    def add_worn(self, name: str, person: int) -> int:
        body = self.objects[person]
        fx, fy, fw, fh = GARMENT_PLACEMENT[name]
        return self.add(name, (body["x"] + fx * body["w"], body["y"] + fy * body["h"], fw * body["w"], fh * body["h"]))

    # --- groups ----------------------------------------------------------------------------------
    def build(self) -> None:
        rng = self.rng
        if "furniture" in self.kinds:
            for _ in range(int(rng.integers(1, 3))):
                if self.full():
                    break
                surface = self.add_on_ground(_pick(rng, SURFACES if not self.outdoor else ("bench", "table")))
                for _ in range(int(rng.integers(1, 4))):
                    if self.full():
                        break
                    kind = _pick(rng, ("kitchenware", "food", "kitchenware", "furniture", "animal"))
                    name = {"furniture": "lamp", "animal": "cat"}.get(kind) or _pick(rng, KINDS[kind])
                    self.semantic.append((self.add_on(name, surface), "on", surface))
        if "person" in self.kinds:
            for _ in range(int(rng.integers(0, 4))):
                if self.full():
                    break
                self.add_person()
        if "animal" in self.kinds and not self.full() and rng.random() < 0.6:
            animal = self.add_on_ground(_pick(rng, KINDS["animal"]))
            if not self.full() and rng.random() < 0.5 and self.objects[animal]["name"] != "bird":
                food = self.add_held(_pick(rng, KINDS["food"]), animal)
                self.semantic.append((animal, "eating", food))
        free_kinds = tuple(kind for kind in self.kinds if kind != "clothing")
        while not self.full():
            present = [obj["name"] for obj in self.objects if KIND_OF_NAME[obj["name"]] in free_kinds]
            if present and rng.random() < 0.3:
                name = _pick(rng, present)  # a second object of a name already here
            else:
                name = _pick(rng, KINDS[_pick(rng, free_kinds)])
            self.add_on_ground(name)

    def add_person(self) -> None:
        rng = self.rng
        person = self.add_on_ground(_pick(rng, KINDS["person"]))
        action = rng.random()
        if action < 0.2 and not self.full():
            seat_names = tuple(n for n in SEATS if "furniture" in self.kinds)
            if seat_names:
                seat = self.add_on_ground(_pick(rng, seat_names))
                self.sit(person, seat, "sitting on")
        elif action < 0.3 and not self.full() and self.outdoor:
            ride = self.add_on_ground(_pick(rng, RIDEABLE))
            self.sit(person, ride, "riding")
        for garment in rng.permutation(list(GARMENT_PLACEMENT))[: int(rng.integers(0, 3))]:
            if self.full():
                break
            garment = str(garment)
            if garment == "dress" and NAME_GENDER.get(self.objects[person]["name"]) == "male":
                continue
            self.semantic.append((person, "wearing", self.add_worn(garment, person)))
        if not self.full() and rng.random() < 0.5:
            item = self.add_held(_pick(rng, KINDS["kitchenware"] + KINDS["food"]), person)
            eats = KIND_OF_NAME[self.objects[item]["name"]] == "food" and rng.random() < 0.4
            self.semantic.append((person, "eating" if eats else "holding", item))

    def sit(self, person: int, seat: int, relation: str) -> None:
        """Move the person so they sit on (or ride) the seat, and make their pose say so."""
        body, base = self.objects[person], self.objects[seat]
        body["h"] = int(body["h"] * 0.8)
        body["x"] = int(min(max(1, base["x"] + (base["w"] - body["w"]) / 2), IMAGE_WIDTH - 1 - body["w"]))
        body["y"] = int(max(1, base["y"] + base["h"] * 0.45 - body["h"]))
        body["attributes"] = [v for v in body["attributes"] if v not in ATTRIBUTE_CATEGORIES["pose"].values] + ["sitting"]
        self.semantic.append((person, relation, seat))


def _boxes_overlap(a: dict, b: dict) -> tuple[float, float]:
    horizontal = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    vertical = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return horizontal, vertical


def _contains(a: dict, b: dict) -> bool:
    return a["x"] <= b["x"] and a["y"] <= b["y"] and a["x"] + a["w"] >= b["x"] + b["w"] and a["y"] + a["h"] >= b["y"] + b["h"]


def _on_top_of(a: dict, b: dict) -> bool:
    """a rests on b: a's bottom in the top third of b, a's centre above b horizontally, a smaller."""
    bottom = a["y"] + a["h"]
    centre = a["x"] + a["w"] / 2
    return (
        a["y"] < b["y"] and b["y"] <= bottom <= b["y"] + b["h"] / 3
        and b["x"] <= centre <= b["x"] + b["w"] and a["w"] * a["h"] < b["w"] * b["h"]
    )


def _near(a: dict, b: dict) -> bool:
    """Boxes within a few pixels of each other (asked only of pairs with no other spatial relation)."""
    gap = max(max(a["x"], b["x"]) - min(a["x"] + a["w"], b["x"] + b["w"]),
              max(a["y"], b["y"]) - min(a["y"] + a["h"], b["y"] + b["h"]))
    return gap < 15 and not (_contains(a, b) or _contains(b, a))


def spatial_relations(a: dict, b: dict) -> list[str]:
    """The spatial relations from a to b that the boxes show (their reverses come from b to a)."""
    if _contains(a, b) or _contains(b, a):
        return []  # a garment on its wearer, a thing in front of a big one: no clear direction
    horizontal, vertical = _boxes_overlap(a, b)
    centre_a = (a["x"] + a["w"] / 2, a["y"] + a["h"] / 2)
    centre_b = (b["x"] + b["w"] / 2, b["y"] + b["h"] / 2)
    relations = []
    if vertical > 0 and abs(centre_a[0] - centre_b[0]) > GEOMETRY_MARGIN:
        relations.append("to the left of" if centre_a[0] < centre_b[0] else "to the right of")
    if _on_top_of(a, b):
        relations.append("on top of")
    elif _on_top_of(b, a):
        pass  # b on top of a: GQA keeps no reverse name for it
    elif horizontal > 0 and abs(centre_a[1] - centre_b[1]) > GEOMETRY_MARGIN:
        relations.append("above" if centre_a[1] < centre_b[1] else "below")
    if horizontal > 0 and vertical > 0 and not (_on_top_of(a, b) or _on_top_of(b, a)):
        bottom_a, bottom_b = a["y"] + a["h"], b["y"] + b["h"]
        if abs(bottom_a - bottom_b) > GEOMETRY_MARGIN:
            relations.append("in front of" if bottom_a > bottom_b else "behind")
    for relation in relations:
        assert relation in SPATIAL_RELATIONS
    return relations


def generate_scene(rng: np.random.Generator, index: int) -> tuple[str, dict]:
    """One scene graph in GQA's form: ``(image_id, {"width", "height", "location", "objects", ...})``."""
    builder = _SceneBuilder(rng, index)
    builder.build()
    ids = [str(OBJECT_ID_BASE + index * OBJECT_ID_BLOCK + k) for k in range(len(builder.objects))]
    relations: list[list[dict]] = [[] for _ in builder.objects]
    for subject, relation, target in builder.semantic:
        relations[subject].append({"name": relation, "object": ids[target]})
    for i, first in enumerate(builder.objects):
        for j, second in enumerate(builder.objects):
            if i < j:
                forward, backward = spatial_relations(first, second), spatial_relations(second, first)
                if not forward and not backward and _near(first, second):
                    forward, backward = ["near"], ["near"]
                relations[i].extend({"name": r, "object": ids[j]} for r in forward)
                relations[j].extend({"name": r, "object": ids[i]} for r in backward)
    scene: dict = {"width": IMAGE_WIDTH, "height": IMAGE_HEIGHT, "location": builder.location}
    if builder.outdoor:
        scene["weather"] = _pick(rng, WEATHERS)
    scene["objects"] = {
        object_id: {**obj, "relations": relations[k]} for k, (object_id, obj) in enumerate(zip(ids, builder.objects))
    }
    return image_id_for(index), scene
