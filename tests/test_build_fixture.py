"""A tiny GQA-layout folder written in code, and a stand-in executor, for the builder's tests.

The stand-in executor reads only the first and last step (select X -> query color / exist), so the
builder's own behaviour (parsing, skipping with reasons, grounding, ordering, sharding, resuming) is
tested independently of ``rexlib.program``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

NAMES = ("cup", "ball", "lamp", "book")
COLORS = ("red", "blue", "green")


class StandInError(ValueError):
    def __init__(self, reason, step=None):
        super().__init__(reason)
        self.reason, self.step = reason, step


@dataclass(frozen=True)
class StandInExecution:
    explanation: str
    answer: str
    object_ids: tuple
    steps: tuple = ()


def stand_in_execute(question, scene):
    first, last = question.program[0], question.program[-1]
    if "explode" in question.question:
        raise StandInError("cannot explain this on purpose", step=last.index)
    if not first.object_ids:
        return StandInExecution(f"there is no (obj*:{first.target})", "no", ())
    object_id = first.object_ids[0]
    obj = scene.objects[object_id]
    if last.family == "query":
        color = obj.attributes[0]
        return StandInExecution(f"the (obj:{object_id}) is {color}, so the answer is {color}", color, (object_id,))
    x = (obj.x + obj.w / 2) / scene.width
    y = (obj.y + obj.h / 2) / scene.height
    # A long explanation now and then, to exercise truncation.
    tail = " and it is really quite clearly there in the picture" if int(object_id) % 3 == 0 else ""
    return StandInExecution(f"there is a (obj:{object_id}) at ({x:.3f},{y:.3f}){tail}", "yes", (object_id,))


def _scene_graphs(rng, image_ids):
    graphs = {}
    for image_id in image_ids:
        objects = {}
        for k in range(3):
            object_id = f"{image_id[3:]}{k}"
            x, y = int(rng.integers(0, 200)), int(rng.integers(0, 150))
            objects[object_id] = {
                "name": NAMES[(int(image_id[3:]) + k) % len(NAMES)], "x": x, "y": y,
                "w": int(rng.integers(20, 100)), "h": int(rng.integers(20, 80)),
                "attributes": [COLORS[int(rng.integers(len(COLORS)))]], "relations": [],
            }
        graphs[image_id] = {"width": 320, "height": 240, "objects": objects}
    return graphs


def _questions(rng, graphs, prefix, per_image=4):
    questions = {}
    for image_id, graph in graphs.items():
        for n in range(per_image):
            object_id = list(graph["objects"])[n % 3]
            obj = graph["objects"][object_id]
            question_id = f"{prefix}{image_id[3:]}{n}"
            if n % 2 == 0:
                semantic = [{"operation": "select", "argument": f"{obj['name']} ({object_id})", "dependencies": []},
                            {"operation": "query", "argument": "color", "dependencies": [0]}]
                text, answer = f"What color is the {obj['name']}?", obj["attributes"][0]
            else:
                semantic = [{"operation": "select", "argument": f"{obj['name']} ({object_id})", "dependencies": []},
                            {"operation": "exist", "argument": "?", "dependencies": [0]}]
                text, answer = f"Is there a {obj['name']}?", "yes"
            questions[question_id] = {
                "imageId": image_id, "question": text, "answer": answer, "fullAnswer": answer,
                "semantic": semantic, "types": {"structural": "query" if n % 2 == 0 else "verify",
                                                "semantic": "attr", "detailed": "color" if n % 2 == 0 else "exist"},
            }
    return questions


def make_tiny_gqa(root, images_per_split=6, seed=0, malformed=True) -> tuple[Path, Path]:
    """Write questions/, sceneGraphs/ and regions.h5 under ``root``; returns (gqa_dir, regions_path)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "questions").mkdir(parents=True, exist_ok=True)
    (root / "sceneGraphs").mkdir(parents=True, exist_ok=True)
    all_graphs = {}
    for split, offset in (("train", 100), ("val", 200)):
        graphs = _scene_graphs(rng, [f"img{offset + i}" for i in range(images_per_split)])
        questions = _questions(rng, graphs, split[0])
        if split == "train":
            questions["t-absent"] = {"imageId": "img100", "question": "Is there a cat?", "answer": "no",
                                     "semantic": [{"operation": "select", "argument": "cat (-)", "dependencies": []},
                                                  {"operation": "exist", "argument": "?", "dependencies": [0]}],
                                     "types": {"structural": "verify", "semantic": "obj", "detailed": "exist"}}
        if malformed and split == "train":
            good = questions["t1000"]
            questions["bad-operation"] = {**good, "semantic": [{"operation": "frobnicate", "argument": "",
                                                                "dependencies": []}]}
            questions["bad-dependency"] = {**good, "semantic": [good["semantic"][0],
                                                                {**good["semantic"][1], "dependencies": [5]}]}
            questions["missing-object"] = {**good, "semantic": [{**good["semantic"][0], "argument": "cup (999)"},
                                                                good["semantic"][1]]}
            questions["empty-scene"] = {**good, "imageId": "img999"}
            questions["no-regions"] = {**good, "imageId": "img998"}
            questions["explodes"] = {**good, "question": "Will this explode?"}
            questions["wrong-answer"] = {**good, "answer": "purple"}
            graphs["img999"] = {"width": 320, "height": 240, "objects": {}}
            graphs["img998"] = {"width": 320, "height": 240, "objects": {"9980": {
                "name": "cup", "x": 1, "y": 1, "w": 5, "h": 5, "attributes": ["red"], "relations": []}}}
        all_graphs.update(graphs)
        (root / "sceneGraphs" / f"{split}_sceneGraphs.json").write_text(json.dumps(graphs))
        (root / "questions" / f"{split}_balanced_questions.json").write_text(json.dumps(questions))
    # testdev: a few val questions under new ids, scene graphs from val (no testdev_sceneGraphs.json).
    val = json.loads((root / "questions" / "val_balanced_questions.json").read_text())
    testdev = {f"d{qid}": record for qid, record in list(val.items())[:8]}
    (root / "questions" / "testdev_balanced_questions.json").write_text(json.dumps(testdev))

    # Regions: per image, a jittered box on each object plus random others; img998 has none.
    image_ids = [image_id for image_id in all_graphs if image_id != "img998"]
    boxes = np.zeros((len(image_ids), 36, 4), np.float32)
    for row, image_id in enumerate(image_ids):
        x1 = rng.uniform(0, 250, 36)
        y1 = rng.uniform(0, 180, 36)
        boxes[row] = np.stack([x1, y1, x1 + rng.uniform(5, 60, 36), y1 + rng.uniform(5, 50, 36)], axis=1)
        for k, obj in enumerate(all_graphs[image_id]["objects"].values()):
            jitter = rng.uniform(-3, 3, 4)
            boxes[row, 10 + k] = np.array([obj["x"], obj["y"], obj["x"] + obj["w"], obj["y"] + obj["h"]]) + jitter
    regions = root / "regions.h5"
    with h5py.File(regions, "w") as handle:
        handle["image_ids"] = np.array([i.encode() for i in image_ids])
        handle["boxes"] = boxes
        handle["features"] = np.zeros((len(image_ids), 36, 4), np.float16)
        handle["sizes"] = np.tile(np.array([320, 240], np.int32), (len(image_ids), 1))
    return root, regions


def test_fixture_writes_gqa_layout(tmp_path):
    gqa_dir, regions = make_tiny_gqa(tmp_path)
    assert (gqa_dir / "questions" / "testdev_balanced_questions.json").exists()
    assert not (gqa_dir / "sceneGraphs" / "testdev_sceneGraphs.json").exists()
    with h5py.File(regions) as handle:
        assert handle["boxes"].shape[1:] == (36, 4)
