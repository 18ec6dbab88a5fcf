"""What the executor knows about attribute values: categories, positions, places, comparatives.

Scene graphs store attributes as bare values (``["white", "wood"]``), so ``query color`` must know
which of an object's values is a colour. That knowledge comes from the data, never from a hand list:
:class:`CategoryTable` is mined from the questions' own programs (``filter color: white``, ``verify
material: wooden``, ``choose color: red|blue``, ``query color`` + its answer), over every split a build
is given, and may be merged with a GQA mapping file (``{"categorized": {category: [values]}}``).
``verify``/``filter``/``choose`` need no table, they only look for the value itself.
Positions and comparatives follow docs/contracts.md ("Conventions").
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping

from rexlib.gqa import COMPARATIVES, OPERATIONS, SceneGraph, SceneObject

# Categories of operations whose values are not attributes an object carries.
_NOT_ATTRIBUTE_CATEGORIES = frozenset({"rel", "name", "hposition", "vposition", *COMPARATIVES})
# Operations whose arguments state no attribute value (mining skips them at once).
_SILENT_OPERATIONS = frozenset(
    name for name, spec in OPERATIONS.items()
    if spec.family not in ("filter", "verify", "choose") or spec.category in _NOT_ATTRIBUTE_CATEGORIES
    or spec.category is None)


class CategoryTable:
    """Attribute value -> the categories it was seen in, most often first (ties alphabetical).

    Build it with :meth:`mine` (questions' programs), :meth:`from_mapping` (a GQA mapping file) and
    :meth:`merged`; :meth:`values` reads an object's values in one category.
    """

    __slots__ = ("_categories", "counts")

    def __init__(self, counts: Mapping[str, Mapping[str, int]] | None = None):
        self.counts: dict[str, Counter] = {value: Counter(by_category) for value, by_category in (counts or {}).items()}
        self._categories: dict[str, tuple[str, ...]] = {
            value: tuple(sorted(by_category, key=lambda c, b=by_category: (-b[c], c)))
            for value, by_category in self.counts.items()
        }

    def __len__(self) -> int:
        return len(self.counts)

    def __contains__(self, value: str) -> bool:
        return value in self._categories

    def known(self) -> frozenset[str]:
        return frozenset(self._categories)

    def __eq__(self, other) -> bool:
        return isinstance(other, CategoryTable) and self.counts == other.counts

    def categories_of(self, value: str) -> tuple[str, ...]:
        return self._categories.get(value, ())

    def values(self, obj: SceneObject, category: str) -> tuple[str, ...]:
        """The object's values seen in ``category``: those mostly seen there first, then scene-graph order."""
        categories = self._categories
        found = []  # a loop, not a comprehension: this runs for every query of every question
        for value in obj.attributes:
            if category in categories.get(value, ()):
                found.append(value)
        if len(found) > 1:
            found.sort(key=lambda value: categories[value][0] != category)
        return tuple(found)

    def primary(self) -> dict[str, str]:
        """Value -> its most frequent category, sorted by value (the evaluation's attribute table)."""
        return {value: categories[0] for value, categories in sorted(self._categories.items())}

    def to_json(self) -> dict:
        return {value: dict(sorted(counts.items())) for value, counts in sorted(self.counts.items())}

    @classmethod
    def mine(cls, questions: Iterable[Mapping]) -> CategoryTable:
        """Count, over raw GQA question records, which category each attribute value is used in.

        One pass over every step of every program, so it is kept lean: the (value, category) pairs of
        a step are cached by its (operation, argument), which GQA repeats across questions.
        """
        pairs: dict[tuple[str, str], int] = {}
        by_step: dict[tuple, tuple] = {}
        silent = _SILENT_OPERATIONS
        for record in questions:
            try:
                semantic = record["semantic"]
                for step in semantic:
                    operation = step["operation"]
                    if operation in silent:
                        continue
                    key = (operation, step["argument"])
                    used = by_step.get(key)
                    if used is None:
                        used = by_step[key] = _used_values(*key) if all(type(part) is str for part in key) else ()
                    for pair in used:
                        pairs[pair] = pairs.get(pair, 0) + 1
                last = semantic[-1]
                if last["operation"] != "query":
                    continue
                category, answer = last["argument"], record.get("answer")
            except (KeyError, TypeError, IndexError, AttributeError):  # a malformed record states nothing
                continue
            # The answer of a final query is a value of its category.
            if type(category) is str and type(answer) is str:
                category, answer = category.strip(), answer.strip()
                if category and answer and category not in _NOT_ATTRIBUTE_CATEGORIES:
                    pairs[(answer, category)] = pairs.get((answer, category), 0) + 1
        counts: dict[str, dict[str, int]] = {}
        for (value, category), count in pairs.items():
            counts.setdefault(value, {})[category] = count
        return cls(counts)

    @classmethod
    def from_mapping(cls, path: str | os.PathLike) -> CategoryTable:
        """GQA's own mapping form ``{"categorized": {category: [values]}}``, ``{category: [values]}``
        or a flat ``{value: category}``; a malformed file raises ValueError naming it."""
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: cannot read attribute categories ({error})") from None
        if isinstance(data, dict) and isinstance(data.get("categorized"), dict):
            data = data["categorized"]
        counts: dict[str, Counter] = {}
        if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
            for category, values in data.items():
                for value in values:
                    if isinstance(value, str):
                        counts.setdefault(value.strip(), Counter())[category] += 1
        elif isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
            for value, category in data.items():
                counts.setdefault(value.strip(), Counter())[category] += 1
        else:
            raise ValueError(f"{path}: expected {{'categorized': {{category: [values]}}}}, "
                             "{category: [values]} or {value: category}")
        return cls(counts)

    def merged(self, other: CategoryTable) -> CategoryTable:
        counts = {value: Counter(by_category) for value, by_category in self.counts.items()}
        for value, by_category in other.counts.items():
            counts.setdefault(value, Counter()).update(by_category)
        return CategoryTable(counts)


def _used_values(operation: str, argument: str) -> tuple[tuple[str, str], ...]:
    """The (value, category) pairs a filter/verify/choose step states: ``filter color: white`` -> white/color."""
    family, _, category = operation.partition(" ")
    if not category or category in _NOT_ATTRIBUTE_CATEGORIES or family not in ("filter", "verify", "choose"):
        return ()
    if family == "choose":
        return tuple((part.strip(), category) for part in argument.split("|") if part.strip())
    value = argument.strip()
    if value.startswith("not(") and value.endswith(")"):
        value = value[4:-1].strip()
    return ((value, category),) if value else ()


POSITION_CATEGORIES = frozenset({"hposition", "vposition"})
# Categories that, asked of ``select: scene``, read the scene graph's own fields.
SCENE_CATEGORIES = frozenset({"location", "place", "room", "weather"})
# Places that are indoors (GQA's ``location`` question: "Is it indoors or outdoors?").
INDOOR_PLACES = frozenset(
    ["kitchen", "living room", "bedroom", "bathroom", "office", "restaurant", "store", "shop", "classroom", "hotel room", "lobby", "hallway", "dining room", "museum", "supermarket", "library", "garage", "church"]
)


def horizontal_position(obj: SceneObject, width: int) -> str:
    """``left`` / ``middle`` / ``right`` of the image by the object's centre x, in thirds."""
    centre = obj.x + obj.w / 2
    return "left" if centre < width / 3 else "right" if centre > 2 * width / 3 else "middle"


def vertical_position(obj: SceneObject, height: int) -> str:
    """``top`` / ``middle`` / ``bottom`` of the image by the object's centre y, in thirds."""
    centre = obj.y + obj.h / 2
    return "top" if centre < height / 3 else "bottom" if centre > 2 * height / 3 else "middle"


def position(obj: SceneObject, scene: SceneGraph, category: str) -> str:
    if category == "hposition":
        return horizontal_position(obj, scene.width)
    return vertical_position(obj, scene.height)


def scene_value(scene: SceneGraph, category: str) -> str | None:
    """The whole image's value in a scene category, or None when the scene graph does not say."""
    if category == "weather":
        return scene.weather
    location = scene.location
    if location is None:
        return None
    if category == "location":
        if location in ("indoors", "outdoors"):
            return location
        return "indoors" if location in INDOOR_PLACES else "outdoors"
    if location in ("indoors", "outdoors"):
        return None  # place / room asked of a scene that only records indoors/outdoors
    return location


# --- comparatives ----------------------------------------------------------------------------------

CHILDREN = frozenset({"boy", "girl", "child", "kid", "baby", "toddler"})
ADULTS = frozenset({"man", "woman", "lady", "gentleman", "person", "guy", "adult"})
SIZE_RANK = {"tiny": 0, "little": 1, "small": 1, "large": 2, "big": 2, "huge": 3, "giant": 3}
HEALTHY_FOODS = frozenset({"apple", "banana", "salad", "broccoli", "carrot", "orange", "vegetable",
                           "vegetables", "fruit", "tomato", "lettuce", "grapes", "spinach"})
UNHEALTHY_FOODS = frozenset({"pizza", "cake", "donut", "sandwich", "fries", "hot dog", "burger",
                             "hamburger", "cookie", "candy", "dessert", "chocolate"})
# comparative -> (the quantity it orders by, +1 when "more" means larger, -1 when it means smaller)
COMPARATIVE_SCALES: dict[str, tuple[str, int]] = {
    "older": ("age", 1), "younger": ("age", -1),
    "taller": ("height", 1), "shorter": ("height", -1),
    "larger": ("size", 1), "smaller": ("size", -1),
    "healthier": ("health", 1), "less healthy": ("health", -1),
    "higher": ("elevation", 1), "lower": ("elevation", -1),
}


def comparative_key(obj: SceneObject, comparative: str) -> tuple[float | None, str | None]:
    """A number growing with the comparative's quantity, and the attribute it came from (if any).

    Age: children < young adults < adults < old adults (name first, then ``young``/``old``);
    size: the size attribute; health: the food's name; height: box height; elevation: minus the
    box centre's y (images grow downwards).
    """
    scale = COMPARATIVE_SCALES[comparative][0]
    if scale == "age":
        if obj.name in CHILDREN:
            return 0.0, None
        if obj.name in ADULTS:
            if "old" in obj.attributes or "elderly" in obj.attributes:
                return 3.0, "old"
            if "young" in obj.attributes:
                return 1.0, "young"
            return 2.0, None
        return None, None
    if scale == "size":
        sizes = [value for value in obj.attributes if value in SIZE_RANK]
        return (float(SIZE_RANK[sizes[0]]), sizes[0]) if len(sizes) == 1 else (None, None)
    if scale == "health":
        if obj.name in HEALTHY_FOODS or "healthy" in obj.attributes:
            return 1.0, None
        if obj.name in UNHEALTHY_FOODS or "unhealthy" in obj.attributes:
            return 0.0, None
        return None, None
    if scale == "height":
        return float(obj.h), None
    return -(obj.y + obj.h / 2), None
