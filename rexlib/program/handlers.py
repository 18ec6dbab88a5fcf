"""One handler per operation family, in a registry: ``handler(scene, step, inputs) -> Value``.

Every one of GQA's 136 operation names resolves to a handler through its family
(``HANDLERS[OPERATIONS[name].family]``). Each handler checks its arity first, then the types of its
inputs, and stops execution early with :class:`ExecutionError` naming the reason when an input is
invalid. Handlers return structured values (``values.py``), never text.

Relations follow docs/contracts.md: side ``s`` means the step's target is the subject
(target --relation--> dependency), side ``o`` that it is the object (dependency --relation--> target).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rexlib.gqa import OPERATIONS, SceneGraph, SceneObject, Step
from rexlib.program.attributes import (
    COMPARATIVE_SCALES,
    POSITION_CATEGORIES,
    comparative_key,
    position,
    scene_value,
    values_in_category,
)
from rexlib.program.postprocess import singular
from rexlib.program.values import (
    AttributeValue,
    Choice,
    Comparison,
    ExecutionError,
    Exists,
    HasValue,
    ObjectSet,
    Relation,
    RelationHolds,
    TruthValue,
    Value,
)

Handler = Callable[[SceneGraph, Step, Sequence[Value]], Value]

# Relations whose reverse direction a scene graph may store instead ("A left of B" kept only as
# "B right of A"); a relation holds if either direction is stored.
INVERSE_RELATIONS = {
    "to the left of": "to the right of", "to the right of": "to the left of",
    "above": "below", "below": "above", "in front of": "behind", "behind": "in front of",
    "near": "near", "next to": "next to", "beside": "beside",
}
# The categories ``common`` looks for a shared value in: GQA's "What do X and Y have in common?"
# answers "color" or "material"; exactly one must be shared, or the question is ambiguous.
COMMON_CATEGORIES = ("color", "material")


# --- input checks -----------------------------------------------------------------------------------


def check_arity(step: Step, inputs: Sequence[Value], allowed: tuple[int, ...]) -> None:
    if len(inputs) not in allowed:
        raise ExecutionError(
            f"{step.operation!r} takes {' or '.join(map(str, allowed))} inputs, got {len(inputs)}")


def objects_input(step: Step, value: Value, allow_scene: bool = False) -> ObjectSet:
    if not isinstance(value, ObjectSet):
        raise ExecutionError(f"{step.operation!r} needs objects, got a {type(value).__name__}")
    if value.scene and not allow_scene:
        raise ExecutionError(f"{step.operation!r} needs objects, got the whole scene")
    return value


def truth_input(step: Step, value: Value) -> TruthValue:
    if not isinstance(value, TruthValue):
        raise ExecutionError(f"{step.operation!r} needs a yes/no value, got a {type(value).__name__}")
    return value


def scene_object(scene: SceneGraph, object_id: str) -> SceneObject:
    obj = scene.objects.get(object_id)
    if obj is None:
        raise ExecutionError(f"object {object_id} is not in scene graph {scene.image_id}")
    return obj


def first_object(step: Step, objects: ObjectSet) -> str:
    """The object a single-object operation (query, verify, choose) is about: the set's first."""
    if not objects.ids:
        noun = objects.noun or "object"
        raise ExecutionError(f"{step.operation!r} is asked of a {noun} the scene does not have")
    return objects.ids[0]


# --- reading the scene graph ----------------------------------------------------------------------


def relation_holds(scene: SceneGraph, subject_id: str, relation: str, object_id: str) -> bool:
    """subject --relation--> object is stored on the subject, or its inverse on the object."""
    if (relation, object_id) in scene.objects[subject_id].relations:
        return True
    inverse = INVERSE_RELATIONS.get(relation)
    return inverse is not None and (inverse, subject_id) in scene.objects[object_id].relations


def has_value(scene: SceneGraph, obj: SceneObject, category: str | None, value: str) -> bool:
    """Whether the object has ``value``: its position, its name, or one of its attributes."""
    if category in POSITION_CATEGORIES:
        return position(obj, scene, category) == value
    if category == "name":
        return singular(obj.name) == singular(value)
    if value in obj.attributes:
        return True
    return category is None and obj.name == value  # a plain "filter: pizza" names the object


def value_of(scene: SceneGraph, obj: SceneObject, category: str) -> str | None:
    """The object's value in a category; with several, the first the scene graph lists."""
    if category == "name":
        return obj.name
    if category in POSITION_CATEGORIES:
        return position(obj, scene, category)
    values = values_in_category(obj, category)
    return values[0] if values else None


def _scene_value(scene: SceneGraph, category: str | None) -> str:
    value = scene_value(scene, category or "")
    if value is None:
        raise ExecutionError(f"scene graph {scene.image_id} records no {category}")
    return value


# --- select, relate, filter -----------------------------------------------------------------------


def select(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> ObjectSet:
    check_arity(step, inputs, (0,))
    if step.target == "scene":
        return ObjectSet((), "scene", scene=True)
    noun = singular(step.target) if step.target else None
    if step.absent:
        return ObjectSet((), noun)
    if step.object_ids:
        for object_id in step.object_ids:
            scene_object(scene, object_id)
        return ObjectSet(tuple(dict.fromkeys(step.object_ids)), noun)
    if noun is None:
        raise ExecutionError("select names neither an object nor ids")
    return ObjectSet(tuple(i for i, obj in scene.objects.items() if singular(obj.name) == noun), noun)


def _related(scene: SceneGraph, target_id: str, relation: str, anchor_id: str, target_is_subject: bool) -> bool:
    if target_is_subject:
        return relation_holds(scene, target_id, relation, anchor_id)
    return relation_holds(scene, anchor_id, relation, target_id)


def relate(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> ObjectSet:
    check_arity(step, inputs, (1,))
    anchor = objects_input(step, inputs[0])
    relation, target_is_subject = step.relation, step.side == "s"
    noun = singular(step.target) if step.target else None
    reached = Relation(relation, anchor, target_is_subject)
    if step.object_ids:
        # The argument names the target; the scene graph must confirm the relation.
        for target_id in step.object_ids:
            scene_object(scene, target_id)
            others = [anchor_id for anchor_id in anchor.ids if anchor_id != target_id]
            if not others and anchor.ids:
                raise ExecutionError(f"relation {relation!r} relates object {target_id} to itself")
            if not any(_related(scene, target_id, relation, a, target_is_subject) for a in others):
                raise ExecutionError(
                    f"relation {relation!r} between object {target_id} and {','.join(anchor.ids) or 'nothing'} "
                    f"is not in scene graph {scene.image_id}")
        return ObjectSet(tuple(dict.fromkeys(step.object_ids)), noun, relation=reached)
    # "(-)": the program says no such object; derive it from the scene graph all the same.
    found = tuple(
        candidate for candidate, obj in scene.objects.items()
        if candidate not in anchor.ids and (noun is None or singular(obj.name) == noun)
        and any(_related(scene, candidate, relation, a, target_is_subject) for a in anchor.ids)
    )
    return ObjectSet(found, noun, relation=reached)


def filter_objects(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> ObjectSet:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0])
    category, value, negated = step.category, step.value, step.negated
    kept = tuple(i for i in objects.ids if has_value(scene, scene.objects[i], category, value) != negated)
    return ObjectSet(kept, objects.noun, objects.filters + ((category, value, negated),), objects.relation)


# --- query, verify, choose, exist -----------------------------------------------------------------


def query(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> AttributeValue:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0], allow_scene=True)
    category = step.value
    if objects.scene:
        return AttributeValue(objects, None, category, _scene_value(scene, category))
    object_id = first_object(step, objects)
    value = value_of(scene, scene.objects[object_id], category)
    if value is None:
        raise ExecutionError(f"object {object_id} has no {category} attribute")
    return AttributeValue(objects, object_id, category, value)


def _verify_relation(scene: SceneGraph, step: Step, objects: ObjectSet) -> TruthValue:
    """``verify rel: "table,on,o (id)"``: does the dependency relate to the named other object?"""
    relation, other_is_subject = step.relation, step.side == "s"
    if not objects.ids:
        raise ExecutionError(f"{step.operation!r} is asked of a {objects.noun or 'object'} the scene does not have")
    noun = singular(step.target) if step.target else None
    if step.object_ids:
        others = step.object_ids
        for other in others:
            scene_object(scene, other)
    else:
        others = tuple(i for i, obj in scene.objects.items() if noun is None or singular(obj.name) == noun)
    for object_id in objects.ids:
        for other in others:
            if other != object_id and _related(scene, other, relation, object_id, other_is_subject):
                return TruthValue(True, (_relation_statement(object_id, other, noun, relation, other_is_subject, True),))
    other = step.object_ids[0] if step.object_ids else None
    return TruthValue(False, (_relation_statement(objects.ids[0], other, noun, relation, other_is_subject, False),))


def _relation_statement(object_id: str, other: str | None, other_noun: str | None, relation: str,
                        other_is_subject: bool, holds: bool) -> RelationHolds:
    if other_is_subject:
        return RelationHolds(other, other_noun, relation, object_id, None, holds)
    return RelationHolds(object_id, None, relation, other, other_noun, holds)


def verify(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> TruthValue:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0], allow_scene=True)
    if step.category == "rel":
        return _verify_relation(scene, step, objects)
    category, value = step.category, step.value
    if objects.scene:
        actual = _scene_value(scene, category)
        return TruthValue(actual == value, (HasValue(objects, None, category, actual, True),))
    first_object(step, objects)
    for object_id in objects.ids:
        if has_value(scene, scene.objects[object_id], category, value):
            return TruthValue(True, (HasValue(objects, object_id, category, value, True),))
    object_id = objects.ids[0]
    if category in POSITION_CATEGORIES:  # say where the object is, rather than where it is not
        actual = position(scene.objects[object_id], scene, category)
        return TruthValue(False, (HasValue(objects, object_id, category, actual, True),))
    return TruthValue(False, (HasValue(objects, object_id, category, value, False),))


def _choose_relation(scene: SceneGraph, step: Step, objects: ObjectSet) -> Choice:
    """``choose rel: "cup,to the left of|to the right of,s (78)"``: which relation holds."""
    object_id = first_object(step, objects)
    if not step.object_ids:
        raise ExecutionError(f"{step.operation!r} names no other object")
    other = step.object_ids[0]
    scene_object(scene, other)
    if other == object_id:
        raise ExecutionError(f"{step.operation!r} relates object {other} to itself")
    other_is_subject = step.side == "s"
    matching = [r for r in step.alternatives if _related(scene, other, r, object_id, other_is_subject)]
    if len(matching) != 1:
        raise ExecutionError(f"{len(matching)} of the alternatives {'|'.join(step.alternatives)} hold "
                             f"between objects {object_id} and {other}")
    noun = singular(step.target) if step.target else None
    return Choice(matching[0], (_relation_statement(object_id, other, noun, matching[0], other_is_subject, True),))


def choose(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> Choice:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0], allow_scene=True)
    if step.category == "rel":
        return _choose_relation(scene, step, objects)
    category = step.category
    if objects.scene:
        actual = _scene_value(scene, category)
        matching = [alternative for alternative in step.alternatives if alternative == actual]
        statement = HasValue(objects, None, category, actual, True)
        subject = f"scene graph {scene.image_id}"
    else:
        object_id = first_object(step, objects)
        obj = scene.objects[object_id]
        matching = [alternative for alternative in step.alternatives if has_value(scene, obj, category, alternative)]
        statement = HasValue(objects, object_id, category, matching[0] if matching else "", True)
        subject = f"object {object_id}"
    if len(matching) != 1:
        raise ExecutionError(f"{len(matching)} of the alternatives {'|'.join(step.alternatives)} hold for {subject}")
    return Choice(matching[0], (statement,))


def exist(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> TruthValue:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0])
    return TruthValue(bool(objects.ids), (Exists(objects),))


# --- and, or --------------------------------------------------------------------------------------


def logical_and(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> TruthValue:
    """Both hold: state both; otherwise state the first side that fails (what "no" rests on)."""
    check_arity(step, inputs, (2,))
    first, second = truth_input(step, inputs[0]), truth_input(step, inputs[1])
    if first.holds and second.holds:
        return TruthValue(True, first.statements + second.statements)
    return TruthValue(False, (second if first.holds else first).statements)


def logical_or(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> TruthValue:
    """One holds: state the first that does; neither: state both."""
    check_arity(step, inputs, (2,))
    first, second = truth_input(step, inputs[0]), truth_input(step, inputs[1])
    if first.holds or second.holds:
        return TruthValue(True, (first if first.holds else second).statements)
    return TruthValue(False, first.statements + second.statements)


# --- same, different, common, compare -------------------------------------------------------------


def _compared_objects(step: Step, inputs: Sequence[Value]) -> list[tuple[ObjectSet, str]]:
    """Two inputs: the first object of each; one input: every object of the set (at least two)."""
    if len(inputs) == 2:
        sets = [objects_input(step, value) for value in inputs]
        return [(objects, first_object(step, objects)) for objects in sets]
    objects = objects_input(step, inputs[0])
    if len(objects.ids) < 2:
        raise ExecutionError(f"{step.operation!r} needs two or more objects, got {len(objects.ids)}")
    return [(objects, object_id) for object_id in objects.ids]


def make_same_handler(expect_same: bool) -> Handler:
    """``same``/``different`` (plain, ``color``, ``material``, ``shape``): one factory, two handlers.

    Plain ``same``/``different`` over one set name the category in the argument (``"color"``); with
    neither, the objects' names are compared ("Are these the same kind of object?").
    """

    def handler(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> TruthValue:
        check_arity(step, inputs, (1, 2))
        category = step.category or step.argument.strip() or "name"
        compared = _compared_objects(step, inputs)
        statements = []
        for objects, object_id in compared:
            value = value_of(scene, scene.objects[object_id], category)
            if value is None:
                raise ExecutionError(f"object {object_id} has no {category} attribute")
            statements.append(HasValue(objects, object_id, category, value, True))
        all_same = len({statement.value for statement in statements}) == 1
        if not all_same:  # the answer rests on the first object and one that differs from it
            statements = [statements[0], next(s for s in statements if s.value != statements[0].value)]
        return TruthValue(all_same == expect_same, tuple(statements))

    handler.__name__ = "same" if expect_same else "different"
    return handler


def common(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> Choice:
    """The category two objects share a value in (``color`` or ``material``)."""
    check_arity(step, inputs, (2,))
    (first_set, first), (second_set, second) = _compared_objects(step, inputs)
    shared = []
    for category in COMMON_CATEGORIES:
        value = value_of(scene, scene.objects[first], category)
        if value is not None and value == value_of(scene, scene.objects[second], category):
            shared.append((category, value))
    if len(shared) != 1:
        raise ExecutionError(f"objects {first} and {second} share {len(shared)} of {', '.join(COMMON_CATEGORIES)}")
    category, value = shared[0]
    return Choice(category, (HasValue(first_set, first, category, value), HasValue(second_set, second, category, value)))


def compare(scene: SceneGraph, step: Step, inputs: Sequence[Value]) -> Choice:
    """``choose older`` and friends: the name of the object for which the comparative holds."""
    check_arity(step, inputs, (2,))
    (_, first), (_, second) = _compared_objects(step, inputs)
    comparative = step.category
    (first_key, first_value), (second_key, second_value) = (
        comparative_key(scene.objects[i], comparative) for i in (first, second))
    if first_key is None or second_key is None:
        raise ExecutionError(f"{comparative!r} cannot be read for objects {first} and {second}")
    if first_key == second_key:
        raise ExecutionError(f"{comparative!r} does not separate objects {first} and {second}")
    # For "younger", "shorter", ... the smaller key wins.
    direction = COMPARATIVE_SCALES[comparative][1]
    first_wins = (first_key > second_key) == (direction > 0)
    winner, loser = (first, second) if first_wins else (second, first)
    winner_value, loser_value = (first_value, second_value) if first_wins else (second_value, first_value)
    return Choice(scene.objects[winner].name, (Comparison(winner, loser, comparative, winner_value, loser_value),))


HANDLERS: dict[str, Handler] = {
    "select": select,
    "relate": relate,
    "filter": filter_objects,
    "query": query,
    "verify": verify,
    "choose": choose,
    "exist": exist,
    "and": logical_and,
    "or": logical_or,
    "same": make_same_handler(True),
    "different": make_same_handler(False),
    "common": common,
    "compare": compare,
}


def handler_for(operation: str) -> Handler:
    """The handler of a GQA operation name, through its family; unknown names raise ExecutionError."""
    spec = OPERATIONS.get(operation)
    if spec is None:
        raise ExecutionError(f"unknown operation {operation!r}")
    return HANDLERS[spec.family]
