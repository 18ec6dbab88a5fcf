"""Every answer in a tiny world, re-derived from the json files alone by an independent reading.

The reader below is written here from GQA's semantics and the conventions in docs/contracts.md; it
imports nothing from ``rexlib.world`` except ``build_world`` to make the files. Its tables (which
category each attribute value is in, how ages and foods compare) are GQA's meanings, restated.
"""

from __future__ import annotations

import json
import re

import pytest

from rexlib.world import build_world

SPLITS = ("train", "val", "testdev")
CATEGORIES = {
    "color": {"white", "black", "red", "blue", "green", "yellow", "brown", "gray", "pink", "purple"},
    "material": {"wood", "metal", "plastic", "glass", "ceramic", "leather"},
    "size": {"tiny", "small", "large", "huge"},
    "shape": {"round", "square", "rectangular"},
    "pattern": {"striped", "dotted", "checkered"},
    "pose": {"standing", "sitting", "walking", "lying", "running"},
    "activity": {"playing", "reading", "talking", "drinking", "waiting", "resting"},
    "age": {"young", "old", "little"},
    "gender": {"male", "female"},
    "cleanliness": {"clean", "dirty"},
    "flavor": {"chocolate", "vanilla", "strawberry"},
    "height": {"tall", "short"},
}
SIZE_ORDER = ["tiny", "small", "large", "huge"]
HEALTHY, UNHEALTHY = {"apple", "banana", "salad", "broccoli", "carrot"}, {"pizza", "cake", "donut", "sandwich"}
CHILDREN, ADULTS = {"boy", "girl", "child"}, {"man", "woman"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    out = tmp_path_factory.mktemp("world")
    build_world(out, images=30, seed=3, feature_dim=8, render=False, progress=False, log=lambda _: None)
    questions, scenes = {}, {}
    for split in SPLITS:
        questions.update(json.loads((out / "questions" / f"{split}_balanced_questions.json").read_text()))
        scenes.update(json.loads((out / "sceneGraphs" / f"{split}_sceneGraphs.json").read_text()))
    return out, questions, scenes


class Reader:
    """One scene graph, read the GQA way."""

    def __init__(self, scene: dict):
        self.scene = scene
        self.objects = scene["objects"]

    def category_value(self, object_id: str, category: str) -> str | None:
        obj = self.objects[object_id]
        if category == "name":
            return obj["name"]
        if category in ("hposition", "vposition"):
            centre = obj["x"] + obj["w"] / 2 if category == "hposition" else obj["y"] + obj["h"] / 2
            extent = self.scene["width"] if category == "hposition" else self.scene["height"]
            low, high = ("left", "right") if category == "hposition" else ("top", "bottom")
            return low if centre < extent / 3 else high if centre > 2 * extent / 3 else "middle"
        found = [value for value in obj["attributes"] if value in CATEGORIES[category]]
        assert len(found) <= 1, f"{object_id} has two {category} values {found}"
        return found[0] if found else None

    def related(self, subject: str, relation: str, target: str) -> bool:
        return {"name": relation, "object": target} in self.objects[subject]["relations"]

    def comparative_order(self, object_id: str, comparative: str):
        """A number that is larger for the object the comparative favours."""
        obj = self.objects[object_id]
        base = {"younger": "older", "shorter": "taller", "smaller": "larger", "less healthy": "healthier",
                "lower": "higher"}.get(comparative, comparative)
        if base == "older":
            if obj["name"] in CHILDREN:
                value = 0
            else:
                assert obj["name"] in ADULTS
                value = 3 if "old" in obj["attributes"] else 1 if "young" in obj["attributes"] else 2
        elif base == "taller":
            value = obj["h"]
        elif base == "larger":
            value = SIZE_ORDER.index(next(v for v in obj["attributes"] if v in SIZE_ORDER))
        elif base == "healthier":
            value = 1 if obj["name"] in HEALTHY else 0 if obj["name"] in UNHEALTHY else None
            assert value is not None
        else:  # higher: smaller centre y
            value = -(obj["y"] + obj["h"] / 2)
        return value if base == comparative else -value


def parse_ids(argument: str) -> tuple[str, list[str]]:
    match = re.fullmatch(r"(.*) \((-|\d+(?:,\d+)*)\) ?", argument)  # GQA: a space after later selects
    assert match, f"argument {argument!r} is not in GQA's 'x (ids)' form"
    return match[1], ([] if match[2] == "-" else match[2].split(","))


def derive(question: dict, reader: Reader) -> str:
    values = []
    for step in question["semantic"]:
        operation, argument = step["operation"], step["argument"]
        inputs = [values[d] for d in step["dependencies"]]
        head, _, category = operation.partition(" ")
        if operation == "select":
            name, ids = parse_ids(argument)
            assert sorted(ids) == sorted(i for i, o in reader.objects.items() if o["name"] == name)
            value = ids
        elif operation == "relate":
            text, ids = parse_ids(argument)
            target, relation, side = text.split(",")
            value = sorted({
                candidate for candidate, obj in reader.objects.items() for source in inputs[0]
                if (target == "_" or obj["name"] == target)
                and (reader.related(candidate, relation, source) if side == "s" else reader.related(source, relation, candidate))
            })
            assert value == sorted(ids), f"relate ids {ids} but the scene gives {value}"
        elif head == "filter":
            value = [i for i in inputs[0] if reader.category_value(i, category) == argument]
        elif operation == "query":
            (object_id,) = inputs[0]
            value = reader.category_value(object_id, argument)
        elif operation == "exist":
            value = bool(inputs[0])
        elif operation in ("and", "or"):
            value = all(inputs) if operation == "and" else any(inputs)
        elif head in ("verify", "choose") and category == "rel":
            (object_id,) = inputs[0]
            text, (other,) = parse_ids(argument)
            _name, relations, side = text.split(",")
            holding = [r for r in relations.split("|")
                       if (reader.related(object_id, r, other) if side == "o" else reader.related(other, r, object_id))]
            if head == "verify":
                value = bool(holding)
            else:
                (relation,) = holding  # GQA answers with the bare word: "to the left of" -> "left"
                value = {"to the left of": "left", "to the right of": "right"}.get(relation, relation)
        elif head == "verify":
            (object_id,) = inputs[0]
            value = reader.category_value(object_id, category) == argument
        elif head == "choose" and category in ("older", "younger", "taller", "shorter", "larger", "smaller",
                                               "healthier", "less healthy", "higher", "lower"):
            (first,), (second,) = inputs
            keys = [reader.comparative_order(i, category) for i in (first, second)]
            assert keys[0] != keys[1]
            value = reader.objects[first if keys[0] > keys[1] else second]["name"]
        elif head == "choose":
            (object_id,) = inputs[0]
            actual = reader.category_value(object_id, category)
            assert actual in argument.split("|"), f"{actual} not among {argument}"
            value = actual
        elif head in ("same", "different"):
            if category:  # "same color" over two objects
                pair = [reader.category_value(i, category) for (i,) in inputs]
            else:  # plain "same" over one set; the argument names the category
                pair = [reader.category_value(i, argument) for i in inputs[0]]
            assert None not in pair
            value = (len(set(pair)) == 1) == (head == "same")
        elif operation == "common":
            (first,), (second,) = inputs
            shared = [c for c in ("color", "material")
                      if reader.category_value(first, c) and reader.category_value(first, c) == reader.category_value(second, c)]
            (value,) = shared
        else:
            raise AssertionError(f"operation {operation!r} has no reading here")
        values.append(value)
    answer = values[-1]
    return ("yes" if answer else "no") if isinstance(answer, bool) else answer


def test_every_answer_rederived(world):
    _out, questions, scenes = world
    assert len(questions) >= 10 * len(scenes)
    disagreements = []
    for question_id, question in questions.items():
        reader = Reader(scenes[question["imageId"]])
        derived = derive(question, reader)
        if derived != question["answer"]:
            disagreements.append((question_id, question["question"], question["answer"], derived))
    assert not disagreements, disagreements[:5]


def test_every_attribute_value_has_one_category(world):
    _out, _questions, scenes = world
    for scene in scenes.values():
        for obj in scene["objects"].values():
            for value in obj["attributes"]:
                assert sum(value in values for values in CATEGORIES.values()) == 1, value


def test_question_records_have_gqa_fields(world):
    _out, questions, scenes = world
    for question_id, question in questions.items():
        assert question_id.isdigit() and question["imageId"].isdigit()
        assert set(question) >= {"imageId", "question", "answer", "fullAnswer", "semantic", "semanticStr", "types",
                                 "annotations", "groups", "isBalanced"}
        assert set(question["types"]) == {"structural", "semantic", "detailed"}
        assert question["fullAnswer"].endswith(".") and question["question"].endswith("?")
        assert all(d < i for i, step in enumerate(question["semantic"]) for d in step["dependencies"])
        words = question["question"].split()
        for position, object_id in question["annotations"]["question"].items():
            assert object_id in scenes[question["imageId"]]["objects"]
            name = scenes[question["imageId"]]["objects"][object_id]["name"]
            start = int(position.split(":")[0])
            assert words[start].rstrip("?,.").lower() in (name, name + "s", name + "es") or words[start][:3] == name[:3]


def test_questions_load_with_rexlib_gqa_in_strict_mode(world):
    gqa = pytest.importorskip("rexlib.gqa")
    out, questions, _scenes = world
    loaded = 0
    for split in SPLITS:
        scene_graphs = gqa.load_scene_graphs(out / "sceneGraphs" / f"{split}_sceneGraphs.json")
        records, rejects = gqa.load_questions(out / "questions" / f"{split}_balanced_questions.json", scene_graphs,
                                              strict=True)
        assert rejects == []
        loaded += len(records)
    assert loaded == len(questions)


def test_the_world_writes_gqa_format_quirks(world):
    """GQA's own forms: a trailing space on every select but the first; choose rel answers the bare word."""
    _out, questions, _scenes = world
    later_selects = chosen_relations = 0
    for question in questions.values():
        selects = [step["argument"] for step in question["semantic"] if step["operation"] == "select"]
        assert not selects[0].endswith(" ")
        assert all(argument.endswith(") ") for argument in selects[1:])
        later_selects += len(selects) - 1
        if question["semantic"][-1]["operation"] == "choose rel":
            assert not question["answer"].startswith("to the ")
            chosen_relations += question["answer"] in ("left", "right")
    assert later_selects > 0 and chosen_relations > 0
