"""The functional program executor: GQA programs over scene graphs -> GQA-REX explanations.

``execute(question, scene)`` walks the program step by step (one handler per operation family,
``handlers.HANDLERS``), passing structured values (``values.py``), then realises the explanation
(``realise.py``, rules in ``postprocess.py``) and re-derives the answer.
"""

from rexlib.program.executor import (
    AnswerComparison,
    Execution,
    agreement_by_family,
    compare_answer,
    describe_steps,
    describe_value,
    execute,
)
from rexlib.program.handlers import HANDLERS, handler_for
from rexlib.program.values import (
    AttributeValue,
    Choice,
    ExecutionError,
    ObjectSet,
    Relation,
    TruthValue,
)

__all__ = [
    "HANDLERS",
    "AnswerComparison",
    "AttributeValue",
    "Choice",
    "Execution",
    "ExecutionError",
    "ObjectSet",
    "Relation",
    "TruthValue",
    "agreement_by_family",
    "compare_answer",
    "describe_steps",
    "describe_value",
    "execute",
    "handler_for",
]
