"""The world's own reading of a GQA program over a scene graph (the answer every question carries).

The question generator builds a program, then asks this module for its answer, so every answer in
the world's files is derived from the program text and the scene graph alone: a program whose
argument strings did not say what the generator meant would fail here. It is intentionally separate
from (and never imports) ``rexlib.program``; the tests check both against an independent reading.

Values passed between steps: a list of object ids, a bool, or a string (an answer word).
"""

from __future__ import annotations

import re

from rexlib.world.ontology import CATEGORY_OF_VALUE, COMPARATIVES, SIZE_RANK, age_rank, healthiness

_REFERENCE = re.compile(r"^(?P<head>.*) \((?P<ids>-|[0-9]+(?:,[0-9]+)*)\)$")
POSITION_CATEGORIES = ("hposition", "vposition")
YES, NO = "yes", "no"


class ProgramError(ValueError):
    """A program the world cannot answer (a bug in the generator: it never writes such a program)."""


def family_of(operation: str) -> str:
    """The operation family of a GQA operation name ("filter color" -> "filter", "choose older" -> "compare")."""
    head, _, rest = operation.partition(" ")
    if head == "choose" and rest in COMPARATIVES:
        return "compare"
    return head


def parse_reference(argument: str) -> tuple[str, tuple[str, ...]]:
    """``"table (1,2)"`` -> ``("table", ("1", "2"))``; ``"cup,on,s (-)"`` -> ``("cup,on,s", ())``."""
    match = _REFERENCE.match(argument.strip())  # GQA ends every select after the first with a space
    if not match:
        raise ProgramError(f"argument {argument!r} does not end with an id list in parentheses")
    ids = match["ids"]
    return match["head"], (() if ids == "-" else tuple(ids.split(",")))


def answer_word(relation: str) -> str:
    """GQA answers ``choose rel`` with the bare word: ``to the left of`` -> ``left``; others stay."""
    if relation.startswith("to the ") and relation.endswith(" of"):
        return relation[len("to the "):-len(" of")]
    return relation


def horizontal_position(obj: dict, width: int) -> str:
    """left / middle / right of the image by the object's centre x, in thirds."""
    centre = obj["x"] + obj["w"] / 2
    if centre < width / 3:
        return "left"
    if centre > 2 * width / 3:
        return "right"
    return "middle"


def vertical_position(obj: dict, height: int) -> str:
    """top / middle / bottom of the image by the object's centre y, in thirds."""
    centre = obj["y"] + obj["h"] / 2
    if centre < height / 3:
        return "top"
    if centre > 2 * height / 3:
        return "bottom"
    return "middle"


def attribute_value(scene: dict, object_id: str, category: str) -> str | None:
    """The object's value in a category (its name, its position, or one of its attributes)."""
    obj = scene["objects"][object_id]
    if category == "name":
        return obj["name"]
    if category == "hposition":
        return horizontal_position(obj, scene["width"])
    if category == "vposition":
        return vertical_position(obj, scene["height"])
    values = [value for value in obj["attributes"] if CATEGORY_OF_VALUE.get(value) == category]
    return values[0] if len(values) == 1 else None


def holds(scene: dict, subject_id: str, relation: str, object_id: str) -> bool:
    return any(
        edge["name"] == relation and edge["object"] == object_id
        for edge in scene["objects"][subject_id]["relations"]
    )


def comparative_key(scene: dict, object_id: str, comparative: str) -> float | None:
    """A number that grows in the comparative's direction (older: age rank, higher: minus centre y)."""
    obj = scene["objects"][object_id]
    if comparative in ("older", "younger"):
        rank = age_rank(obj["name"], obj["attributes"])
        key = None if rank is None else float(rank)
    elif comparative in ("taller", "shorter"):
        key = float(obj["h"])
    elif comparative in ("larger", "smaller"):
        sizes = [SIZE_RANK[value] for value in obj["attributes"] if value in SIZE_RANK]
        key = float(sizes[0]) if len(sizes) == 1 else None
    elif comparative in ("healthier", "less healthy"):
        health = healthiness(obj["name"])
        key = None if health is None else float(health)
    elif comparative in ("higher", "lower"):
        key = -(obj["y"] + obj["h"] / 2)
    else:
        raise ProgramError(f"unknown comparative {comparative!r}")
    if key is None:
        return None
    # The second member of each pair (younger, shorter, ...) orders the other way.
    return key if comparative in ("older", "taller", "larger", "healthier", "higher") else -key


def _single(value: object, operation: str) -> str:
    if not isinstance(value, list) or len(value) != 1:
        raise ProgramError(f"{operation} needs exactly one object, got {value!r}")
    return value[0]


def evaluate(program: list[dict], scene: dict) -> str:
    """Run a GQA program over a scene graph and return its answer (``"yes"``/``"no"`` for truth values)."""
    results: list[object] = []
    for step in program:
        results.append(_evaluate_step(step, [results[d] for d in step["dependencies"]], scene))
    answer = results[-1]
    if isinstance(answer, bool):
        return YES if answer else NO
    if not isinstance(answer, str):
        raise ProgramError(f"program ends with a set of objects {answer!r}, not an answer")
    return answer


def _evaluate_step(step: dict, inputs: list, scene: dict) -> object:
    operation, argument = step["operation"], step["argument"]
    family = family_of(operation)
    category = operation.partition(" ")[2]
    objects = scene["objects"]
    if family == "select":
        name, ids = parse_reference(argument)
        found = [object_id for object_id, obj in objects.items() if obj["name"] == name]
        if sorted(found) != sorted(ids):
            raise ProgramError(f"select {argument!r} does not list the scene's {name} objects {found}")
        return found
    if family == "relate":
        head, ids = parse_reference(argument)
        target, relation, side = head.split(",")
        found = []
        for candidate in objects:
            if target != "_" and objects[candidate]["name"] != target:
                continue
            for source in inputs[0]:
                if candidate == source:
                    continue
                if (side == "s" and holds(scene, candidate, relation, source)) or (
                    side == "o" and holds(scene, source, relation, candidate)
                ):
                    found.append(candidate)
                    break
        if sorted(found) != sorted(ids):
            raise ProgramError(f"relate {argument!r} does not list its targets {found}")
        return found
    if family == "filter":
        return [object_id for object_id in inputs[0] if attribute_value(scene, object_id, category) == argument]
    if family == "query":
        value = attribute_value(scene, _single(inputs[0], operation), argument)
        if value is None:
            raise ProgramError(f"query {argument!r}: the object has no such value")
        return value
    if family == "exist":
        return len(inputs[0]) > 0
    if family in ("and", "or"):
        first, second = inputs
        return (first and second) if family == "and" else (first or second)
    if family == "verify":
        object_id = _single(inputs[0], operation)
        if category == "rel":
            head, ids = parse_reference(argument)
            _other, relation, side = head.split(",")
            other = ids[0]
            return holds(scene, object_id, relation, other) if side == "o" else holds(scene, other, relation, object_id)
        return attribute_value(scene, object_id, category) == argument
    if family == "choose":
        object_id = _single(inputs[0], operation)
        if category == "rel":
            head, ids = parse_reference(argument)
            _other, alternatives, side = head.split(",")
            other = ids[0]
            matching = [
                relation for relation in alternatives.split("|")
                if (holds(scene, object_id, relation, other) if side == "o" else holds(scene, other, relation, object_id))
            ]
        else:
            value = attribute_value(scene, object_id, category)
            matching = [alternative for alternative in argument.split("|") if alternative == value]
        if len(matching) != 1:
            raise ProgramError(f"choose {argument!r}: {len(matching)} alternatives hold")
        return answer_word(matching[0]) if category == "rel" else matching[0]
    if family in ("same", "different"):
        if len(inputs) == 2:  # "same color" over two objects
            values = [attribute_value(scene, _single(value, operation), category) for value in inputs]
        else:  # plain "same"/"different" over one set; the argument names the category
            values = [attribute_value(scene, object_id, argument) for object_id in inputs[0]]
        if None in values or len(values) < 2:
            raise ProgramError(f"{operation}: needs two or more objects with a value")
        all_same = len(set(values)) == 1
        return all_same if family == "same" else not all_same
    if family == "common":
        first, second = (_single(value, operation) for value in inputs)
        shared = [
            category_name for category_name in ("color", "material")
            if attribute_value(scene, first, category_name) is not None
            and attribute_value(scene, first, category_name) == attribute_value(scene, second, category_name)
        ]
        if len(shared) != 1:
            raise ProgramError(f"common: {len(shared)} shared categories")
        return shared[0]
    if family == "compare":
        first, second = (_single(value, operation) for value in inputs)
        keys = [comparative_key(scene, object_id, category) for object_id in (first, second)]
        if None in keys or keys[0] == keys[1]:
            raise ProgramError(f"{operation}: the objects cannot be compared")
        return objects[first if keys[0] > keys[1] else second]["name"]
    raise ProgramError(f"unknown operation {operation!r}")
