"""The structured values that pass between program steps, and the statements an explanation is made of.

Steps never hand each other strings: a ``select``/``relate``/``filter`` step yields an
:class:`ObjectSet` (object ids plus the phrase pieces a later explanation needs: the noun the program
used, the attributes filtered on, the relation that reached the set); ``query`` yields an
:class:`AttributeValue`; ``verify``/``exist``/``and``/``or``/``same``/``different`` yield a
:class:`TruthValue`; ``choose``/``common``/``compare`` yield a :class:`Choice`. Answer-bearing values
carry *statements* (:class:`HasValue`, :class:`Exists`, :class:`RelationHolds`, :class:`Comparison`):
the facts the answer rests on, which ``realise.py`` turns into words only at the end.
"""

from __future__ import annotations

from rexlib.gqa import frozen_record


class ExecutionError(ValueError):
    """A program that cannot be executed over its scene graph; ``reason`` says why, by name.

    The builder records ``reason`` for every skipped question, so it is a stable, readable sentence
    ("object 12 is not in the scene graph"), and ``step`` the index of the step that stopped (or None).
    """

    def __init__(self, reason: str, step: int | None = None, operation: str | None = None):
        self.reason, self.step, self.operation = reason, step, operation
        where = f"step {step} ({operation}): " if step is not None and operation else (
            f"step {step}: " if step is not None else "")
        super().__init__(where + reason)


class Undecided(ExecutionError):
    """The scene graph cannot decide a step (no such attribute recorded, no location, 0 or 2 of the
    alternatives hold, ...). With GQA's answer at hand the executor lets the answer decide instead."""


@frozen_record
class Relation:
    """How an object set was reached: ``relation`` between the set and the ``anchor`` set.

    ``target_is_subject`` is GQA's side ``s``: target --relation--> anchor ("the cup is on the table");
    otherwise side ``o``: anchor --relation--> target ("the man is wearing the shirt").
    """

    name: str
    anchor: ObjectSet
    target_is_subject: bool


@frozen_record
class ObjectSet:
    """Objects a step selected, with what the explanation needs to name them later.

    ``ids`` are scene-graph object ids in a fixed order (empty when no such object exists);
    ``noun`` the singular name the program used (``None`` for ``_``: any object); ``filters`` the
    ``(category, value, negated)`` attributes a ``filter`` step added; ``relation`` how a ``relate``
    step reached the set; ``scene`` marks ``select: scene`` (the whole image, for global questions).
    """

    ids: tuple[str, ...]
    noun: str | None
    filters: tuple[tuple[str | None, str, bool], ...] = ()
    relation: Relation | None = None
    scene: bool = False
    # Objects the program named that the scene graph did not confirm (a filter value or a relation it
    # does not record); when GQA's answer decides, a later step may still be about them.
    unconfirmed: tuple[str, ...] = ()


@frozen_record
class HasValue:
    """Object ``object_id`` of ``objects`` has (``holds``) or lacks ``value`` in ``category``.

    ``category`` is an attribute category, ``name``, ``hposition``/``vposition`` or, for the whole
    scene, ``location``/``weather``/``place``/``room``.
    """

    objects: ObjectSet
    object_id: str | None  # None when the subject is the whole scene
    category: str | None
    value: str
    holds: bool = True


@frozen_record
class Exists:
    """There is (``objects.ids`` non-empty, or ``holds``) or is no such object.

    ``holds`` is set when GQA's answer says there is one that the scene graph does not record.
    """

    objects: ObjectSet
    holds: bool | None = None


@frozen_record
class RelationHolds:
    """``subject`` --relation--> ``object`` holds or not; an id of ``None`` is an absent object named by the noun."""

    subject_id: str | None
    subject_noun: str | None
    relation: str
    object_id: str | None
    object_noun: str | None
    holds: bool


@frozen_record
class Comparison:
    """``first`` is ``comparative`` than ``second``; the values are the attributes compared, when any."""

    first_id: str
    second_id: str
    comparative: str
    first_value: str | None = None
    second_value: str | None = None


@frozen_record
class SameValue:
    """The objects do (``same``) or do not share their value in ``category``, values unrecorded."""

    objects: tuple[tuple[ObjectSet, str], ...]  # (the set it came from, object id)
    category: str
    same: bool


@frozen_record
class AttributeValue:
    """The result of ``query``: the value of the grounded object in the queried category."""

    objects: ObjectSet
    object_id: str | None
    category: str
    value: str

    @property
    def answer(self) -> str:
        return self.value

    @property
    def statements(self) -> tuple[HasValue, ...]:
        return (HasValue(self.objects, self.object_id, self.category, self.value, True),)


@frozen_record
class TruthValue:
    """A yes/no result and the statements it rests on."""

    holds: bool
    statements: tuple

    @property
    def answer(self) -> str:
        return "yes" if self.holds else "no"


@frozen_record
class Choice:
    """The alternative (or shared category, or compared object's name) a step chose, and why."""

    answer: str
    statements: tuple


Value = ObjectSet | AttributeValue | TruthValue | Choice
