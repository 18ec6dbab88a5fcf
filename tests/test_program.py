"""rexlib.program: every GQA operation has a handler; each family's explanation and answer, exactly."""

import re
from pathlib import Path

import pytest

from rexlib.gqa import OPERATIONS, Question, parse_program, parse_scene_graph
from rexlib.program import HANDLERS, ExecutionError, describe_steps, handler_for
from rexlib.program import execute as execute_with
from rexlib.program.attributes import CategoryTable
from rexlib.program.values import ObjectSet, TruthValue

DATA = Path(__file__).parent / "data"
GQA_OPERATION_NAMES = [
    line.strip() for line in (DATA / "gqa_operation_names.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]


def _object(name, box, attributes=(), relations=()):
    x, y, w, h = box
    return {"name": name, "x": x, "y": y, "w": w, "h": h, "attributes": list(attributes),
            "relations": [{"name": relation, "object": other} for relation, other in relations]}


# A 100x100 kitchen: a wooden table with a cup, a plate and an apple on it; an old man (right) wearing
# a hat; a young boy. Positions in thirds: the cup's centre (25,55) is left/middle, the man's (80,50) right.
KITCHEN = parse_scene_graph("k1", {
    "width": 100, "height": 100, "location": "kitchen",
    "objects": {
        "1": _object("table", (10, 60, 60, 30), ["wood", "brown", "round"]),
        "2": _object("cup", (20, 50, 10, 10), ["white", "small", "ceramic"],
                     [("on", "1"), ("to the left of", "3")]),
        "3": _object("man", (70, 10, 20, 80), ["old", "standing"], [("wearing", "4"), ("to the right of", "2")]),
        "4": _object("hat", (72, 10, 10, 8), ["white"]),
        "5": _object("boy", (40, 20, 10, 40), ["young"]),
        "6": _object("plate", (50, 55, 15, 5), ["white", "ceramic"], [("on", "1")]),
        "7": _object("apple", (35, 52, 6, 6), ["red", "small"], [("on", "1")]),
        "8": _object("pizza", (55, 50, 8, 4), ["large"], [("on", "1")]),
    },
})
STREET = parse_scene_graph("s1", {
    "width": 200, "height": 100, "location": "street", "weather": "sunny",
    "objects": {"1": _object("car", (10, 10, 50, 30), ["red"])},
})


# The categories these tests' values belong to, as a build would mine them from GQA's programs.
CATEGORIES = CategoryTable({value: {category: 1} for category, values in {
    "color": ("white", "brown", "red", "blue"), "material": ("wood", "ceramic"), "size": ("small", "large"),
    "shape": ("round",), "age": ("old", "young"), "pose": ("standing",),
}.items() for value in values})


def execute(question, scene, categories=CATEGORIES, **options):
    return execute_with(question, scene, categories, **options)


def _question(steps, answer=None, question_id="q1", image_id="k1"):
    semantic = [{"operation": operation, "argument": argument, "dependencies": list(dependencies)}
                for operation, argument, dependencies in steps]
    return Question(question_id, image_id, "?", answer, None, parse_program(semantic, question_id=question_id))


def _run(steps, scene=KITCHEN):
    execution = execute(_question(steps), scene)
    return execution.explanation, execution.answer


SELECT_CUP = ("select", "cup (2)", ())
SELECT_TABLE = ("select", "table (1)", ())
SELECT_MAN = ("select", "man (3)", ())

# (family, program, explanation, answer): one or more hand-written cases per family.
CASES = [
    ("select/query name", [SELECT_TABLE, ("relate", "_,on,s (2)", (0,)), ("query", "name", (1,))],
     "the (obj:2) is on the (obj:1)", "cup"),
    ("select plural", [("select", "cups (2)", ()), ("query", "color", (0,))], "the (obj:2) is white", "white"),
    ("relate s + query", [SELECT_TABLE, ("relate", "_,on,s (2)", (0,)), ("query", "color", (1,))],
     "the (obj:2) is on the (obj:1) and is white", "white"),
    ("relate o + verify", [SELECT_MAN, ("relate", "_,wearing,o (4)", (0,)), ("verify color", "red", (1,))],
     "the (obj:3) is wearing the (obj:4) , which is not red", "no"),
    ("relate absent + exist", [SELECT_TABLE, ("relate", "cat,on,s (-)", (0,)), ("exist", "?", (1,))],
     "there is no (obj*:cat) on the (obj:1)", "no"),
    ("relate o absent + exist", [SELECT_MAN, ("relate", "shirt,wearing,o (-)", (0,)), ("exist", "?", (1,))],
     "the (obj:3) is not wearing a (obj*:shirt)", "no"),
    ("relate o + exist", [SELECT_MAN, ("relate", "hat,wearing,o (4)", (0,)), ("exist", "?", (1,))],
     "the (obj:3) is wearing a (obj:4)", "yes"),
    ("relate inverse only", [("select", "man (3)", ()), ("relate", "_,to the left of,s (2)", (0,)),
                             ("query", "name", (1,))],
     "the (obj:2) is to the left of the (obj:3)", "cup"),
    ("filter + exist", [("select", "cup (2)", ()), ("filter color", "white", (0,)), ("exist", "?", (1,))],
     "there is a white (obj:2)", "yes"),
    ("filter empties + exist", [SELECT_CUP, ("filter color", "red", (0,)), ("exist", "?", (1,))],
     "there is no red (obj*:cup)", "no"),
    ("filter negated", [("select", "things (2,7)", ()), ("filter color", "not(white)", (0,)), ("query", "name", (1,))],
     "it is a non-white (obj:7)", "apple"),
    ("filter position", [("select", "cup (2)", ()), ("filter hposition", "left", (0,)), ("exist", "?", (1,))],
     "there is a (obj:2) on the left", "yes"),
    ("filter stated value not repeated", [SELECT_CUP, ("filter color", "white", (0,)), ("verify color", "white", (1,))],
     "the (obj:2) is white", "yes"),
    ("query hposition", [SELECT_CUP, ("query", "hposition", (0,))], "the (obj:2) is at (0.2,0.6) , on the left", "left"),
    ("query vposition", [SELECT_MAN, ("query", "vposition", (0,))], "the (obj:3) is at (0.8,0.5) , in the middle",
     "middle"),
    ("verify yes", [SELECT_CUP, ("verify material", "ceramic", (0,))], "the (obj:2) is ceramic", "yes"),
    ("verify position no", [SELECT_MAN, ("verify hposition", "left", (0,))],
     "the (obj:3) is at (0.8,0.5) , on the right", "no"),
    ("verify rel yes", [SELECT_CUP, ("verify rel", "table,on,o (1)", (0,))], "the (obj:2) is on the (obj:1)", "yes"),
    ("verify rel no", [("select", "boy (5)", ()), ("verify rel", "hat,wearing,o (4)", (0,))],
     "the (obj:5) is not wearing the (obj:4)", "no"),
    ("verify rel absent", [SELECT_TABLE, ("verify rel", "cat,on,s (-)", (0,))],
     "there is no (obj*:cat) on the (obj:1)", "no"),
    ("choose attribute", [SELECT_CUP, ("choose color", "red|white", (0,))], "the (obj:2) is white", "white"),
    ("choose name", [("select", "thing (7)", ()), ("choose name", "apples|pears", (0,))], "it is an (obj:7)",
     "apples"),
    ("choose rel", [SELECT_CUP, ("choose rel", "man,to the left of|to the right of,s (3)", (0,))],
     "the (obj:3) is to the right of the (obj:2)", "right"),
    ("choose hposition", [SELECT_MAN, ("choose hposition", "left|right", (0,))],
     "the (obj:3) is at (0.8,0.5) , on the right", "right"),
    ("and yes", [SELECT_CUP, ("verify color", "white", (0,)), SELECT_MAN, ("verify age", "old", (2,)),
                 ("and", "", (1, 3))], "the (obj:2) is white and the (obj:3) is old", "yes"),
    ("and no", [SELECT_CUP, ("verify color", "white", (0,)), SELECT_MAN, ("verify age", "young", (2,)),
                ("and", "", (1, 3))], "the (obj:3) is not young", "no"),
    ("or yes", [("select", "dog (-)", ()), ("exist", "?", (0,)), SELECT_CUP, ("exist", "?", (2,)),
                ("or", "", (1, 3))], "there is a (obj:2)", "yes"),
    ("or no", [("select", "dog (-)", ()), ("exist", "?", (0,)), ("select", "cats (-)", ()), ("exist", "?", (2,)),
               ("or", "", (1, 3))], "there is no (obj*:dog) and there is no (obj*:cat)", "no"),
    ("same two", [SELECT_CUP, ("select", "hat (4)", ()), ("same color", "", (0, 1))],
     "both the (obj:2) and the (obj:4) are white", "yes"),
    ("same set differs", [("select", "things (2,7)", ()), ("same", "color", (0,))],
     "the (obj:2) is white and the (obj:7) is red", "no"),
    ("different", [SELECT_CUP, ("select", "table (1)", ()), ("different material", "", (0, 1))]
     if "different material" in OPERATIONS else
     [SELECT_CUP, ("select", "table (1)", ()), ("different color", "", (0, 1))],
     "the (obj:2) is white and the (obj:1) is brown", "yes"),
    ("common", [SELECT_CUP, ("select", "hat (4)", ()), ("common", "", (0, 1))],
     "both the (obj:2) and the (obj:4) are white", "color"),
    ("compare by attribute", [("select", "cup (2)", ()), ("select", "pizza (8)", ()), ("choose larger", "", (0, 1))],
     "the (obj:8) is large and the (obj:2) is small", "pizza"),
    ("compare older", [("select", "boy (5)", ()), SELECT_MAN, ("choose older", "", (0, 1))],
     "the (obj:3) is older than the (obj:5)", "man"),
    ("compare younger by name", [("select", "boy (5)", ()), ("select", "man (3)", ()), ("choose younger", "", (0, 1))],
     "the (obj:5) is younger than the (obj:3)", "boy"),
    ("compare geometry", [SELECT_CUP, SELECT_MAN, ("choose taller", "", (0, 1))],
     "the (obj:3) is taller than the (obj:2)", "man"),
    ("compare healthier", [("select", "apple (7)", ()), ("select", "pizza (8)", ()), ("choose healthier", "", (0, 1))],
     "the (obj:7) is healthier than the (obj:8)", "apple"),
]

SCENE_CASES = [
    ("query weather", [("select", "scene", ()), ("query", "weather", (0,))], "the weather is sunny", "sunny"),
    ("verify location", [("select", "scene", ()), ("verify location", "indoors", (0,))], "it is outdoors", "no"),
    ("choose place", [("select", "scene", ()), ("choose place", "park|street", (0,))], "the place is a street",
     "street"),
]


@pytest.mark.parametrize("name, steps, explanation, answer", CASES, ids=[case[0] for case in CASES])
def test_family_cases_give_the_exact_explanation_and_answer(name, steps, explanation, answer):
    assert _run(steps) == (explanation, answer)


@pytest.mark.parametrize("name, steps, explanation, answer", SCENE_CASES, ids=[case[0] for case in SCENE_CASES])
def test_global_scene_questions(name, steps, explanation, answer):
    assert _run(steps, STREET) == (explanation, answer)


def test_every_family_has_a_hand_written_case():
    families = set()
    for _name, steps, _explanation, _answer in CASES + SCENE_CASES:
        families.update(step.family for step in _question(steps).program)
    assert families == set(HANDLERS)


# --- the 136 operations -----------------------------------------------------------------------------

# An object with one value in every attribute category, so any filter/verify/choose finds one.
_CATEGORIES = sorted({spec.category for spec in OPERATIONS.values()} - {None, "rel", "name"})
THING = parse_scene_graph("t1", {
    "width": 90, "height": 90, "location": "kitchen", "weather": "sunny",
    "objects": {
        "1": _object("thing", (5, 5, 20, 20), [f"{category}-value" for category in _CATEGORIES] + ["white"],
                     [("to the left of", "2")]),
        "2": _object("cup", (60, 60, 10, 20), ["white", "ceramic", "round", "large"]),
        "3": _object("man", (40, 40, 10, 40), ["old"]),
        "4": _object("boy", (10, 40, 10, 30), ["young"]),
        "5": _object("apple", (40, 10, 10, 10), ["small", "red"]),
        "6": _object("donut", (70, 10, 10, 10), ["white", "ceramic", "round"]),
        "7": _object("plate", (70, 30, 10, 5), ["white"]),
    },
})
SCENE_LEVEL = {"location": "indoors", "place": "kitchen", "weather": "sunny"}
POSITIONS = {"hposition": "left", "vposition": "top"}
COMPARED = {"older": ("3", "4"), "younger": ("4", "3"), "healthier": ("5", "6"), "less healthy": ("6", "5"),
            "taller": ("3", "4"), "shorter": ("4", "3"), "higher": ("5", "3"), "lower": ("3", "5"),
            "larger": ("2", "5"), "smaller": ("5", "2")}


def _program_using(operation: str):
    """A small program whose last step (or whose relate step) is ``operation``, runnable on THING."""
    spec = OPERATIONS[operation]
    family, category = spec.family, spec.category
    thing = ("select", "thing (1)", ())
    value = POSITIONS.get(category) or f"{category}-value"
    if family in ("verify", "choose") and category in SCENE_LEVEL:
        value = SCENE_LEVEL[category]
    if family == "select":
        return [thing, ("exist", "?", (0,))], "yes"
    if family == "relate":
        return [thing, ("relate", "_,to the left of,s (-)", (0,)), ("exist", "?", (1,))], "no"
    if family == "query":
        return [thing, ("query", "color", (0,))], "white"
    if family == "exist":
        return [thing, ("exist", "?", (0,))], "yes"
    if family in ("and", "or"):
        return [thing, ("exist", "?", (0,)), ("select", "dog (-)", ()), ("exist", "?", (2,)),
                (operation, "", (1, 3))], "no" if family == "and" else "yes"
    if family == "filter":
        return [thing, (operation, value if category else "white", (0,)), ("exist", "?", (1,))], "yes"
    if family in ("verify", "choose"):
        subject = ("select", "scene", ()) if category in SCENE_LEVEL else thing
        if category == "rel":
            argument = "cup,to the left of,o (2)" if family == "verify" else "cup,to the left of|above,o (2)"
            return [subject, (operation, argument, (0,))], "yes" if family == "verify" else "left"
        if category == "name":
            return [subject, (operation, "thing|cup", (0,))], "thing"
        if family == "verify":
            return [subject, (operation, value if category else "white", (0,))], "yes"
        return [subject, (operation, f"{value if category else 'white'}|other", (0,))], value if category else "white"
    if family in ("same", "different"):
        # cup and donut share colour, material and shape, not their name (plain same/different)
        return [("select", "cup (2)", ()), ("select", "donut (6)", ()), (operation, "", (0, 1))], (
            "yes" if (family == "same") == (category is not None) else "no")
    if family == "common":
        return [("select", "cup (2)", ()), ("select", "plate (7)", ()), ("common", "", (0, 1))], "color"
    first, second = COMPARED[category]
    return [("select", f"a ({first})", ()), ("select", f"b ({second})", ()), (operation, "", (0, 1))], (
        THING.objects[first].name)


def test_the_136_operation_names_are_those_the_executor_knows():
    assert len(GQA_OPERATION_NAMES) == 136 and set(GQA_OPERATION_NAMES) == set(OPERATIONS)


@pytest.mark.parametrize("operation", GQA_OPERATION_NAMES)
def test_every_operation_resolves_to_a_handler_and_executes(operation):
    assert handler_for(operation) is HANDLERS[OPERATIONS[operation].family]
    steps, answer = _program_using(operation)
    question = _question(steps)
    assert operation in {step.operation for step in question.program}
    execution = execute(question, THING)
    assert execution.answer == answer
    assert execution.explanation and len(execution.steps) == len(steps)
    for object_id in re.findall(r"\(obj:([^)]+)\)", execution.explanation):
        assert object_id in THING.objects
    assert list(execution.object_ids) == list(dict.fromkeys(re.findall(r"\(obj:([^)]+)\)", execution.explanation)))


def test_explanations_refer_only_to_scene_objects_and_are_deterministic():
    for _name, steps, _explanation, _answer in CASES:
        first, second = execute(_question(steps), KITCHEN), execute(_question(steps), KITCHEN)
        assert first == second
        for object_id in re.findall(r"\(obj:([^)]+)\)", first.explanation):
            assert object_id in KITCHEN.objects
        # punctuation is its own token: no word glued to a comma
        assert all(token == "," or "," not in token or token.startswith("(") for token in first.explanation.split())


def test_describe_steps_reads_each_value():
    execution = execute(_question([SELECT_TABLE, ("relate", "_,on,s (2)", (0,)), ("query", "name", (1,))]), KITCHEN)
    assert describe_steps(execution, KITCHEN) == [
        "step 0 select table → objects {1: table}",
        "step 1 relate _,on,s → objects {2: cup}",
        "step 2 query name → name = cup",
    ]
    assert isinstance(execution.steps[1], ObjectSet) and execution.steps[1].ids == ("2",)


# --- malformed input stops with a named reason --------------------------------------------------------


def _reason(steps, scene=KITCHEN):
    with pytest.raises(ExecutionError) as caught:
        execute(_question(steps), scene)
    return caught.value


def test_missing_object_is_named():
    error = _reason([("select", "dog (99)", ()), ("exist", "?", (0,))])
    assert error.reason == "object 99 is not in scene graph k1" and error.step == 0


def test_relation_the_scene_graph_lacks_is_named():
    error = _reason([SELECT_TABLE, ("relate", "_,under,s (2)", (0,)), ("query", "name", (1,))])
    assert error.reason == "relation 'under' between object 2 and 1 is not in scene graph k1" and error.step == 1


def test_self_relation_is_named():
    error = _reason([SELECT_TABLE, ("relate", "_,on,s (1)", (0,)), ("query", "name", (1,))])
    assert "relates object 1 to itself" in error.reason


def test_empty_scene_graph_is_named():
    empty = parse_scene_graph("e1", {"width": 10, "height": 10, "objects": {}})
    assert _reason([SELECT_CUP, ("exist", "?", (0,))], empty).reason == "scene graph e1 has no objects"


def test_unknown_operation_and_bad_dependency_are_named():
    question = _question([SELECT_CUP, ("query", "color", (0,))])
    unknown = question.program[1].__class__(**{**{f: getattr(question.program[1], f) for f in (
        "index", "operation", "family", "category", "argument", "dependencies")}, "operation": "paint"})
    with pytest.raises(ExecutionError, match="unknown operation 'paint'"):
        execute(Question("q", "k1", "?", None, None, (question.program[0], unknown)), KITCHEN)
    forward = question.program[1].__class__(index=1, operation="query", family="query", category=None,
                                            argument="color", dependencies=(1,), value="color")
    with pytest.raises(ExecutionError, match="dependency 1 is not an earlier step"):
        execute(Question("q", "k1", "?", None, None, (question.program[0], forward)), KITCHEN)
    with pytest.raises(ExecutionError, match="unknown operation"):
        handler_for("paint")


def test_invalid_inputs_stop_early_by_name():
    assert "has no material attribute" in _reason([("select", "hat (4)", ()), ("query", "material", (0,))]).reason
    assert _reason([SELECT_CUP, ("choose color", "red|blue", (0,))]).reason == (
        "0 of the alternatives red|blue hold for object 2")
    assert "needs a yes/no value" in _reason([SELECT_CUP, SELECT_MAN, ("and", "", (0, 1))]).reason
    assert "ends with objects" in _reason([SELECT_CUP]).reason
    assert "share 2 of" in _reason([SELECT_CUP, ("select", "plate (6)", ()), ("common", "", (0, 1))]).reason
    assert "does not separate" in _reason([SELECT_MAN, ("select", "m (3)", ()), ("choose older", "", (0, 1))]).reason
    assert "records no weather" in _reason([("select", "scene", ()), ("query", "weather", (0,))]).reason
    assert "the scene does not have" in _reason([("select", "dog (-)", ()), ("query", "color", (0,))]).reason


def test_truth_values_carry_the_statements_they_rest_on():
    execution = execute(_question([SELECT_CUP, ("verify color", "white", (0,))]), KITCHEN)
    assert isinstance(execution.steps[-1], TruthValue) and execution.steps[-1].holds
