"""Post-processing rules, each a small named function applied to structured values before realisation.

The authors' code patched finished sentences with ``.replace()``; here every rule turns one structured
piece (a noun, a position, a relation, a truth value) into words, and each has its own unit test
(tests/test_program_postprocess.py).
"""

from __future__ import annotations

from rexlib.gqa import SceneGraph, SceneObject

# Plural -> singular where a suffix rule would be wrong.
IRREGULAR_SINGULARS = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "knives": "knife", "shelves": "shelf",
    "leaves": "leaf", "loaves": "loaf", "wolves": "wolf", "scarves": "scarf", "halves": "half",
    "buses": "bus", "glasses": "glasses", "pants": "pants", "jeans": "jeans", "shorts": "shorts",
    "skis": "ski", "sheep": "sheep", "fish": "fish", "deer": "deer", "series": "series",
}
# Singular nouns that end like plurals.
_SINGULAR_ENDINGS = ("ss", "us", "is", "ics", "ous")


_SINGULARS: dict[str, str] = {}  # memo: programs repeat the same few hundred nouns


def singular(noun: str) -> str:
    """The singular of an object word: ``cups`` -> ``cup``, ``boxes`` -> ``box``, ``men`` -> ``man``.

    Only the last word of a compound changes (``tennis balls`` -> ``tennis ball``); words that are
    already singular (``glass``, ``bus``, ``cactus``) stay.
    """
    known = _SINGULARS.get(noun)
    if known is not None:
        return known
    head, _, last = noun.rpartition(" ")
    word = IRREGULAR_SINGULARS.get(last)
    if word is None:
        if last.endswith(_SINGULAR_ENDINGS) or len(last) <= 3:
            word = last
        elif last.endswith("ies"):
            word = last[:-3] + "y"
        elif last.endswith(("ches", "shes", "xes", "sses", "zes", "oes")):
            word = last[:-2]
        elif last.endswith("s"):
            word = last[:-1]
        else:
            word = last
    result = _SINGULARS[noun] = f"{head} {word}" if head else word
    return result


def indefinite_article(word: str) -> str:
    """``a`` or ``an`` before ``word`` (by its first letter; ``an`` before a vowel)."""
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


_POSITION_PHRASES = {
    "left": "on the left", "right": "on the right", "middle": "in the middle",
    "top": "at the top", "bottom": "at the bottom",
}


def position_phrase(value: str) -> str:
    """``left`` -> ``on the left``, ``top`` -> ``at the top``, ``middle`` -> ``in the middle``."""
    return _POSITION_PHRASES.get(value, value)


def normalised_location(obj: SceneObject, scene: SceneGraph) -> str:
    """The object's box centre divided by the image size, rounded to 0.1: ``(0.2,0.7)``.

    One token, no spaces, as in the official GQA-REX raw explanations; the grounding step turns it
    into a grid token.
    """
    x = min(max((obj.x + obj.w / 2) / scene.width, 0.0), 1.0)
    y = min(max((obj.y + obj.h / 2) / scene.height, 0.0), 1.0)
    return f"({x:.1f},{y:.1f})"


def copula(holds: bool, plural: bool = False) -> str:
    """``is`` / ``is not`` (``are`` / ``are not`` for several objects): the negation rule for states."""
    verb = "are" if plural else "is"
    return verb if holds else f"{verb} not"


# Relations that are verbs in the third person already ("has", "wears"): negated with "does not"
# and their base form; every other relation ("on", "wearing", "to the left of") follows "is".
_FINITE_VERBS = {"has": "have", "have": "have", "contains": "contain", "wears": "wear", "holds": "hold",
                 "carries": "carry", "covers": "cover", "eats": "eat"}


def relation_phrase(relation: str, holds: bool = True) -> str:
    """The verb phrase of a relation: ``on`` -> ``is on`` / ``is not on``; ``has`` -> ``does not have``."""
    first, _, rest = relation.partition(" ")
    base = _FINITE_VERBS.get(first)
    if base is None:
        return f"{copula(holds)} {relation}"
    if holds:
        return relation if first != "have" else f"has {rest}".strip()
    return f"does not {base} {rest}".strip()


def object_token(object_id: str) -> str:
    """The raw GQA-REX reference to a scene-graph object: ``(obj:12)``."""
    return f"(obj:{object_id})"


def absent_token(noun: str) -> str:
    """The raw GQA-REX reference to an object the scene lacks: ``(obj*:cat)`` (always singular)."""
    return f"(obj*:{singular(noun)})"


def modifier(value: str, negated: bool) -> str:
    """A filtered attribute placed before the noun: ``white``; a negated one: ``non-white``."""
    return f"non-{value}" if negated else value


def split_modifiers(filters: tuple[tuple[str | None, str, bool], ...], stated: str | None = None
              ) -> tuple[list[str], list[str]]:
    """Filtered attributes as words before the noun (``white``) and after it (``on the left``).

    A value the sentence states anyway (``stated``: "the (obj:3) is walking") is not repeated as a
    modifier ("the walking (obj:3) is walking"); position filters follow the noun.
    """
    before: list[str] = []
    after: list[str] = []
    for category, value, negated in filters:
        if value == stated and not negated:
            continue
        if category in ("hposition", "vposition"):
            after.append(position_phrase(value) if not negated else f"not {position_phrase(value)}")
        else:
            before.append(modifier(value, negated))
    return before, after


def value_phrase(category: str | None, value: str) -> str:
    """What follows ``is`` for a value: names and places take an article (``a kitchen``), others not."""
    if category in ("name", "place", "room", "type"):
        return f"{indefinite_article(value)} {value}"
    return value
