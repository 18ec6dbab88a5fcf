"""Execute a question's program over its scene graph: walk the steps, then realise the explanation.

``execute(question, scene)`` feeds each step the values of its dependencies, through the handler of
its operation family, and realises the explanation from the final value's statements. It also
re-derives the answer; :func:`compare_answer` and :func:`agreement_by_family` report where that
answer differs from GQA's (a disagreement is reported, never "fixed").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rexlib.gqa import OPERATIONS, Question, SceneGraph, Step
from rexlib.program.handlers import HANDLERS
from rexlib.program.realise import realise
from rexlib.program.values import AttributeValue, Choice, ExecutionError, ObjectSet, TruthValue, Value


@dataclass(frozen=True, slots=True)
class Execution:
    """The result of executing one question's program (docs/contracts.md, "Program execution")."""

    explanation: str  # raw GQA-REX form: words, "(obj:ID)", "(obj*:name)", "(x,y)"
    answer: str  # the answer the program derives, in GQA's answer vocabulary
    object_ids: tuple[str, ...]  # objects the explanation refers to, in order
    steps: tuple[Value, ...]  # the structured value of each step
    program: tuple[Step, ...] = ()  # the steps themselves, so describe_steps needs nothing else


def execute(question: Question, scene: SceneGraph) -> Execution:
    """Run ``question.program`` over ``scene``; raises :class:`ExecutionError` with a named reason."""
    program = question.program
    if not program:
        raise ExecutionError("the program has no steps")
    if not scene.objects and any(step.family == "select" and step.target != "scene" for step in program):
        raise ExecutionError(f"scene graph {scene.image_id} has no objects")
    values: list[Value] = []
    for position, step in enumerate(program):
        handler = HANDLERS.get(step.family)
        if handler is None or step.operation not in OPERATIONS:
            raise ExecutionError(f"unknown operation {step.operation!r}", position, step.operation)
        for dependency in step.dependencies:
            if not 0 <= dependency < position:
                raise ExecutionError(f"dependency {dependency} is not an earlier step", position, step.operation)
        try:
            values.append(handler(scene, step, [values[d] for d in step.dependencies]))
        except ExecutionError as error:
            raise ExecutionError(error.reason, position, step.operation) from None
    final = values[-1]
    if isinstance(final, ObjectSet):
        raise ExecutionError("the program ends with objects, not an answer", len(program) - 1, program[-1].operation)
    explanation, object_ids = realise(final.statements, scene)
    return Execution(explanation, final.answer, object_ids, tuple(values), program)


# --- answers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerComparison:
    """GQA's answer beside the executor's, for one question."""

    question_id: str
    families: tuple[str, ...]  # the distinct operation families of the program, in program order
    expected: str | None
    derived: str
    agrees: bool


def _normalise(answer: str | None) -> str | None:
    return None if answer is None else " ".join(answer.lower().split())


def compare_answer(question: Question, execution: Execution) -> AnswerComparison:
    families = tuple(dict.fromkeys(step.family for step in question.program))
    expected = question.answer
    return AnswerComparison(question.question_id, families, expected, execution.answer,
                            _normalise(expected) == _normalise(execution.answer))


def agreement_by_family(results: Iterable[AnswerComparison], examples: int = 10) -> dict[str, dict]:
    """Answer agreement per operation family (a question counts once for every family it uses).

    Returns ``{family: {"questions", "agree", "rate", "disagreements": [question ids, at most
    ``examples``]}}`` plus an ``"all"`` entry; questions without a GQA answer are not counted.
    """
    table: dict[str, dict] = defaultdict(lambda: {"questions": 0, "agree": 0, "disagreements": []})
    for result in results:
        if result.expected is None:
            continue
        for family in ("all",) + result.families:
            row = table[family]
            row["questions"] += 1
            if result.agrees:
                row["agree"] += 1
            elif len(row["disagreements"]) < examples:
                row["disagreements"].append(result.question_id)
    for row in table.values():
        row["rate"] = row["agree"] / row["questions"] if row["questions"] else 1.0
    return dict(table)


# --- reading the steps ---------------------------------------------------------------------------


def describe_value(value: Value, scene: SceneGraph | None = None) -> str:
    """A short readable form of a step's value: ``objects {7: table}``, ``yes``, ``color = white``."""
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
