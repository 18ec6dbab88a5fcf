"""Draw a scene graph as a picture a reader can check questions against.

Each object is a simple shape for its kind inside its box (a person is a head and a body, a vehicle a
body on wheels, a tree a trunk and a crown ...), filled with its colour attribute, patterned when it
has a pattern, and labelled with its name in small type. The background shows the location (wall
and floor indoors, sky and ground outdoors) and the weather. Drawing is deterministic: the same
scene always gives the same pixels, and PIL writes PNGs without timestamps.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from rexlib.world.ontology import COLOR_RGB, KIND_OF_NAME, LOCATIONS, SKIN_RGB

Box = tuple[float, float, float, float]
LAYERED_RELATIONS = {"wearing": "object", "holding": "object", "eating": "object", "on": "subject",
                     "sitting on": "subject", "riding": "subject"}
NEUTRAL_RGB = (150, 150, 160)


@lru_cache(maxsize=1)
def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default(size=10)


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(c * factor))) for c in rgb)


def _drawing_order(scene: dict) -> list[str]:
    """Far objects first (by box bottom); a thing worn, held or resting on another right after it."""
    objects = scene["objects"]
    depth = {object_id: obj["y"] + obj["h"] for object_id, obj in objects.items()}
    for subject_id, obj in objects.items():
        for edge in obj["relations"]:
            layered = LAYERED_RELATIONS.get(edge["name"])
            if layered == "object" and edge["object"] in depth:
                depth[edge["object"]] = max(depth[edge["object"]], depth[subject_id] + 0.5)
            elif layered == "subject" and edge["object"] in depth:
                depth[subject_id] = max(depth[subject_id], depth[edge["object"]] + 0.5)
    return sorted(objects, key=lambda object_id: (depth[object_id], int(object_id)))


def _pattern(draw: ImageDraw.ImageDraw, box: Box, pattern: str, color: tuple[int, int, int]) -> None:
    x1, y1, x2, y2 = box
    ink = _shade(color, 0.55) if sum(color) > 250 else _shade((255, 255, 255), 0.9)
    step = max(4, int(min(x2 - x1, y2 - y1) / 5))
    if pattern == "striped":
        for y in range(int(y1) + step // 2, int(y2), step):
            draw.line((x1, y, x2, y), fill=ink, width=2)
    elif pattern == "dotted":
        for y in range(int(y1) + step // 2, int(y2), step):
            for x in range(int(x1) + step // 2, int(x2), step):
                draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=ink)
    elif pattern == "checkered":
        for row, y in enumerate(range(int(y1), int(y2), step)):
            for column, x in enumerate(range(int(x1), int(x2), step)):
                if (row + column) % 2 == 0:
                    draw.rectangle((x, y, min(x + step, x2), min(y + step, y2)), fill=ink)


def _draw_object(draw: ImageDraw.ImageDraw, obj: dict) -> None:
    name, kind = obj["name"], KIND_OF_NAME[obj["name"]]
    x1, y1 = obj["x"], obj["y"]
    x2, y2 = x1 + obj["w"], y1 + obj["h"]
    w, h = obj["w"], obj["h"]
    color = next((COLOR_RGB[v] for v in obj["attributes"] if v in COLOR_RGB), NEUTRAL_RGB)
    dark = _shade(color, 0.6)
    if kind == "person":
        head = min(w, h * 0.22)
        draw.ellipse((x1 + (w - head) / 2, y1, x1 + (w + head) / 2, y1 + head), fill=SKIN_RGB, outline=(90, 60, 40))
        draw.rectangle((x1 + w * 0.2, y1 + head, x2 - w * 0.2, y1 + h * 0.62), fill=(120, 130, 150))
        draw.rectangle((x1 + w * 0.25, y1 + h * 0.62, x1 + w * 0.45, y2), fill=(70, 70, 90))
        draw.rectangle((x2 - w * 0.45, y1 + h * 0.62, x2 - w * 0.25, y2), fill=(70, 70, 90))
    elif kind == "animal":
        body = (x1 + w * 0.1, y1 + h * 0.3, x2 - w * 0.2, y1 + h * 0.75)
        draw.ellipse(body, fill=color, outline=dark)
        draw.ellipse((x2 - w * 0.32, y1, x2, y1 + h * 0.4), fill=color, outline=dark)
        if name != "bird":
            for fraction in (0.2, 0.35, 0.55, 0.68):
                draw.line((x1 + w * fraction, y1 + h * 0.7, x1 + w * fraction, y2), fill=dark, width=3)
    elif kind == "furniture":
        if name in ("couch", "bed"):
            draw.rounded_rectangle((x1, y1 + h * 0.2, x2, y2 - h * 0.1), radius=max(2, h / 6), fill=color, outline=dark)
            draw.rectangle((x1, y1, x1 + w * 0.12, y2), fill=dark)
        elif name == "lamp":
            draw.polygon([(x1 + w * 0.2, y1), (x2 - w * 0.2, y1), (x2, y1 + h * 0.35), (x1, y1 + h * 0.35)], fill=color)
            draw.line((x1 + w / 2, y1 + h * 0.35, x1 + w / 2, y2), fill=dark, width=3)
        elif name == "shelf":
            draw.rectangle((x1, y1, x2, y2), outline=dark, width=3)
            draw.line((x1, y1 + h / 2, x2, y1 + h / 2), fill=color, width=4)
        else:
            top = max(4, h * 0.18)
            draw.rectangle((x1, y1, x2, y1 + top), fill=color, outline=dark)
            draw.rectangle((x1 + w * 0.05, y1 + top, x1 + w * 0.12, y2), fill=dark)
            draw.rectangle((x2 - w * 0.12, y1 + top, x2 - w * 0.05, y2), fill=dark)
            if name == "chair":
                draw.rectangle((x1, y1 - h * 0.0, x1 + w * 0.12, y1 + top), fill=dark)
    elif kind == "vehicle":
        if name == "boat":
            draw.polygon([(x1, y1 + h * 0.4), (x2, y1 + h * 0.4), (x2 - w * 0.15, y2), (x1 + w * 0.15, y2)], fill=color)
        elif name in ("bicycle", "motorcycle"):
            radius = min(w * 0.22, h * 0.4)
            for cx in (x1 + radius, x2 - radius):
                draw.ellipse((cx - radius, y2 - 2 * radius, cx + radius, y2), outline=(30, 30, 30), width=3)
            draw.line((x1 + radius, y2 - radius, x2 - radius, y2 - radius * 1.6), fill=color, width=4)
        else:
            draw.rounded_rectangle((x1, y1, x2, y2 - h * 0.2), radius=max(2, h / 8), fill=color, outline=dark)
            draw.rectangle((x1 + w * 0.1, y1 + h * 0.1, x2 - w * 0.1, y1 + h * 0.35), fill=(190, 220, 240))
            radius = h * 0.2
            for cx in (x1 + w * 0.22, x2 - w * 0.22):
                draw.ellipse((cx - radius, y2 - 2 * radius, cx + radius, y2), fill=(30, 30, 30))
    elif kind == "plant":
        if name == "tree":
            draw.rectangle((x1 + w * 0.42, y1 + h * 0.5, x2 - w * 0.42, y2), fill=(110, 75, 40))
            draw.ellipse((x1, y1, x2, y1 + h * 0.62), fill=color, outline=dark)
        elif name == "flower":
            draw.line((x1 + w / 2, y1 + h * 0.4, x1 + w / 2, y2), fill=(50, 130, 50), width=2)
            draw.ellipse((x1, y1, x2, y1 + h * 0.45), fill=color, outline=dark)
        else:
            draw.ellipse((x1, y1, x2, y2), fill=color, outline=dark)
    elif kind == "kitchenware":
        if name == "plate":
            draw.ellipse((x1, y1 + h * 0.55, x2, y2), fill=color, outline=dark)
        elif name == "bowl":
            draw.chord((x1, y1 - h * 0.2, x2, y2), 0, 180, fill=color, outline=dark)
        elif name in ("fork", "knife", "bottle"):
            draw.rectangle((x1 + w * 0.25, y1, x2 - w * 0.25, y2), fill=color, outline=dark)
        else:  # cup, vase, pot
            draw.rectangle((x1, y1, x2 - w * 0.2, y2), fill=color, outline=dark)
            draw.arc((x2 - w * 0.35, y1 + h * 0.2, x2, y1 + h * 0.6), 270, 90, fill=dark, width=2)
    elif kind == "clothing":
        draw.rectangle((x1, y1, x2, y2), fill=color, outline=dark)
    else:  # food
        if name in ("pizza", "cake", "sandwich"):
            draw.rectangle((x1, y1 + h * 0.3, x2, y2), fill=color, outline=dark)
        else:
            draw.ellipse((x1, y1, x2, y2), fill=color, outline=dark)
    pattern = next((v for v in obj["attributes"] if v in ("striped", "dotted", "checkered")), None)
    if pattern:
        _pattern(draw, (x1 + 1, y1 + 1, x2 - 1, y2 - 1), pattern, color)
    draw.text((x1 + 2, y1 + 1), name, fill=(0, 0, 0), font=_font())


def render_scene(scene: dict) -> Image.Image:
    """The scene as an RGB picture of its width and height."""
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
    for object_id in _drawing_order(scene):
        _draw_object(draw, scene["objects"][object_id])
    return image
