"""A GQA-format corpus written by hand from GQA's published forms, for the executor and the builder.

Nothing here comes from the embedded world or the executor: scene graphs and questions are written in
GQA's own json forms, with the quirks real GQA has and the world does not exercise: a trailing space
on every ``select`` after the first, spaces around commas and ids, bare-word answers for ``choose
rel`` / ``choose hposition`` / ``query hposition``, scene graphs without ``location``/``weather`` or
without the attribute the answer states (gender, material, colour, size), relations stored only one
way, plurals and categories in ``select`` (``people (5,6)``, ``vehicle (7)``, ``this (8)``), two-select
``same``/``different``/``common``/comparatives, positions GQA did not compute with our box rule,
an n-prefixed image id, and an id that is not in the scene graph.

Each case carries its expected raw explanation, written by hand, and whether the scene graph alone
decides the answer (``"scene graph"``) or GQA's answer has to (``"answer"``).

    python tests/gqa_format_fixture.py OUT     # writes OUT/questions, OUT/sceneGraphs, OUT/regions.h5
    python tests/gqa_format_fixture.py OUT --thin WORLD   # WORLD with scene graphs thinned as GQA's are

``thin_scene_graphs`` makes the second: the same questions and answers over scene graphs that, like
GQA's, no longer record much of what the answers state (attributes and relations dropped at random,
no location or weather), so the answer has to decide at scale.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np


def _object(name, x, y, w, h, attributes=(), relations=()):
    return {"name": name, "x": x, "y": y, "w": w, "h": h, "attributes": list(attributes),
            "relations": [{"name": relation, "object": other} for relation, other in relations]}


SCENE_GRAPHS = {
    # No location, no weather; many objects lack the attributes questions ask about.
    "2354786": {"width": 640, "height": 480, "objects": {
        "279472": _object("table", 100, 300, 400, 150, ["wooden", "brown"]),
        "271881": _object("apple", 200, 280, 40, 40, ["red"], [("on", "279472")]),
        "271882": _object("apple", 300, 285, 40, 40, [], [("on", "279472")]),
        "77": _object("plate", 400, 290, 80, 20, ["white"], [("to the right of", "78")]),  # one way only
        "78": _object("cup", 150, 270, 30, 30, ["white", "ceramic"]),
        "1946635": _object("sweater", 500, 50, 100, 120),
        "1946636": _object("man", 480, 20, 140, 400, ["standing"], [("wearing", "1946635")]),
        "5": _object("person", 20, 100, 60, 200, ["standing"]),
        "6": _object("person", 90, 110, 60, 190, ["standing", "young"]),
        "7": _object("car", 250, 150, 120, 60, ["blue"]),
        "8": _object("sign", 300, 20, 40, 40, ["red"]),
        "9": _object("umbrella", 560, 0, 60, 40, ["black"]),
        "10": _object("shirt", 500, 100, 80, 80, ["white"]),
        "11": _object("pants", 500, 200, 80, 120),
        "12": _object("baby", 50, 350, 50, 60),
        "13": _object("dog", 120, 380, 80, 60, ["small"]),
    }},
    "n250821": {"width": 500, "height": 375, "objects": {
        "100": _object("sky", 0, 0, 500, 120, ["blue"]),
        "101": _object("tree", 20, 60, 120, 260, ["green", "tall"]),
    }},
}


def _steps(*steps):
    return [{"operation": operation, "argument": argument, "dependencies": list(dependencies)}
            for operation, argument, dependencies in steps]


# (question id, image id, question, answer, program, expected raw explanation, decided by)
CASES = [
    ("01", "2354786", "What is on the table?", "apple",
     _steps(("select", "table (279472)", ()), ("relate", "_,on,s (271881)", (0,)), ("query", "name", (1,))),
     "the (obj:271881) is on the (obj:279472)", "scene graph"),
    ("02", "2354786", "What color is the apple?", "green",
     _steps(("select", "apple (271882)", ()), ("query", "color", (0,))),
     "the (obj:271882) is green", "answer"),  # the scene graph records no colour
    ("03", "2354786", "Is the cup to the left or to the right of the plate?", "left",
     _steps(("select", "plate (77)", ()), ("choose rel", "cup,to the left of|to the right of,s (78)", (0,))),
     "the (obj:78) is to the left of the (obj:77)", "scene graph"),  # stored only as plate right of cup
    ("04", "2354786", "Is the sign to the left or to the right of the car?", "right",
     _steps(("select", "car (7)", ()), ("choose rel", "sign,to the left of|to the right of,s (8)", (0,))),
     "the (obj:8) is to the right of the (obj:7)", "answer"),  # no relation stored
    ("05", "2354786", "Is the man on the left or on the right?", "right",
     _steps(("select", "man (1946636)", ()), ("choose hposition", "left|right", (0,))),
     "the (obj:1946636) is at (0.9,0.5) , on the right", "scene graph"),
    ("06", "2354786", "On which side of the image is the car?", "right",
     _steps(("select", "car (7)", ()), ("query", "hposition", (0,))),
     "the (obj:7) is at (0.5,0.4) , on the right", "answer"),  # our box rule says middle
    ("07", "n250821", "Is it indoors or outdoors?", "outdoors",
     _steps(("select", "scene", ()), ("choose location", "indoors|outdoors", (0,))),
     "it is outdoors", "answer"),
    ("08", "n250821", "How is the weather?", "cloudy",
     _steps(("select", "scene", ()), ("query", "weather", (0,))), "the weather is cloudy", "answer"),
    ("09", "2354786", "Is the person male?", "yes",
     _steps(("select", "person (5)", ()), ("verify gender", "male", (0,))), "the (obj:5) is male", "answer"),
    ("10", "2354786", "Is the sweater made of metal?", "no",
     _steps(("select", "sweater (1946635)", ()), ("verify material", "metal", (0,))),
     "the (obj:1946635) is not metal", "scene graph"),
    ("11", "2354786", "Are there people standing?", "yes",
     _steps(("select", "people (5,6)", ()), ("filter pose", "standing", (0,)), ("exist", "?", (1,))),
     "there is a standing (obj:5)", "scene graph"),
    ("12", "2354786", "What kind of vehicle is this?", "car",
     _steps(("select", "vehicle (7)", ()), ("query", "name", (0,))), "it is a (obj:7)", "scene graph"),
    ("13", "2354786", "What is this?", "sign",
     _steps(("select", "this (8)", ()), ("query", "name", (0,))), "it is a (obj:8)", "scene graph"),
    ("14", "2354786", "Do the shirt and the pants have the same color?", "yes",
     _steps(("select", "shirt (10)", ()), ("select", "pants (11) ", ()), ("same color", "", (0, 1))),
     "the (obj:10) and the (obj:11) have the same color", "answer"),
    ("15", "2354786", "Are the car and the sign different colors?", "yes",
     _steps(("select", "car (7)", ()), ("select", "sign (8) ", ()), ("different color", "", (0, 1))),
     "the (obj:7) is blue and the (obj:8) is red", "scene graph"),
    ("16", "2354786", "What do the table and the cup have in common?", "material",
     _steps(("select", "table (279472)", ()), ("select", "cup (78) ", ()), ("common", "", (0, 1))),
     "the (obj:279472) and the (obj:78) have the same material", "answer"),
    ("17", "2354786", "Is the table wooden?", "yes",
     _steps(("select", "table (279472)", ()), ("verify material", "wooden", (0,))),
     "the (obj:279472) is wooden", "scene graph"),
    ("18", "2354786", "Who is smaller, the baby or the dog?", "baby",
     _steps(("select", "baby (12)", ()), ("select", "dog (13) ", ()), ("choose smaller", "", (0, 1))),
     "the (obj:12) is smaller than the (obj:13)", "answer"),  # the baby has no size attribute
    ("19", "2354786", "Is the apple red and the plate white?", "yes",
     _steps(("select", "apple (271881)", ()), ("verify color", "red", (0,)), ("select", "plate (77) ", ()),
            ("verify color", "white", (2,)), ("and", "", (1, 3))),
     "the (obj:271881) is red and the (obj:77) is white", "scene graph"),
    ("20", "2354786", "Is the sweater red or is the man sitting?", "no",
     _steps(("select", "sweater (1946635)", ()), ("verify color", "red", (0,)), ("select", "man (1946636) ", ()),
            ("verify pose", "sitting", (2,)), ("or", "", (1, 3))),
     "the (obj:1946635) is not red and the (obj:1946636) is not sitting", "scene graph"),
    ("21", "2354786", "Do you see a train near the car?", "no",
     _steps(("select", "car (7)", ()), ("relate", "train,near,s (-)", (0,)), ("exist", "?", (1,))),
     "there is no (obj*:train) near the (obj:7)", "scene graph"),
    ("22", "2354786", "Is there a red apple?", "yes",
     _steps(("select", "apple (271882)", ()), ("filter color", "red", (0,)), ("exist", "?", (1,))),
     "there is a red (obj:271882)", "answer"),  # the scene graph does not record the colour
    ("23", "2354786", "What is the man holding?", "umbrella",
     _steps(("select", "man (1946636)", ()), ("relate", "_,holding,o (9)", (0,)), ("query", "name", (1,))),
     "the (obj:1946636) is holding the (obj:9)", "scene graph"),  # relation not stored: the program's id stands
    ("24", "2354786", "What is on the table?", "apple",
     _steps(("select", " table (279472) ", ()), ("relate", "_ , on , s ( 271882 )", (0,)), ("query", "name", (1,))),
     "the (obj:271882) is on the (obj:279472)", "scene graph"),
    ("25", "2354786", "Is the cup on the table?", "yes",
     _steps(("select", "cup (78)", ()), ("verify rel", "table,on,o (279472)", (0,))),
     "the (obj:78) is on the (obj:279472)", "answer"),
    ("26", "2354786", "What is the man wearing?", "sweater",
     _steps(("select", "man (1946636)", ()), ("relate", "_,wearing,o (1946635)", (0,)), ("query", "name", (1,))),
     "the (obj:1946636) is wearing the (obj:1946635)", "scene graph"),
    ("28", "2354786", "Is the sign at the top or at the bottom?", "top",
     _steps(("select", "sign (8)", ()), ("choose vposition", "top|bottom", (0,))),
     "the (obj:8) is at (0.5,0.1) , at the top", "scene graph"),
    ("29", "2354786", "What color is the person on the left?", "black",
     _steps(("select", "person (5,6)", ()), ("filter hposition", "left", (0,)), ("query", "color", (1,))),
     "the (obj:5) on the left is black", "answer"),
    ("30", "n250821", "Is the sky blue or gray?", "blue",
     _steps(("select", "sky (100)", ()), ("choose color", "blue|gray", (0,))), "the (obj:100) is blue", "scene graph"),
    ("31", "n250821", "Is it a tree or a bush?", "tree",
     _steps(("select", "tree (101)", ()), ("choose name", "tree|bush", (0,))), "it is a (obj:101)", "scene graph"),
    ("32", "n250821", "Which place is it?", "park",
     _steps(("select", "scene", ()), ("query", "place", (0,))), "the place is a park", "answer"),
    # and/or: GQA's answer re-explains the side the scene graph reads otherwise or cannot read.
    ("33", "2354786", "Is the apple green and the table wooden?", "yes",
     _steps(("select", "apple (271882)", ()), ("verify color", "green", (0,)), ("select", "table (279472) ", ()),
            ("verify material", "wooden", (2,)), ("and", "", (1, 3))),
     "the (obj:271882) is green and the (obj:279472) is wooden", "answer"),
    ("34", "n250821", "Is there a dog or is it outdoors?", "yes",
     _steps(("select", "dog (-)", ()), ("exist", "?", (0,)), ("select", "scene", ()),
            ("verify location", "outdoors", (2,)), ("or", "", (1, 3))),
     "it is outdoors", "answer"),
    ("35", "2354786", "Is the car blue and the sign red?", "no",
     _steps(("select", "car (7)", ()), ("verify color", "blue", (0,)), ("select", "sign (8) ", ()),
            ("verify color", "red", (2,)), ("and", "", (1, 3))),
     "the (obj:8) is not red", "answer"),
    ("36", "2354786", "Is the car on the left or on the right?", "right",
     _steps(("select", "car (7)", ()), ("choose hposition", "left|right", (0,))),
     "the (obj:7) is at (0.5,0.4) , on the right", "answer"),  # by our rule it is in the middle: 0 hold
]
# GQA really has ids its scene graphs lack: such a question is not well formed, and is skipped by name.
NOT_WELL_FORMED = {
    "27": ("2354786", "Is there a bench?", "yes",
           _steps(("select", "bench (999999)", ()), ("exist", "?", (0,))),
           "object 999999 is not in scene graph 2354786"),
}


def question_record(image_id, question, answer, semantic) -> dict:
    """One record in GQA's balanced-question form."""
    return {"imageId": image_id, "question": question, "answer": answer, "fullAnswer": f"{answer}.",
            "semantic": semantic, "semanticStr": "->".join(f"{s['operation']}: {s['argument']}" for s in semantic),
            "types": {"structural": semantic[-1]["operation"].split()[0], "semantic": "attr", "detailed": "fixture"},
            "annotations": {"answer": {}, "question": {}, "fullAnswer": {}}, "groups": {"global": None, "local": ""},
            "isBalanced": True, "entailed": [], "equivalent": []}


def questions(prefix: str = "") -> dict:
    records = {f"{prefix}{qid}": question_record(image, question, answer, semantic)
               for qid, image, question, answer, semantic, _explanation, _decided in CASES}
    for qid, (image, question, answer, semantic, _reason) in NOT_WELL_FORMED.items():
        records[f"{prefix}{qid}"] = question_record(image, question, answer, semantic)
    return dict(sorted(records.items()))


def write_gqa_format_corpus(root) -> tuple[Path, Path]:
    """A GQA-layout folder: train and val hold the corpus (train under ids ``t..``), one regions.h5."""
    root = Path(root)
    for folder in ("questions", "sceneGraphs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "t"), ("val", "")):
        (root / "questions" / f"{split}_balanced_questions.json").write_text(json.dumps(questions(prefix)))
        (root / "sceneGraphs" / f"{split}_sceneGraphs.json").write_text(json.dumps(SCENE_GRAPHS))
    image_ids = list(SCENE_GRAPHS)
    boxes = np.zeros((len(image_ids), 36, 4), np.float32)
    for row, image_id in enumerate(image_ids):
        graph = SCENE_GRAPHS[image_id]
        for k, obj in enumerate(graph["objects"].values()):  # a detector box on every object, slightly off
            boxes[row, k] = [obj["x"] + 2, obj["y"] + 1, obj["x"] + obj["w"] - 1, obj["y"] + obj["h"] + 2]
        for k in range(len(graph["objects"]), 36):
            boxes[row, k] = [k, k, k + 20, k + 20]
    regions = root / "regions.h5"
    with h5py.File(regions, "w") as handle:
        handle["image_ids"] = np.array([i.encode() for i in image_ids])
        handle["boxes"] = boxes
        handle["features"] = np.zeros((len(image_ids), 36, 4), np.float16)
        handle["sizes"] = np.array([[SCENE_GRAPHS[i]["width"], SCENE_GRAPHS[i]["height"]] for i in image_ids],
                                   np.int32)
    return root, regions


def thin_scene_graphs(world, out, *, seed: int = 0, drop_attribute: float = 0.3,
                      drop_relation: float = 0.3) -> Path:
    """Copy a GQA-layout folder, dropping each attribute and relation with the given chances and every
    ``location``/``weather``; questions (with their answers) and regions.h5 are copied unchanged."""
    world, out = Path(world), Path(out)
    rng = np.random.default_rng(seed)
    (out / "sceneGraphs").mkdir(parents=True, exist_ok=True)
    shutil.copytree(world / "questions", out / "questions", dirs_exist_ok=True)
    shutil.copyfile(world / "regions.h5", out / "regions.h5")
    for path in sorted((world / "sceneGraphs").glob("*_sceneGraphs.json")):
        graphs = json.loads(path.read_text(encoding="utf-8"))
        for graph in graphs.values():
            graph.pop("location", None)
            graph.pop("weather", None)
            for obj in graph["objects"].values():
                obj["attributes"] = [a for a in obj["attributes"] if rng.random() >= drop_attribute]
                obj["relations"] = [r for r in obj["relations"] if rng.random() >= drop_relation]
        (out / "sceneGraphs" / path.name).write_text(json.dumps(graphs), encoding="utf-8")
    return out


if __name__ == "__main__":
    arguments = sys.argv[1:]
    target = arguments[0] if arguments else "outputs/gqa_format_fixture"
    if "--thin" in arguments:
        folder = thin_scene_graphs(arguments[arguments.index("--thin") + 1], target)
        print(f"{folder}: the world's questions over thinned scene graphs")
    else:
        folder, _regions = write_gqa_format_corpus(target)
        print(f"GQA-format corpus in {folder}: {len(CASES) + len(NOT_WELL_FORMED)} questions per split (train, val)")
