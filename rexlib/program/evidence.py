"""The objects a question's answer is read from, named by its GQA program.

GQA writes the objects each ``select`` and ``relate`` step finds into its argument (``relate: _,on top
of,o (1000102)``). The answer is read from the objects that reach the program's last step: those its own
argument names (``verify rel`` and ``choose rel`` name the other object of the relation) and, along each of
its dependencies, the nearest step that names objects (walking through ``filter``, ``verify``, ``exist`` and
the logical steps, which name none). For "What is the salad on top of?" that is the table, not the salad:
the explanation "the #7 is on top of the #4" names both, and only the program says which one the answer
comes from. A step whose objects are absent (``(-)``) contributes none.
"""

from __future__ import annotations

from collections.abc import Sequence

from rexlib.gqa import Step


def answer_objects(program: Sequence[Step]) -> tuple[str, ...]:
    """Scene-graph ids of the objects the last step of ``program`` reads, in program order, each once."""
    if not program:
        return ()
    by_index = {step.index: step for step in program}
    last = program[-1]
    found: list[str] = list(last.object_ids)
    pending, seen = list(last.dependencies), set()
    while pending:
        index = pending.pop(0)
        if index in seen or index not in by_index:
            continue
        seen.add(index)
        step = by_index[index]
        if step.object_ids or step.absent:
            found.extend(step.object_ids)
        else:
            pending.extend(step.dependencies)
    return tuple(dict.fromkeys(found))
