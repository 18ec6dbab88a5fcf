"""Scene generation: 4-16 objects with boxes, attributes and relations, as a GQA scene graph.

A scene is built in groups that give it something to ask about and that a picture can show:
furniture with things standing side by side on its top, people wearing and holding things (or
sitting on a seat, riding a bicycle), animals eating, then free objects (sometimes a second object of
a name already present, so that questions need filters). Each group stands on the ground at a depth
(farther up the picture is farther away, and smaller) and is placed where it hides little of what is
already there; birds fly in the sky. Spatial relations are then derived from the boxes for every
pair, in both directions where GQA stores both, only where the boxes show them with a margin.

Every random choice comes from the numpy Generator passed in, so a scene depends only on
(world seed, image index).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rexlib.world.ontology import (
    AGE_VALUES_FOR,
    ATTRIBUTE_CATEGORIES,
    BASE_SIZE,
    GARMENT_LAYER,
    GARMENT_SLOTS,
    GEOMETRY_MARGIN,
    HELD_MAX_FRACTION,
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    INDOOR_ANIMALS,
    KIND_OF_NAME,
    KINDS,
    LOCATIONS,
    NAME_GENDER,
    NAME_SIZE,
    OUTDOOR_FURNITURE,
    RIDEABLE,
    SEAT_LEVEL,
    SEATS,
    SPATIAL_RELATIONS,
    SUPPORTED_MAX_FRACTION,
    SURFACES,
    TABLE_LAMP_SCALE,
    WEATHERS,
    categories_for,
    garment_box,
    person_parts,
    values_for,
)

MIN_OBJECTS, MAX_OBJECTS = 4, 16
SIZE_SCALE = {"tiny": 0.65, "small": 0.82, "large": 1.2, "huge": 1.4}
SITTING_HEIGHT = 0.62  # a sitting person's box height, as a fraction of their standing height
# Two objects of different groups may share at most this fraction of the smaller one's box, so that
# everything stays visible and no box lies mostly inside an unrelated one.
OVERLAP_LIMIT = 0.12
PLACEMENT_TRIES = 40
NEAR_GAP = 15  # "near": boxes at most this many pixels apart with no other spatial relation
SHARED_EXTENT = 0.2  # boxes side by side share this fraction of the smaller height (columns: width)
TOUCH = 1  # pixels: "on" means the bottom of one box is the top of the other, within this
# Object ids are global digit strings, as in GQA: a block of this many ids per image.
OBJECT_ID_BLOCK = 20
OBJECT_ID_BASE = 1_000_000
IMAGE_ID_BASE = 2_300_000
Box = tuple[float, float, float, float]  # x1, y1, x2, y2


def image_id_for(index: int) -> str:
    return str(IMAGE_ID_BASE + index)


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


@dataclass
class _Group:
    """Objects placed together, in coordinates where the group stands on y = 0 at depth scale 1."""

    names: list[str] = field(default_factory=list)
    attributes: list[list[str]] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    relations: list[tuple[int, str, int]] = field(default_factory=list)  # local (subject, relation, object)
    flying: bool = False

    def add(self, name: str, attributes: list[str], box: Box) -> int:
        self.names.append(name)
        self.attributes.append(attributes)
        self.boxes.append(box)
        return len(self.names) - 1

    def bounds(self) -> Box:
        return (min(b[0] for b in self.boxes), min(b[1] for b in self.boxes),
                max(b[2] for b in self.boxes), max(b[3] for b in self.boxes))


def _shared_fraction(a: Box, b: Box) -> float:
    """The area the two boxes share, as a fraction of the smaller box."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / max(1e-9, smaller)


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
        self.depth: list[float | None] = []  # the ground line of each object's group (None: flying)
        self.group: list[int] = []  # which group each object belongs to
        self.boxes: list[Box] = []  # placed boxes, in pixels

    # --- objects ---------------------------------------------------------------------------------
    def room(self) -> int:
        return self.target - len(self.objects)

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

    def size_of(self, name: str, attributes: list[str], factor: float = 1.0) -> tuple[float, float]:
        """Width and height at depth scale 1: the name's size, its size word, a little jitter."""
        width, height = NAME_SIZE.get(name) or BASE_SIZE[KIND_OF_NAME[name]]
        factor *= next((SIZE_SCALE[v] for v in attributes if v in SIZE_SCALE), 1.0)
        factor *= 0.9 + 0.2 * self.rng.random()
        return width * factor, height * factor

    def names(self, kind: str) -> tuple[str, ...]:
        """The object names of a kind that belong in this location (indoors only pets, outdoors no beds)."""
        if kind == "animal" and not self.outdoor:
            return INDOOR_ANIMALS
        if kind == "furniture" and self.outdoor:
            return OUTDOOR_FURNITURE
        return KINDS[kind]

    # --- groups ----------------------------------------------------------------------------------
    def single(self, name: str) -> _Group:
        group = _Group(flying=name == "bird")
        attributes = self.attributes(name)
        sitting = KIND_OF_NAME[name] == "person" and "sitting" in attributes
        width, height = self.size_of(name, attributes)
        group.add(name, attributes, (0.0, -height * (SITTING_HEIGHT if sitting else 1.0), width, 0.0))
        return group

    def surface_group(self) -> _Group:
        """A table (desk, shelf, bench) with 1-3 things standing side by side on its top."""
        rng = self.rng
        group = self.single(_pick(rng, tuple(n for n in SURFACES if n in self.names("furniture"))))
        _x1, top, width, _y2 = group.boxes[0]
        height = -top
        items = []
        for _ in range(min(int(rng.integers(1, 4)), self.room() - 1)):
            kind = _pick(rng, ("kitchenware", "food", "kitchenware", "furniture", "animal"))
            name = {"furniture": "lamp", "animal": "cat"}.get(kind) or _pick(rng, KINDS[kind])
            attributes = self.attributes(name)
            w, h = self.size_of(name, attributes, TABLE_LAMP_SCALE if name == "lamp" else 1.0)
            shrink = min(1.0, SUPPORTED_MAX_FRACTION[0] * width / w, SUPPORTED_MAX_FRACTION[1] * height / h)
            items.append((name, attributes, w * shrink, h * shrink))
        gap, usable = 3.0, 0.92 * width
        while items and sum(i[2] for i in items) + gap * (len(items) - 1) > usable:
            items.pop()
        weights = rng.random(len(items) + 1)
        slack = usable - sum(i[2] for i in items) - gap * max(0, len(items) - 1)
        x = 0.04 * width
        for k, (name, attributes, w, h) in enumerate(items):
            x += slack * weights[k] / weights.sum()
            item = group.add(name, attributes, (x, top - h, x + w, top))
            group.relations.append((item, "on", 0))
            x += w + gap
        return group

    def person_group(self) -> _Group:
        """A person standing, or sitting on a seat, or riding; wearing 0-2 garments, maybe holding a thing."""
        rng = self.rng
        name = _pick(rng, KINDS["person"])
        attributes = self.attributes(name)
        action = rng.random()
        seat_names = tuple(n for n in SEATS if n in self.names("furniture")) if "furniture" in self.kinds else ()
        if action < 0.2 and seat_names and self.room() >= 2:
            group, relation = self.single(_pick(rng, seat_names)), "sitting on"
        elif 0.2 <= action < 0.3 and self.outdoor and self.room() >= 2:
            group, relation = self.single(_pick(rng, RIDEABLE)), "riding"
        else:
            group, relation = _Group(), None
        if relation:
            attributes = [v for v in attributes if v not in ATTRIBUTE_CATEGORIES["pose"].values] + ["sitting"]
        sitting = "sitting" in attributes
        width, height = self.size_of(name, attributes)
        height *= SITTING_HEIGHT if sitting else 1.0
        if relation:
            seat_name = group.names[0]
            _sx1, seat_top, seat_width, _sy2 = group.boxes[0]
            level = seat_top * (1 - SEAT_LEVEL[seat_name])  # the seat's cushion, above the ground line
            x = 0.12 * seat_width if seat_name in ("chair", "bed") else (seat_width - width) / 2
            person = group.add(name, attributes, (x, level - height, x + width, level))
            group.relations.append((person, relation, 0))
        else:
            person = group.add(name, attributes, (0.0, -height, width, 0.0))
        body = group.boxes[person]
        parts = person_parts(body[0], body[1], width, height, sitting)
        used_slots: set[int] = set()
        for garment in rng.permutation(sorted(GARMENT_LAYER))[: int(rng.integers(0, 3))]:
            garment = str(garment)
            slot = next(k for k, names in enumerate(GARMENT_SLOTS) if garment in names)
            if self.room() - len(group.names) < 1 or slot in used_slots:
                continue
            if garment == "dress" and NAME_GENDER.get(name) == "male":
                continue
            used_slots.add(slot)
            worn = group.add(garment, self.attributes(garment), garment_box(garment, parts))
            group.relations.append((person, "wearing", worn))
        if self.room() - len(group.names) >= 1 and rng.random() < 0.5:
            item_name = _pick(rng, KINDS["kitchenware"] + KINDS["food"])
            item_attributes = self.attributes(item_name)
            w, h = self.size_of(item_name, item_attributes)
            standing_height = height / (SITTING_HEIGHT if sitting else 1.0)
            shrink = min(1.0, HELD_MAX_FRACTION[0] * width / w, HELD_MAX_FRACTION[1] * standing_height / h)
            w, h = w * shrink, h * shrink
            hand_x, hand_y = parts["hand"][:2]
            top = hand_y - 0.2 * h  # held by its top, hanging from the hand
            item = group.add(item_name, item_attributes, (hand_x - w / 2, top, hand_x + w / 2, top + h))
            eats = KIND_OF_NAME[item_name] == "food" and rng.random() < 0.4
            group.relations.append((person, "eating" if eats else "holding", item))
        return group

    def animal_group(self) -> _Group:
        """An animal, half of the time eating food that lies on the ground in front of its head."""
        rng = self.rng
        group = self.single(_pick(rng, self.names("animal")))
        if not group.flying and self.room() >= 2 and rng.random() < 0.5:
            _x1, top, width, _y2 = group.boxes[0]
            food = _pick(rng, KINDS["food"])
            attributes = self.attributes(food)
            w, h = self.size_of(food, attributes)
            shrink = min(1.0, 0.4 * width / w, -0.5 * top / h)
            w, h = w * shrink, h * shrink
            eaten = group.add(food, attributes, (0.97 * width, -h, 0.97 * width + w, 0.0))
            group.relations.append((0, "eating", eaten))
        return group

    # --- placement -------------------------------------------------------------------------------
    def place(self, group: _Group) -> bool:
        """Put the group somewhere it stays clear of the others (a few tries); False when nowhere."""
        rng = self.rng
        x1, y1, x2, _y2 = group.bounds()
        for _ in range(PLACEMENT_TRIES):
            if group.flying:
                ground, scale = 20 + rng.random() * (self.horizon - 25), 1.0
            else:
                ground = self.horizon + 12 + rng.random() * (IMAGE_HEIGHT - 2 - self.horizon - 12)
                scale = 0.6 + 0.6 * (ground - self.horizon) / (IMAGE_HEIGHT - self.horizon)
            width, top = (x2 - x1) * scale, ground + y1 * scale
            if top < 1 or width > IMAGE_WIDTH - 2:
                continue
            left = 1 + rng.random() * (IMAGE_WIDTH - 2 - width)
            boxes = [self._pixels(box, scale, left - x1 * scale, ground) for box in group.boxes]
            if all(_shared_fraction(new, old) <= OVERLAP_LIMIT for new in boxes for old in self.boxes):
                self._commit(group, boxes, None if group.flying else ground)
                return True
        return False

    @staticmethod
    def _pixels(box: Box, scale: float, dx: float, ground: float) -> Box:
        x1, y1, x2, y2 = (round(box[0] * scale + dx), round(box[1] * scale + ground),
                          round(box[2] * scale + dx), round(box[3] * scale + ground))
        return x1, y1, max(x2, x1 + 3), max(y2, y1 + 3)

    def _commit(self, group: _Group, boxes: list[Box], depth: float | None) -> None:
        first = len(self.objects)
        number = len(set(self.group))
        for name, attributes, (x1, y1, x2, y2) in zip(group.names, group.attributes, boxes):
            self.objects.append({"name": name, "x": x1, "y": y1, "w": x2 - x1, "h": y2 - y1, "attributes": attributes})
            self.depth.append(depth)
            self.group.append(number)
            self.boxes.append((x1, y1, x2, y2))
        self.semantic.extend((first + s, relation, first + o) for s, relation, o in group.relations)

    def build(self) -> None:
        rng = self.rng
        if "furniture" in self.kinds:
            for _ in range(int(rng.integers(1, 3))):
                if self.room() > 0:
                    self.place(self.surface_group())
        if "person" in self.kinds:
            for _ in range(int(rng.integers(0, 4))):
                if self.room() > 0:
                    self.place(self.person_group())
        if "animal" in self.kinds and self.room() > 0 and rng.random() < 0.6:
            self.place(self.animal_group())
        free_kinds = tuple(kind for kind in self.kinds if kind != "clothing")
        failures = 0
        while self.room() > 0 and (failures < 12 or len(self.objects) < MIN_OBJECTS):
            present = [obj["name"] for obj in self.objects if KIND_OF_NAME[obj["name"]] in free_kinds]
            if present and rng.random() < 0.3:
                name = _pick(rng, present)  # a second object of a name already here
            else:
                name = _pick(rng, self.names(_pick(rng, free_kinds)))
            failures += not self.place(self.single(name))


def _overlap(a: dict, b: dict) -> tuple[float, float]:
    horizontal = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    vertical = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    return horizontal, vertical


def _contains(a: dict, b: dict) -> bool:
    return a["x"] <= b["x"] and a["y"] <= b["y"] and a["x"] + a["w"] >= b["x"] + b["w"] and a["y"] + a["h"] >= b["y"] + b["h"]


def touches_top(a: dict, b: dict) -> bool:
    """a stands on b in the picture: a's bottom is b's top, a's centre is over b."""
    centre = a["x"] + a["w"] / 2
    return abs(a["y"] + a["h"] - b["y"]) <= TOUCH and b["x"] <= centre <= b["x"] + b["w"]


def spatial_relations(a: dict, b: dict, depths: tuple[float | None, float | None] = (None, None),
                      resting: bool = False, carrying: bool = False) -> list[str]:
    """The spatial relations from a to b that the boxes show with a margin (reverses come from b to a).

    ``depths`` are the ground lines the two objects stand on, when they stand on the ground in two
    different groups (None for a flying thing, or for two things of one group such as a man and his
    hat). Centres must be at least GEOMETRY_MARGIN apart along the direction named, and boxes must
    share at least a fifth of the smaller extent across it:

    * left / right: side by side (overlapping by at most half of the narrower box);
    * on top of: a rests on b (``resting``: the scene put it there, the boxes touch); GQA keeps no
      name for the other direction (``carrying``: b rests on a);
    * above / below: one box wholly over the other, unless both stand on the ground at different
      depths (a far table seen over a near boy is behind him, not above him);
    * in front of / behind: both stand on the ground, along one line of sight, at depths at least
      GEOMETRY_MARGIN apart (the nearer one stands lower in the picture).
    """
    if _contains(a, b) or _contains(b, a):
        return []  # a garment on its wearer: no clear direction
    horizontal, vertical = _overlap(a, b)
    centre_a = (a["x"] + a["w"] / 2, a["y"] + a["h"] / 2)
    centre_b = (b["x"] + b["w"] / 2, b["y"] + b["h"] / 2)
    in_row = vertical >= SHARED_EXTENT * min(a["h"], b["h"])
    in_column = horizontal >= SHARED_EXTENT * min(a["w"], b["w"])
    depth_a, depth_b = depths
    grounded = depth_a is not None and depth_b is not None
    relations = []
    if in_row and horizontal <= 0.5 * min(a["w"], b["w"]) and abs(centre_a[0] - centre_b[0]) >= GEOMETRY_MARGIN:
        relations.append("to the left of" if centre_a[0] < centre_b[0] else "to the right of")
    if resting and touches_top(a, b):
        relations.append("on top of")
    elif carrying:
        pass
    elif in_column and vertical <= TOUCH and not grounded and abs(centre_a[1] - centre_b[1]) >= GEOMETRY_MARGIN:
        relations.append("above" if centre_a[1] < centre_b[1] else "below")
    if in_column and grounded and abs(depth_a - depth_b) >= GEOMETRY_MARGIN:
        relations.append("in front of" if depth_a > depth_b else "behind")
    for relation in relations:
        assert relation in SPATIAL_RELATIONS
    return relations


def _near(a: dict, b: dict) -> bool:
    """Boxes apart by a few pixels (asked only of pairs with no other spatial relation)."""
    gap = max(max(a["x"], b["x"]) - min(a["x"] + a["w"], b["x"] + b["w"]),
              max(a["y"], b["y"]) - min(a["y"] + a["h"], b["y"] + b["h"]))
    return 0 <= gap < NEAR_GAP


def generate_scene(rng: np.random.Generator, index: int) -> tuple[str, dict]:
    """One scene graph in GQA's form: ``(image_id, {"width", "height", "location", "objects", ...})``."""
    builder = _SceneBuilder(rng, index)
    builder.build()
    objects = builder.objects
    ids = [str(OBJECT_ID_BASE + index * OBJECT_ID_BLOCK + k) for k in range(len(objects))]
    relations: list[list[dict]] = [[] for _ in objects]
    resting = {(subject, target) for subject, relation, target in builder.semantic if relation == "on"}
    for subject, relation, target in builder.semantic:
        relations[subject].append({"name": relation, "object": ids[target]})
    for i, first in enumerate(objects):
        for j in range(i + 1, len(objects)):
            second = objects[j]
            apart = builder.group[i] != builder.group[j]
            depths = (builder.depth[i], builder.depth[j]) if apart else (None, None)
            forward = spatial_relations(first, second, depths, (i, j) in resting, (j, i) in resting)
            backward = spatial_relations(second, first, depths[::-1], (j, i) in resting, (i, j) in resting)
            if not forward and not backward and _near(first, second):
                forward, backward = ["near"], ["near"]
            relations[i].extend({"name": r, "object": ids[j]} for r in forward)
            relations[j].extend({"name": r, "object": ids[i]} for r in backward)
    scene: dict = {"width": IMAGE_WIDTH, "height": IMAGE_HEIGHT, "location": builder.location}
    if builder.outdoor:
        scene["weather"] = _pick(rng, WEATHERS)
    scene["objects"] = {
        object_id: {**obj, "relations": relations[k]} for k, (object_id, obj) in enumerate(zip(ids, objects))
    }
    return image_id_for(index), scene
