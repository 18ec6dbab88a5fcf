"""What the executor knows about attribute values: categories, positions, places, comparatives.

Scene graphs store attributes as bare values (``["white", "wood"]``), so ``query color`` must know
which of an object's values is a colour. :data:`CATEGORY_VALUES` is the project's own table of GQA's
common values per category (written for this project, covering the embedded world's values);
``verify``/``filter``/``choose`` need no table, they only look for the value itself.
Positions and comparatives follow docs/contracts.md ("Conventions").
"""

from __future__ import annotations

from rexlib.gqa import SceneGraph, SceneObject

CATEGORY_VALUES: dict[str, frozenset[str]] = {
    category: frozenset(values.split(","))
    for category, values in {
        "color": "white,black,red,blue,green,yellow,brown,gray,grey,pink,purple,orange,tan,beige,silver,gold,"
                 "light blue,dark blue,navy,maroon,teal,khaki,cream colored,light brown,dark brown,blond,"
                 "dark,light colored,dark colored,black and white,brunette,ivory,bronze",
        "material": "wood,wooden,metal,plastic,glass,ceramic,leather,brick,concrete,stone,porcelain,steel,"
                    "stainless steel,iron,marble,cloth,paper,rubber,wicker,granite,aluminum,cardboard",
        "size": "tiny,small,little,large,big,huge,giant",
        "shape": "round,square,rectangular,triangular,oval,octagonal,circular",
        "pattern": "striped,dotted,checkered,plaid,floral,spotted",
        "pose": "standing,sitting,walking,lying,running,jumping,bending,squatting,kneeling",
        "activity": "playing,reading,talking,drinking,waiting,resting,eating,sleeping,posing,cooking",
        "age": "young,old,little,adult,elderly",
        "gender": "male,female",
        "cleanliness": "clean,dirty,messy,dusty",
        "flavor": "chocolate,vanilla,strawberry",
        "height": "tall,short",
        "length": "long,short",
        "width": "wide,narrow",
        "thickness": "thick,thin",
        "fatness": "fat,skinny,thin",
        "weight": "heavy,light",
        "hardness": "hard,soft",
        "texture": "smooth,rough",
        "state": "open,closed,empty,full,on,off",
        "realism": "real,fake",
        "opaqness": "opaque,transparent,translucent",
        "brightness": "bright,dark",
        "depth": "deep,shallow",
        "tone": "light,dark",
        "race": "asian,caucasian",
        "company": "alone,together",
        "face expression": "smiling,happy,sad,angry,serious,surprised",
        "sportActivity": "skiing,surfing,skateboarding,snowboarding,swimming,batting,pitching",
        "weather": "sunny,cloudy,clear,overcast,rainy,snowy,foggy,stormy",
    }.items()
}

POSITION_CATEGORIES = frozenset({"hposition", "vposition"})
# Categories that, asked of ``select: scene``, read the scene graph's own fields.
SCENE_CATEGORIES = frozenset({"location", "place", "room", "weather"})
# Places that are indoors (GQA's ``location`` question: "Is it indoors or outdoors?").
INDOOR_PLACES = frozenset(
    ["kitchen", "living room", "bedroom", "bathroom", "office", "restaurant", "store", "shop", "classroom", "hotel room", "lobby", "hallway", "dining room", "museum", "supermarket", "library", "garage", "church"]
)


def values_in_category(obj: SceneObject, category: str) -> tuple[str, ...]:
    """The object's attribute values that belong to ``category`` (in the scene graph's order)."""
    known = CATEGORY_VALUES.get(category)
    if known is None:
        return ()
    return tuple(value for value in obj.attributes if value in known)


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


# Categories an attribute value is filed under first when CATEGORY_VALUES lists it in several ("dark":
# color, brightness, tone; "little": size, age): the ones GQA asks about most, then the rest in the
# table's own (fixed) order. So "dark" -> color, "little" -> size, "short" -> height.
PREFERRED_CATEGORIES = ("color", "material", "size", "shape")


def attribute_categories() -> dict[str, str]:
    """Attribute value -> its one category, sorted by value (the evaluation's attribute recall table).

    Derived from :data:`CATEGORY_VALUES`, so it names exactly the categories the executor reads;
    a value in several categories gets the first in :data:`PREFERRED_CATEGORIES` + table order.
    """
    order = PREFERRED_CATEGORIES + tuple(c for c in CATEGORY_VALUES if c not in PREFERRED_CATEGORIES)
    table: dict[str, str] = {}
    for category in order:
        for value in CATEGORY_VALUES[category]:
            table.setdefault(value, category)
    return dict(sorted(table.items()))
