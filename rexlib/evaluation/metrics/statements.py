"""Read a converted explanation back into the statements of the executor's phrase grammar.

Every explanation rex trains on was written by ``rexlib.program.realise`` (then grounded: ``(obj:ID)`` ->
``#k``, ``(x,y)`` -> ``@c``, ``(obj*:name)`` -> the name), so a generated one can be read with the same
grammar, clause by clause:

=========================================  ==========================================================
``the white #3 is (not) red``               :class:`HasAttribute` (the modifiers ride on the mention)
``both the #1 and the #2 are red``          one :class:`HasAttribute` per object
``the #3 is at @7 , on the left``           :class:`AtPosition` (cell and phrase)
``the #3 is (not) on the #4``               :class:`Related` (``has``/``does not have`` as well)
``the #3 is on the #4 and is red``          :class:`Related` + :class:`HasAttribute` of the first object
``the #4 is wearing the #3 , which is red`` :class:`Related` + :class:`HasAttribute` of the second
``there is a #3 on the #4``                 :class:`Related` (and the #3 exists)
``there is no white cat (on the #4)``       :class:`Exists` / :class:`Related` with ``holds=False``
``the #3 is (not) older than the #4``       :class:`Compared`
``the weather is sunny``, ``it is indoors`` :class:`SceneValue`
``it is a #3``                              :class:`IsA`
=========================================  ==========================================================

Clauses are joined by ``and``, ``,`` or ``so``. The fixed words come from the executor's own phrase
functions (``copula``, ``relation_phrase``, ``position_phrase``), the open words (object names,
attribute values, relations) from a :class:`Lexicon` built from the scene graphs, so a change of
phrasing in ``rexlib.program.postprocess`` is followed here. What a model writes is read tolerantly:
a word repeated at once is read once, and a clause that cannot be read (cut off at the length limit,
``<unk>``, words outside the grammar) is kept as an *unparsed span*, counted, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rexlib.program.attributes import COMPARATIVE_SCALES
from rexlib.program.handlers import INVERSE_RELATIONS
from rexlib.program.postprocess import copula, position_phrase, relation_phrase, singular

REGION = re.compile(r"#(\d+)$")
GRID = re.compile(r"@(\d+)$")
SEPARATORS = frozenset({"and", ",", ";", "so"})
DETERMINERS = frozenset({"the", "a", "an"})
POSITION_VALUES = {"left": "hposition", "right": "hposition", "top": "vposition", "bottom": "vposition",
                   "middle": None}  # "in the middle" is said of either axis
SCENE_SUBJECTS = {("the", "weather"): "weather", ("it",): "location", ("the", "place"): "place"}
ANY_OBJECT = frozenset({"object", "anything", "nothing", "something", "thing"})


# ------------------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class Mention:
    """An object an explanation names: a region ``#k``, or a noun (an object kept by name, or absent).

    ``modifiers`` are ``(value, negated)`` attributes before the noun (``white``, ``non-white``),
    ``positions`` the ``(category, value, negated)`` phrases after it (``on the left``). ``noun`` is
    ``None`` with ``region`` set, or for "anything"/"nothing" (any object).
    """

    region: int | None = None
    noun: str | None = None
    modifiers: tuple[tuple[str, bool], ...] = ()
    positions: tuple[tuple[str | None, str, bool], ...] = ()
    definite: bool = True  # "the ..." (must exist) rather than "a"/"no"/"anything"

    def text(self) -> str:
        words = [("non-" if negated else "") + value for value, negated in self.modifiers]
        words.append(f"#{self.region}" if self.region is not None else (self.noun or "object"))
        words += [("not " if negated else "") + position_phrase(value) for _, value, negated in self.positions]
        return " ".join(words)


@dataclass(frozen=True)
class HasAttribute:
    subject: Mention
    value: str
    holds: bool = True


@dataclass(frozen=True)
class AtPosition:
    subject: Mention
    value: str  # left / right / top / bottom / middle
    cell: int | None = None  # the grid cell @c, when stated
    holds: bool = True


@dataclass(frozen=True)
class Related:
    subject: Mention
    relation: str
    other: Mention
    holds: bool = True


@dataclass(frozen=True)
class Exists:
    subject: Mention
    holds: bool = True


@dataclass(frozen=True)
class Compared:
    first: Mention
    comparative: str
    second: Mention
    holds: bool = True


@dataclass(frozen=True)
class SceneValue:
    category: str  # weather / location / place
    value: str
    holds: bool = True


@dataclass(frozen=True)
class IsA:
    subject: Mention
    holds: bool = True


Statement = HasAttribute | AtPosition | Related | Exists | Compared | SceneValue | IsA


def mentions(statement: Statement) -> tuple[Mention, ...]:
    """The objects a statement names, subject first."""
    if isinstance(statement, Related):
        return statement.subject, statement.other
    if isinstance(statement, Compared):
        return statement.first, statement.second
    if isinstance(statement, SceneValue):
        return ()
    return (statement.subject,)


def describe(statement: Statement) -> str:
    """The statement in the grammar's words: ``#3 is not white``, ``#3 is on #4``."""
    negation = "" if statement.holds else "not "
    if isinstance(statement, HasAttribute):
        return f"{statement.subject.text()} is {negation}{statement.value}"
    if isinstance(statement, AtPosition):
        cell = f"at @{statement.cell} , " if statement.cell is not None else ""
        return f"{statement.subject.text()} is {negation}{cell}{position_phrase(statement.value)}"
    if isinstance(statement, Related):
        return f"{statement.subject.text()} is {negation}{statement.relation} {statement.other.text()}"
    if isinstance(statement, Exists):
        return f"there is {'a' if statement.holds else 'no'} {statement.subject.text()}"
    if isinstance(statement, Compared):
        return f"{statement.first.text()} is {negation}{statement.comparative} than {statement.second.text()}"
    if isinstance(statement, SceneValue):
        return f"{statement.category} is {negation}{statement.value}"
    return f"it is {negation}a {statement.subject.text()}"


@dataclass(frozen=True)
class Reading:
    """What the reader made of one explanation: its statements and the spans it could not read."""

    tokens: tuple[str, ...]
    statements: tuple[Statement, ...]
    clauses: int  # clauses read (one clause may hold several statements)
    unparsed: tuple[str, ...]  # the token spans not read, as text

    @property
    def complete(self) -> bool:
        return not self.unparsed and bool(self.statements)


# ---------------------------------------------------------------------------------------- lexicon


def _phrases(words: Iterable[str]) -> dict[tuple[str, ...], str]:
    return {tuple(word.split()): word for word in words if word and word.split()}


@dataclass
class Lexicon:
    """The open words of the grammar: object names, attribute values, relations, comparatives.

    Build it with :meth:`from_scene_graphs` (every name, attribute and relation of the graphs, plus the
    executor's own tables), so a real-GQA vocabulary needs no hand list.
    """

    names: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)
    relations: set[str] = field(default_factory=set)
    comparatives: set[str] = field(default_factory=lambda: set(COMPARATIVE_SCALES))

    def __post_init__(self) -> None:
        self.compile()

    def compile(self) -> None:
        """(Re)build the phrase tables after the word sets changed."""
        names = {name.lower() for name in self.names} | {singular(name.lower()) for name in self.names}
        self._names = _phrases(names)
        self._values = _phrases(value.lower() for value in self.values)
        self._comparatives = _phrases(self.comparatives)
        # relation phrases, the executor's way: "is on" / "is not on" / "has" / "does not have", and the
        # relative form after a noun: "on" / "that has"
        verb: dict[tuple[str, ...], tuple[str, bool]] = {}
        relative: dict[tuple[str, ...], str] = {}
        for relation in self.relations:
            relation = relation.lower()
            for holds in (True, False):
                verb[tuple(relation_phrase(relation, holds).split())] = (relation, holds)
            phrase = relation_phrase(relation)
            relative[tuple(phrase[3:].split() if phrase.startswith("is ") else ["that", *phrase.split()])] = relation
        self._verb, self._relative = verb, relative
        self._longest = max((len(key) for table in (self._names, self._values, verb, relative,
                                                   self._comparatives) for key in table), default=1)

    @classmethod
    def from_scene_graphs(cls, scene_graphs: Iterable, values: Iterable[str] = ()) -> Lexicon:
        """Words of ``SceneGraph`` objects (rexlib.gqa) or raw GQA scene-graph records, plus ``values``
        (attribute values the questions use, e.g. a mined ``CategoryTable``'s)."""
        lexicon = cls(values=set(values))
        for scene in scene_graphs:
            objects = scene.objects.values() if hasattr(scene, "objects") else scene.get("objects", {}).values()
            for obj in objects:
                if isinstance(obj, dict):
                    lexicon.names.add(str(obj.get("name", "")))
                    lexicon.values.update(str(value) for value in obj.get("attributes", ()))
                    lexicon.relations.update(str(r.get("name", "")) for r in obj.get("relations", ()))
                else:
                    lexicon.names.add(obj.name)
                    lexicon.values.update(obj.attributes)
                    lexicon.relations.update(name for name, _ in obj.relations)
        lexicon.names.discard("")
        lexicon.relations.discard("")
        # a graph may store "A left of B" only as "B right of A": both are sayable
        lexicon.relations |= {INVERSE_RELATIONS[r] for r in lexicon.relations if r in INVERSE_RELATIONS}
        lexicon.compile()
        return lexicon

    def add_program_nouns(self, questions: Iterable) -> Lexicon:
        """Add the object names the questions' programs use (``select: cat (-)``: an absent cat is
        named in its explanation, though no scene graph holds one)."""
        for question in questions:
            for step in question.program:
                if step.target and step.target != "scene" and step.family in ("select", "relate", "verify", "choose"):
                    self.names.add(step.target)
        self.compile()
        return self

    @staticmethod
    def _match(table: dict, tokens: tuple[str, ...], start: int, limit: int) -> tuple[object, int] | None:
        for length in range(min(limit, len(tokens) - start), 0, -1):
            found = table.get(tokens[start:start + length])
            if found is not None:
                return found, start + length
        return None

    def name(self, tokens, start):
        return self._match(self._names, tokens, start, self._longest)

    def value(self, tokens, start):
        return self._match(self._values, tokens, start, self._longest)

    def comparative(self, tokens, start):
        return self._match(self._comparatives, tokens, start, self._longest)

    def verb_relation(self, tokens, start):
        return self._match(self._verb, tokens, start, self._longest)

    def relative_relation(self, tokens, start):
        return self._match(self._relative, tokens, start, self._longest)


# ----------------------------------------------------------------------------------------- reader


class _Fail(Exception):
    """This clause form does not fit here (the reader tries the next)."""


_POSITION_PHRASES = {tuple(position_phrase(value).split()): value for value in POSITION_VALUES}
_IS, _IS_NOT = tuple(copula(True).split()), tuple(copula(False).split())
_ARE, _ARE_NOT = tuple(copula(True, plural=True).split()), tuple(copula(False, plural=True).split())


class _Clause:
    """A cursor over the tokens of one explanation, with one method per piece of the grammar."""

    def __init__(self, tokens: tuple[str, ...], start: int, lexicon: Lexicon):
        self.tokens, self.at, self.lexicon = tokens, start, lexicon

    # -- primitives
    def peek(self, offset: int = 0) -> str | None:
        index = self.at + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def accept(self, *words: str) -> bool:
        if self.tokens[self.at:self.at + len(words)] == words:
            self.at += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise _Fail

    def at_boundary(self) -> bool:
        return self.at >= len(self.tokens) or self.tokens[self.at] in SEPARATORS

    def copula(self, plural: bool = False) -> bool:
        """``is`` -> True, ``is not`` -> False (``are`` for several objects)."""
        positive, negative = (_ARE, _ARE_NOT) if plural else (_IS, _IS_NOT)
        if self.accept(*negative):
            return False
        if self.accept(*positive):
            return True
        raise _Fail

    def take(self, matcher) -> object:
        found = matcher(self.tokens, self.at)
        if found is None:
            raise _Fail
        value, self.at = found
        return value

    def position_phrase(self) -> str | None:
        for words, value in _POSITION_PHRASES.items():
            if self.accept(*words):
                return value
        return None

    # -- noun phrases
    def mention(self, *, determiner: bool = True, definite: bool = True) -> Mention:
        """``the white #3 on the left`` / ``a cat`` / ``anything``: determiner, modifiers, head, positions.

        ``determiner=False`` reads the phrase after ``no`` (``no white cat``). Modifiers are attribute
        values (``non-`` negates one) or names (GQA's ``filter: pizza``); the longest run of them that a
        head follows wins.
        """
        if self.peek() in ANY_OBJECT:
            self.at += 1
            return Mention(definite=False)
        if determiner:
            if self.peek() not in DETERMINERS:
                raise _Fail
            definite = definite and self.peek() == "the"
            self.at += 1
        else:
            definite = False
        modifiers, ends = [], [self.at]
        while True:
            found = self._modifier(ends[-1])
            if found is None:
                break
            modifiers.append(found[0])
            ends.append(found[1])
        for count in range(len(modifiers), -1, -1):
            head = self._head(ends[count])
            if head is not None:
                (region, noun), self.at = head
                return Mention(region, noun, tuple(modifiers[:count]), self._positions(), definite)
        raise _Fail

    def _modifier(self, start: int) -> tuple[tuple[str, bool], int] | None:
        token = self.tokens[start] if start < len(self.tokens) else ""
        negated = token.startswith("non-") and len(token) > 4
        tokens = (token[4:],) + self.tokens[start + 1:] if negated else self.tokens[start:]
        found = self.lexicon.value(tokens, 0) or self.lexicon.name(tokens, 0)
        return None if found is None else ((found[0], negated), start + found[1])

    def _head(self, start: int) -> tuple[tuple[int | None, str | None], int] | None:
        token = self.tokens[start] if start < len(self.tokens) else ""
        match = REGION.match(token)
        if match:
            return (int(match.group(1)), None), start + 1
        if token in ANY_OBJECT:
            return (None, None), start + 1
        found = self.lexicon.name(self.tokens, start)
        return None if found is None else ((None, singular(found[0])), found[1])

    def _positions(self) -> tuple[tuple[str | None, str, bool], ...]:
        positions = []
        while True:
            mark = self.at
            negated = self.accept("not")
            value = self.position_phrase()
            if value is None:
                self.at = mark
                return tuple(positions)
            positions.append((POSITION_VALUES[value], value, negated))

    # -- predicates
    def value_phrase(self) -> str:
        self.accept("a") or self.accept("an")
        return self.take(self.lexicon.value)


def _clause(tokens: tuple[str, ...], start: int, lexicon: Lexicon) -> tuple[list[Statement], int]:
    """Read one clause at ``start``; returns its statements and where it ends (a separator or the end)."""
    for form in _FORMS:
        cursor = _Clause(tokens, start, lexicon)
        try:
            statements = form(cursor)
        except _Fail:
            continue
        if cursor.at_boundary():
            return statements, cursor.at
    raise _Fail


def _scene_clause(c: _Clause) -> list[Statement]:
    for words, category in SCENE_SUBJECTS.items():
        if c.accept(*words):
            holds = c.copula()
            if category == "location" and c.peek() in ("a", "an"):
                return [IsA(c.mention(definite=False), holds)]
            if category == "place":
                c.accept("a") or c.accept("an")
            value = " ".join(c.tokens[c.at:_boundary(c.tokens, c.at)])
            if not value:
                raise _Fail
            c.at = _boundary(c.tokens, c.at)
            return [SceneValue(category, value, holds)]
    raise _Fail


def _boundary(tokens, start) -> int:
    end = start
    while end < len(tokens) and tokens[end] not in SEPARATORS:
        end += 1
    return end


def _existence_clause(c: _Clause) -> list[Statement]:
    c.expect("there", "is")
    if c.accept("no"):
        subject, holds = c.mention(determiner=False), False
    elif c.peek() == "nothing":
        subject, holds = c.mention(), False
    else:
        subject, holds = c.mention(definite=False), True
    if c.at_boundary():
        return [Exists(subject, holds)]
    relation = c.take(c.lexicon.relative_relation)
    return [Related(subject, relation, c.mention(), holds)]


def _shared_clause(c: _Clause) -> list[Statement]:
    both = c.accept("both")
    subjects = [c.mention()]
    while c.accept(","):
        subjects.append(c.mention())
    c.expect("and")
    subjects.append(c.mention())
    if both and len(subjects) != 2:
        raise _Fail
    holds = c.copula(plural=True)
    value = c.value_phrase()
    return [HasAttribute(subject, value, holds) for subject in subjects]


def _subject_clause(c: _Clause) -> list[Statement]:
    subject = c.mention()
    start = c.at
    for predicate in (_position_predicate, _comparison_predicate, _relation_predicate, _value_predicate):
        c.at = start
        try:
            statements = predicate(c, subject)
        except _Fail:
            continue
        if c.at_boundary():
            return statements
    raise _Fail


def _position_predicate(c: _Clause, subject: Mention) -> list[Statement]:
    holds = c.copula()
    cell = None
    if c.accept("at"):
        match = GRID.match(c.peek() or "")
        if not match:
            raise _Fail
        c.at += 1
        cell = int(match.group(1))
        c.expect(",")
    value = c.position_phrase()
    if value is None:
        raise _Fail
    return [AtPosition(subject, value, cell, holds)]


def _comparison_predicate(c: _Clause, subject: Mention) -> list[Statement]:
    holds = c.copula()
    comparative = c.take(c.lexicon.comparative)
    c.expect("than")
    return [Compared(subject, comparative, c.mention(), holds)]


def _relation_predicate(c: _Clause, subject: Mention) -> list[Statement]:
    relation, holds = c.take(c.lexicon.verb_relation)
    other = c.mention()
    statements: list[Statement] = [Related(subject, relation, other, holds)]
    mark = c.at
    if c.accept("and") or c.accept(",", "which"):  # "... and is red" (the first) / ", which is red" (the second)
        about = subject if c.tokens[mark] == "and" else other
        try:
            value_holds = c.copula()
            statements.append(HasAttribute(about, c.value_phrase(), value_holds))
        except _Fail:
            c.at = mark
    return statements


def _value_predicate(c: _Clause, subject: Mention) -> list[Statement]:
    holds = c.copula()
    return [HasAttribute(subject, c.value_phrase(), holds)]


_FORMS = (_scene_clause, _existence_clause, _shared_clause, _subject_clause)


def normalise_tokens(explanation: str) -> tuple[str, ...]:
    """Lower-cased tokens, a word repeated at once read once (``the the #3`` -> ``the #3``)."""
    tokens: list[str] = []
    for token in str(explanation).lower().split():
        if token in ("<start>", "<end>", "<pad>"):
            continue
        if not tokens or tokens[-1] != token:
            tokens.append(token)
    return tuple(tokens)


def read_explanation(explanation: str, lexicon: Lexicon) -> Reading:
    """Read a converted explanation (``the #3 is on the #4 and is white``) into statements."""
    tokens = normalise_tokens(explanation)
    statements: list[Statement] = []
    unparsed: list[str] = []
    clauses = 0
    position = 0
    while position < len(tokens):
        if tokens[position] in SEPARATORS:
            position += 1
            continue
        try:
            found, position = _clause(tokens, position, lexicon)
        except _Fail:
            end = _boundary(tokens, position + 1)  # skip to the next separator, and count the span
            unparsed.append(" ".join(tokens[position:end]))
            position = end
            continue
        statements.extend(found)
        clauses += 1
    return Reading(tokens, tuple(statements), clauses, tuple(unparsed))
