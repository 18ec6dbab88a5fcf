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

# Furniture that things can be put on, and furniture (or vehicles) people can sit on or ride.
SURFACES = ("table", "desk", "shelf", "bench")
SEATS = ("chair", "couch", "bench", "bed")
RIDEABLE = ("bicycle", "motorcycle", "horse")
# Where a garment sits on its wearer, as fractions of the wearer's box (x, y, w, h).
GARMENT_PLACEMENT: dict[str, tuple[float, float, float, float]] = {
    "hat": (0.25, 0.0, 0.5, 0.16),
    "helmet": (0.22, 0.0, 0.56, 0.18),
    "scarf": (0.25, 0.18, 0.5, 0.1),
    "shirt": (0.1, 0.22, 0.8, 0.33),
    "jacket": (0.05, 0.2, 0.9, 0.4),
    "dress": (0.1, 0.22, 0.8, 0.55),
}

# Typical box size in pixels (width, height) at the scale of the default 480x360 image.
BASE_SIZE: dict[str, tuple[int, int]] = {
    "person": (60, 150), "animal": (90, 70), "furniture": (120, 80), "food": (34, 28),
    "vehicle": (150, 80), "clothing": (40, 40), "kitchenware": (26, 32), "plant": (80, 130),
}
NAME_SIZE: dict[str, tuple[int, int]] = {
    "child": (40, 95), "boy": (45, 110), "girl": (45, 110), "elephant": (150, 120), "horse": (120, 100),
    "bird": (30, 24), "cat": (55, 40), "lamp": (40, 110), "shelf": (130, 50), "bed": (170, 80),
    "bus": (200, 110), "bicycle": (90, 60), "motorcycle": (100, 65), "flower": (30, 50), "bush": (90, 60),
    "fork": (10, 36), "knife": (10, 36), "bottle": (18, 44), "pizza": (50, 24), "cake": (44, 34),
}

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

# Spatial relations are derived from box geometry (scenes.derive_spatial_relations); each has the
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
        SemanticRelation("wearing", ("person",), tuple(GARMENT_PLACEMENT)),
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
