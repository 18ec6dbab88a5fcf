"""One handler per operation family, in a registry: ``handler(scene, step, inputs, context) -> Value``.

Every one of GQA's 136 operation names resolves to a handler through its family
(``HANDLERS[OPERATIONS[name].family]``). Each handler checks its arity first, then the types of its
inputs, and stops execution early with :class:`ExecutionError` naming the reason when an input is
invalid, or with :class:`Undecided` when the scene graph cannot decide the step. Handlers return
structured values (``values.py``), never text. ``EXPLAINERS`` hold, per answer-bearing family, the
value that explains a given answer (GQA's), used where the scene graph cannot decide or decides
otherwise (docs/contracts.md, "Answer policy").

Relations follow docs/contracts.md: side ``s`` means the step's target is the subject
(target --relation--> dependency), side ``o`` that it is the object (dependency --relation--> target).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rexlib.gqa import OPERATIONS, SceneGraph, SceneObject, Step
from rexlib.program.attributes import (
    COMPARATIVE_SCALES,
    POSITION_CATEGORIES,
    CategoryTable,
    comparative_key,
    position,
    scene_value,
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
    SameValue,
    TruthValue,
    Undecided,
    Value,
)


@dataclass(frozen=True, slots=True)
class Context:
    """What every handler may consult besides the scene graph.

    ``categories``: attribute value -> category, mined from the data (``attributes.CategoryTable``).
    ``lenient``: GQA's answer is at hand, so the program's own ids stand where the scene graph is
    silent (a relation it stores only one way, a filter value it does not record).
    """

    categories: CategoryTable
    lenient: bool = False


Handler = Callable[[SceneGraph, Step, Sequence[Value], Context], Value]

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


def first_object(step: Step, objects: ObjectSet, context: Context | None = None) -> str:
    """The object a single-object operation (query, verify, choose) is about: the set's first.

    Leniently, an object the program named but the scene graph did not confirm will do.
    """
    if objects.ids:
        return objects.ids[0]
    if context is not None and context.lenient and objects.unconfirmed:
        return objects.unconfirmed[0]
    noun = objects.noun or "object"
    raise Undecided(f"{step.operation!r} is asked of a {noun} the scene does not have")


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


def value_of(scene: SceneGraph, obj: SceneObject, category: str, context: Context) -> str | None:
    """The object's value in a category; with several, the one mostly seen in it, then the first listed."""
    if category == "name":
        return obj.name
    if category in POSITION_CATEGORIES:
        return position(obj, scene, category)
    values = context.categories.values(obj, category)
    return values[0] if values else None


def _scene_value(scene: SceneGraph, category: str | None) -> str:
    value = scene_value(scene, category or "")
    if value is None:
        raise Undecided(f"scene graph {scene.image_id} records no {category}")
    return value


def answer_word(relation: str) -> str:
    """GQA answers ``choose rel`` with the bare word: ``to the left of`` -> ``left``; others stay."""
    if relation.startswith("to the ") and relation.endswith(" of"):
        return relation[len("to the "):-len(" of")]
    return relation


def normalised(answer: str | None) -> str:
    return " ".join(str(answer).lower().split()) if answer is not None else ""


# --- select, relate, filter -----------------------------------------------------------------------


def select(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> ObjectSet:
    if inputs:
        check_arity(step, inputs, (0,))
    if step.target == "scene":
        return ObjectSet((), "scene", scene=True)
    noun = singular(step.target) if step.target else None
    if step.absent:
        return ObjectSet((), noun)
    object_ids = step.object_ids
    if object_ids:
        objects = scene.objects
        for object_id in object_ids:
            if object_id not in objects:
                scene_object(scene, object_id)  # raises, naming the object
        single = len(object_ids) == 1 and type(object_ids) is tuple  # nothing to deduplicate
        return ObjectSet(object_ids if single else tuple(dict.fromkeys(object_ids)), noun)
    if noun is None:
        raise ExecutionError("select names neither an object nor ids")
    return ObjectSet(tuple(i for i, obj in scene.objects.items() if singular(obj.name) == noun), noun)


def _related(scene: SceneGraph, target_id: str, relation: str, anchor_id: str, target_is_subject: bool) -> bool:
    if target_is_subject:
        return relation_holds(scene, target_id, relation, anchor_id)
    return relation_holds(scene, anchor_id, relation, target_id)


def relate(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> ObjectSet:
    check_arity(step, inputs, (1,))
    anchor = objects_input(step, inputs[0])
    relation, target_is_subject = step.relation, step.side == "s"
    noun = singular(step.target) if step.target else None
    if not anchor.ids and anchor.unconfirmed and context.lenient:
        anchor = ObjectSet(anchor.unconfirmed, anchor.noun, anchor.filters, anchor.relation)
    reached = Relation(relation, anchor, target_is_subject)
    if step.object_ids and context.lenient:
        # GQA's program names the target: it stands even where the scene graph stores the relation
        # only the other way, or not at all.
        for target_id in step.object_ids:
            scene_object(scene, target_id)
        return ObjectSet(tuple(dict.fromkeys(step.object_ids)), noun, relation=reached)
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


def filter_objects(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> ObjectSet:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0])
    category, value, negated = step.category, step.value, step.negated
    kept = []  # a loop, not a generator: this runs for every filter step of every question
    for object_id in objects.ids:
        if has_value(scene, scene.objects[object_id], category, value) != negated:
            kept.append(object_id)
    kept = tuple(kept)
    # The objects this filter found without the value stay at hand, unconfirmed (see first_object).
    unconfirmed = () if kept else objects.ids + objects.unconfirmed
    return ObjectSet(kept, objects.noun, objects.filters + ((category, value, negated),), objects.relation,
                     unconfirmed=unconfirmed)


# --- query, verify, choose, exist -----------------------------------------------------------------


def query(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> AttributeValue:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0], allow_scene=True)
    category = step.value
    if objects.scene:
        return AttributeValue(objects, None, category, _scene_value(scene, category))
    object_id = first_object(step, objects, context)
    value = value_of(scene, scene.objects[object_id], category, context)
    if value is None:
        raise Undecided(f"object {object_id} has no {category} attribute")
    return AttributeValue(objects, object_id, category, value)


def _verify_relation(scene: SceneGraph, step: Step, objects: ObjectSet, context: Context) -> TruthValue:
    """``verify rel: "table,on,o (id)"``: does the dependency relate to the named other object?"""
    relation, other_is_subject = step.relation, step.side == "s"
    objects = _with_unconfirmed(step, objects, context)
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


def _with_unconfirmed(step: Step, objects: ObjectSet, context: Context) -> ObjectSet:
    """The set itself, or (leniently) its unconfirmed objects when the scene graph confirmed none."""
    first_object(step, objects, context)
    if objects.ids:
        return objects
    return ObjectSet(objects.unconfirmed, objects.noun, objects.filters, objects.relation)


def verify(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> TruthValue:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0], allow_scene=True)
    if step.category == "rel":
        return _verify_relation(scene, step, objects, context)
    category, value = step.category, step.value
    if objects.scene:
        actual = _scene_value(scene, category)
        return TruthValue(actual == value, (HasValue(objects, None, category, actual, True),))
    objects = _with_unconfirmed(step, objects, context)
    for object_id in objects.ids:
        if has_value(scene, scene.objects[object_id], category, value):
            return TruthValue(True, (HasValue(objects, object_id, category, value, True),))
    object_id = objects.ids[0]
    if category in POSITION_CATEGORIES:  # say where the object is, rather than where it is not
        actual = position(scene.objects[object_id], scene, category)
        return TruthValue(False, (HasValue(objects, object_id, category, actual, True),))
    return TruthValue(False, (HasValue(objects, object_id, category, value, False),))


def _other_object(scene: SceneGraph, step: Step, object_id: str) -> str:
    """The other object a ``choose rel`` names by id."""
    if not step.object_ids:
        raise Undecided(f"{step.operation!r} names no other object")
    other = step.object_ids[0]
    scene_object(scene, other)
    if other == object_id:
        raise ExecutionError(f"{step.operation!r} relates object {other} to itself")
    return other


def _choose_relation(scene: SceneGraph, step: Step, objects: ObjectSet, context: Context) -> Choice:
    """``choose rel: "cup,to the left of|to the right of,s (78)"``: which relation holds (bare word)."""
    object_id = first_object(step, objects, context)
    other = _other_object(scene, step, object_id)
    other_is_subject = step.side == "s"
    matching = [r for r in step.alternatives if _related(scene, other, r, object_id, other_is_subject)]
    if len(matching) != 1:
        raise Undecided(f"{len(matching)} of the alternatives {'|'.join(step.alternatives)} hold "
                        f"between objects {object_id} and {other}")
    noun = singular(step.target) if step.target else None
    return Choice(answer_word(matching[0]),
                  (_relation_statement(object_id, other, noun, matching[0], other_is_subject, True),))


def choose(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> Choice:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0], allow_scene=True)
    if step.category == "rel":
        return _choose_relation(scene, step, objects, context)
    category = step.category
    if objects.scene:
        actual = _scene_value(scene, category)
        matching = [alternative for alternative in step.alternatives if alternative == actual]
        statement = HasValue(objects, None, category, actual, True)
        subject = f"scene graph {scene.image_id}"
    else:
        object_id = first_object(step, objects, context)
        obj = scene.objects[object_id]
        matching = [alternative for alternative in step.alternatives if has_value(scene, obj, category, alternative)]
        statement = HasValue(objects, object_id, category, matching[0] if matching else "", True)
        subject = f"object {object_id}"
    if len(matching) != 1:
        raise Undecided(f"{len(matching)} of the alternatives {'|'.join(step.alternatives)} hold for {subject}")
    return Choice(matching[0], (statement,))


def exist(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> TruthValue:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0])
    return TruthValue(bool(objects.ids), (Exists(objects),))


# --- and, or --------------------------------------------------------------------------------------


def logical_and(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> TruthValue:
    """Both hold: state both; otherwise state the first side that fails (what "no" rests on)."""
    check_arity(step, inputs, (2,))
    first, second = truth_input(step, inputs[0]), truth_input(step, inputs[1])
    if first.holds and second.holds:
        return TruthValue(True, first.statements + second.statements)
    return TruthValue(False, (second if first.holds else first).statements)


def logical_or(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> TruthValue:
    """One holds: state the first that does; neither: state both."""
    check_arity(step, inputs, (2,))
    first, second = truth_input(step, inputs[0]), truth_input(step, inputs[1])
    if first.holds or second.holds:
        return TruthValue(True, (first if first.holds else second).statements)
    return TruthValue(False, first.statements + second.statements)


# --- same, different, common, compare -------------------------------------------------------------


def _compared_objects(step: Step, inputs: Sequence[Value], context: Context) -> list[tuple[ObjectSet, str]]:
    """Two inputs: the first object of each; one input: every object of the set (at least two)."""
    if len(inputs) == 2:
        sets = [objects_input(step, value) for value in inputs]
        return [(objects, first_object(step, objects, context)) for objects in sets]
    objects = objects_input(step, inputs[0])
    ids = objects.ids or (objects.unconfirmed if context.lenient else ())
    if len(ids) < 2:
        raise Undecided(f"{step.operation!r} needs two or more objects, got {len(ids)}")
    return [(objects, object_id) for object_id in ids]


def _compared_category(step: Step) -> str:
    """``same color`` -> color; plain ``same``/``different`` name it in the argument, else the name."""
    return step.category or step.argument.strip() or "name"


def make_same_handler(expect_same: bool) -> Handler:
    """``same``/``different`` (plain, ``color``, ``material``, ``shape``): one factory, two handlers.

    Plain ``same``/``different`` over one set name the category in the argument (``"color"``); with
    neither, the objects' names are compared ("Are these the same kind of object?").
    """

    def handler(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> TruthValue:
        check_arity(step, inputs, (1, 2))
        category = _compared_category(step)
        compared = _compared_objects(step, inputs, context)
        statements = []
        for objects, object_id in compared:
            value = value_of(scene, scene.objects[object_id], category, context)
            if value is None:
                raise Undecided(f"object {object_id} has no {category} attribute")
            statements.append(HasValue(objects, object_id, category, value, True))
        all_same = len({statement.value for statement in statements}) == 1
        if not all_same:  # the answer rests on the first object and one that differs from it
            statements = [statements[0], next(s for s in statements if s.value != statements[0].value)]
        return TruthValue(all_same == expect_same, tuple(statements))

    handler.__name__ = "same" if expect_same else "different"
    return handler


def common(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> Choice:
    """The category two objects share a value in (``color`` or ``material``)."""
    check_arity(step, inputs, (2,))
    (first_set, first), (second_set, second) = _compared_objects(step, inputs, context)
    shared = []
    for category in COMMON_CATEGORIES:
        value = value_of(scene, scene.objects[first], category, context)
        if value is not None and value == value_of(scene, scene.objects[second], category, context):
            shared.append((category, value))
    if len(shared) != 1:
        raise Undecided(f"objects {first} and {second} share {len(shared)} of {', '.join(COMMON_CATEGORIES)}")
    category, value = shared[0]
    return Choice(category, (HasValue(first_set, first, category, value), HasValue(second_set, second, category, value)))


def compare(scene: SceneGraph, step: Step, inputs: Sequence[Value], context: Context) -> Choice:
    """``choose older`` and friends: the name of the object for which the comparative holds."""
    check_arity(step, inputs, (2,))
    (_, first), (_, second) = _compared_objects(step, inputs, context)
    comparative = step.category
    (first_key, first_value), (second_key, second_value) = (
        comparative_key(scene.objects[i], comparative) for i in (first, second))
    if first_key is None or second_key is None:
        raise Undecided(f"{comparative!r} cannot be read for objects {first} and {second}")
    if first_key == second_key:
        raise Undecided(f"{comparative!r} does not separate objects {first} and {second}")
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


# --- explaining a given answer ----------------------------------------------------------------------
# ``explainer(scene, step, inputs, context, answer) -> Value``: the value whose answer is ``answer``
# (GQA's) and whose statements state it, for a step the scene graph cannot decide or decides otherwise.
# ``and``/``or`` are explained by the executor, through their inputs (it may re-explain those).

Explainer = Callable[[SceneGraph, Step, Sequence[Value], Context, str], Value]


def _subject(step: Step, value: Value, context: Context) -> tuple[ObjectSet, str | None]:
    """The object set a single-object step is about and its object (None when the scene has none)."""
    objects = objects_input(step, value, allow_scene=True)
    if objects.scene:
        return objects, None
    try:
        return objects, first_object(step, objects, context)
    except Undecided:
        return objects, None


def _is_yes(answer: str) -> bool:
    return normalised(answer) == "yes"


def explain_query(scene, step, inputs, context, answer) -> AttributeValue:
    check_arity(step, inputs, (1,))
    objects, object_id = _subject(step, inputs[0], context)
    return AttributeValue(objects, object_id, step.value, answer)


def explain_verify(scene, step, inputs, context, answer) -> TruthValue:
    check_arity(step, inputs, (1,))
    holds = _is_yes(answer)
    objects, object_id = _subject(step, inputs[0], context)
    if step.category == "rel":
        other = step.object_ids[0] if step.object_ids else None
        if other is not None:
            scene_object(scene, other)
        if object_id is None:
            raise Undecided(f"{step.operation!r} is asked of a {objects.noun or 'object'} the scene does not have")
        noun = singular(step.target) if step.target else None
        return TruthValue(holds, (_relation_statement(object_id, other, noun, step.relation, step.side == "s", holds),))
    return TruthValue(holds, (HasValue(objects, object_id, step.category, step.value, holds),))


def explain_exist(scene, step, inputs, context, answer) -> TruthValue:
    check_arity(step, inputs, (1,))
    objects = objects_input(step, inputs[0])
    if not _is_yes(answer):  # GQA says there is none: the explanation names none
        return TruthValue(False, (Exists(ObjectSet((), objects.noun, objects.filters, objects.relation), False),))
    ids = objects.ids or objects.unconfirmed
    if not ids and objects.noun is not None:
        ids = tuple(i for i, obj in scene.objects.items() if singular(obj.name) == objects.noun)[:1]
    found = ObjectSet(ids, objects.noun, objects.filters, objects.relation)
    return TruthValue(True, (Exists(found, True),))


def _alternative(step: Step, answer: str) -> str:
    """The alternative GQA's answer names (``left`` names ``to the left of``); else the answer itself."""
    wanted = normalised(answer)
    for alternative in step.alternatives:
        if normalised(alternative) == wanted or normalised(answer_word(alternative)) == wanted:
            return alternative
    return answer


def explain_choose(scene, step, inputs, context, answer) -> Choice:
    check_arity(step, inputs, (1,))
    objects, object_id = _subject(step, inputs[0], context)
    alternative = _alternative(step, answer)
    if step.category == "rel":
        if object_id is None:
            raise Undecided(f"{step.operation!r} is asked of a {objects.noun or 'object'} the scene does not have")
        other = _other_object(scene, step, object_id)
        noun = singular(step.target) if step.target else None
        return Choice(answer, (_relation_statement(object_id, other, noun, alternative, step.side == "s", True),))
    return Choice(answer, (HasValue(objects, object_id, step.category, alternative, True),))


def _pairs(step: Step, inputs: Sequence[Value], context: Context) -> list[tuple[ObjectSet, str]]:
    compared = _compared_objects(step, inputs, context)
    if len(compared) < 2:
        raise Undecided(f"{step.operation!r} needs two or more objects")
    return compared


def make_same_explainer(expect_same: bool) -> Explainer:
    def explainer(scene, step, inputs, context, answer) -> TruthValue:
        check_arity(step, inputs, (1, 2))
        holds = _is_yes(answer)
        all_same = holds == expect_same
        category = _compared_category(step)
        compared = _pairs(step, inputs, context)
        values = [value_of(scene, scene.objects[i], category, context) for _, i in compared]
        if None not in values and (len(set(values)) == 1) == all_same:
            statements = [HasValue(o, i, category, v, True) for (o, i), v in zip(compared, values)]
            if not all_same:
                statements = [statements[0], next(s for s in statements if s.value != statements[0].value)]
            return TruthValue(holds, tuple(statements))
        return TruthValue(holds, (SameValue(tuple(compared[:2]) if not all_same else tuple(compared), category,
                                            all_same),))

    return explainer


def explain_common(scene, step, inputs, context, answer) -> Choice:
    check_arity(step, inputs, (2,))
    (first_set, first), (second_set, second) = _pairs(step, inputs, context)
    category = normalised(answer)
    value = value_of(scene, scene.objects[first], category, context)
    if value is not None and value == value_of(scene, scene.objects[second], category, context):
        return Choice(answer, (HasValue(first_set, first, category, value), HasValue(second_set, second, category, value)))
    return Choice(answer, (SameValue(((first_set, first), (second_set, second)), category, True),))


def explain_compare(scene, step, inputs, context, answer) -> Choice:
    check_arity(step, inputs, (2,))
    (_, first), (_, second) = _pairs(step, inputs, context)
    wanted = singular(normalised(answer))
    first_named, second_named = (singular(scene.objects[i].name.lower()) == wanted for i in (first, second))
    winner, loser = (second, first) if second_named and not first_named else (first, second)
    return Choice(answer, (Comparison(winner, loser, step.category),))


EXPLAINERS: dict[str, Explainer] = {
    "query": explain_query,
    "verify": explain_verify,
    "choose": explain_choose,
    "exist": explain_exist,
    "same": make_same_explainer(True),
    "different": make_same_explainer(False),
    "common": explain_common,
    "compare": explain_compare,
}


def handler_for(operation: str) -> Handler:
    """The handler of a GQA operation name, through its family; unknown names raise ExecutionError."""
    spec = OPERATIONS.get(operation)
    if spec is None:
        raise ExecutionError(f"unknown operation {operation!r}")
    return HANDLERS[spec.family]
