"""The functional program executor: GQA programs over scene graphs -> GQA-REX explanations.

``execute(question, scene, categories)`` walks the program step by step (one handler per operation
family, ``handlers.HANDLERS``), passing structured values (``values.py``), then realises the
explanation (``realise.py``, rules in ``postprocess.py``). It derives the answer from the scene graph
and, where the scene graph cannot decide or decides otherwise, explains GQA's answer instead
(``handlers.EXPLAINERS``; the answer policy in docs/contracts.md). ``categories`` is the
value -> category table mined from the data (``attributes.CategoryTable``).
"""

from rexlib.program.executor import (
    Execution,
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
    Undecided,
)

__all__ = [
    "HANDLERS",
    "AttributeValue",
    "Choice",
    "Execution",
    "ExecutionError",
    "ObjectSet",
    "Relation",
    "TruthValue",
    "Undecided",
    "describe_steps",
    "describe_value",
    "execute",
    "handler_for",
]
