"""The synthetic world's ontology: object names, attribute categories, relations and comparatives.

These are the project's own tables, written for the embedded world. They follow GQA's vocabulary
(attribute values, relation phrases, operation names) so the files the world writes read like GQA,
but they are deliberately small: every value here must be drawable and checkable.

Scene graphs store attributes as bare values (``["white", "wood"]``), as GQA does, so each value
belongs to exactly one category here; :data:`CATEGORY_OF_VALUE` relies on that.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- objects -------------------------------------------------------------------------------------

# kind -> object names. The kind decides which attributes and relations an object can take, how it
# is drawn, and where it is placed in a scene.
KINDS: dict[str, tuple[str, ...]] = {
    "person": ("man", "woman", "boy", "girl", "child"),
    "animal": ("dog", "cat", "horse", "cow", "sheep", "bird", "elephant"),
    "furniture": ("table", "chair", "couch", "bench", "desk", "shelf", "lamp", "bed"),
    "food": ("pizza", "apple", "banana", "salad", "cake", "donut", "sandwich", "broccoli", "carrot"),
    "vehicle": ("car", "bus", "truck", "bicycle", "motorcycle", "boat"),
    "clothing": ("shirt", "hat", "jacket", "dress", "helmet", "scarf"),
    "kitchenware": ("cup", "plate", "bowl", "bottle", "vase", "pot", "fork", "knife"),
    "plant": ("tree", "flower", "bush"),
}
KIND_OF_NAME: dict[str, str] = {name: kind for kind, names in KINDS.items() for name in names}
OBJECT_NAMES: tuple[str, ...] = tuple(KIND_OF_NAME)

# The animals that come indoors (a kitchen has no horse in it), and the furniture that stands outdoors.
INDOOR_ANIMALS = ("dog", "cat")
OUTDOOR_FURNITURE = ("bench", "table")
# Furniture that things can be put on, and furniture (or vehicles) people can sit on or ride.
SURFACES = ("table", "desk", "shelf", "bench")
SEATS = ("chair", "couch", "bench", "bed")
RIDEABLE = ("bicycle", "motorcycle", "horse")
# Where a sitter's (or rider's) bottom rests, as a fraction of the seat's box height from its top:
# the renderer draws the seat's cushion (a bicycle's saddle, a horse's back) at that height.
SEAT_LEVEL: dict[str, float] = {"chair": 0.45, "couch": 0.4, "bench": 0.0, "bed": 0.35,
                                "bicycle": 0.1, "motorcycle": 0.15, "horse": 0.3}
# Garments in the order they are put on (drawn): a jacket over a shirt, a hat last.
GARMENT_LAYER: dict[str, int] = {"dress": 0, "shirt": 1, "jacket": 2, "scarf": 3, "hat": 4, "helmet": 4}
# Garments that take the same place on a body: a person wears at most one of each group.
GARMENT_SLOTS: tuple[tuple[str, ...], ...] = (("shirt", "jacket", "dress"), ("hat", "helmet"), ("scarf",))
# A thing resting on a surface is at most this fraction of the surface's width and height.
SUPPORTED_MAX_FRACTION = (0.45, 0.9)
# A thing in a hand is at most this fraction of the holder's width and height.
HELD_MAX_FRACTION = (0.55, 0.3)

# Typical box size in pixels (width, height) of an object at depth scale 1 in the 480x360 image.
BASE_SIZE: dict[str, tuple[int, int]] = {
    "person": (60, 150), "animal": (90, 70), "furniture": (120, 80), "food": (30, 24),
    "vehicle": (160, 80), "clothing": (40, 40), "kitchenware": (24, 30), "plant": (80, 130),
}
NAME_SIZE: dict[str, tuple[int, int]] = {
    "child": (40, 95), "boy": (45, 110), "girl": (45, 110),
    "dog": (70, 52), "cat": (50, 36), "horse": (130, 110), "cow": (130, 95), "sheep": (80, 58),
    "bird": (28, 22), "elephant": (170, 140),
    "table": (130, 75), "desk": (120, 78), "chair": (60, 90), "couch": (150, 78), "bench": (130, 55),
    "shelf": (110, 120), "lamp": (40, 120), "bed": (170, 75),
    "car": (160, 72), "bus": (220, 115), "truck": (190, 100), "bicycle": (90, 60), "motorcycle": (100, 65),
    "boat": (150, 70), "tree": (100, 170), "flower": (26, 48), "bush": (90, 60),
    "cup": (20, 26), "plate": (44, 14), "bowl": (34, 20), "bottle": (14, 44), "vase": (22, 40), "pot": (36, 30),
    "fork": (6, 32), "knife": (6, 34),
    "pizza": (48, 18), "apple": (20, 20), "banana": (30, 16), "salad": (36, 24), "cake": (40, 32),
    "donut": (24, 20), "sandwich": (36, 22), "broccoli": (24, 30), "carrot": (32, 12),
}
# A lamp put on a table or a desk is a table lamp: this fraction of a floor lamp.
TABLE_LAMP_SCALE = 0.45


def person_parts(x: float, y: float, w: float, h: float, sitting: bool) -> dict[str, tuple[float, float, float, float]]:
    """A person's body parts as boxes (x1, y1, x2, y2) inside their box, standing or sitting.

    The renderer draws these shapes, and the scene generator puts garments on them and things in
    the hand (the "hand" box is a point: a held thing hangs from it), so both agree on where a
    person's head and hand are.
    """
    if sitting:  # torso upright, thighs forward (to the right), shins hidden by the seat
        head = min(0.5 * w, 0.3 * h)
        torso = (x + 0.1 * w, y + head, x + 0.6 * w, y + 0.8 * h)
        return {"head": (x + 0.35 * w - head / 2, y, x + 0.35 * w + head / 2, y + head), "torso": torso,
                "arm": (x + 0.6 * w, y + head + 2, x + 0.75 * w, y + 0.6 * h),
                "forearm": (x + 0.6 * w, y + 0.5 * h, x + 0.95 * w, y + 0.6 * h),
                "legs": (x + 0.1 * w, y + 0.8 * h, x + w, y + h), "hand": (x + 0.95 * w, y + 0.55 * h) * 2}
    head = min(0.5 * w, 0.2 * h)
    return {"head": (x + (w - head) / 2, y, x + (w + head) / 2, y + head),
            "torso": (x + 0.18 * w, y + head, x + 0.82 * w, y + 0.58 * h),
            "arm": (x, y + head + 2, x + 0.18 * w, y + 0.55 * h),
            "arm2": (x + 0.82 * w, y + head + 2, x + w, y + 0.55 * h),
            "legs": (x + 0.2 * w, y + 0.58 * h, x + 0.8 * w, y + h), "hand": (x + w, y + 0.55 * h) * 2}


def garment_box(name: str, parts: dict) -> tuple[float, float, float, float]:
    """Where a garment sits on a body (x1, y1, x2, y2), from the body's parts."""
    hx1, hy1, hx2, _hy2 = parts["head"]
    tx1, ty1, tx2, ty2 = parts["torso"]
    size = hx2 - hx1
    if name in ("hat", "helmet"):
        return hx1 - 0.1 * size, hy1, hx2 + 0.1 * size, hy1 + (0.45 if name == "hat" else 0.55) * size
    if name == "scarf":  # round the neck, mostly above the shirt
        return tx1 + 0.1 * (tx2 - tx1), ty1 - 0.25 * size, tx2 - 0.1 * (tx2 - tx1), ty1 + 0.1 * size
    if name == "shirt":
        return tx1, ty1, tx2, ty2
    if name == "jacket":
        arms = [parts[key] for key in ("arm", "arm2") if key in parts]
        return min([tx1] + [a[0] for a in arms]), ty1, max([tx2] + [a[2] for a in arms]), ty2
    legs = parts["legs"]  # dress: the torso and the top of the legs
    return tx1 - 0.05 * (tx2 - tx1), ty1, tx2 + 0.05 * (tx2 - tx1), legs[1] + 0.45 * (legs[3] - legs[1])


# The relation that puts one object in another's keeping, and which end is kept: the thing on a
# table, the person on a seat, the garment on a person. The keeper is drawn first, then what it keeps.
SUPPORT_RELATIONS: dict[str, str] = {"on": "subject", "sitting on": "subject", "riding": "subject",
                                     "wearing": "object", "holding": "object", "eating": "object"}


def support_parents(objects: dict) -> dict[str, str]:
    """object id -> the id of the object that keeps it (by :data:`SUPPORT_RELATIONS`); roots are absent."""
    parents: dict[str, str] = {}
    for subject_id, obj in objects.items():
        for edge in obj["relations"]:
            kept = SUPPORT_RELATIONS.get(edge["name"])
            if kept == "subject":
                parents.setdefault(subject_id, edge["object"])
            elif kept == "object":
                parents.setdefault(edge["object"], subject_id)
    return parents


IRREGULAR_PLURALS: dict[str, str] = {
    "man": "men", "woman": "women", "child": "children", "sheep": "sheep", "knife": "knives",
    "shelf": "shelves", "broccoli": "broccoli", "bus": "buses",
}


def plural(name: str) -> str:
    """English plural of an object name (used by questions about a set: "all the chairs")."""
    if name in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[name]
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    if name.endswith("y") and name[-2] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


# --- attributes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeCategory:
    """A GQA attribute category: its values, the kinds it applies to, how often an object has one."""

    name: str
    values: tuple[str, ...]
    kinds: tuple[str, ...]
    probability: float = 0.8
    names: tuple[str, ...] = ()  # when set, only these object names take the category


ATTRIBUTE_CATEGORIES: dict[str, AttributeCategory] = {
    category.name: category
    for category in (
        AttributeCategory(
            "color",
            ("white", "black", "red", "blue", "green", "yellow", "brown", "gray", "pink", "purple"),
            ("animal", "furniture", "food", "vehicle", "clothing", "kitchenware", "plant"),
            probability=1.0,
        ),
        AttributeCategory("material", ("wood", "metal", "plastic", "glass", "ceramic", "leather"),
                          ("furniture", "kitchenware", "vehicle")),
        AttributeCategory("size", ("tiny", "small", "large", "huge"),
                          ("animal", "furniture", "food", "vehicle", "kitchenware", "plant")),
        AttributeCategory("shape", ("round", "square", "rectangular"), ("furniture", "kitchenware", "food"),
                          names=("table", "desk", "plate", "bowl", "pizza", "cake", "sandwich", "vase", "pot")),
        AttributeCategory("pattern", ("striped", "dotted", "checkered"), ("clothing", "furniture"),
                          probability=0.6, names=("shirt", "jacket", "dress", "scarf", "couch", "bed")),
        AttributeCategory("pose", ("standing", "sitting", "walking", "lying", "running"),
                          ("person", "animal")),
        AttributeCategory("activity", ("playing", "reading", "talking", "drinking", "waiting", "resting"),
                          ("person",), probability=0.6),
        AttributeCategory("age", ("young", "old", "little"), ("person",), probability=0.7),
        AttributeCategory("gender", ("male", "female"), ("person",), probability=1.0),
        AttributeCategory("cleanliness", ("clean", "dirty"), ("kitchenware", "clothing", "vehicle"),
                          probability=0.6),
        AttributeCategory("flavor", ("chocolate", "vanilla", "strawberry"), ("food",), probability=0.9,
                          names=("cake", "donut")),
        AttributeCategory("height", ("tall", "short"), ("plant", "furniture"), probability=0.6,
                          names=("tree", "bush", "lamp", "shelf")),
    )
}
CATEGORY_OF_VALUE: dict[str, str] = {
    value: category.name for category in ATTRIBUTE_CATEGORIES.values() for value in category.values
}
assert len(CATEGORY_OF_VALUE) == sum(len(c.values) for c in ATTRIBUTE_CATEGORIES.values()), (
    "an attribute value belongs to two categories"
)

# Gender and age follow the person's name where the name says so.
NAME_GENDER = {"man": "male", "boy": "male", "woman": "female", "girl": "female"}
ADULTS = ("man", "woman")
CHILDREN = ("boy", "girl", "child")
AGE_VALUES_FOR = {"man": ("young", "old"), "woman": ("young", "old"),
                  "boy": ("young", "little"), "girl": ("young", "little"), "child": ("young", "little")}

# RGB fill for each colour value (used by the renderer).
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "white": (240, 240, 235), "black": (30, 30, 30), "red": (200, 40, 40), "blue": (50, 80, 200),
    "green": (50, 160, 60), "yellow": (235, 210, 50), "brown": (130, 85, 45), "gray": (128, 128, 128),
    "pink": (240, 150, 180), "purple": (130, 60, 160),
}
SKIN_RGB = (225, 180, 140)


# Colours that look natural for living things; other kinds take any colour of the category.
NATURAL_COLORS: dict[str, tuple[str, ...]] = {
    "animal": ("white", "black", "brown", "gray"),
    "tree": ("green", "brown", "yellow"), "bush": ("green", "brown", "yellow"),
    "flower": ("red", "yellow", "pink", "purple", "white"),
}


def values_for(category: AttributeCategory, name: str) -> tuple[str, ...]:
    """The values an object with this name is generated with (a subset of the category's values)."""
    if category.name == "color":
        return NATURAL_COLORS.get(name) or NATURAL_COLORS.get(KIND_OF_NAME[name]) or category.values
    return category.values


def categories_for(name: str) -> tuple[AttributeCategory, ...]:
    """The attribute categories an object with this name can take."""
    kind = KIND_OF_NAME[name]
    return tuple(
        category
        for category in ATTRIBUTE_CATEGORIES.values()
        if kind in category.kinds and (not category.names or name in category.names)
    )


# --- relations -----------------------------------------------------------------------------------

# Spatial relations are derived from box geometry (scenes.spatial_relations); each has the
# relation its reverse direction is stored under (None when GQA keeps only one direction).
SPATIAL_RELATIONS: dict[str, str | None] = {
    "to the left of": "to the right of",
    "to the right of": "to the left of",
    "above": "below",
    "below": "above",
    "on top of": None,
    "near": "near",
    "in front of": "behind",
    "behind": "in front of",
}


@dataclass(frozen=True)
class SemanticRelation:
    """A relation the scene generator places on purpose: subject kinds/names -> object kinds/names."""

    name: str
    subjects: tuple[str, ...]  # kinds or names
    objects: tuple[str, ...]


SEMANTIC_RELATIONS: dict[str, SemanticRelation] = {
    relation.name: relation
    for relation in (
        SemanticRelation("wearing", ("person",), tuple(GARMENT_LAYER)),
        SemanticRelation("holding", ("person",), ("kitchenware", "food")),
        SemanticRelation("sitting on", ("person", "cat", "dog"), SEATS),
        SemanticRelation("eating", ("person", "animal"), ("food",)),
        SemanticRelation("on", ("kitchenware", "food", "lamp", "cat"), SURFACES),
        SemanticRelation("riding", ("person",), RIDEABLE),
    )
}

# Pairs of relations a "choose rel" question offers; the first pair members are spatial.
RELATION_CHOICES: tuple[tuple[str, str], ...] = (
    ("to the left of", "to the right of"),
    ("above", "below"),
    ("in front of", "behind"),
    ("holding", "eating"),
    ("sitting on", "riding"),
)

# --- comparatives --------------------------------------------------------------------------------

# comparative -> (its opposite, the question word: "Who is older", "Which is larger").
COMPARATIVES: dict[str, tuple[str, str]] = {
    "older": ("younger", "who"),
    "younger": ("older", "who"),
    "taller": ("shorter", "which"),
    "shorter": ("taller", "which"),
    "larger": ("smaller", "which"),
    "smaller": ("larger", "which"),
    "healthier": ("less healthy", "which"),
    "less healthy": ("healthier", "which"),
    "higher": ("lower", "which"),
    "lower": ("higher", "which"),
}
SIZE_RANK = {"tiny": 0, "small": 1, "large": 2, "huge": 3}
HEALTHY_FOOD = ("apple", "banana", "salad", "broccoli", "carrot")
UNHEALTHY_FOOD = ("pizza", "cake", "donut", "sandwich")
# taller/shorter and higher/lower are decided from box geometry; a question is asked only when the
# difference is at least this many pixels, so a reader of the picture can see it.
GEOMETRY_MARGIN = 20


def age_rank(name: str, attributes: list[str] | tuple[str, ...]) -> int | None:
    """Order people by age: children < young adults < adults < old adults. None for non-people."""
    if name in CHILDREN:
        return 0
    if name in ADULTS:
        if "old" in attributes:
            return 3
        if "young" in attributes:
            return 1
        return 2
    return None


def healthiness(name: str) -> int | None:
    if name in HEALTHY_FOOD:
        return 1
    if name in UNHEALTHY_FOOD:
        return 0
    return None


# --- places --------------------------------------------------------------------------------------

# location -> (background sky/wall colour, ground/floor colour, kinds that appear there, outdoors)
LOCATIONS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], tuple[str, ...], bool]] = {
    "kitchen": ((235, 225, 200), (180, 160, 130), ("person", "furniture", "food", "kitchenware", "animal"), False),
    "living room": ((225, 215, 230), (150, 120, 100), ("person", "furniture", "animal", "kitchenware", "food"), False),
    "office": ((220, 225, 230), (140, 140, 150), ("person", "furniture", "kitchenware", "plant"), False),
    "street": ((170, 200, 235), (110, 110, 115), ("person", "vehicle", "animal", "plant", "clothing"), True),
    "park": ((160, 205, 240), (110, 170, 90), ("person", "animal", "plant", "furniture", "food"), True),
    "field": ((165, 210, 245), (140, 185, 90), ("animal", "person", "plant", "vehicle"), True),
}
WEATHERS = ("sunny", "cloudy", "clear", "overcast")

IMAGE_WIDTH = 480
IMAGE_HEIGHT = 360
