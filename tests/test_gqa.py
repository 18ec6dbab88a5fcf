"""rexlib.gqa: the operation table, step parsing, and loaders that name what is wrong."""

import json
from pathlib import Path

import pytest

from rexlib.gqa import (
    FAMILIES,
    OPERATIONS,
    GQAError,
    load_questions,
    load_scene_graphs,
    parse_program,
    parse_step,
)

DATA = Path(__file__).parent / "data"
GQA_OPERATION_NAMES = [
    line.strip() for line in (DATA / "gqa_operation_names.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

# A sample argument per family/category, in GQA's own forms.
def _argument_for(name: str) -> str:
    spec = OPERATIONS[name]
    if spec.family == "select":
        return "table (279472)"
    if spec.family == "relate":
        return "_,on,s (722335)"
    if spec.category == "rel":
        return "cup,to the left of|to the right of,s (78)" if spec.family == "choose" else "table,on,o (12)"
    if spec.family == "choose":
        return "red|blue"
    if spec.family in ("filter", "verify"):
        return "white"
    if spec.family == "query":
        return "color"
    return "?" if spec.family == "exist" else ""


def test_the_136_gqa_operation_names_are_exactly_the_table():
    assert len(GQA_OPERATION_NAMES) == 136
    assert set(GQA_OPERATION_NAMES) == set(OPERATIONS)
    assert {spec.family for spec in OPERATIONS.values()} == set(FAMILIES)


@pytest.mark.parametrize("name", GQA_OPERATION_NAMES)
def test_every_gqa_operation_name_parses(name):
    step = parse_step({"operation": name, "argument": _argument_for(name), "dependencies": [0]}, 1)
    assert step.operation == name
    assert step.family == OPERATIONS[name].family


def test_category_comes_from_the_operation_name():
    assert parse_step({"operation": "filter color", "argument": "white", "dependencies": [0]}, 1).category == "color"
    assert OPERATIONS["choose older"].family == "compare"
    assert OPERATIONS["choose older"].category == "older"
    assert OPERATIONS["verify rel"].category == "rel"


def test_argument_parts():
    select = parse_step({"operation": "select", "argument": "cups (1,2)", "dependencies": []}, 0)
    assert (select.target, select.object_ids, select.absent) == ("cups", ("1", "2"), False)
    relate = parse_step({"operation": "relate", "argument": "_,to the left of,o (-)", "dependencies": [0]}, 1)
    assert (relate.target, relate.relation, relate.side, relate.absent, relate.object_ids) == (
        None, "to the left of", "o", True, ())
    named = parse_step({"operation": "relate", "argument": "cat,on,s (55)", "dependencies": [0]}, 1)
    assert (named.target, named.relation, named.side, named.object_ids) == ("cat", "on", "s", ("55",))
    choose_rel = parse_step(
        {"operation": "choose rel", "argument": "cup,to the left of|to the right of,s (78)", "dependencies": [0]}, 1)
    assert choose_rel.alternatives == ("to the left of", "to the right of")
    assert (choose_rel.target, choose_rel.side, choose_rel.object_ids) == ("cup", "s", ("78",))
    negated = parse_step({"operation": "filter color", "argument": "not(white)", "dependencies": [0]}, 1)
    assert (negated.value, negated.negated) == ("white", True)
    query = parse_step({"operation": "query", "argument": "name", "dependencies": [0]}, 1)
    assert query.value == "name"
    choose = parse_step({"operation": "choose color", "argument": "red|blue", "dependencies": [0]}, 1)
    assert choose.alternatives == ("red", "blue")
    scene = parse_step({"operation": "select", "argument": "scene", "dependencies": []}, 0)
    assert (scene.target, scene.object_ids) == ("scene", ())


@pytest.mark.parametrize("argument, target, ids, absent", [
    ("sweater (1946635) ", "sweater", ("1946635",), False),  # GQA: every select after the first
    ("  people ( 5 , 6 )  ", "people", ("5", "6"), False),
    ("vehicle(7)", "vehicle", ("7",), False),
    ("this (8)", "this", ("8",), False),
    ("dog ( - ) ", "dog", (), True),
    (" scene ", "scene", (), False),
])
def test_select_arguments_tolerate_whitespace_anywhere(argument, target, ids, absent):
    step = parse_step({"operation": "select", "argument": argument, "dependencies": []}, 0)
    assert (step.target, step.object_ids, step.absent) == (target, ids, absent)


def test_relation_arguments_tolerate_whitespace_anywhere():
    relate = parse_step({"operation": "relate", "argument": " _ , on , s ( 271882 ) ", "dependencies": [0]}, 1)
    assert (relate.target, relate.relation, relate.side, relate.object_ids) == (None, "on", "s", ("271882",))
    choose = parse_step({"operation": "choose rel", "dependencies": [0],
                         "argument": "cup , to the left of | to the right of , s (78) "}, 1)
    assert (choose.target, choose.alternatives, choose.object_ids) == ("cup", ("to the left of", "to the right of"),
                                                                       ("78",))
    several = parse_step({"operation": "relate", "argument": "_,near,o (3, 4,5)", "dependencies": [0]}, 1)
    assert several.object_ids == ("3", "4", "5")


@pytest.mark.parametrize("raw, index, reason", [
    ({"operation": "teleport", "argument": "", "dependencies": []}, 0, "unknown operation 'teleport'"),
    ({"operation": "query", "argument": "color", "dependencies": [3]}, 1, "out of range or points forward"),
    ({"operation": "query", "argument": "color", "dependencies": [1]}, 1, "out of range or points forward"),
    ({"operation": "relate", "argument": "_,on (1)", "dependencies": [0]}, 1, "needs 'target,relation,side'"),
    ({"operation": "relate", "argument": "_,on,x (1)", "dependencies": [0]}, 1, "neither 's' nor 'o'"),
    ({"operation": "choose color", "argument": "red", "dependencies": [0]}, 1, "needs alternatives"),
    ({"argument": "red", "dependencies": [0]}, 1, "has no 'operation'"),
    ({"operation": "select", "argument": "cup (a-b)", "dependencies": []}, 0, "are not ids"),
    ({"operation": "select", "argument": "cup (12", "dependencies": []}, 0, "unbalanced parenthesis"),
    ({"operation": "select", "argument": "cup (1) (2)", "dependencies": []}, 0, "parenthesis inside the name"),
])
def test_malformed_steps_name_question_step_and_reason(raw, index, reason):
    with pytest.raises(GQAError) as caught:
        parse_step(raw, index, question_id="q7", file="x.json")
    error = caught.value
    assert reason in error.reason
    assert (error.question_id, error.step, error.file) == ("q7", index, "x.json")
    assert "x.json" in str(error) and "q7" in str(error)


def test_program_arity_is_checked():
    with pytest.raises(GQAError, match="takes 2 dependencies"):
        parse_program([
            {"operation": "select", "argument": "cup (1)", "dependencies": []},
            {"operation": "and", "argument": "", "dependencies": [0]},
        ], question_id="q1")


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


SCENES = {"img1": {"width": 100, "height": 80, "objects": {
    "1": {"name": "cup", "x": 1, "y": 2, "w": 10, "h": 20, "attributes": ["white"],
          "relations": [{"name": "on", "object": "2"}]},
    "2": {"name": "table", "x": 0, "y": 10, "w": 90, "h": 60, "attributes": [], "relations": []},
}}}
GOOD = {"imageId": "img1", "question": "What color is the cup?", "answer": "white",
        "fullAnswer": "The cup is white.", "types": {"structural": "query"},
        "semantic": [{"operation": "select", "argument": "cup (1)", "dependencies": []},
                     {"operation": "query", "argument": "color", "dependencies": [0]}]}


def test_loaders_keep_going_and_return_rejects(tmp_path):
    scenes = load_scene_graphs(_write(tmp_path / "scenes.json", SCENES))
    assert scenes["img1"].objects["1"].box == (1.0, 2.0, 11.0, 22.0)
    assert scenes["img1"].objects["1"].relations == (("on", "2"),)
    missing_object = dict(GOOD, semantic=[{"operation": "select", "argument": "cup (99)", "dependencies": []},
                                          {"operation": "query", "argument": "color", "dependencies": [0]}])
    questions_file = _write(tmp_path / "questions.json", {
        "q1": GOOD, "q2": {"imageId": "img1", "question": "?"}, "q3": missing_object,
        "q4": dict(GOOD, imageId="nope"),
    })
    questions, rejects = load_questions(questions_file, scenes, strict=False)
    assert list(questions) == ["q1"]
    assert questions["q1"].program[1].value == "color"
    reasons = {reject.question_id: reject.reason for reject in rejects}
    assert reasons["q2"] == "missing field 'semantic'"
    assert "object 99 is not in scene graph img1" in reasons["q3"]
    assert "image nope has no scene graph" in reasons["q4"]
    assert all(reject.file == str(questions_file) for reject in rejects)
    with pytest.raises(GQAError, match="missing field 'semantic'"):
        load_questions(questions_file, scenes, strict=True)


def test_bad_json_names_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"q1": {"imageId": ')
    with pytest.raises(GQAError, match="broken.json.*bad json"):
        load_questions(broken)
    with pytest.raises(GQAError, match="needs integer 'width'"):
        load_scene_graphs(_write(tmp_path / "s.json", {"img": {"objects": {}}}))


def test_cached_steps_keep_dependency_types_apart():
    # The step cache keys dependencies by their text: a float or a bool that equals an int must still
    # go through the full check (rejected, or kept with its own value), whatever was cached before.
    good = {"operation": "query", "argument": "color", "dependencies": [0]}
    assert parse_step(good, 1).dependencies == (0,)
    assert parse_step(dict(good), 1) is parse_step(good, 1)  # equal steps come from the cache
    with pytest.raises(GQAError, match="not a list of integers"):
        parse_step(dict(good, dependencies=[0.0]), 1)
    assert type(parse_step(dict(good, dependencies=[False]), 1).dependencies[0]) is bool


def test_steps_without_an_argument_or_dependencies_take_the_defaults():
    # The step cache reads the three keys by subscript; a step lacking one is parsed without it, as before.
    exist = parse_step({"operation": "exist", "dependencies": [0]}, 1)
    assert (exist.argument, exist.dependencies) == ("", (0,))
    select = parse_step({"operation": "select", "argument": "table (5)"}, 0)
    assert (select.object_ids, select.dependencies) == (("5",), ())


@pytest.mark.parametrize("operation, prefix", [
    ("select", "table"), ("select", " sweater"), ("relate", "_,on,s"), ("relate", "cup , to the left of , o"),
    ("verify rel", "table,on,o"), ("choose rel", "cup,to the left of|to the right of,s"),
])
def test_steps_of_a_known_shape_equal_a_fresh_parse(operation, prefix):
    # After the first step of a shape (the argument before its ids), later ones take its fields and
    # parse only their ids: the result, or the error, must be what parsing the step alone gives.
    from rexlib.gqa import _parse_step

    insides = ["(1)", "(2,3)", "(-)", "( - )", "( 4 , 5 )", "(6,,7)", "(x y)", "()", "(8)) ", "(9) ", "(a1)"]
    for index, dependencies in ((0, []), (1, [0])):
        for inside in insides:
            raw = {"operation": operation, "argument": f"{prefix} {inside}", "dependencies": dependencies}
            outcomes = []
            for parse in (parse_step, _parse_step):
                try:
                    outcomes.append(parse(raw, index, question_id="q", file="f.json"))
                except GQAError as error:
                    outcomes.append(str(error))
            assert outcomes[0] == outcomes[1], raw


def test_frozen_record_builds_what_the_dataclass_would():
    # frozen_record swaps a frozen dataclass's __init__ for a quicker one: every way of calling it must
    # give what the dataclass's own __init__ gives, and the record must stay frozen.
    import dataclasses

    from rexlib.gqa import frozen_record

    def fields_of(cls):
        cls.__annotations__ = {"name": "str", "count": "int", "tags": "tuple", "extra": "dict"}
        cls.count, cls.tags = 1, ()
        cls.extra = dataclasses.field(default_factory=dict)
        return cls

    quick = frozen_record(fields_of(type("Quick", (), {})))
    plain = dataclasses.dataclass(frozen=True, slots=True)(fields_of(type("Plain", (), {})))
    assert quick.__init__ is not plain.__init__
    for args, kwargs in (((), {"name": "a"}), (("a", 2), {}), (("a",), {"tags": ("x",)}),
                         (("a", 3, ("y",), {"k": 1}), {})):
        made, expected = quick(*args, **kwargs), plain(*args, **kwargs)
        assert dataclasses.astuple(made) == dataclasses.astuple(expected)
    assert quick("a").extra is not quick("a").extra  # a fresh default each time
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick("a").name = "b"
    with pytest.raises(TypeError, match="name"):
        quick()
    assert dataclasses.replace(quick("a"), count=5) == quick("a", 5)
    with pytest.raises(TypeError, match="__post_init__"):
        frozen_record(type("Late", (), {"__annotations__": {"x": "int"}, "__post_init__": lambda self: None}))
