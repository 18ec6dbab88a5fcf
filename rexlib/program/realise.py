"""Realisation: the statements an answer rests on -> the raw GQA-REX explanation.

Words come only from structured values (``values.py``) through the post-processing rules
(``postprocess.py``); nothing is re-parsed or patched. Object words are written as ``(obj:ID)``
where the noun would be, absent objects as ``(obj*:name)``, positions as ``(x,y)``; punctuation is
a separate, space-separated token, so the converted form splits on spaces.
"""

from __future__ import annotations

from rexlib.gqa import SceneGraph
from rexlib.program.attributes import POSITION_CATEGORIES
from rexlib.program.handlers import relation_holds
from rexlib.program.postprocess import (
    absent_token,
    copula,
    indefinite_article,
    normalised_location,
    object_token,
    position_phrase,
    relation_phrase,
    split_modifiers,
    value_phrase,
)
from rexlib.program.values import Comparison, Exists, HasValue, ObjectSet, RelationHolds, SameValue


class Sentence:
    """Words being written, and the object ids they refer to, in order."""

    __slots__ = ("object_ids", "scene", "words")

    def __init__(self, scene: SceneGraph):
        self.scene = scene
        self.words: list[str] = []
        self.object_ids: list[str] = []

    def add(self, *words: str) -> None:
        self.words.extend(words)

    def object(self, object_id: str) -> None:
        self.words.append(object_token(object_id))
        self.object_ids.append(object_id)

    def noun_phrase(self, objects: ObjectSet | None, object_id: str | None, determiner: str = "the",
                    noun: str | None = None, stated: str | None = None) -> None:
        """``the white (obj:12)``, ``a (obj:3)``, ``no (obj*:cat)``: filters become modifiers."""
        modifiers = trailing = ()
        if objects is not None:
            if objects.filters:
                modifiers, trailing = split_modifiers(objects.filters, stated)
            noun = noun or objects.noun
        if determiner == "a":
            first_word = modifiers[0] if modifiers else (
                self.scene.objects[object_id].name if object_id is not None else noun or "object")
            determiner = indefinite_article(first_word)
        words = self.words
        words.append(determiner)
        words.extend(modifiers)
        if object_id is not None:
            words.append(object_token(object_id))
            self.object_ids.append(object_id)
        else:
            words.append(absent_token(noun or "object"))
        words.extend(trailing)

    def anchor(self, objects: ObjectSet, target_id: str | None) -> str | None:
        """The anchor object a relation reached ``target_id`` from (the first that confirms it)."""
        relation = objects.relation
        anchor = relation.anchor
        if not anchor.ids:
            return None
        if target_id is not None:
            for anchor_id in anchor.ids:
                subject, other = (target_id, anchor_id) if relation.target_is_subject else (anchor_id, target_id)
                if anchor_id != target_id and relation_holds(self.scene, subject, relation.name, other):
                    return anchor_id
        return anchor.ids[0]

    def text(self) -> str:
        return " ".join(self.words)


def _relative_words(relation: str) -> list[str]:
    """The relation after a noun: ``on`` -> ``on``; a finite verb: ``has`` -> ``that has``."""
    phrase = relation_phrase(relation)
    return [phrase[3:]] if phrase.startswith("is ") else ["that", phrase]


def _has_value(sentence: Sentence, statement: HasValue) -> None:
    objects, object_id, category, value = statement.objects, statement.object_id, statement.category, statement.value
    if object_id is None and not objects.scene:  # GQA's answer about an object the scene graph lacks
        sentence.noun_phrase(objects, None, stated=value)
        if category in POSITION_CATEGORIES:
            sentence.add("is", *_negated(statement.holds, position_phrase(value)))
        elif category == "name":
            sentence.add(copula(statement.holds), value_phrase("name", value))
        else:
            sentence.add(copula(statement.holds), value_phrase(category, value))
        return
    if object_id is None:  # the whole scene
        if category == "weather":
            sentence.add("the", "weather", copula(statement.holds), value)
        elif category == "location":
            sentence.add("it", copula(statement.holds), value)
        else:
            sentence.add("the", "place", copula(statement.holds), value_phrase("place", value))
        return
    if category in POSITION_CATEGORIES:
        obj = sentence.scene.objects[object_id]
        sentence.noun_phrase(objects, object_id, stated=value)
        sentence.add("is", "at", normalised_location(obj, sentence.scene), ",",
                     *_negated(statement.holds, position_phrase(value)))
        return
    relation = objects.relation
    if category == "name":  # the object word is the answer: say where the object is, or what it is
        if relation is not None and statement.holds:
            _relation_clause(sentence, objects, object_id)
        else:
            sentence.add("it", copula(statement.holds))
            sentence.noun_phrase(objects, object_id, "a")
        return
    if relation is None:
        sentence.noun_phrase(objects, object_id, stated=value)
        sentence.add(copula(statement.holds), value_phrase(category, value))
        return
    _relation_clause(sentence, objects, object_id, stated=value)
    if relation.target_is_subject:
        sentence.add("and", copula(statement.holds), value_phrase(category, value))
    else:
        sentence.add(",", "which", copula(statement.holds), value_phrase(category, value))


def _relation_clause(sentence: Sentence, objects: ObjectSet, object_id: str, stated: str | None = None) -> None:
    """``the (obj:T) is on the (obj:A)`` (side s) or ``the (obj:A) is wearing the (obj:T)`` (side o)."""
    relation = objects.relation
    anchor_id = sentence.anchor(objects, object_id)
    anchor_set = relation.anchor
    if relation.target_is_subject:
        sentence.noun_phrase(objects, object_id, stated=stated)
        sentence.add(relation_phrase(relation.name))
        sentence.noun_phrase(None, anchor_id, noun=anchor_set.noun)
    else:
        sentence.noun_phrase(None, anchor_id, noun=anchor_set.noun)
        sentence.add(relation_phrase(relation.name))
        sentence.noun_phrase(objects, object_id, stated=stated)


def _negated(holds: bool, phrase: str) -> list[str]:
    return [phrase] if holds else ["not", phrase]


def _exists(sentence: Sentence, statement: Exists) -> None:
    objects = statement.objects
    object_id = objects.ids[0] if objects.ids else None
    there = bool(objects.ids) if statement.holds is None else statement.holds
    relation = objects.relation
    if relation is None:
        if not there and objects.noun is None and not objects.filters:
            sentence.add("there", "is", "nothing")
            return
        sentence.add("there", "is")
        sentence.noun_phrase(objects, object_id, "a" if there else "no")
        return
    anchor_id = sentence.anchor(objects, object_id)
    if relation.target_is_subject:
        sentence.add("there", "is")
        if not there and objects.noun is None and not objects.filters:
            sentence.add("nothing")
        else:
            sentence.noun_phrase(objects, object_id, "a" if there else "no")
        sentence.add(*_relative_words(relation.name))
        sentence.noun_phrase(None, anchor_id, noun=relation.anchor.noun)
    else:
        sentence.noun_phrase(None, anchor_id, noun=relation.anchor.noun)
        sentence.add(relation_phrase(relation.name, there))
        if not there and objects.noun is None and not objects.filters:
            sentence.add("anything")
        else:
            sentence.noun_phrase(objects, object_id, "a")


def _relation_holds(sentence: Sentence, statement: RelationHolds) -> None:
    if statement.subject_id is None:  # the other object, the subject, is absent
        sentence.add("there", "is")
        sentence.noun_phrase(None, None, "no", noun=statement.subject_noun)
        sentence.add(*_relative_words(statement.relation))
        sentence.noun_phrase(None, statement.object_id, noun=statement.object_noun)
        return
    sentence.noun_phrase(None, statement.subject_id, noun=statement.subject_noun)
    sentence.add(relation_phrase(statement.relation, statement.holds))
    sentence.noun_phrase(None, statement.object_id, "the" if statement.object_id is not None else "a",
                         noun=statement.object_noun)


def _comparison(sentence: Sentence, statement: Comparison) -> None:
    if statement.first_value and statement.second_value and statement.first_value != statement.second_value:
        sentence.noun_phrase(None, statement.first_id)
        sentence.add("is", statement.first_value, "and")
        sentence.noun_phrase(None, statement.second_id)
        sentence.add("is", statement.second_value)
        return
    sentence.noun_phrase(None, statement.first_id)
    sentence.add("is", statement.comparative, "than")
    sentence.noun_phrase(None, statement.second_id)


def _same_value(sentence: Sentence, statement: SameValue) -> None:
    """``the (obj:1) and the (obj:2) have the same color`` (values the scene graph does not record)."""
    for index, (objects, object_id) in enumerate(statement.objects):
        if index:
            sentence.add("and" if index == len(statement.objects) - 1 else ",")
        sentence.noun_phrase(None, object_id, noun=objects.noun)
    kind = "kind" if statement.category == "name" else statement.category
    sentence.add("have" if statement.same else "do not have", "the", "same", kind)


def _shared_value(sentence: Sentence, statements: tuple[HasValue, ...]) -> bool:
    """Several objects with one value: ``both the (obj:1) and the (obj:2) are white``."""
    if len(statements) < 2 or not all(isinstance(s, HasValue) for s in statements):
        return False
    first = statements[0]
    if any(s.object_id is None or s.category != first.category or s.value != first.value or not s.holds
           or s.category in POSITION_CATEGORIES or s.category == "name" for s in statements):
        return False
    if len(statements) == 2:
        sentence.add("both")
    for index, statement in enumerate(statements):
        if index:
            sentence.add("and" if index == len(statements) - 1 else ",")
        sentence.noun_phrase(None, statement.object_id)
    sentence.add("are", value_phrase(first.category, first.value))
    return True


_REALISERS = {
    HasValue: _has_value, Exists: _exists, RelationHolds: _relation_holds, Comparison: _comparison,
    SameValue: _same_value,
}


def realise(statements: tuple, scene: SceneGraph) -> tuple[str, tuple[str, ...]]:
    """The raw explanation of a value's statements, and the ids of the objects it refers to."""
    sentence = Sentence(scene)
    if len(statements) == 1:  # the usual case (_shared_value needs two)
        _REALISERS[type(statements[0])](sentence, statements[0])
    elif not _shared_value(sentence, statements):
        for index, statement in enumerate(statements):
            if index:
                sentence.add("and")
            _REALISERS[type(statement)](sentence, statement)
    object_ids = sentence.object_ids
    return sentence.text(), tuple(object_ids) if len(object_ids) == 1 else tuple(dict.fromkeys(object_ids))
