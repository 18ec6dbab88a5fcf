"""GQA records: load and validate question and scene-graph files, parse program steps.

A GQA question carries its reasoning program in ``semantic``: a list of steps
``{"operation": "filter color", "argument": "white", "dependencies": [0]}``. This module turns each
step into a typed :class:`Step` (operation family, attribute category, the parts of the argument) and
each scene graph into :class:`SceneGraph` records, with errors that name the file, the question id,
the step and the reason.

The operation table below is the project's own: every one of the 136 operation names that GQA's
balanced questions use is built from a family and a category.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from rexlib import layout


def frozen_record(cls: type) -> type:
    """``@dataclass(frozen=True, slots=True)`` whose ``__init__`` stores each field through its slot.

    A frozen dataclass's generated ``__init__`` assigns every field with ``object.__setattr__`` (its
    own ``__setattr__`` refuses); the slot's descriptor does the same store for about 60% of the cost.
    The build makes these records by the hundred thousand (steps, questions, scene objects, values),
    so the difference is felt. Everything else (fields, equality, hashing, repr, ``replace``, the
    refusal to be changed) is the dataclass's own. Fields must take positions and have no
    ``__post_init__``.
    """
    cls = dataclass(frozen=True, slots=True)(cls)
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: frozen_record does not run __post_init__")
    namespace: dict[str, Any] = {"MISSING": MISSING}
    parameters, lines = ["self"], []
    for number, found in enumerate(fields(cls)):
        if not found.init or found.kw_only:
            raise TypeError(f"{cls.__name__}.{found.name}: frozen_record needs positional init fields")
        namespace[f"store_{number}"] = getattr(cls, found.name).__set__
        if found.default is not MISSING:
            namespace[f"default_{number}"] = found.default
            parameters.append(f"{found.name}=default_{number}")
        elif found.default_factory is not MISSING:
            namespace[f"factory_{number}"] = found.default_factory
            parameters.append(f"{found.name}=MISSING")
            lines.append(f"if {found.name} is MISSING: {found.name} = factory_{number}()")
        else:
            parameters.append(found.name)
        lines.append(f"store_{number}(self, {found.name})")
    # A generated plain function, as dataclasses makes its own: no per-call loop over the fields.
    source = f"def __init__({', '.join(parameters)}):\n    " + "\n    ".join(lines or ["pass"])
    exec(source, namespace)  # noqa: S102 - our own text, built from the class's field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init
    return cls


FAMILIES = (
    "select", "relate", "filter", "query", "verify", "choose", "exist",
    "and", "or", "same", "different", "common", "compare",
)

# Attribute categories GQA uses with each family (besides the plain, category-less operation).
_FILTER_CATEGORIES = (
    "activity", "age", "brightness", "cleanliness", "color", "company", "depth", "event",
    "face expression", "fatness", "flavor", "gender", "hardness", "height", "hposition", "length",
    "liquid", "material", "opaqness", "orientation", "pattern", "pose", "race", "realism", "room",
    "shape", "size", "sport", "sportActivity", "state", "texture", "thickness", "tone", "vposition",
    "weather", "weight", "width",
)
_VERIFY_CATEGORIES = (
    "activity", "age", "brightness", "cleanliness", "color", "company", "depth", "face expression",
    "fatness", "flavor", "gender", "hardness", "height", "hposition", "length", "location", "material",
    "opaqness", "pattern", "place", "pose", "race", "realism", "rel", "room", "shape", "size",
    "sportActivity", "state", "texture", "thickness", "tone", "type", "vposition", "weather", "weight",
    "width",
)
_CHOOSE_CATEGORIES = (
    "activity", "age", "brightness", "cleanliness", "color", "company", "depth", "face expression",
    "fatness", "flavor", "gender", "hardness", "height", "hposition", "length", "location", "material",
    "name", "opaqness", "pattern", "place", "pose", "race", "realism", "rel", "shape", "size",
    "sportActivity", "state", "thickness", "tone", "vposition", "weather", "weight", "width",
)
# `choose older` and friends compare two objects; they form the `compare` family.
COMPARATIVES = (
    "healthier", "less healthy", "older", "younger", "taller", "shorter", "larger", "smaller",
    "higher", "lower",
)
_SAME_CATEGORIES = ("color", "material", "shape")
_DIFFERENT_CATEGORIES = ("color", "shape")


@dataclass(frozen=True, slots=True)
class OperationSpec:
    name: str  # the full GQA operation name, "filter color"
    family: str  # one of FAMILIES
    category: str | None  # attribute category, "rel", "name", or the comparative; None when plain


def _operation_table() -> dict[str, OperationSpec]:
    table = {name: OperationSpec(name, name, None) for name in FAMILIES if name != "compare"}
    for family, categories in (
        ("filter", _FILTER_CATEGORIES), ("verify", _VERIFY_CATEGORIES), ("choose", _CHOOSE_CATEGORIES),
        ("same", _SAME_CATEGORIES), ("different", _DIFFERENT_CATEGORIES),
    ):
        for category in categories:
            name = f"{family} {category}"
            table[name] = OperationSpec(name, family, category)
    for comparative in COMPARATIVES:
        name = f"choose {comparative}"
        table[name] = OperationSpec(name, "compare", comparative)
    return table


OPERATIONS: dict[str, OperationSpec] = _operation_table()


class GQAError(ValueError):
    """A malformed GQA record: says which file, which question, which step and why."""

    def __init__(self, reason: str, *, file: str | None = None, question_id: str | None = None,
                 step: int | None = None):
        self.reason, self.file, self.question_id, self.step = reason, file, question_id, step
        where = ", ".join(
            part for part in (
                f"file {file}" if file else "",
                f"question {question_id}" if question_id is not None else "",
                f"step {step}" if step is not None else "",
            ) if part
        )
        super().__init__(f"{where}: {reason}" if where else reason)


@dataclass(frozen=True, slots=True)
class Reject:
    """A record a tolerant loader skipped, with the reason."""

    file: str
    question_id: str | None
    step: int | None
    reason: str


@frozen_record
class Step:
    """One parsed program step. See docs/contracts.md for the meaning of each field."""

    index: int
    operation: str
    family: str
    category: str | None
    argument: str
    dependencies: tuple[int, ...]
    target: str | None = None  # object name in select/relate/verify rel/choose rel; None for "_"
    relation: str | None = None
    side: str | None = None  # "s": the target is the subject of the relation, "o": its object
    object_ids: tuple[str, ...] = ()
    absent: bool = False  # the argument says "(-)": no such object in the scene
    alternatives: tuple[str, ...] = ()
    value: str | None = None  # filter/verify value, or the queried category for query
    negated: bool = False  # filter "not(white)"


@frozen_record
class SceneObject:
    object_id: str
    name: str
    x: float
    y: float
    w: float
    h: float
    attributes: tuple[str, ...]
    relations: tuple[tuple[str, str], ...]  # (relation name, other object id)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """x1, y1, x2, y2 in pixels."""
        return (self.x, self.y, self.x + self.w, self.y + self.h)


@frozen_record
class SceneGraph:
    image_id: str
    width: int
    height: int
    objects: dict[str, SceneObject]
    location: str | None = None
    weather: str | None = None


@frozen_record
class Question:
    question_id: str
    image_id: str
    question: str
    answer: str | None
    full_answer: str | None
    program: tuple[Step, ...]
    types: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Program steps


def _split_object_ids(argument: str) -> tuple[str, tuple[str, ...], bool]:
    """'table (279472)' -> ('table', ('279472',), False); '_,on,s (-)' -> ('_,on,s', (), True).

    Whitespace may sit anywhere, as in GQA's own files: every ``select`` after the first carries a
    trailing space (``"sweater (1946635) "``), and ids may have spaces around them (``"( 1 , 2 )"``).
    """
    argument = argument.strip()
    if not argument.endswith(")"):
        if "(" in argument or ")" in argument:
            raise ValueError(f"unbalanced parenthesis in argument {argument!r}")
        return argument, (), False
    opening = argument.rfind("(")
    if opening < 0:
        raise ValueError(f"unbalanced parenthesis in argument {argument!r}")
    inside = argument[opening + 1:-1].strip()
    head = argument[:opening].strip()
    if "(" in head or ")" in head:
        raise ValueError(f"parenthesis inside the name in argument {argument!r}")
    if inside == "-":
        return head, (), True
    if inside.replace(",", "").isalnum():  # the usual "1,2": nothing to strip, every part an id
        return head, tuple([part for part in inside.split(",") if part]), False
    ids = tuple(part.strip() for part in inside.split(",") if part.strip())
    if not ids or not all(part.isalnum() for part in ids):
        raise ValueError(f"object ids {inside!r} in argument {argument!r} are not ids")
    return head, ids, False


def _relation_parts(head: str, argument: str) -> tuple[str | None, str, str]:
    """'_,on,s' -> (None, 'on', 's'); the relation itself never holds the first or last comma."""
    parts = head.split(",")
    if len(parts) < 3:
        raise ValueError(f"relation argument {argument!r} needs 'target,relation,side'")
    target, side = parts[0].strip(), parts[-1].strip()
    relation = ",".join(parts[1:-1]).strip()
    if side not in ("s", "o"):
        raise ValueError(f"relation side {side!r} in argument {argument!r} is neither 's' nor 'o'")
    if not relation:
        raise ValueError(f"empty relation in argument {argument!r}")
    return (None if target in ("_", "") else target), relation, side


# Parsed steps by (index, operation, argument, dependencies). A Step is immutable and a pure function of
# those four (the file and question id only ever appear in errors), and GQA repeats the same steps
# across the questions of an image ("select: table (279472)"), so a hit skips the parsing, the
# validation and the frozen-dataclass construction. Bounded: cleared when it grows past the limit.
_STEP_CACHE: dict[tuple, Step] = {}
_STEP_CACHE_LIMIT = 500_000


def parse_step(raw: Mapping[str, Any], index: int, *, question_id: str | None = None,
               file: str | None = None) -> Step:
    """Parse one ``semantic`` entry into a :class:`Step`, raising :class:`GQAError` if malformed."""
    step = _cached_step(raw, index, question_id, file)
    return step if step is not None else _parse_step(raw, index, question_id=question_id, file=file)


def _cached_step(raw: Any, index: int, question_id: str | None, file: str | None) -> Step | None:
    """The parsed step from (or newly put in) the cache; None for a record the cache does not take.

    Only exact str and list values use the cache. The dependencies enter the key as their text,
    "[0, 1]": 1.0 == 1 and True == 1 hash alike, their texts do not, so the slow path sees them and
    rejects (or keeps) them exactly as before. A malformed step raises, from :func:`_parse_step`.
    """
    if type(raw) is not dict:
        return None
    try:  # subscripts, not three .get calls: GQA's steps carry all three keys (one that lacks any is not cached)
        operation, argument, dependencies = raw["operation"], raw["argument"], raw["dependencies"]
    except KeyError:
        return None
    if type(operation) is not str or type(argument) is not str or type(dependencies) is not list:
        return None
    dependencies_text = str(dependencies)
    key = (index, operation, argument, dependencies_text)
    step = _STEP_CACHE.get(key)
    if step is None:
        if operation in _OPERATIONS_WITH_IDS:
            step = _step_of_shape(raw, index, operation, argument, dependencies_text, question_id, file)
        else:
            step = _parse_step(raw, index, question_id=question_id, file=file)
        if len(_STEP_CACHE) >= _STEP_CACHE_LIMIT:
            _STEP_CACHE.clear()
        _STEP_CACHE[key] = step
    return step


# Operations whose argument ends with the ids it is about: "table (279472)", "_,on,s (-)".
_OPERATIONS_WITH_IDS = frozenset(name for name, spec in OPERATIONS.items() if spec.family in ("select", "relate")
                                 or (spec.category == "rel" and spec.family in ("verify", "choose")))
# Steps by *shape*: (index, operation, argument before its ids, dependencies). Ids are the one part of
# such an argument that varies from image to image (the world's 20,585 distinct train steps have 2,503
# shapes), and everything else in the Step follows from the shape alone, so a new step of a known
# shape takes that step's fields and parses only its ids.
_SHAPE_CACHE: dict[tuple, Step] = {}


def _step_of_shape(raw: dict, index: int, operation: str, argument: str, dependencies_text: str,
                   question_id: str | None, file: str | None) -> Step:
    """The step of an argument with ids, from a parsed step of the same shape when there is one.

    Only ids that need nothing stripped (``1,2``) or ``-`` take the shortcut; anything else, and the
    first step of each shape, goes through :func:`_parse_step` (its checks, its errors).
    """
    stripped = argument.strip()
    opening = stripped.rfind("(") if stripped.endswith(")") else -1
    inside = stripped[opening + 1:-1].strip() if opening >= 0 else ""
    if inside == "-":
        object_ids, absent = (), True
    elif opening >= 0 and inside.replace(",", "").isalnum():
        object_ids, absent = tuple(filter(None, inside.split(","))), False  # (filter: no comprehension per step)
    else:
        return _parse_step(raw, index, question_id=question_id, file=file)
    key = (index, operation, stripped[:opening], dependencies_text)
    shape = _SHAPE_CACHE.get(key)
    if shape is None:
        step = _parse_step(raw, index, question_id=question_id, file=file)
        if len(_SHAPE_CACHE) >= _STEP_CACHE_LIMIT:
            _SHAPE_CACHE.clear()
        _SHAPE_CACHE[key] = step
        return step
    return Step(index, operation, shape.family, shape.category, argument, shape.dependencies, shape.target,
                shape.relation, shape.side, object_ids, absent, shape.alternatives, shape.value, shape.negated)


def _parse_step(raw: Mapping[str, Any], index: int, *, question_id: str | None = None,
                file: str | None = None) -> Step:
    def fail(reason: str) -> GQAError:
        return GQAError(reason, file=file, question_id=question_id, step=index)

    if not isinstance(raw, Mapping):
        raise fail(f"step is a {type(raw).__name__}, not an object")
    operation = raw.get("operation")
    if not isinstance(operation, str):
        raise fail("step has no 'operation'")
    spec = OPERATIONS.get(operation)
    if spec is None:
        raise fail(f"unknown operation {operation!r}")
    argument = raw.get("argument", "")
    if not isinstance(argument, str):
        raise fail(f"argument of {operation!r} is not a string")
    dependencies = raw.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, int) for d in dependencies):
        raise fail(f"dependencies of {operation!r} are not a list of integers")
    for dependency in dependencies:
        if dependency < 0 or dependency >= index:
            raise fail(f"dependency {dependency} of {operation!r} is out of range or points forward")
    family, category = spec.family, spec.category
    # The optional fields, passed to Step by position (keywords cost more, per step parsed).
    target = relation = side = value = None
    object_ids = alternatives = ()
    absent = negated = False
    try:
        if family == "select":
            head, object_ids, absent = _split_object_ids(argument)
            target = head or None
        elif family == "relate" or (category == "rel" and family in ("verify", "choose")):
            head, object_ids, absent = _split_object_ids(argument)
            target, relation, side = _relation_parts(head, argument)
            if family == "choose":
                alternatives, relation = tuple(part.strip() for part in relation.split("|")), None
        elif family == "choose":
            alternatives = tuple(part.strip() for part in argument.split("|") if part.strip())
            if len(alternatives) < 2:
                raise ValueError(f"{operation!r} needs alternatives 'a|b', got {argument!r}")
        elif family in ("filter", "verify", "query"):
            value = argument.strip()
            if value.startswith("not(") and value.endswith(")"):
                value, negated = value[4:-1].strip(), True
            if not value:
                raise ValueError(f"{operation!r} needs a value")
        # exist, and, or, same, different, common, compare: the argument carries nothing we need.
    except ValueError as error:
        raise fail(str(error)) from None
    return Step(index, operation, family, category, argument, tuple(dependencies), target, relation, side,
                object_ids, absent, alternatives, value, negated)


# Families whose steps need exactly this many inputs; the rest take one dependency.
_ARITY = {"select": (0,), "and": (2,), "or": (2,), "compare": (2,), "common": (2,),
          "same": (1, 2), "different": (1, 2)}
_ONE = (1,)


def parse_program(semantic: Any, *, question_id: str | None = None, file: str | None = None,
                  scene: SceneGraph | None = None) -> tuple[Step, ...]:
    """Parse a whole program; with ``scene``, also check every object id exists in it."""
    if not isinstance(semantic, list) or not semantic:
        raise GQAError("'semantic' is not a non-empty list", file=file, question_id=question_id)
    steps = []
    for index, raw in enumerate(semantic):  # every step parsed before any is checked (the first error wins)
        step = _cached_step(raw, index, question_id, file)
        steps.append(step if step is not None else _parse_step(raw, index, question_id=question_id, file=file))
    objects = scene.objects if scene is not None else None
    for step in steps:
        allowed = _ARITY.get(step.family, _ONE)
        if len(step.dependencies) not in allowed:
            raise GQAError(
                f"{step.operation!r} takes {' or '.join(map(str, allowed))} dependencies, "
                f"got {len(step.dependencies)}", file=file, question_id=question_id, step=step.index,
            )
        if objects is not None:
            for object_id in step.object_ids:
                if object_id not in objects:
                    raise GQAError(
                        f"object {object_id} is not in scene graph {scene.image_id}",
                        file=file, question_id=question_id, step=step.index,
                    )
    return tuple(steps)


# ----------------------------------------------------------------------------------------------
# Files


def _read_object(path: str | os.PathLike) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise GQAError(f"bad json: {error}", file=str(path)) from None
    except OSError as error:
        raise GQAError(f"cannot read: {error.strerror}", file=str(path)) from None
    if not isinstance(data, dict):
        raise GQAError("file is not a JSON object keyed by id", file=str(path))
    return data


def parse_scene_graph(image_id: str, raw: Any, *, file: str | None = None) -> SceneGraph:
    def fail(reason: str) -> GQAError:
        return GQAError(f"scene graph {image_id}: {reason}", file=file)

    if not isinstance(raw, dict):
        raise fail("is not an object")
    try:
        width, height = int(raw["width"]), int(raw["height"])
    except (KeyError, TypeError, ValueError):
        raise fail("needs integer 'width' and 'height'") from None
    raw_objects = raw.get("objects", {})
    if not isinstance(raw_objects, dict):
        raise fail("'objects' is not an object keyed by id")
    objects = {}
    for object_id, entry in raw_objects.items():
        try:
            relations = tuple([(r["name"], str(r["object"])) for r in entry.get("relations", ())])
            objects[object_id] = SceneObject(
                object_id, entry["name"], float(entry["x"]), float(entry["y"]), float(entry["w"]),
                float(entry["h"]), tuple(entry.get("attributes", ())), relations,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise fail(f"object {object_id} is malformed ({type(error).__name__}: {error})") from None
    return SceneGraph(image_id, width, height, objects, raw.get("location"), raw.get("weather"))


def load_scene_graphs(path: str | os.PathLike) -> dict[str, SceneGraph]:
    """Load ``{split}_sceneGraphs.json``; a malformed graph raises :class:`GQAError`."""
    file = str(path)
    return {image_id: parse_scene_graph(image_id, raw, file=file) for image_id, raw in _read_object(path).items()}


_REQUIRED_QUESTION_FIELDS = ("imageId", "question", "semantic")


def parse_question(question_id: str, raw: Any, *, file: str | None = None,
                   scene_graphs: Mapping[str, SceneGraph] | None = None) -> Question:
    """Validate one question record and parse its program."""
    if not isinstance(raw, dict):
        raise GQAError("record is not an object", file=file, question_id=question_id)
    if "imageId" not in raw or "question" not in raw or "semantic" not in raw:  # one test for the usual record
        missing = next(name for name in _REQUIRED_QUESTION_FIELDS if name not in raw)
        raise GQAError(f"missing field {missing!r}", file=file, question_id=question_id)
    image_id = str(raw["imageId"])
    scene = None
    if scene_graphs is not None:
        scene = scene_graphs.get(image_id)
        if scene is None:
            raise GQAError(f"image {image_id} has no scene graph", file=file, question_id=question_id)
    program = parse_program(raw["semantic"], question_id=question_id, file=file, scene=scene)
    return Question(
        question_id, image_id, raw["question"], raw.get("answer"), raw.get("fullAnswer"), program,
        raw.get("types") or {}, raw,
    )


def load_questions(path: str | os.PathLike, scene_graphs: Mapping[str, SceneGraph] | None = None,
                   *, strict: bool = True) -> tuple[dict[str, Question], list[Reject]]:
    """Load ``{split}_balanced_questions.json``.

    strict=True raises :class:`GQAError` at the first malformed record; strict=False keeps going and
    returns the rejects with their reasons.
    """
    file = str(path)
    questions: dict[str, Question] = {}
    rejects: list[Reject] = []
    for question_id, raw in _read_object(path).items():
        try:
            questions[question_id] = parse_question(question_id, raw, file=file, scene_graphs=scene_graphs)
        except GQAError as error:
            if strict:
                raise
            rejects.append(Reject(file, question_id, error.step, error.reason))
    return questions, rejects


def split_files(gqa_dir: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """The question and scene-graph files of a split in a GQA-layout directory.

    GQA ships scene graphs for train and val only; testdev questions refer to val images, so a
    missing ``testdev_sceneGraphs.json`` falls back to ``val_sceneGraphs.json``.
    """
    root = Path(gqa_dir)
    questions = root / layout.questions_file(split)
    scenes = root / layout.scene_graphs_file(split)
    if not scenes.exists() and split.startswith("testdev"):
        scenes = root / layout.scene_graphs_file("val")
    return questions, scenes
