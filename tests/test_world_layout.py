"""The embedded world's pictures show their scene graphs: a 300-image world, read from its files and
drawn in memory (object masks, no PNGs), checked object by object and pair by pair."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rexlib.world import build_world, semantics
from rexlib.world.detector import FeatureSpace, detect
from rexlib.world.ontology import GEOMETRY_MARGIN, KIND_OF_NAME, SPATIAL_RELATIONS, support_parents
from rexlib.world.render import drawing_order, object_mask, render_scene, silhouette, visibility
from rexlib.world.scenes import touches_top

SPLITS = ("train", "val", "testdev")
IMAGES = 300
# Relations that explain why one object's box lies inside another's: one keeps the other (wears,
# holds, eats, carries a sitter or a rider, has a thing resting on it), directly or through a chain.
AXES = (("to the left of", "to the right of"), ("above", "below"), ("in front of", "behind"))


def box(obj: dict) -> tuple[int, int, int, int]:
    return obj["x"], obj["y"], obj["x"] + obj["w"], obj["y"] + obj["h"]


def shared_area(a: dict, b: dict) -> int:
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = box(a), box(b)
    return max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) - max(ay1, by1))


def keepers(objects: dict, object_id: str) -> set[str]:
    """Every object that keeps this one, up the chain (the couch under the man who wears the hat)."""
    parents, found = support_parents(objects), set()
    while object_id in parents and parents[object_id] not in found:
        object_id = parents[object_id]
        found.add(object_id)
    return found


def ground(objects: dict, object_id: str) -> int:
    """The bottom of the object's group: the root keeper it stands on (a man's hat: the man's feet)."""
    parents = support_parents(objects)
    while object_id in parents:
        object_id = parents[object_id]
    return objects[object_id]["y"] + objects[object_id]["h"]


def edges(scene: dict):
    for subject_id, obj in scene["objects"].items():
        for edge in obj["relations"]:
            yield subject_id, edge["name"], edge["object"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The default seed's first 300 images as files, with each picture's object mask drawn in memory."""
    out = tmp_path_factory.mktemp("layout") / "world"
    build_world(out, images=IMAGES, seed=0, feature_dim=4, render=False, progress=False, log=lambda _: None)
    scenes, questions = {}, {}
    for split in SPLITS:
        scenes.update(json.loads((out / "sceneGraphs" / f"{split}_sceneGraphs.json").read_text()))
        questions.update(json.loads((out / "questions" / f"{split}_balanced_questions.json").read_text()))
    masks = {image_id: object_mask(scene) for image_id, scene in scenes.items()}
    return scenes, questions, masks


def test_every_object_shows_most_of_itself(world):
    """At least 60% of every object's silhouette shows its own pixels (or those of what it wears or
    holds), and at least 80% for 95% of the objects."""
    scenes, _questions, masks = world
    shares = np.array([share for image_id, scene in scenes.items()
                       for share in visibility(scene, masks[image_id]).values()])
    assert len(shares) > 2000
    dressed = shares[:, 1]
    assert dressed.min() >= 0.6, f"an object shows only {dressed.min():.0%} of itself"
    assert (dressed >= 0.8).mean() >= 0.95, f"{(dressed >= 0.8).mean():.1%} of objects show 80% of themselves"
    assert (shares[:, 0] >= 0.6).mean() >= 0.9  # own pixels alone: only a dressed body gives way to its clothes


def test_boxes_lie_inside_others_only_for_a_reason(world):
    """More than a third of one box inside another only when one keeps the other (wears, holds, rides,
    carries, or has it resting on it): in at most 0.5% of pairs; same-name boxes never coincide."""
    scenes, _questions, _masks = world
    pairs, unexplained, coinciding = 0, [], []
    for image_id, scene in scenes.items():
        objects = scene["objects"]
        ids = list(objects)
        chains = {object_id: keepers(objects, object_id) for object_id in ids}
        for i, first in enumerate(ids):
            for second in ids[i + 1:]:
                a, b = objects[first], objects[second]
                pairs += 1
                shared = shared_area(a, b)
                inside = shared / min(a["w"] * a["h"], b["w"] * b["h"])
                if inside > 1 / 3 and first not in chains[second] and second not in chains[first]:
                    unexplained.append((image_id, a["name"], b["name"]))
                if a["name"] == b["name"] and shared / (a["w"] * a["h"] + b["w"] * b["h"] - shared) > 0.5:
                    coinciding.append((image_id, a["name"]))
    assert pairs > 10000
    assert len(unexplained) <= 0.005 * pairs, (len(unexplained), pairs, unexplained[:5])
    assert not coinciding, coinciding[:5]


def test_on_means_touching_on_top_in_the_picture(world):
    """Every `on` / `on top of`: the thing's lowest pixels sit on the supporter's top pixels, it is
    smaller, inside the supporter's width, and things on one top stand side by side."""
    scenes, _questions, masks = world
    checked = 0
    for image_id, scene in scenes.items():
        objects, ids, mask = scene["objects"], list(scene["objects"]), masks[image_id]
        on_top: dict[str, list[dict]] = {}
        for subject_id, relation, object_id in edges(scene):
            if relation not in ("on", "on top of"):
                continue
            thing, base = objects[subject_id], objects[object_id]
            assert KIND_OF_NAME[base["name"]] not in ("person", "animal"), (image_id, thing["name"], base["name"])
            assert touches_top(thing, base), (image_id, thing["name"], base["name"])
            assert thing["w"] * thing["h"] < base["w"] * base["h"] and thing["w"] < base["w"]
            assert base["x"] <= thing["x"] and thing["x"] + thing["w"] <= base["x"] + base["w"]
            row = thing["y"] + thing["h"]
            columns = slice(thing["x"], thing["x"] + thing["w"])
            touching = (mask[row - 1, columns] == ids.index(subject_id) + 1) & (mask[row, columns] == ids.index(object_id) + 1)
            assert touching.any(), f"{image_id}: the {thing['name']} does not touch the {base['name']} in the picture"
            if relation == "on":
                on_top.setdefault(object_id, []).append(thing)
                checked += 1
        for things in on_top.values():
            assert all(shared_area(a, b) == 0 for k, a in enumerate(things) for b in things[k + 1:])
    assert checked > 300


def test_nothing_rests_on_a_person_or_an_animal_unless_worn_held_or_ridden(world):
    scenes, _questions, _masks = world
    for image_id, scene in scenes.items():
        objects = scene["objects"]
        for object_id, parent in support_parents(objects).items():
            if KIND_OF_NAME[objects[parent]["name"]] in ("person", "animal"):
                relations = {name for s, name, o in edges(scene) if (s, o) in ((parent, object_id), (object_id, parent))}
                assert relations & {"wearing", "holding", "eating", "riding"}, (image_id, objects[object_id]["name"])


def test_spatial_relations_hold_with_a_margin(world):
    """left/right and above/below: centres at least GEOMETRY_MARGIN apart; in front: drawn over what
    is behind it; no spatial question about a pair the picture leaves undecided."""
    scenes, questions, masks = world
    for image_id, scene in scenes.items():
        objects, ids, mask = scene["objects"], list(scene["objects"]), masks[image_id]
        for subject_id, relation, object_id in edges(scene):
            a, b = objects[subject_id], objects[object_id]
            centre = [((o["x"] + o["w"] / 2), (o["y"] + o["h"] / 2)) for o in (a, b)]
            if relation in ("to the left of", "to the right of"):
                gap = centre[1][0] - centre[0][0]
                assert (gap if relation == "to the left of" else -gap) >= GEOMETRY_MARGIN
            elif relation in ("above", "below"):
                gap = centre[1][1] - centre[0][1]
                assert (gap if relation == "above" else -gap) >= GEOMETRY_MARGIN
            elif relation == "in front of":
                # its group stands nearer: the ground line under it (its root keeper's bottom) is lower
                assert ground(objects, subject_id) >= ground(objects, object_id) + GEOMETRY_MARGIN - 1
                x1, y1 = max(a["x"], b["x"]), max(a["y"], b["y"])
                x2, y2 = min(a["x"] + a["w"], b["x"] + b["w"]), min(a["y"] + a["h"], b["y"] + b["h"])
                if x2 > x1 and y2 > y1:  # where both are drawn, the picture shows the one in front
                    front = silhouette(a)[y1 - a["y"]:y2 - a["y"], x1 - a["x"]:x2 - a["x"]]
                    back = silhouette(b)[y1 - b["y"]:y2 - b["y"], x1 - b["x"]:x2 - b["x"]]
                    assert not (mask[y1:y2, x1:x2][front & back] == ids.index(object_id) + 1).any()
    asked = 0
    for question in questions.values():
        scene, values = scenes[question["imageId"]], []
        for step in question["semantic"]:  # the world's own reading gives each step's objects
            values.append(semantics._evaluate_step(step, [values[d] for d in step["dependencies"]], scene))
            if step["operation"] not in ("verify rel", "choose rel"):
                continue
            (selected,) = values[step["dependencies"][0]]
            head, _, rest = step["argument"].rpartition(" (")
            other, relations = rest.rstrip(")"), head.split(",")[1].split("|")
            for axis in {pair for pair in AXES for relation in relations if relation in pair}:
                asked += 1
                held = {name for s, name, o in edges(scene) if (s, o) == (selected, other)} & set(axis)
                assert held, f"{question['question']}: the picture leaves {axis} undecided"
    assert asked > 100


def test_drawing_order_back_to_front_keepers_first(world):
    scenes, _questions, _masks = world
    for scene in list(scenes.values())[:100]:
        objects = scene["objects"]
        order = {object_id: k for k, object_id in enumerate(drawing_order(scene))}
        assert sorted(order) == sorted(objects)
        for kept, keeper in support_parents(objects).items():
            assert order[keeper] < order[kept]


def test_render_returns_the_picture_and_its_mask(world):
    scenes, _questions, masks = world
    image_id, scene = next(iter(scenes.items()))
    picture, mask = render_scene(scene, mask=True)
    assert picture.size == (scene["width"], scene["height"]) and mask.shape == (scene["height"], scene["width"])
    assert mask.dtype == np.uint8 and np.array_equal(mask, masks[image_id])
    assert set(np.unique(mask)) == set(range(len(scene["objects"]) + 1))
    pixels = np.asarray(picture)
    background = np.asarray(render_scene({**scene, "objects": {}}))
    for k in range(1, len(scene["objects"]) + 1):  # where the mask names an object, the picture shows one
        assert (pixels[mask == k] != background[mask == k]).any(axis=1).mean() > 0.5


def test_detector_rows_sorted_by_confidence(world):
    scenes, _questions, _masks = world
    space = FeatureSpace(0, 8)
    for index, scene in enumerate(list(scenes.values())[:30]):
        boxes, features, confidences = detect(scene, np.random.default_rng([0, index, 2]), space)
        assert boxes.shape == (36, 4) and features.shape == (36, 8) and confidences.shape == (36,)
        assert (np.diff(confidences) <= 0).all()
        truth = np.array([box(o) for o in scene["objects"].values()], dtype=np.float32)
        count = len(truth)
        # background boxes come last: the first rows lie on objects
        overlap = np.clip(np.minimum(boxes[:count, None, 2:], truth[None, :, 2:])
                          - np.maximum(boxes[:count, None, :2], truth[None, :, :2]), 0, None).prod(-1)
        assert (overlap.max(1) > 0).mean() > 0.8


def test_relations_are_known_names(world):
    scenes, _questions, _masks = world
    for scene in scenes.values():
        for _s, relation, _o in edges(scene):
            assert relation in SPATIAL_RELATIONS or relation in ("on", "wearing", "holding", "eating", "sitting on",
                                                                 "riding")
