"""Draw a scene graph as a picture a reader can check questions against.

Each object is a simple shape for its kind inside its box (a person is a head, a body, arms and
legs; a vehicle a body on wheels; a tree a trunk and a crown ...), filled with its colour attribute,
patterned when it has a pattern, and labelled with its name in small type. The background shows the
location (wall and floor indoors, sky and ground outdoors) and the weather.

Objects are drawn back to front: each group that stands on the ground (a table and the things on
it, a person and what they wear and hold, a seat and its sitter) at its depth, farthest first, and
within a group the keeper before what it keeps. The renderer can also return a per-pixel object mask
(which object each pixel shows), so tests and galleries can check that everything is visible.
Drawing is deterministic: the same scene always gives the same pixels, and PIL writes PNGs without
timestamps.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rexlib.world.ontology import (
    COLOR_RGB,
    GARMENT_LAYER,
    KIND_OF_NAME,
    LOCATIONS,
    SEAT_LEVEL,
    SKIN_RGB,
    person_parts,
    support_parents,
)

Box = tuple[float, float, float, float]
NEUTRAL_RGB = (150, 150, 160)
# Within a group, what a keeper keeps is drawn in this order: the sitter, then garments, then held things.
KEPT_ORDER = {"sitting on": 0, "riding": 0, "on": 0, "wearing": 1, "holding": 2, "eating": 2}
# Relations whose kept object may cover its keeper without hiding it (a shirt on a man, a cup in his hand).
CARRIED = ("wearing", "holding", "eating")
PANTS_RGB, SHIRT_RGB = (70, 70, 90), (120, 130, 150)


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default(size=10)


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(c * factor))) for c in rgb)


class _Ink:
    """An ImageDraw stand-in that paints every shape in one value (for the object mask) and no text."""

    def __init__(self, draw: ImageDraw.ImageDraw, ink: int):
        self.draw, self.ink = draw, ink

    def __getattr__(self, method_name: str):
        method = getattr(self.draw, method_name)

        def paint(*args, **options):
            if method_name == "text":
                return None
            for key in ("fill", "outline"):
                if options.get(key) is not None:
                    options[key] = self.ink
            return method(*args, **options)

        return paint


def drawing_order(scene: dict) -> list[str]:
    """Object ids back to front: ground groups by the bottom of their keeper, each keeper before what it keeps."""
    objects = scene["objects"]
    parents = support_parents(objects)
    kept: dict[str, list[tuple[int, int, int, str]]] = {}
    for subject_id, obj in objects.items():
        for edge in obj["relations"]:
            relation, other = edge["name"], edge["object"]
            if relation not in KEPT_ORDER or other not in objects:
                continue
            child, parent = (subject_id, other) if relation in ("on", "sitting on", "riding") else (other, subject_id)
            if parents.get(child) == parent:
                layer = GARMENT_LAYER.get(objects[child]["name"], 0)
                kept.setdefault(parent, []).append((KEPT_ORDER[relation], layer, int(child), child))
    roots = sorted((object_id for object_id in objects if object_id not in parents),
                   key=lambda object_id: (objects[object_id]["y"] + objects[object_id]["h"], int(object_id)))
    order: list[str] = []
    seen: set[str] = set()

    def visit(object_id: str) -> None:
        if object_id in seen:
            return
        seen.add(object_id)
        order.append(object_id)
        for *_rank, child in sorted(set(kept.get(object_id, ()))):
            visit(child)

    for root in roots:
        visit(root)
    for object_id in objects:  # a cycle of relations (never generated) still draws everything
        visit(object_id)
    return order


def _pattern(draw, box: Box, pattern: str, color: tuple[int, int, int]) -> None:
    x1, y1, x2, y2 = box
    ink = _shade(color, 0.55) if sum(color) > 250 else _shade((255, 255, 255), 0.9)
    step = max(4, int(min(x2 - x1, y2 - y1) / 5))
    if pattern == "striped":
        for y in range(int(y1) + step // 2, int(y2), step):
            draw.line((x1, y, x2, y), fill=ink, width=2)
    elif pattern == "dotted":
        for y in range(int(y1) + step // 2, int(y2) - 1, step):
            for x in range(int(x1) + step // 2, int(x2) - 1, step):
                draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=ink)
    elif pattern == "checkered":
        for row, y in enumerate(range(int(y1), int(y2), step)):
            for column, x in enumerate(range(int(x1), int(x2), step)):
                if (row + column) % 2 == 0:
                    draw.rectangle((x, y, min(x + step, x2), min(y + step, y2)), fill=ink)


def _person(draw, obj: dict, box: Box) -> None:
    x1, y1, x2, y2 = box
    parts = person_parts(x1, y1, x2 - x1, y2 - y1, "sitting" in obj["attributes"])
    skin = SKIN_RGB
    for arm in ("arm", "arm2", "forearm"):
        if arm in parts:
            draw.rectangle(parts[arm], fill=skin, outline=_shade(skin, 0.7))
    draw.rectangle(parts["torso"], fill=SHIRT_RGB)
    lx1, ly1, lx2, ly2 = parts["legs"]
    if "arm2" in parts:  # standing: two legs
        leg = 0.45 * (lx2 - lx1)
        draw.rectangle((lx1, ly1, lx1 + leg, ly2), fill=PANTS_RGB)
        draw.rectangle((lx2 - leg, ly1, lx2, ly2), fill=PANTS_RGB)
    else:  # sitting: thighs forward
        draw.rectangle((lx1, ly1, lx2, ly2), fill=PANTS_RGB)
    draw.ellipse(parts["head"], fill=skin, outline=(90, 60, 40))


def _animal(draw, name: str, box: Box, color, dark) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if name == "bird":
        draw.ellipse((x1, y1 + h * 0.3, x2 - w * 0.25, y2), fill=color, outline=dark)
        draw.ellipse((x2 - w * 0.4, y1, x2, y1 + h * 0.55), fill=color, outline=dark)
        draw.polygon([(x1 + w * 0.2, y1 + h * 0.5), (x1 + w * 0.55, y1 + h * 0.05), (x1 + w * 0.6, y1 + h * 0.55)],
                     fill=dark)
        return
    for fraction in (0.12, 0.27, 0.52, 0.66):  # legs
        draw.rectangle((x1 + w * fraction, y1 + h * 0.6, x1 + w * (fraction + 0.09), y2), fill=dark)
    draw.ellipse((x1, y1 + h * 0.25, x2 - w * 0.15, y1 + h * 0.78), fill=color, outline=dark)
    draw.rectangle((x2 - w * 0.3, y1 + h * 0.2, x2 - w * 0.16, y1 + h * 0.5), fill=color)  # neck
    draw.ellipse((x2 - w * 0.34, y1, x2, y1 + h * 0.42), fill=color, outline=dark)
    if name == "elephant":
        draw.rectangle((x2 - w * 0.1, y1 + h * 0.3, x2, y1 + h * 0.85), fill=color, outline=dark)


def _furniture(draw, name: str, box: Box, color, dark) -> Box:
    """Draws the piece; returns the part a pattern goes on."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    level = y1 + SEAT_LEVEL.get(name, 0.0) * h
    if name == "chair":
        draw.rectangle((x1, y1, x1 + w * 0.16, level + h * 0.12), fill=dark)
        draw.rectangle((x1, level, x2, level + h * 0.14), fill=color, outline=dark)
        draw.rectangle((x1, level, x1 + w * 0.14, y2), fill=dark)
        draw.rectangle((x2 - w * 0.14, level, x2, y2), fill=dark)
        return (x1, level, x2, level + h * 0.14)
    if name == "couch":
        draw.rounded_rectangle((x1 + w * 0.04, y1, x2 - w * 0.04, level + h * 0.15), radius=max(2, h / 8),
                               fill=_shade(color, 0.85), outline=dark)
        draw.rectangle((x1, level, x2, y2 - h * 0.1), fill=color, outline=dark)
        draw.rectangle((x1, y1 + h * 0.25, x1 + w * 0.08, y2 - h * 0.1), fill=dark)
        draw.rectangle((x2 - w * 0.08, y1 + h * 0.25, x2, y2 - h * 0.1), fill=dark)
        draw.rectangle((x1 + w * 0.1, y2 - h * 0.1, x1 + w * 0.16, y2), fill=dark)
        draw.rectangle((x2 - w * 0.16, y2 - h * 0.1, x2 - w * 0.1, y2), fill=dark)
        return (x1 + w * 0.08, level, x2 - w * 0.08, y2 - h * 0.1)
    if name == "bed":
        draw.rectangle((x1, y1, x1 + w * 0.08, y2), fill=dark)
        draw.rounded_rectangle((x1 + w * 0.08, level, x2, y2 - h * 0.15), radius=max(2, h / 10), fill=color,
                               outline=dark)
        draw.rectangle((x1 + w * 0.1, level - h * 0.12, x1 + w * 0.3, level + h * 0.05), fill=(240, 240, 235))
        draw.rectangle((x2 - w * 0.07, y2 - h * 0.15, x2, y2), fill=dark)
        return (x1 + w * 0.3, level, x2, y2 - h * 0.15)
    if name == "shelf":
        draw.rectangle((x1, y1, x2, y2), fill=color, outline=dark, width=2)
        for fraction in (1 / 3, 2 / 3):
            draw.line((x1, y1 + h * fraction, x2, y1 + h * fraction), fill=dark, width=3)
        return box
    if name == "lamp":
        draw.polygon([(x1 + w * 0.2, y1), (x2 - w * 0.2, y1), (x2, y1 + h * 0.35), (x1, y1 + h * 0.35)], fill=color,
                     outline=dark)
        draw.rectangle((x1 + w * 0.42, y1 + h * 0.35, x2 - w * 0.42, y2 - h * 0.06), fill=dark)
        draw.ellipse((x1 + w * 0.15, y2 - h * 0.1, x2 - w * 0.15, y2), fill=dark)
        return box
    top = max(4.0, h * (0.3 if name == "bench" else 0.2))  # table, desk, bench: a top on legs
    draw.rectangle((x1, y1, x2, y1 + top), fill=color, outline=dark)
    draw.rectangle((x1 + w * 0.04, y1 + top, x1 + w * 0.14, y2), fill=dark)
    draw.rectangle((x2 - w * 0.14, y1 + top, x2 - w * 0.04, y2), fill=dark)
    if name == "desk":
        draw.rectangle((x2 - w * 0.4, y1 + top, x2 - w * 0.14, y1 + h * 0.75), fill=color, outline=dark)
    return (x1, y1, x2, y1 + top)


def _vehicle(draw, name: str, box: Box, color, dark) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    tyre, glass = (30, 30, 30), (190, 220, 240)
    if name == "boat":
        draw.rectangle((x1 + w * 0.35, y1, x1 + w * 0.6, y1 + h * 0.45), fill=(240, 240, 235), outline=dark)
        draw.polygon([(x1, y1 + h * 0.4), (x2, y1 + h * 0.4), (x2 - w * 0.15, y2), (x1 + w * 0.15, y2)], fill=color,
                     outline=dark)
    elif name in ("bicycle", "motorcycle"):
        radius = min(w * 0.25, h * 0.42)
        for cx in (x1 + radius, x2 - radius):
            draw.ellipse((cx - radius, y2 - 2 * radius, cx + radius, y2), fill=tyre)
            draw.ellipse((cx - radius * 0.55, y2 - radius * 1.55, cx + radius * 0.55, y2 - radius * 0.45),
                         fill=(200, 200, 200))
        if name == "motorcycle":
            draw.rounded_rectangle((x1 + radius * 0.8, y1 + h * 0.2, x2 - radius * 0.8, y2 - radius * 0.7),
                                   radius=max(2, h / 8), fill=color, outline=dark)
        draw.line((x1 + radius, y2 - radius, x1 + w * 0.5, y1 + h * 0.15, x2 - radius, y2 - radius), fill=color,
                  width=max(3, int(h / 12)))
        draw.rectangle((x1 + w * 0.35, y1, x1 + w * 0.6, y1 + h * 0.15), fill=dark)  # saddle
        draw.line((x2 - radius, y2 - radius, x2 - w * 0.15, y1), fill=dark, width=3)  # handlebar
    else:  # car, bus, truck
        radius = h * 0.18
        if name == "truck":
            draw.rectangle((x1, y1, x2 - w * 0.3, y2 - radius), fill=color, outline=dark)
            draw.rectangle((x2 - w * 0.28, y1 + h * 0.25, x2, y2 - radius), fill=_shade(color, 0.85), outline=dark)
            draw.rectangle((x2 - w * 0.2, y1 + h * 0.32, x2 - w * 0.04, y1 + h * 0.5), fill=glass)
        elif name == "bus":
            draw.rounded_rectangle((x1, y1, x2, y2 - radius), radius=max(2, h / 8), fill=color, outline=dark)
            for k in range(5):
                draw.rectangle((x1 + w * (0.06 + 0.18 * k), y1 + h * 0.12, x1 + w * (0.18 + 0.18 * k), y1 + h * 0.4),
                               fill=glass)
        else:
            draw.polygon([(x1 + w * 0.22, y1), (x2 - w * 0.28, y1), (x2 - w * 0.12, y1 + h * 0.4),
                          (x1 + w * 0.08, y1 + h * 0.4)], fill=color, outline=dark)
            draw.rounded_rectangle((x1, y1 + h * 0.38, x2, y2 - radius), radius=max(2, h / 8), fill=color, outline=dark)
            draw.polygon([(x1 + w * 0.26, y1 + h * 0.06), (x2 - w * 0.31, y1 + h * 0.06), (x2 - w * 0.2, y1 + h * 0.36),
                          (x1 + w * 0.16, y1 + h * 0.36)], fill=glass)
        for cx in (x1 + w * 0.2, x2 - w * 0.2):
            draw.ellipse((cx - radius * 1.2, y2 - 2 * radius, cx + radius * 1.2, y2), fill=tyre)


def _plant(draw, name: str, box: Box, color, dark) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if name == "tree":
        draw.rectangle((x1 + w * 0.4, y1 + h * 0.5, x2 - w * 0.4, y2), fill=(110, 75, 40))
        draw.ellipse((x1, y1, x2, y1 + h * 0.68), fill=color, outline=dark)
    elif name == "flower":
        draw.rectangle((x1 + w * 0.42, y1 + h * 0.4, x2 - w * 0.42, y2), fill=(50, 130, 50))
        draw.ellipse((x1, y1 + h * 0.55, x1 + w * 0.5, y1 + h * 0.75), fill=(50, 130, 50))
        draw.ellipse((x1, y1, x2, y1 + h * 0.5), fill=color, outline=dark)
    else:
        draw.ellipse((x1, y1, x2, y2), fill=color, outline=dark)


def _kitchenware(draw, name: str, box: Box, color, dark) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if name == "plate":
        draw.ellipse((x1, y1, x2, y2), fill=color, outline=dark)
    elif name == "bowl":
        draw.chord((x1, y1 - h, x2, y2), 0, 180, fill=color, outline=dark)
    elif name == "bottle":
        draw.rectangle((x1 + w * 0.3, y1, x2 - w * 0.3, y1 + h * 0.35), fill=color, outline=dark)
        draw.rounded_rectangle((x1, y1 + h * 0.3, x2, y2), radius=max(1, w / 4), fill=color, outline=dark)
    elif name in ("fork", "knife"):
        draw.rectangle((x1, y1, x2, y2), fill=color, outline=dark)
    elif name == "vase":
        draw.polygon([(x1 + w * 0.25, y1), (x2 - w * 0.25, y1), (x2, y1 + h * 0.55), (x2 - w * 0.15, y2),
                      (x1 + w * 0.15, y2), (x1, y1 + h * 0.55)], fill=color, outline=dark)
    elif name == "pot":
        draw.rectangle((x1 + w * 0.1, y1 + h * 0.15, x2 - w * 0.1, y2), fill=color, outline=dark)
        draw.rectangle((x1, y1 + h * 0.15, x2, y1 + h * 0.32), fill=dark)
    else:  # cup
        draw.rectangle((x1, y1, x2 - w * 0.25, y2), fill=color, outline=dark)
        draw.arc((x2 - w * 0.45, y1 + h * 0.2, x2, y1 + h * 0.65), 270, 90, fill=dark, width=2)


def _clothing(draw, name: str, box: Box, color, dark) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if name == "hat":
        draw.rectangle((x1 + w * 0.15, y1, x2 - w * 0.15, y2), fill=color, outline=dark)
        draw.rectangle((x1, y2 - h * 0.3, x2, y2), fill=dark)
    elif name == "helmet":
        draw.chord((x1, y1, x2, y2 + h), 180, 360, fill=color, outline=dark)
    elif name == "dress":
        draw.polygon([(x1 + w * 0.1, y1), (x2 - w * 0.1, y1), (x2, y2), (x1, y2)], fill=color, outline=dark)
    else:  # shirt, jacket, scarf
        draw.rectangle((x1, y1, x2, y2), fill=color, outline=dark)
        if name == "jacket":
            draw.line((x1 + w / 2, y1, x1 + w / 2, y2), fill=dark, width=2)


def _food(draw, name: str, box: Box, color, dark) -> None:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if name in ("cake", "sandwich"):
        draw.rectangle((x1, y1, x2, y2), fill=color, outline=dark)
        draw.line((x1, y1 + h * 0.45, x2, y1 + h * 0.45), fill=dark, width=2)
    elif name == "carrot":
        draw.polygon([(x1, y1), (x2, y1 + h / 2), (x1, y2)], fill=color, outline=dark)
    elif name == "broccoli":
        draw.rectangle((x1 + w * 0.38, y1 + h * 0.5, x2 - w * 0.38, y2), fill=(90, 150, 70))
        draw.ellipse((x1, y1, x2, y1 + h * 0.65), fill=color, outline=dark)
    elif name in ("salad", "banana"):  # a heap, a curve: the lower half of an ellipse
        draw.chord((x1, y1 - h, x2, y2), 0, 180, fill=color, outline=dark)
    else:  # pizza, apple, donut
        draw.ellipse((x1, y1, x2, y2), fill=color, outline=dark)
        if name == "donut":
            draw.ellipse((x1 + w * 0.38, y1 + h * 0.38, x2 - w * 0.38, y2 - h * 0.38), fill=dark)


SHAPES = {"animal": _animal, "vehicle": _vehicle, "plant": _plant, "kitchenware": _kitchenware,
          "clothing": _clothing, "food": _food}


def _draw_object(draw, obj: dict) -> None:
    name, kind = obj["name"], KIND_OF_NAME[obj["name"]]
    # Shapes keep inside the box's pixels [x, x + w - 1].
    box = (obj["x"], obj["y"], obj["x"] + obj["w"] - 1, obj["y"] + obj["h"] - 1)
    color = next((COLOR_RGB[v] for v in obj["attributes"] if v in COLOR_RGB), NEUTRAL_RGB)
    dark = _shade(color, 0.6)
    patterned = box
    if kind == "person":
        _person(draw, obj, box)
    elif kind == "furniture":
        patterned = _furniture(draw, name, box, color, dark)
    else:
        SHAPES[kind](draw, name, box, color, dark)
    pattern = next((v for v in obj["attributes"] if v in ("striped", "dotted", "checkered")), None)
    if pattern and kind in ("clothing", "furniture"):
        x1, y1, x2, y2 = patterned
        _pattern(draw, (x1 + 1, y1 + 1, x2 - 1, y2 - 1), pattern, color)
    draw.text((box[0] + 2, box[1] + 1), name, fill=(0, 0, 0), font=_font())


def _background(scene: dict) -> Image.Image:
    width, height = scene["width"], scene["height"]
    sky, ground, _kinds, outdoor = LOCATIONS[scene.get("location", "kitchen")]
    if scene.get("weather") in ("cloudy", "overcast"):
        sky = _shade(sky, 0.8)
    image = Image.new("RGB", (width, height), sky)
    draw = ImageDraw.Draw(image)
    horizon = int(height * (0.42 if outdoor else 0.5))
    draw.rectangle((0, horizon, width, height), fill=ground)
    if scene.get("weather") in ("sunny", "clear"):
        draw.ellipse((width - 60, 12, width - 24, 48), fill=(250, 220, 80))
    return image


def object_mask(scene: dict) -> np.ndarray:
    """(height, width) uint8: 0 where the picture shows background, k + 1 where it shows the k-th
    object of ``scene["objects"]`` (in its order); label text belongs to no object."""
    ids = list(scene["objects"])
    if len(ids) > 254:
        raise ValueError(f"an object mask holds at most 254 objects, the scene has {len(ids)}")
    position = {object_id: k for k, object_id in enumerate(ids)}
    mask = Image.new("L", (scene["width"], scene["height"]), 0)
    draw = ImageDraw.Draw(mask)
    for object_id in drawing_order(scene):
        _draw_object(_Ink(draw, position[object_id] + 1), scene["objects"][object_id])
    return np.asarray(mask)


def silhouette(obj: dict) -> np.ndarray:
    """(h, w) bool over the object's box: the pixels it covers when drawn alone."""
    mask = Image.new("L", (obj["w"], obj["h"]), 0)
    _draw_object(_Ink(ImageDraw.Draw(mask), 1), {**obj, "x": 0, "y": 0})
    return np.asarray(mask) > 0


def render_scene(scene: dict, mask: bool = False):
    """The scene as an RGB picture of its width and height; with ``mask``, ``(picture, object_mask(scene))``."""
    image = _background(scene)
    draw = ImageDraw.Draw(image)
    for object_id in drawing_order(scene):
        _draw_object(draw, scene["objects"][object_id])
    return (image, object_mask(scene)) if mask else image


def visibility(scene: dict, mask: np.ndarray | None = None) -> dict[str, tuple[float, float]]:
    """object id -> (share of its silhouette showing its own pixels, share showing its own pixels or
    those of what it wears or holds). The silhouette is the object drawn alone; a man in a jacket
    shows the jacket where his torso is, and is not hidden by it."""
    objects = scene["objects"]
    position = {object_id: k + 1 for k, object_id in enumerate(objects)}
    full = object_mask(scene) if mask is None else mask
    shares = {}
    for object_id, obj in objects.items():
        alone = silhouette(obj)
        shown = full[obj["y"]:obj["y"] + obj["h"], obj["x"]:obj["x"] + obj["w"]]
        carried = [position[edge["object"]] for edge in obj["relations"]
                   if edge["name"] in CARRIED and edge["object"] in objects]
        area = max(1, int(alone.sum()))
        own = int((alone & (shown == position[object_id])).sum())
        dressed = int((alone & np.isin(shown, [position[object_id], *carried])).sum())
        shares[object_id] = (own / area, dressed / area)
    return shares
