"""Sentences as tokens that remember which object each word names (GQA's ``annotations``).

A question is built from small templates ("What color is {ref}?") whose slots are filled with
token lists; a token is ``(word, object_id | None)``. GQA annotates the position of each object
name in the whitespace-split question and full answer, so the positions fall out of the tokens.
"""

from __future__ import annotations

from rexlib.world.ontology import article

Token = tuple[str, "str | None"]
MATERIAL_ADJECTIVE = {"wood": "wooden"}
POSITION_PHRASE = {
    "left": "on the left of the image", "right": "on the right of the image",
    "middle": "in the middle of the image", "top": "at the top of the image",
    "bottom": "at the bottom of the image",
}


def words(text: str) -> list[Token]:
    return [(word, None) for word in text.split()]


def name(object_name: str, object_id: str | None) -> list[Token]:
    return [(word, object_id) for word in object_name.split()]


def the(object_name: str, object_id: str | None) -> list[Token]:
    return words("the") + name(object_name, object_id)


def a(object_name: str, object_id: str | None = None) -> list[Token]:
    return words(article(object_name)) + name(object_name, object_id)


def predicate(category: str, value: str) -> list[Token]:
    """What follows "is" when saying an object has the value: "white", "made of wood", "on the left..."."""
    if category == "material":
        return words(f"made of {value}")
    if category in ("hposition", "vposition"):
        return words(POSITION_PHRASE[value])
    return words(value)


def modifier(category: str, value: str) -> tuple[list[Token], list[Token]]:
    """Words before and after an object's name that single it out: ("white", ""), ("", "on the left")."""
    if category == "material":
        return words(MATERIAL_ADJECTIVE.get(value, value)), []
    if category == "activity":
        return [], words(f"that is {value}")
    if category in ("hposition", "vposition"):
        return [], words(POSITION_PHRASE[value].removesuffix(" of the image"))
    return words(value), []


def fill(template: str, **slots: list[Token]) -> list[Token]:
    """``fill("Is {ref} white?", ref=the("cup", "12"))``: slot words may carry trailing punctuation."""
    tokens: list[Token] = []
    for word in template.split():
        if word.startswith("{"):
            slot, _, suffix = word[1:].partition("}")
            inserted = list(slots[slot])
            if suffix and inserted:
                last_word, last_id = inserted[-1]
                inserted[-1] = (last_word + suffix, last_id)
            tokens.extend(inserted)
        else:
            tokens.append((word, None))
    if tokens:
        first_word, first_id = tokens[0]
        tokens[0] = (first_word[:1].upper() + first_word[1:], first_id)
    return tokens


def render(tokens: list[Token]) -> tuple[str, dict[str, str]]:
    """The sentence and its annotations: token position (or "start:end" span) -> object id."""
    annotations: dict[str, str] = {}
    position = 0
    while position < len(tokens):
        object_id = tokens[position][1]
        end = position + 1
        while object_id is not None and end < len(tokens) and tokens[end][1] == object_id:
            end += 1
        if object_id is not None:
            annotations[str(position) if end == position + 1 else f"{position}:{end}"] = object_id
        position = end
    return " ".join(word for word, _ in tokens), annotations
