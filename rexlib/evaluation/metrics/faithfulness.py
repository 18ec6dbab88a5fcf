"""Is a generated explanation true of the image, and does it imply the answer? Checked on the scene graph.

BLEU, CIDEr and the grounding score say how much a generated explanation looks like the reference one;
these say whether what it states holds in the image's scene graph, and whether it supports the answer:

* **faithfulness** — true statements / statements read (``rexlib.evaluation.metrics.statements`` reads them);
* **consistency** — explanations whose statements imply the model's own answer (and, beside it, GQA's);
* **parse rate** — clauses read / (clauses read + spans the reader could not read).

Each ``#k`` stands for the scene-graph object its region covers best, by the grounding's own IoU
(:func:`rexlib.dataset.grounding.iou_matrix`), when that IoU reaches :data:`MIN_RESOLUTION_IOU`; a region that
covers no object that well makes its statement false. Statements are checked with the executor's own
rules (``rexlib.program``): an attribute is one of the object's attributes (or its name), a relation is
stored in either direction where it has an inverse, a position is the object's third of the image and
its grid cell, an absence is the scene graph's, a comparative is the executor's scale. A statement the
scene graph cannot decide (no weather recorded, a comparative it cannot read) is *unknown*: read, not
true. An explanation *implies* an answer when, read against the question's program (the objects each
step selects, from the executor's run over the scene graph), its statements decide the last step: the
value of the asked object in the asked category, yes/no for verify / exist / and / or / same /
different, the chosen alternative, the shared category, the compared object's name. Statements about
other objects imply nothing.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rexlib import gqa, layout
from rexlib.boxes import grid_cell, iou_matrix
from rexlib.dataset.grounding import tokenize_raw
from rexlib.evaluation.metrics.statements import (
    AtPosition,
    Compared,
    Exists,
    HasAttribute,
    IsA,
    Lexicon,
    Mention,
    Reading,
    Related,
    SceneValue,
    Statement,
    describe,
    mentions,
    read_explanation,
)
from rexlib.io import read_json
from rexlib.program.attributes import (
    COMPARATIVE_SCALES,
    POSITION_CATEGORIES,
    CategoryTable,
    comparative_key,
    position,
    scene_value,
)
from rexlib.program.handlers import COMMON_CATEGORIES, INVERSE_RELATIONS, has_value, relation_holds
from rexlib.program.postprocess import normalised_location, singular
from rexlib.program.values import ObjectSet

# A region stands for an object when their IoU reaches this: PASCAL VOC's detection threshold. On the
# embedded world every referred object's region covers it with IoU >= 0.75.
MIN_RESOLUTION_IOU = 0.5
TRUE, FALSE, UNKNOWN = True, False, None
POSITION_WORDS = frozenset({"left", "right", "top", "bottom", "middle"})


# ------------------------------------------------------------------------------------- the truth


class SceneTruth:
    """One image: its scene graph, its detector regions, and the verdict of each statement about it."""

    def __init__(self, scene: gqa.SceneGraph, region_boxes: np.ndarray, min_iou: float = MIN_RESOLUTION_IOU):
        self.scene = scene
        self.ids = list(scene.objects)
        boxes = np.asarray(region_boxes, dtype=np.float64).reshape(-1, 4)
        if self.ids and len(boxes):
            object_boxes = np.array([scene.objects[i].box for i in self.ids], dtype=np.float64)
            ious = iou_matrix(boxes, object_boxes)  # (regions, objects)
            best = ious.argmax(axis=1)
            self.region_object = {k: self.ids[j] if ious[k, j] >= min_iou else None for k, j in enumerate(best)}
        else:
            self.region_object = {}

    # -- mentions -> objects
    def resolve(self, region: int) -> str | None:
        return self.region_object.get(region)

    def _fits(self, object_id: str, mention: Mention) -> bool:
        obj = self.scene.objects[object_id]
        for value, negated in mention.modifiers:
            if self.has(object_id, value) == negated:
                return False
        for category, value, negated in mention.positions:
            if self.at(object_id, value) == negated:
                return False
        return not (mention.noun is not None and mention.region is None and singular(obj.name.lower()) != mention.noun)

    def candidates(self, mention: Mention) -> list[str] | None:
        """The objects a mention can stand for; ``None`` when it stands for nothing it claims to.

        A region stands for its one object, which must have the modifiers; a noun for every object of
        that name with them (``the cup`` needs one, ``a cup`` / ``no cup`` may have none).
        """
        if mention.region is not None:
            object_id = self.resolve(mention.region)
            return [object_id] if object_id is not None and self._fits(object_id, mention) else None
        found = [object_id for object_id in self.ids if self._fits(object_id, mention)]
        return None if mention.definite and not found else found

    # -- facts, by the executor's rules
    def has(self, object_id: str, value: str) -> bool:
        obj = self.scene.objects[object_id]
        return has_value(self.scene, obj, None, value) or singular(obj.name.lower()) == singular(value)

    def at(self, object_id: str, value: str, cell: int | None = None) -> bool:
        obj = self.scene.objects[object_id]
        axes = [c for c in sorted(POSITION_CATEGORIES) if value in _AXIS_VALUES[c]]
        if not any(position(obj, self.scene, axis) == value for axis in axes):
            return False
        return cell is None or self.cell(object_id) == cell

    def cell(self, object_id: str) -> int:
        """The grid cell the executor writes for the object (its rounded centre, then the 4x4 grid)."""
        (_, centre), = tokenize_raw(normalised_location(self.scene.objects[object_id], self.scene))
        return grid_cell(*centre)

    def name(self, object_id: str) -> str:
        return self.scene.objects[object_id].name

    # -- verdicts
    def verdict(self, statement: Statement) -> bool | None:
        """True, False, or None (unknown: the scene graph cannot decide)."""
        check = _CHECKS[type(statement)]
        return check(self, statement)


_AXIS_VALUES = {"hposition": frozenset({"left", "middle", "right"}), "vposition": frozenset({"top", "middle", "bottom"})}


def _some(results: list[bool], holds: bool) -> bool:
    """A positive statement holds for some candidate; a negative one fails for some."""
    return any(results) if holds else not all(results)


def _check_attribute(truth: SceneTruth, statement: HasAttribute) -> bool:
    found = truth.candidates(statement.subject)
    return bool(found) and _some([truth.has(i, statement.value) for i in found], statement.holds)


def _check_position(truth: SceneTruth, statement: AtPosition) -> bool:
    found = truth.candidates(statement.subject)
    return bool(found) and _some([truth.at(i, statement.value, statement.cell) for i in found], statement.holds)


def _check_relation(truth: SceneTruth, statement: Related) -> bool:
    subjects, others = truth.candidates(statement.subject), truth.candidates(statement.other)
    if subjects is None or others is None:
        return False
    holds = any(s != o and relation_holds(truth.scene, s, statement.relation, o) for s in subjects for o in others)
    return holds == statement.holds


def _check_exists(truth: SceneTruth, statement: Exists) -> bool:
    found = truth.candidates(statement.subject)
    return found is not None and bool(found) == statement.holds


def _check_comparison(truth: SceneTruth, statement: Compared) -> bool | None:
    firsts, seconds = truth.candidates(statement.first), truth.candidates(statement.second)
    if not firsts or not seconds or firsts[0] == seconds[0]:
        return False
    first_key, _ = comparative_key(truth.scene.objects[firsts[0]], statement.comparative)
    second_key, _ = comparative_key(truth.scene.objects[seconds[0]], statement.comparative)
    if first_key is None or second_key is None:
        return UNKNOWN
    if first_key == second_key:
        return not statement.holds
    first_wins = (first_key > second_key) == (COMPARATIVE_SCALES[statement.comparative][1] > 0)
    return first_wins == statement.holds


def _check_scene(truth: SceneTruth, statement: SceneValue) -> bool | None:
    actual = scene_value(truth.scene, statement.category)
    return UNKNOWN if actual is None else (actual == statement.value) == statement.holds


def _check_is_a(truth: SceneTruth, statement: IsA) -> bool | None:
    # "it is a #3" claims the region shows an object; "it is not a #3" denies a name the tokens lost
    return bool(truth.candidates(statement.subject)) if statement.holds else UNKNOWN


_CHECKS: dict[type, Callable] = {
    HasAttribute: _check_attribute, AtPosition: _check_position, Related: _check_relation, Exists: _check_exists,
    Compared: _check_comparison, SceneValue: _check_scene, IsA: _check_is_a,
}


# ------------------------------------------------------------------------------- what it implies


def _same_answer(answer: str | None, implied: str) -> bool:
    """GQA answers compared loosely: case, spacing, plural, and the bare word of a position or relation."""
    if answer is None:
        return False
    a, b = " ".join(str(answer).lower().split()), " ".join(str(implied).lower().split())
    if a == b or singular(a) == singular(b):
        return True
    return a in POSITION_WORDS and a in b.split()


@dataclass
class _Claims:
    """The statements of one explanation, with each mention's objects, for reading off answers."""

    truth: SceneTruth
    statements: tuple[Statement, ...]
    categories: CategoryTable  # value -> category, mined from the questions (as the executor's)

    def objects(self, mention: Mention) -> list[str]:
        return self.truth.candidates(mention) or []

    def about(self, mention: Mention, ids: Iterable[str]) -> bool:
        ids = set(ids)
        return any(i in ids for i in self.objects(mention))

    def values(self, ids, category: str | None = None) -> list[tuple[str, bool]]:
        """(value, holds) said of the objects ``ids``: predicates and the modifiers of their mentions."""
        found = []
        for statement in self.statements:
            if isinstance(statement, HasAttribute) and self.about(statement.subject, ids):
                found.append((statement.value, statement.holds))
            for mention in mentions(statement):
                if self.about(mention, ids):
                    found += [(value, not negated) for value, negated in mention.modifiers]
        if category is None:
            return found
        return [(value, holds) for value, holds in found if category in self.categories.categories_of(value)]

    def share_category(self, value: str, other: str) -> bool:
        return bool(set(self.categories.categories_of(value)) & set(self.categories.categories_of(other)))

    def named(self, ids) -> set[str]:
        """Names of the objects of ``ids`` the explanation refers to."""
        return {self.truth.name(i) for statement in self.statements for mention in mentions(statement)
                for i in self.objects(mention) if i in set(ids)}

    def positions(self, ids) -> list[str]:
        return [s.value for s in self.statements if isinstance(s, AtPosition) and s.holds and self.about(s.subject, ids)]

    def scene_values(self, category: str) -> list[tuple[str, bool]]:
        wanted = category if category in ("location", "weather") else "place"
        return [(s.value, s.holds) for s in self.statements if isinstance(s, SceneValue) and s.category == wanted]

    def relations(self, subject_ids, other_ids, relation_names) -> list[tuple[str, bool]]:
        """(relation, holds) stated from ``subject_ids`` to ``other_ids`` (an inverse counts, turned round)."""
        found = []
        for s in self.statements:
            if not isinstance(s, Related):
                continue
            if s.relation in relation_names and self._matches(s.subject, subject_ids) and self._matches(s.other, other_ids):
                found.append((s.relation, s.holds))
            inverse = INVERSE_RELATIONS.get(s.relation)
            if inverse in relation_names and self._matches(s.other, subject_ids) and self._matches(s.subject, other_ids):
                found.append((inverse, s.holds))
        return found

    def _matches(self, mention: Mention, wanted) -> bool:
        """``wanted``: object ids, or ``("noun", name|None)`` for an object the program names only."""
        if isinstance(wanted, tuple) and wanted and wanted[0] == "noun":
            noun = wanted[1]
            if mention.region is None:
                return noun is None or mention.noun in (None, noun)
            return noun is None or any(singular(self.truth.name(i).lower()) == noun for i in self.objects(mention))
        return self.about(mention, wanted)


def _single(answers: Iterable[str]) -> str | None:
    distinct = {" ".join(a.lower().split()) for a in answers if a}
    return distinct.pop() if len(distinct) == 1 else None


def _truth_of(pairs: list[tuple[str, bool]], wanted: str) -> str | None:
    verdicts = {("yes" if holds else "no") for value, holds in pairs if value == wanted}
    return verdicts.pop() if len(verdicts) == 1 else None


def _names_of(claims: _Claims, objects: ObjectSet) -> set[str]:
    """Names of the asked objects the explanation refers to, or that a stated relation reaches
    ("What is on the table?": whatever "the #3 is on the #4" puts on the table)."""
    names = claims.named(objects.ids)
    relation = objects.relation
    if relation is not None:
        for s in claims.statements:
            if isinstance(s, Related) and s.holds and s.relation == relation.name:
                target, anchor = (s.subject, s.other) if relation.target_is_subject else (s.other, s.subject)
                if claims.about(anchor, relation.anchor.ids):
                    names |= {claims.truth.name(i) for i in claims.objects(target)}
    return names


def _query(claims: _Claims, step: gqa.Step, objects: ObjectSet) -> str | None:
    category = step.value or ""
    if objects.scene:
        return _single(value for value, holds in claims.scene_values(category) if holds)
    if category == "name":
        return _single(_names_of(claims, objects))
    if category in POSITION_CATEGORIES:
        return _single(v for v in claims.positions(objects.ids) if v in _AXIS_VALUES[category])
    return _single(value for value, holds in claims.values(objects.ids, category) if holds)


def _verify(claims: _Claims, step: gqa.Step, objects: ObjectSet) -> str | None:
    if step.category == "rel":
        other = step.object_ids or ("noun", singular(step.target) if step.target else None)
        subject_ids, other_ids = (other, objects.ids) if step.side == "s" else (objects.ids, other)
        return _single("yes" if holds else "no" for _, holds in claims.relations(subject_ids, other_ids, {step.relation}))
    wanted = step.value or ""
    if objects.scene:
        return _single(("yes" if (value == wanted) == holds else "no") for value, holds in claims.scene_values(step.category or ""))
    if step.category in POSITION_CATEGORIES:
        stated = [v for v in claims.positions(objects.ids) if v in _AXIS_VALUES[step.category]]
        return _single("yes" if v == wanted else "no" for v in stated)
    if step.category == "name":
        return _single("yes" if s.holds else "no" for s in claims.statements
                       if isinstance(s, IsA) and claims.about(s.subject, objects.ids))
    pairs = claims.values(objects.ids)
    verdict = _truth_of(pairs, wanted)
    if verdict is None:  # another value of the same category rules it out ("the cup is red": not white)
        rivals = [value for value, holds in pairs if holds and value != wanted and claims.share_category(value, wanted)]
        verdict = "no" if rivals else None
    return verdict


def _choose(claims: _Claims, step: gqa.Step, objects: ObjectSet) -> str | None:
    alternatives = set(step.alternatives)
    if step.category == "rel":
        other = tuple(step.object_ids)
        subject_ids, other_ids = (other, objects.ids) if step.side == "s" else (objects.ids, other)
        return _single(r for r, holds in claims.relations(subject_ids, other_ids, alternatives) if holds)
    if objects.scene:
        return _single(v for v, holds in claims.scene_values(step.category or "") if holds and v in alternatives)
    if step.category == "name":
        return _single(name for name in _names_of(claims, objects) if name in alternatives)
    if step.category in POSITION_CATEGORIES:
        return _single(v for v in claims.positions(objects.ids) if v in alternatives)
    return _single(v for v, holds in claims.values(objects.ids) if holds and v in alternatives)


def _exist(claims: _Claims, objects: ObjectSet) -> str | None:
    verdicts = set()
    for s in claims.statements:
        if s.holds and not isinstance(s, SceneValue) and any(claims.about(m, objects.ids) for m in mentions(s)):
            verdicts.add("yes")
        if isinstance(s, (Exists, Related)) and not s.holds:
            absent = s.subject if s.subject.region is None else getattr(s, "other", s.subject)
            if absent.region is None and absent.noun in (None, objects.noun):
                verdicts.add("no")
    return verdicts.pop() if len(verdicts) == 1 else None


def _compared(objects: list[ObjectSet]) -> list[str]:
    if len(objects) == 2:
        return [o.ids[0] for o in objects if o.ids]
    return list(objects[0].ids) if objects else []


def _same(claims: _Claims, step: gqa.Step, objects: list[ObjectSet], expect_same: bool) -> str | None:
    category = step.category or step.argument.strip() or "name"
    compared = _compared(objects)
    values = {}
    for object_id in compared:
        if category == "name":
            stated = claims.named([object_id])
        else:
            stated = {v for v, holds in claims.values([object_id], category) if holds}
        if len(stated) == 1:
            values[object_id] = stated.pop()
    if len(set(values.values())) > 1:
        same = False
    elif len(values) == len(compared) >= 2:
        same = True
    else:
        return None
    return "yes" if same == expect_same else "no"


def _common(claims: _Claims, objects: list[ObjectSet]) -> str | None:
    first, second = (_compared(objects) + [None, None])[:2]
    if first is None or second is None:
        return None
    shared = [category for category in COMMON_CATEGORIES
              if {v for v, h in claims.values([first], category) if h} & {v for v, h in claims.values([second], category) if h}]
    return shared[0] if len(shared) == 1 else None


def _compare(claims: _Claims, step: gqa.Step, objects: list[ObjectSet]) -> str | None:
    pair = _compared(objects)
    if len(pair) != 2:
        return None
    winners = set()
    for s in claims.statements:
        if isinstance(s, Compared) and s.comparative == step.category:
            for a, b in (pair, pair[::-1]):
                if claims.about(s.first, [a]) and claims.about(s.second, [b]):
                    winners.add(a if s.holds else b)
    if not winners:  # "the #1 is young and the #2 is old": the executor's scale over the stated values
        keys = {}
        for object_id in pair:
            stated = [v for v, holds in claims.values([object_id]) if holds]
            obj = dataclasses.replace(claims.truth.scene.objects[object_id], attributes=tuple(stated))
            keys[object_id] = comparative_key(obj, step.category)[0] if stated else None
        if None not in keys.values() and keys[pair[0]] != keys[pair[1]]:
            first_wins = (keys[pair[0]] > keys[pair[1]]) == (COMPARATIVE_SCALES[step.category][1] > 0)
            winners.add(pair[0] if first_wins else pair[1])
    return claims.truth.name(winners.pop()) if len(winners) == 1 else None


def implied_answer(statements: tuple[Statement, ...], question: gqa.Question, step_values: tuple,
                   truth: SceneTruth, categories: CategoryTable | None = None) -> str | None:
    """The answer the statements imply for the question's last step, or None when they imply none.

    ``step_values``: the executor's value of each step (``Execution.steps``), for the objects each
    step selects. ``categories``: the attribute table (default: mined from the question itself).
    """
    claims = _Claims(truth, statements, categories or CategoryTable.mine([question.raw]))
    implied: dict[int, str | None] = {}
    for index, step in enumerate(question.program):
        inputs = [step_values[d] for d in step.dependencies]
        sets = [value for value in inputs if isinstance(value, ObjectSet)]
        family = step.family
        if family in ("select", "relate", "filter"):
            continue
        if family in ("and", "or"):
            parts = [implied.get(d) for d in step.dependencies]
            if family == "and":
                implied[index] = "no" if "no" in parts else ("yes" if parts and all(p == "yes" for p in parts) else None)
            else:
                implied[index] = "yes" if "yes" in parts else ("no" if parts and all(p == "no" for p in parts) else None)
        elif not sets:
            implied[index] = None
        elif family == "query":
            implied[index] = _query(claims, step, sets[0])
        elif family == "verify":
            implied[index] = _verify(claims, step, sets[0])
        elif family == "choose":
            implied[index] = _choose(claims, step, sets[0])
        elif family == "exist":
            implied[index] = _exist(claims, sets[0])
        elif family in ("same", "different"):
            implied[index] = _same(claims, step, sets, family == "same")
        elif family == "common":
            implied[index] = _common(claims, sets)
        elif family == "compare":
            implied[index] = _compare(claims, step, sets)
    return implied.get(len(question.program) - 1)


# --------------------------------------------------------------------------------- one question


@dataclass(frozen=True)
class Judgement:
    """The verdicts on one explanation."""

    reading: Reading
    verdicts: tuple[bool | None, ...]  # one per statement: True, False, None (unknown)
    implied: str | None  # the answer the statements imply, if any
    consistent: bool  # implies the model's answer
    implies_gqa: bool  # implies GQA's answer

    @property
    def true(self) -> int:
        return sum(v is True for v in self.verdicts)

    @property
    def false(self) -> int:
        return sum(v is False for v in self.verdicts)

    @property
    def unknown(self) -> int:
        return sum(v is None for v in self.verdicts)

    def false_statements(self) -> list[Statement]:
        return [s for s, v in zip(self.reading.statements, self.verdicts) if v is False]

    def marks(self) -> list[tuple[str, tuple[int, ...], bool | None]]:
        """(statement text, the regions it names, verdict) per statement: ``rexlib.notebook_support.viz.mark_statements``."""
        return [(describe(s), tuple(m.region for m in mentions(s) if m.region is not None), v)
                for s, v in zip(self.reading.statements, self.verdicts)]

    @property
    def faithfulness(self) -> float | None:
        return self.true / len(self.verdicts) if self.verdicts else None


def judge(explanation: str, answer: str | None, question: gqa.Question, scene: gqa.SceneGraph,
          region_boxes: np.ndarray, lexicon: Lexicon, truth: SceneTruth | None = None,
          categories: CategoryTable | None = None) -> Judgement:
    """Read one explanation, check each statement on the scene graph, and see what answer it implies.

    The question's program is executed over the scene graph for the objects each step selects; when it
    cannot be, no answer is implied (consistency false) but the statements are still checked.
    """
    from rexlib.program import ExecutionError, execute

    truth = truth or SceneTruth(scene, region_boxes)
    reading = read_explanation(explanation, lexicon)
    verdicts = tuple(truth.verdict(statement) for statement in reading.statements)
    try:
        steps = execute(question, scene).steps
    except ExecutionError:
        steps = None
    implied = implied_answer(reading.statements, question, steps, truth, categories) if steps is not None else None
    consistent = implied is not None and _same_answer(answer, implied)
    implies_gqa = implied is not None and _same_answer(question.answer, implied)
    return Judgement(reading, verdicts, implied, consistent, implies_gqa)


# ----------------------------------------------------------------------------------- aggregates


def _rates(judgements: list[Judgement]) -> dict:
    statements = sum(len(j.verdicts) for j in judgements)
    clauses = sum(j.reading.clauses for j in judgements)
    unparsed = sum(len(j.reading.unparsed) for j in judgements)
    count = len(judgements)
    return {
        "questions": count,
        "faithfulness": 100 * sum(j.true for j in judgements) / statements if statements else None,
        "consistency": 100 * sum(j.consistent for j in judgements) / count if count else None,
        "gqa_consistency": 100 * sum(j.implies_gqa for j in judgements) / count if count else None,
        "parse_rate": 100 * clauses / (clauses + unparsed) if clauses + unparsed else None,
        "complete": 100 * sum(j.reading.complete for j in judgements) / count if count else None,
        "statements": statements, "true": sum(j.true for j in judgements),
        "false": sum(j.false for j in judgements), "unknown": sum(j.unknown for j in judgements),
        "clauses": clauses, "unparsed": unparsed,
    }


def summarise(judgements: Mapping[str, Judgement], families: Mapping[str, Iterable[str]] | None = None,
              examples: int = 5) -> dict:
    """Overall and per-family rates (a question counts once for each family its program uses), with a
    few unparsed spans as examples."""
    result = _rates(list(judgements.values()))
    by_family: dict[str, list[Judgement]] = defaultdict(list)
    for question_id, judgement in judgements.items():
        for family in (families or {}).get(question_id, ()):
            by_family[family].append(judgement)
    result["families"] = {family: _rates(found) for family, found in by_family.items()}
    spans = Counter(span for j in judgements.values() for span in j.reading.unparsed)
    result["unparsed_examples"] = [span for span, _ in spans.most_common(examples)]
    return result


# ---------------------------------------------------------------------------------------- files


def find_gqa_dir(data_dir: str | Path) -> Path | None:
    """The GQA-layout folder a store was built from: ``dataset.json``'s ``gqa`` entry, else the folder
    its ``source`` names (``rexlib build from DIR``), else DATA itself when it holds ``sceneGraphs/``."""
    data_dir = Path(data_dir)
    manifest_path = data_dir / layout.DATASET_INFO
    manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    candidates = [manifest.get("gqa")]
    source = str(manifest.get("source", ""))
    if source.startswith("rexlib build from "):
        candidates.append(source[len("rexlib build from "):])
    candidates.append(str(data_dir))
    for candidate in candidates:
        if candidate and (Path(candidate) / layout.SCENE_GRAPHS_DIR).is_dir():
            return Path(candidate)
    return None


def _read(path: Path) -> dict:
    content = read_json(path)  # names the file when it is missing or broken
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a json object keyed by id")  # noqa: TRY004 - a bad file
    return content


def judge_split(explanations: Mapping[str, str], answers: Mapping[str, str | None], gqa_dir: str | Path,
                split: str, region_boxes: Callable[[str], np.ndarray],
                categories: CategoryTable | None = None) -> tuple[dict[str, Judgement], dict]:
    """Judge every explanation of a split against ``gqa_dir``'s questions and scene graphs.

    ``categories``: the build's attribute table (every split's programs); the split's own programs are
    mined and merged into it.

    Returns the judgements and the questions skipped, reason -> count (no question in the file, a
    malformed question or scene graph); the first reason names the file and the question.
    """
    question_file, scene_file = gqa.split_files(gqa_dir, split)
    raw_questions, raw_scenes = _read(question_file), _read(scene_file)
    wanted = {qid: raw_questions.get(qid) for qid in explanations}
    image_ids = {str(raw.get("imageId")) for raw in wanted.values() if isinstance(raw, dict)}
    scenes, skipped, first = {}, Counter(), {}
    for image_id in image_ids:
        try:
            scenes[image_id] = gqa.parse_scene_graph(image_id, raw_scenes[image_id], file=str(scene_file))
        except (KeyError, gqa.GQAError):
            pass
    questions: dict[str, gqa.Question] = {}
    for question_id in explanations:
        raw = wanted[question_id]
        image_id = str(raw.get("imageId")) if isinstance(raw, dict) else None
        if raw is None:
            reason = f"not in {question_file}"
        elif image_id not in scenes:
            reason = f"image has no usable scene graph in {scene_file}"
        else:
            try:
                questions[question_id] = gqa.parse_question(question_id, raw, file=str(question_file),
                                                            scene_graphs={image_id: scenes[image_id]})
                continue
            except gqa.GQAError as error:
                reason = f"bad question ({error.reason})"
        skipped[reason] += 1
        first.setdefault(reason, question_id)
    mined = CategoryTable.mine(raw for raw in raw_questions.values() if isinstance(raw, dict))
    categories = mined if categories is None else categories.merged(mined)
    lexicon = Lexicon.from_scene_graphs(scenes.values(), categories.known()).add_program_nouns(questions.values())
    truths: dict[str, SceneTruth] = {}
    judgements: dict[str, Judgement] = {}
    for question_id, question in questions.items():
        scene = scenes[question.image_id]
        truth = truths.get(question.image_id)
        if truth is None:
            truth = truths[question.image_id] = SceneTruth(scene, region_boxes(question_id))
        judgements[question_id] = judge(explanations[question_id], answers.get(question_id), question, scene,
                                        None, lexicon, truth, categories)
    return judgements, {"counts": dict(skipped), "first_question": first}


def build_categories(data_dir: str | Path) -> CategoryTable | None:
    """The attribute table the build mined over all its splits (``attribute_category_counts.json``)."""
    path = Path(data_dir) / layout.ATTRIBUTE_CATEGORY_COUNTS
    return CategoryTable(_read(path)["table"]) if path.is_file() else None


def explanation_truth(predictions: Mapping[str, dict], data_dir: str | Path, split: str,
                      region_boxes: Callable[[str], np.ndarray], families: Mapping[str, str] | None = None,
                      gqa_dir: str | Path | None = None) -> dict:
    """``metrics["faithfulness"]``: the rates of :func:`summarise`, or a status saying why there are none.

    ``region_boxes(question_id)`` gives the (36, 4) detector boxes of the question's image; ``families``
    question id -> ``"select,relate,query"``.
    """
    gqa_dir = Path(gqa_dir) if gqa_dir is not None else find_gqa_dir(data_dir)
    if gqa_dir is None:
        return {"status": f"unavailable: no scene graphs found for {data_dir} (name the GQA folder in "
                          "dataset.json as \"gqa\": \"DIR\")"}
    explanations = {qid: prediction["explanation"] for qid, prediction in predictions.items()}
    answers = {qid: prediction.get("answer") for qid, prediction in predictions.items()}
    judgements, skipped = judge_split(explanations, answers, gqa_dir, split, region_boxes,
                                      build_categories(data_dir))
    split_families = {qid: [f for f in (families or {}).get(qid, "").split(",") if f] for qid in judgements}
    result = summarise(judgements, split_families)
    result.update(status="computed", gqa=str(gqa_dir), skipped=skipped, min_resolution_iou=MIN_RESOLUTION_IOU)
    return result


def format_truth(truth: Mapping | None) -> str:
    """One line for ``rexlib evaluate``'s table."""
    if not truth or truth.get("status") != "computed":
        return f"truth        {(truth or {}).get('status', 'not computed')}"

    def number(value):
        return "n/a" if value is None else f"{value:.1f}"

    return (f"truth        faithfulness {number(truth['faithfulness'])}  consistency {number(truth['consistency'])}"
            f"  (implies GQA's answer {number(truth['gqa_consistency'])})  parse rate {number(truth['parse_rate'])}"
            f"  [{truth['statements']} statements: {truth['false']} false, {truth['unknown']} unknown; "
            f"{truth['unparsed']} spans unread]")


# ------------------------------------------------------------------------------ for the notebooks


def judge_predictions(predictions: Mapping[str, dict], data_dir: str | Path, split: str = "val",
                      gqa_dir: str | Path | None = None) -> dict[str, Judgement]:
    """Per-question judgements of a run's predictions (question id -> {"explanation", "answer"})."""
    import h5py

    from rexlib.dataset.store import regions_path
    from rexlib.evaluation.truth import load_split_truth

    gqa_dir = Path(gqa_dir) if gqa_dir is not None else find_gqa_dir(data_dir)
    if gqa_dir is None:
        raise FileNotFoundError(f"{data_dir}: no scene graphs found (name the GQA folder in dataset.json as \"gqa\")")
    truth = load_split_truth(data_dir, split)
    with h5py.File(regions_path(data_dir), "r") as regions:
        boxes = np.asarray(regions["boxes"][()], dtype=np.float64)
    judgements, _ = judge_split({q: p["explanation"] for q, p in predictions.items()},
                                {q: p.get("answer") for q, p in predictions.items()}, gqa_dir, split,
                                lambda qid: boxes[truth.image_index[truth.row_of[qid]]])
    return judgements


def family_rows(truth: Mapping) -> list[dict]:
    """One row per operation family of ``metrics["faithfulness"]``: questions and the three rates."""
    return [{"family": family, "questions": rates["questions"], "faithfulness": rates["faithfulness"],
             "consistency": rates["consistency"], "parse rate": rates["parse_rate"]}
            for family, rates in sorted(truth.get("families", {}).items(), key=lambda item: -item[1]["questions"])]


def rows_by_correctness(judgements: Mapping[str, Judgement], correct: Mapping[str, bool]) -> list[dict]:
    """Right against wrong answers: how often the explanation states something false, and how often it
    implies the answer given (and GQA's)."""
    rows = []
    for label, wanted in (("right answer", True), ("wrong answer", False)):
        chosen = [j for q, j in judgements.items() if bool(correct.get(q)) == wanted]
        count = len(chosen)
        rows.append({
            "answer": label, "questions": count,
            "faithfulness": _rates(chosen)["faithfulness"],
            "with a false statement": 100 * sum(j.false > 0 for j in chosen) / count if count else None,
            "consistent": 100 * sum(j.consistent for j in chosen) / count if count else None,
            "implies GQA's answer": 100 * sum(j.implies_gqa for j in chosen) / count if count else None,
        })
    return rows
