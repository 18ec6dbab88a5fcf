"""Execute a question's program over its scene graph: walk the steps, then realise the explanation.

``execute(question, scene, categories)`` feeds each step the values of its dependencies, through the
handler of its operation family, and realises the explanation from the final value's statements.

Answer policy (docs/contracts.md): dataset creation explains GQA's answer. The program's answer is
first derived from the scene graph alone (``Execution.derived_answer``); where the scene graph cannot
decide a step (:class:`Undecided`) or decides otherwise, GQA's answer decides it
(``Execution.decided_by == "answer"``) and the explanation states the facts that answer rests on.
The build report counts, per family, where the two differ (``rexlib.dataset.build.split_report``).
Without an answer (``question.answer is None`` or ``follow_answer=False``) the executor only derives,
and an undecidable step stops execution with its reason.
"""

from __future__ import annotations

from rexlib.gqa import OPERATIONS, Question, SceneGraph, Step, frozen_record
from rexlib.program.attributes import CategoryTable
from rexlib.program.handlers import EXPLAINERS, HANDLERS, Context, normalised
from rexlib.program.realise import realise
from rexlib.program.values import (
    AttributeValue,
    Choice,
    ExecutionError,
    ObjectSet,
    TruthValue,
    Undecided,
    Value,
)

DECIDED_BY_SCENE_GRAPH, DECIDED_BY_ANSWER = "scene graph", "answer"


@frozen_record
class Execution:
    """The result of executing one question's program (docs/contracts.md, "Program execution")."""

    explanation: str  # raw GQA-REX form: words, "(obj:ID)", "(obj*:name)", "(x,y)"
    answer: str  # the answer the explanation explains: GQA's where it decided, else the derived one
    object_ids: tuple[str, ...]  # objects the explanation refers to, in order
    steps: tuple[Value, ...]  # the structured value of each step (the final one explains `answer`)
    program: tuple[Step, ...] = ()  # the steps themselves, so describe_steps needs nothing else
    derived_answer: str | None = None  # what the scene graph alone gives; None where it cannot decide
    decided_by: str = DECIDED_BY_SCENE_GRAPH  # or DECIDED_BY_ANSWER: GQA's answer decided a step


def _own_categories(question: Question) -> CategoryTable:
    """With no table given, the categories this question's own program and answer state."""
    semantic = [{"operation": step.operation, "argument": step.argument} for step in question.program]
    return CategoryTable.mine([{"semantic": semantic, "answer": question.answer}])


_CONTEXTS: dict[tuple[int, bool], tuple[CategoryTable, Context]] = {}  # one per table and mode


def _context(categories: CategoryTable, lenient: bool) -> Context:
    key = (id(categories), lenient)
    cached = _CONTEXTS.get(key)
    if cached is None or cached[0] is not categories:  # (an id may be reused by a later table)
        if len(_CONTEXTS) > 64:
            _CONTEXTS.clear()
        cached = _CONTEXTS[key] = (categories, Context(categories, lenient))
    return cached[1]


def execute(question: Question, scene: SceneGraph, categories: CategoryTable | None = None, *,
            follow_answer: bool = True) -> Execution:
    """Run ``question.program`` over ``scene``; raises :class:`ExecutionError` with a named reason.

    ``categories``: attribute value -> category, mined from the data (the builder mines every split it
    is given); without it, the question's own program and answer are the data.
    """
    program = question.program
    if not program:
        raise ExecutionError("the program has no steps")
    if not scene.objects and any(step.family == "select" and step.target != "scene" for step in program):
        raise ExecutionError(f"scene graph {scene.image_id} has no objects")
    answer = question.answer if follow_answer and isinstance(question.answer, str) and question.answer.strip() else None
    context = _context(categories if categories is not None else _own_categories(question), answer is not None)
    values: list[Value | Undecided] = []
    undecided_seen = False
    handlers, operations = HANDLERS, OPERATIONS
    for position, step in enumerate(program):
        handler = handlers.get(step.family)
        if handler is None or step.operation not in operations:
            raise ExecutionError(f"unknown operation {step.operation!r}", position, step.operation)
        dependencies = step.dependencies
        if not dependencies:
            inputs = ()
        elif len(dependencies) == 1 and 0 <= dependencies[0] < position:  # the usual step: no loop to run
            inputs = (values[dependencies[0]],)
        else:
            for dependency in dependencies:
                if not 0 <= dependency < position:
                    raise ExecutionError(f"dependency {dependency} is not an earlier step", position, step.operation)
            inputs = [values[d] for d in dependencies]
        if undecided_seen:  # a step over an undecided one is undecided for the same reason
            undecided = next((value for value in inputs if isinstance(value, Undecided)), None)
            if undecided is not None:
                values.append(undecided)
                continue
        try:
            values.append(handler(scene, step, inputs, context))
        except Undecided as error:
            if answer is None:
                raise Undecided(error.reason, position, step.operation) from None
            values.append(Undecided(error.reason, position, step.operation))
            undecided_seen = True
        except ExecutionError as error:
            raise ExecutionError(error.reason, position, step.operation) from None
    final = values[-1]
    if isinstance(final, ObjectSet):
        raise ExecutionError("the program ends with objects, not an answer", len(program) - 1, program[-1].operation)
    derived = None if isinstance(final, Undecided) else final.answer
    decided_by = DECIDED_BY_SCENE_GRAPH
    if answer is not None and (derived is None or (
            derived != answer and normalised(derived) != normalised(answer))):
        final = _Explaining(scene, program, values, context).explain(len(program) - 1, answer)
        values[-1] = final
        decided_by = DECIDED_BY_ANSWER
    explanation, object_ids = realise(final.statements, scene)
    return Execution(explanation, final.answer, object_ids, tuple(values), program, derived, decided_by)


class _Explaining:
    """Values that explain a given answer, step by step back through ``and``/``or``."""

    def __init__(self, scene: SceneGraph, program: tuple[Step, ...], values: list, context: Context):
        self.scene, self.program, self.values, self.context = scene, program, values, context

    def _natural(self, position: int) -> TruthValue | None:
        value = self.values[position]
        return value if isinstance(value, TruthValue) else None

    def _truth(self, position: int, wanted: str) -> TruthValue:
        """The step's own yes/no when it already says ``wanted``, else one explaining ``wanted``."""
        natural = self._natural(position)
        if natural is not None and natural.answer == wanted:
            return natural
        value = self.explain(position, wanted)
        if not isinstance(value, TruthValue):
            step = self.program[position]
            raise ExecutionError(f"{step.operation!r} gives no yes/no value", position, step.operation)
        return value

    def _pick(self, first: int, second: int, wanted_natural: bool, default: int) -> int | TruthValue:
        for position in (first, second):
            natural = self._natural(position)
            if natural is not None and natural.holds == wanted_natural:
                return natural
        undecided = [p for p in (first, second) if self._natural(p) is None]
        return undecided[0] if undecided else default

    def explain(self, position: int, answer: str) -> Value:
        step = self.program[position]
        yes = normalised(answer) == "yes"
        if step.family in ("and", "or"):
            first, second = step.dependencies
            both = (step.family == "and") == yes  # and-yes / or-no: both sides must say it
            if both:
                statements = self._truth(first, answer).statements + self._truth(second, answer).statements
                return TruthValue(yes, statements)
            chosen = self._pick(first, second, yes, second if step.family == "and" else first)
            if isinstance(chosen, TruthValue):
                return TruthValue(yes, chosen.statements)
            return TruthValue(yes, self._truth(chosen, answer).statements)
        explainer = EXPLAINERS.get(step.family)
        if explainer is None:
            raise ExecutionError(f"{step.operation!r} cannot answer {answer!r}", position, step.operation)
        inputs = [self.values[d] for d in step.dependencies]
        for value in inputs:
            if isinstance(value, Undecided):
                raise ExecutionError(value.reason, value.step, value.operation)
        try:
            return explainer(self.scene, step, inputs, self.context, answer)
        except ExecutionError as error:
            raise ExecutionError(error.reason, position, step.operation) from None


# --- answers -------------------------------------------------------------------------------------


# --- reading the steps ---------------------------------------------------------------------------


def describe_value(value: Value, scene: SceneGraph | None = None) -> str:
    """A short readable form of a step's value: ``objects {7: table}``, ``yes``, ``color = white``."""
    if isinstance(value, Undecided):
        return f"undecided: {value.reason}"
    if isinstance(value, ObjectSet):
        if value.scene:
            return "the whole scene"
        if not value.ids:
            return f"no {value.noun or 'object'}"
        names = ", ".join(
            f"{i}: {scene.objects[i].name}" if scene is not None and i in scene.objects else i for i in value.ids)
        return f"objects {{{names}}}"
    if isinstance(value, AttributeValue):
        return f"{value.category} = {value.value}"
    if isinstance(value, TruthValue):
        return value.answer
    if isinstance(value, Choice):
        return f"chose {value.answer}"
    return repr(value)


def describe_steps(execution: Execution, scene: SceneGraph | None = None) -> list[str]:
    """One readable line per step: ``step 2 relate _,on,s → objects {7: table}`` (names need ``scene``)."""
    lines = []
    for step, value in zip(execution.program, execution.steps):
        argument = step.argument.split(" (")[0] if step.family in ("select", "relate") else step.argument
        head = f"step {step.index} {step.operation}" + (f" {argument}" if argument else "")
        lines.append(f"{head} → {describe_value(value, scene)}")
    return lines
