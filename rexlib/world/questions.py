"""Questions with GQA programs, generated from a scene graph.

Each template picks objects from the scene, builds a program in GQA's operation names and argument
forms, and the words of the question and its full answer. The answer is then computed from the
program by :func:`rexlib.world.semantics.evaluate` (never taken from the template), and must agree
with what the template meant; yes/no templates draw the answer they aim for with a fair coin, which
keeps yes and no balanced.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rexlib.world import text
from rexlib.world.ontology import (
    ATTRIBUTE_CATEGORIES,
    COMPARATIVES,
    GEOMETRY_MARGIN,
    KIND_OF_NAME,
    KINDS,
    RELATION_CHOICES,
    SEMANTIC_RELATIONS,
    plural,
)
from rexlib.world.semantics import YES, answer_word, attribute_value, comparative_key, evaluate, family_of
from rexlib.world.text import Token, fill, predicate

QUESTIONS_PER_IMAGE = (10, 16)  # drawn uniformly in [low, high)

QUERY_TEMPLATES = {
    "color": "What color is {ref}?", "material": "What is {ref} made of?", "shape": "What shape is {ref}?",
    "pattern": "What pattern is {ref}?", "activity": "What is {ref} doing?", "flavor": "What flavor is {ref}?",
    "size": "How big is {ref}?", "cleanliness": "How clean is {ref}?", "age": "How old is {ref}?",
    "height": "How tall is {ref}?", "pose": "What pose is {ref} in?", "gender": "What gender is {ref}?",
    "hposition": "On which side of the image is {ref}?",
}
ALL_CATEGORIES = tuple(ATTRIBUTE_CATEGORIES) + ("hposition", "vposition")
POSITION_VALUES = {"hposition": ("left", "right"), "vposition": ("top", "bottom")}
# Categories whose value reads as an adjective before a name ("the white cup", "a wooden table").
ADJECTIVE_CATEGORIES = ("color", "material", "size", "shape", "pattern", "cleanliness", "age", "flavor", "height")
SPATIAL_CHOICE_WORDS = {
    ("to the left of", "to the right of"): "to the left or to the right of",
    ("above", "below"): "above or below",
    ("in front of", "behind"): "in front of or behind",
}


@dataclass
class Program:
    steps: list[dict] = field(default_factory=list)

    def add(self, operation: str, argument: str, dependencies: tuple[int, ...] = ()) -> int:
        if operation == "select" and any(step["operation"] == "select" for step in self.steps):
            argument += " "  # as in GQA's files: every select after the first ends with a space
        self.steps.append({"operation": operation, "argument": argument, "dependencies": list(dependencies)})
        return len(self.steps) - 1


@dataclass
class Draft:
    """A question before it gets its id: words, program, the answer the template aims for, GQA types."""

    question: list[Token]
    full_answer: list[Token]
    program: Program
    answer: str
    types: tuple[str, str, str]  # structural, semantic, detailed
    group: str
    answer_group: str | None = None


class SceneView:
    """Look-ups over one scene graph that the templates share."""

    def __init__(self, scene: dict, rng: np.random.Generator):
        self.scene = scene
        self.rng = rng
        self.objects = scene["objects"]
        self.ids = list(self.objects)
        self.by_name: dict[str, list[str]] = {}
        for object_id, obj in self.objects.items():
            self.by_name.setdefault(obj["name"], []).append(object_id)
        self.edges = [
            (subject, edge["name"], edge["object"])
            for subject, obj in self.objects.items()
            for edge in obj["relations"]
        ]
        self.edge_set = set(self.edges)
        # (subject, relation) -> targets and (target, relation) -> subjects, for relate look-ups.
        self.targets: dict[tuple[str, str], set[str]] = {}
        self.subjects: dict[tuple[str, str], set[str]] = {}
        for subject, relation, target in self.edges:
            self.targets.setdefault((subject, relation), set()).add(target)
            self.subjects.setdefault((target, relation), set()).add(subject)
        self._values: dict[tuple[str, str], str | None] = {}

    def name(self, object_id: str) -> str:
        return self.objects[object_id]["name"]

    def value(self, object_id: str, category: str) -> str | None:
        key = (object_id, category)
        if key not in self._values:
            self._values[key] = attribute_value(self.scene, object_id, category)
        return self._values[key]

    def pick(self, items):
        return items[int(self.rng.integers(len(items)))] if len(items) else None

    def coin(self) -> bool:
        return bool(self.rng.random() < 0.5)

    def unique(self, object_id: str) -> bool:
        return len(self.by_name[self.name(object_id)]) == 1

    def other_value(self, category: str, value: str) -> str:
        values = POSITION_VALUES.get(category) or ATTRIBUTE_CATEGORIES[category].values
        return self.pick([v for v in values if v != value])

    def other_name(self, name: str) -> str:
        return self.pick([n for n in KINDS[KIND_OF_NAME[name]] if n != name])

    def refer(self, program: Program, object_id: str, prefer_position: bool = False):
        """Program steps that select exactly this object, and the words naming it ("the white cup").

        A unique name is selected; otherwise a filter on a value no other object of that name shares
        (an attribute, or its side of the image). None when nothing singles it out.
        """
        object_name = self.name(object_id)
        same = self.by_name[object_name]
        selected = program.add("select", f"{object_name} ({','.join(same)})")
        if len(same) == 1:
            return selected, text.the(object_name, object_id)
        options = []
        for category in ALL_CATEGORIES:
            value = self.value(object_id, category)
            if value is None or value == "middle":
                continue
            if all(self.value(other, category) != value for other in same if other != object_id):
                options.append((category, value))
        positions = [option for option in options if option[0] in POSITION_VALUES]
        if not options:
            return None
        category, value = self.pick(positions if (prefer_position and positions) else options)
        filtered = program.add(f"filter {category}", value, (selected,))
        before, after = text.modifier(category, value)
        return filtered, text.words("the") + before + text.name(object_name, object_id) + after

    def single_values(self, object_id: str, categories=ALL_CATEGORIES) -> list[tuple[str, str]]:
        return [(c, v) for c in categories if (v := self.value(object_id, c)) is not None]


def _yes_no(answer: bool) -> str:
    return "Yes," if answer else "No,"


# --- templates -----------------------------------------------------------------------------------
# Each returns a Draft, or None when the scene offers nothing to ask of that kind.


def query_attribute(view: SceneView) -> Draft | None:
    choices = [(i, c, v) for i in view.ids for c, v in view.single_values(i) if c in QUERY_TEMPLATES]
    choices = [(i, c, v) for i, c, v in choices if not (c == "hposition" and v == "middle")]
    object_id, category, value = view.pick(choices) or (None, None, None)
    if object_id is None:
        return None
    program = Program()
    reference = view.refer(program, object_id)
    if reference is None:
        return None
    step, ref = reference
    program.add("query", category, (step,))
    detailed = "positionQuery" if category == "hposition" else "queryAttr"
    return Draft(fill(QUERY_TEMPLATES[category], ref=ref), fill("{ref} is {value}.", ref=ref, value=predicate(category, value)),
                 program, value, ("query", "attr", detailed), f"{detailed}-{view.name(object_id)}_{category}", category)


def query_relation(view: SceneView) -> Draft | None:
    """What is the man wearing? (relate o) / What is on the table? (relate s) -> query name."""
    side = "o" if view.coin() else "s"
    candidates = []
    for subject, relation, target in view.edges:
        anchor, found = (subject, target) if side == "o" else (target, subject)
        related = (view.targets if side == "o" else view.subjects)[(anchor, relation)]
        if related == {found}:
            candidates.append((anchor, relation, found))
    anchor, relation, found = view.pick(candidates) or (None, None, None)
    if anchor is None:
        return None
    program = Program()
    reference = view.refer(program, anchor)
    if reference is None:
        return None
    step, ref = reference
    step = program.add("relate", f"_,{relation},{side} ({found})", (step,))
    program.add("query", "name", (step,))
    found_name = view.name(found)
    rel = text.words(relation)
    if side == "o":
        question = fill("What is {ref} {rel}?", ref=ref, rel=rel)
        full = fill("{ref} is {rel} {thing}.", ref=ref, rel=rel, thing=text.a(found_name, found))
    else:
        asker = "Who" if KIND_OF_NAME[found_name] == "person" else "What"
        question = fill(asker + " is {rel} {ref}?", ref=ref, rel=rel)
        full = fill("{thing} is {rel} {ref}.", ref=ref, rel=rel, thing=text.the(found_name, found))
    detailed = "relO" if side == "o" else "relS"
    return Draft(question, full, program, found_name, ("query", "rel", detailed), f"{detailed}-{relation}", "name")


def query_filtered_relation(view: SceneView) -> Draft | None:
    """What is the white thing to the left of the cup? relate s -> filter color -> query name."""
    candidates = []
    for anchor in view.ids:
        for relation in sorted({r for s, r, t in view.edges if t == anchor}):
            related = [s for s, r, t in view.edges if r == relation and t == anchor]
            if len(related) < 2:
                continue
            for found in related:
                for category in ("color", "size"):
                    value = view.value(found, category)
                    if value and all(view.value(o, category) != value for o in related if o != found):
                        candidates.append((anchor, relation, found, category, value, related))
    if not candidates:
        return None
    anchor, relation, found, category, value, related = view.pick(candidates)
    program = Program()
    reference = view.refer(program, anchor)
    if reference is None:
        return None
    step, ref = reference
    step = program.add("relate", f"_,{relation},s ({','.join(related)})", (step,))
    step = program.add(f"filter {category}", value, (step,))
    program.add("query", "name", (step,))
    found_name = view.name(found)
    question = fill("What is the {value} object {rel} {ref}?", value=text.words(value), rel=text.words(relation), ref=ref)
    full = fill("The {value} object is {thing}.", value=text.words(value), thing=text.a(found_name, found))
    return Draft(question, full, program, found_name, ("query", "rel", "relS"), f"relS-{relation}-{category}", "name")


def verify_attribute(view: SceneView) -> Draft | None:
    want = view.coin()
    choices = [(i, c, v) for i in view.ids for c, v in view.single_values(i)]
    choices = [(i, c, v) for i, c, v in choices if c not in POSITION_VALUES or v != "middle"]
    object_id, category, value = view.pick(choices) or (None, None, None)
    if object_id is None:
        return None
    asked = value if want else view.other_value(category, value)
    program = Program()
    reference = view.refer(program, object_id)
    if reference is None:
        return None
    step, ref = reference
    program.add(f"verify {category}", asked, (step,))
    question = fill("Is {ref} {value}?", ref=ref, value=predicate(category, asked))
    full = fill(_yes_no(want) + " {ref} is {value}.", ref=ref, value=predicate(category, value))
    detailed = "positionVerify" if category in POSITION_VALUES else "verifyAttr"
    return Draft(question, full, program, YES if want else "no", ("verify", "attr", detailed),
                 f"{detailed}-{view.name(object_id)}_{category}")


def choose_attribute(view: SceneView) -> Draft | None:
    choices = [(i, c, v) for i in view.ids for c, v in view.single_values(i)]
    choices = [(i, c, v) for i, c, v in choices if c not in POSITION_VALUES or v != "middle"]
    object_id, category, value = view.pick(choices) or (None, None, None)
    if object_id is None:
        return None
    alternatives = [value, view.other_value(category, value)]
    if view.coin():
        alternatives.reverse()
    program = Program()
    reference = view.refer(program, object_id)
    if reference is None:
        return None
    step, ref = reference
    program.add(f"choose {category}", "|".join(alternatives), (step,))
    first, second = (predicate(category, v) for v in alternatives)
    if category == "material":
        second = second[2:]  # "made of wood or plastic"
    question = fill("Is {ref} {first} or {second}?", ref=ref, first=first, second=second)
    full = fill("{ref} is {value}.", ref=ref, value=predicate(category, value))
    detailed = "positionChoose" if category in POSITION_VALUES else "chooseAttr"
    return Draft(question, full, program, value, ("choose", "attr", detailed),
                 f"{detailed}-{view.name(object_id)}_{category}", category)


def choose_name(view: SceneView) -> Draft | None:
    """Is the man holding a cup or a plate? relate o -> choose name."""
    candidates = []
    for subject, relation, target in view.edges:
        if relation in SEMANTIC_RELATIONS and view.targets[(subject, relation)] == {target}:
            candidates.append((subject, relation, target))
    subject, relation, target = view.pick(candidates) or (None, None, None)
    if subject is None:
        return None
    program = Program()
    reference = view.refer(program, subject)
    if reference is None:
        return None
    step, ref = reference
    step = program.add("relate", f"_,{relation},o ({target})", (step,))
    target_name = view.name(target)
    alternatives = [target_name, view.other_name(target_name)]
    if view.coin():
        alternatives.reverse()
    program.add("choose name", "|".join(alternatives), (step,))
    question = fill("Is {ref} {rel} {first} or {second}?", ref=ref, rel=text.words(relation),
                    first=text.a(alternatives[0]), second=text.a(alternatives[1]))
    full = fill("{ref} is {rel} {thing}.", ref=ref, rel=text.words(relation), thing=text.a(target_name, target))
    return Draft(question, full, program, target_name, ("choose", "rel", "chooseObjRel"), f"chooseObjRel-{relation}", "name")


def _relation_phrase_pair(view: SceneView, subject: str, target: str, relation: str, side: str):
    """Program start for a relation question: select the subject (side o) or the target (side s)."""
    program = Program()
    selected, other = (subject, target) if side == "o" else (target, subject)
    reference = view.refer(program, selected)
    if reference is None or not view.unique(other):
        return None
    return program, reference, other


def verify_relation(view: SceneView) -> Draft | None:
    """Is the cup on the table? verify rel with the other object named and its id."""
    want = view.coin()
    pairs = [(s, t) for s, t in {(s, t) for s, _r, t in view.edges}]
    pairs.sort()
    subject, target = view.pick(pairs) or (None, None)
    if subject is None:
        return None
    holding = sorted(r for s, r, t in view.edges if s == subject and t == target)
    if want:
        relation = view.pick(holding)
    else:
        # A spatial "no" only where the opposite holds: a pair the picture leaves undecided is not asked about.
        options = [r for pair in RELATION_CHOICES for r in pair if r not in holding and r in SEMANTIC_RELATIONS]
        relation = view.pick([r for pair in RELATION_CHOICES if set(pair) & set(holding) for r in pair if r not in holding]
                             or options)
    side = "o" if view.coin() else "s"
    prepared = _relation_phrase_pair(view, subject, target, relation, side)
    if prepared is None:
        return None
    program, (step, ref), other = prepared
    program.add("verify rel", f"{view.name(other)},{relation},{side} ({other})", (step,))
    other_words = text.the(view.name(other), other)
    subject_words, target_words = (ref, other_words) if side == "o" else (other_words, ref)
    question = fill("Is {a} {rel} {b}?", a=subject_words, rel=text.words(relation), b=target_words)
    if want:
        full = fill("Yes, {a} is {rel} {b}.", a=subject_words, rel=text.words(relation), b=target_words)
    else:
        full = fill("No, {a} is not {rel} {b}.", a=subject_words, rel=text.words(relation), b=target_words)
    return Draft(question, full, program, YES if want else "no", ("verify", "rel", "relVerify"), f"relVerify-{relation}")


def choose_relation(view: SceneView) -> Draft | None:
    """Is the cup to the left or to the right of the plate? choose rel; the answer is the relation."""
    candidates = []
    for subject, target in sorted({(s, t) for s, _r, t in view.edges}):
        for pair in RELATION_CHOICES:
            holding = [r for r in pair if (subject, r, target) in view.edge_set]
            if len(holding) == 1:
                candidates.append((subject, target, pair, holding[0]))
    if not candidates:
        return None
    subject, target, pair, relation = view.pick(candidates)
    side = "o" if view.coin() else "s"
    prepared = _relation_phrase_pair(view, subject, target, relation, side)
    if prepared is None:
        return None
    program, (step, ref), other = prepared
    program.add("choose rel", f"{view.name(other)},{'|'.join(pair)},{side} ({other})", (step,))
    other_words = text.the(view.name(other), other)
    subject_words, target_words = (ref, other_words) if side == "o" else (other_words, ref)
    choice = SPATIAL_CHOICE_WORDS.get(pair) or f"{pair[0]} or {pair[1]}"
    question = fill("Is {a} {rel} {b}?", a=subject_words, rel=text.words(choice), b=target_words)
    full = fill("{a} is {rel} {b}.", a=subject_words, rel=text.words(relation), b=target_words)
    return Draft(question, full, program, answer_word(relation), ("choose", "rel", "relChooser"),
                 f"relChooser-{'|'.join(pair)}", "rel")


def exist_relation(view: SceneView) -> Draft | None:
    """Is there a cup on the table? / Is the man wearing a hat? relate with a target name -> exist."""
    want = view.coin()
    side = "s" if view.coin() else "o"
    semantic_edges = [(s, r, t) for s, r, t in view.edges if r in SEMANTIC_RELATIONS]
    if not semantic_edges:
        return None
    subject, relation, target = view.pick(semantic_edges)
    anchor, example = (target, subject) if side == "s" else (subject, target)
    related = [s for s, r, t in view.edges if r == relation and t == anchor] if side == "s" else [
        t for s, r, t in view.edges if r == relation and s == anchor]
    related_names = {view.name(i) for i in related}
    if want:
        wanted = view.name(example)
    else:
        kind = KIND_OF_NAME[view.name(example)]
        wanted = view.pick([n for n in KINDS[kind] if n not in related_names])
        if wanted is None:
            return None
    found = [i for i in related if view.name(i) == wanted]
    program = Program()
    reference = view.refer(program, anchor)
    if reference is None:
        return None
    step, ref = reference
    step = program.add("relate", f"{wanted},{relation},{side} ({','.join(found) or '-'})", (step,))
    program.add("exist", "?", (step,))
    rel = text.words(relation)
    thing = text.a(wanted, found[0] if found else None)
    if side == "s":
        question = fill("Is there {thing} {rel} {ref}?", thing=thing, rel=rel, ref=ref)
        full = (fill("Yes, there is {thing} {rel} {ref}.", thing=thing, rel=rel, ref=ref) if want
                else fill("No, there is no {thing} {rel} {ref}.", thing=text.name(wanted, None), rel=rel, ref=ref))
    else:
        question = fill("Is {ref} {rel} {thing}?", thing=thing, rel=rel, ref=ref)
        full = (fill("Yes, {ref} is {rel} {thing}.", thing=thing, rel=rel, ref=ref) if want
                else fill("No, {ref} is not {rel} {thing}.", thing=thing, rel=rel, ref=ref))
    detailed = "existRelS" if side == "s" else "existRelO"
    return Draft(question, full, program, YES if want else "no", ("verify", "rel", detailed), f"{detailed}-{relation}-{wanted}")


def _filter_exist(view: SceneView, program: Program, want: bool):
    """Steps for "is there a <value> <name>" that come out as `want`, and the phrase; None if impossible."""
    options = []
    for object_name, same in sorted(view.by_name.items()):
        for category in ADJECTIVE_CATEGORIES:
            values = {view.value(i, category) for i in same} - {None}
            if not values:
                continue
            if want:
                options.extend((object_name, category, v) for v in sorted(values))
            else:
                unused = [v for v in ATTRIBUTE_CATEGORIES[category].values if v not in values]
                options.extend((object_name, category, v) for v in unused)
    if not options:
        return None
    object_name, category, value = view.pick(options)
    same = view.by_name[object_name]
    step = program.add("select", f"{object_name} ({','.join(same)})")
    step = program.add(f"filter {category}", value, (step,))
    step = program.add("exist", "?", (step,))
    found = [i for i in same if view.value(i, category) == value]
    before, _after = text.modifier(category, value)
    return step, before + text.name(object_name, found[0] if found else None)


def exist_attribute(view: SceneView) -> Draft | None:
    want = view.coin()
    program = Program()
    made = _filter_exist(view, program, want)
    if made is None:
        return None
    _step, thing = made
    article_words = text.words(text.article(thing[0][0]))
    question = fill("Is there {thing}?", thing=article_words + thing)
    full = fill("Yes, there is {thing}." if want else "No, there is no {thing}.",
                thing=(article_words + thing) if want else thing)
    return Draft(question, full, program, YES if want else "no", ("verify", "attr", "existAttr"), "existAttr")


def logical_or(view: SceneView) -> Draft | None:
    """Is there a red cup or a blue plate? two filter-exist chains joined by or."""
    want = view.coin()
    truths = [True, view.coin()] if want else [False, False]
    if view.coin():
        truths.reverse()
    program = Program()
    made = [_filter_exist(view, program, truth) for truth in truths]
    if None in made or made[0][1] == made[1][1]:
        return None
    program.add("or", "", (made[0][0], made[1][0]))
    things = [text.words(text.article(m[1][0][0])) + m[1] for m in made]
    question = fill("Is there {a} or {b}?", a=things[0], b=things[1])
    if want:
        first_true = things[truths.index(True)]
        full = fill("Yes, there is {a}.", a=first_true)
    else:
        full = fill("No, there is no {a} or {b}.", a=made[0][1], b=made[1][1])
    return Draft(question, full, program, YES if want else "no", ("logical", "obj", "existAttrOr"), "existAttrOr")


def logical_and(view: SceneView) -> Draft | None:
    """Is the cup white and the plate round? two verify steps joined by and."""
    want = view.coin()
    truths = [True, True] if want else [False, view.coin()]
    if view.coin():
        truths.reverse()
    objects = [i for i in view.ids if view.single_values(i, ADJECTIVE_CATEGORIES)]
    if len(objects) < 2:
        return None
    chosen = [str(i) for i in view.rng.permutation(objects)[:2]]
    program = Program()
    parts, steps = [], []
    for object_id, truth in zip(chosen, truths):
        category, value = view.pick(view.single_values(object_id, ADJECTIVE_CATEGORIES))
        asked = value if truth else view.other_value(category, value)
        reference = view.refer(program, object_id)
        if reference is None:
            return None
        step, ref = reference
        steps.append(program.add(f"verify {category}", asked, (step,)))
        parts.append((ref, category, asked, value))
    program.add("and", "", tuple(steps))
    (ref_a, cat_a, asked_a, _), (ref_b, cat_b, asked_b, _) = parts
    question = fill("Is {a} {va} and {b} {vb}?", a=ref_a, va=predicate(cat_a, asked_a), b=ref_b,
                    vb=predicate(cat_b, asked_b))
    if want:
        full = fill("Yes, {a} is {va} and {b} is {vb}.", a=ref_a, va=predicate(cat_a, asked_a), b=ref_b,
                    vb=predicate(cat_b, asked_b))
    else:
        ref, category, asked, value = parts[truths.index(False)]
        full = fill("No, {a} is {v}.", a=ref, v=predicate(category, value))
    return Draft(question, full, program, YES if want else "no", ("logical", "attr", "verifyAttrs"), "verifyAttrs")


SAME_OPERATIONS = {("same", "color"), ("same", "material"), ("same", "shape"), ("different", "color"),
                   ("different", "shape")}
SAME_QUESTION = {
    "color": ("Are {a} and {b} the same color?", "Are {a} and {b} different colors?"),
    "material": ("Are {a} and {b} made of the same material?", None),
    "shape": ("Do {a} and {b} have the same shape?", "Do {a} and {b} have different shapes?"),
}


def same_pair(view: SceneView) -> Draft | None:
    """Are the cup and the plate the same color? same/different <category> over two objects."""
    want = view.coin()
    operation, category = view.pick(sorted(SAME_OPERATIONS))
    pairs = []
    for first in view.ids:
        for second in view.ids:
            if first < second and view.value(first, category) and view.value(second, category):
                equal = view.value(first, category) == view.value(second, category)
                if equal == (want if operation == "same" else not want):
                    pairs.append((first, second))
    if not pairs:
        return None
    first, second = view.pick(pairs)
    program = Program()
    references = [view.refer(program, first), view.refer(program, second)]
    if None in references:
        return None
    (step_a, ref_a), (step_b, ref_b) = references
    program.add(f"{operation} {category}", "", (step_a, step_b))
    template = SAME_QUESTION[category][0 if operation == "same" else 1]
    question = fill(template, a=ref_a, b=ref_b)
    value_a, value_b = view.value(first, category), view.value(second, category)
    if value_a == value_b:
        full = fill(_yes_no(want) + " both {a} and {b} are {v}.", a=ref_a, b=ref_b, v=predicate(category, value_a))
    else:
        full = fill(_yes_no(want) + " {a} is {va} and {b} is {vb}.", a=ref_a, b=ref_b,
                    va=predicate(category, value_a), vb=predicate(category, value_b))
    detailed = "twoSame" if operation == "same" else "twoDifferent"
    return Draft(question, full, program, YES if want else "no", ("compare", "attr", detailed), f"{detailed}-{category}")


def same_set(view: SceneView) -> Draft | None:
    """Do all the chairs have the same color? plain same/different over one set, category as argument."""
    want = view.coin()
    operation = "same" if view.coin() else "different"
    options = []
    for object_name, same in sorted(view.by_name.items()):
        if len(same) < 2:
            continue
        for category in ("color", "material", "size", "pose"):
            values = [view.value(i, category) for i in same]
            if None in values:
                continue
            all_same = len(set(values)) == 1
            if (all_same if operation == "same" else not all_same) == want:
                options.append((object_name, category, values))
    if not options:
        return None
    object_name, category, values = view.pick(options)
    same = view.by_name[object_name]
    program = Program()
    step = program.add("select", f"{object_name} ({','.join(same)})")
    program.add(operation, category, (step,))
    group_words = text.words("the") + [(plural(object_name), same[0])]
    if operation == "same":
        question = fill("Do all {things} have the same {category}?", things=group_words, category=text.words(category))
    else:
        question = fill("Do {things} have different {category}s?", things=group_words, category=text.words(category))
    if len(set(values)) == 1:
        full = fill(_yes_no(want) + " all {things} are {v}.", things=group_words, v=predicate(category, values[0]))
    else:
        full = fill(_yes_no(want) + " {things} are not all the same {category}.", things=group_words,
                    category=text.words(category))
    detailed = "allSame" if operation == "same" else "allDiff"
    return Draft(question, full, program, YES if want else "no", ("compare", "attr", detailed), f"{detailed}-{category}")


def common(view: SceneView) -> Draft | None:
    """What do the cup and the plate have in common? exactly one of color / material is shared."""
    pairs = []
    for first in view.ids:
        for second in view.ids:
            if first >= second:
                continue
            shared = [c for c in ("color", "material")
                      if view.value(first, c) is not None and view.value(first, c) == view.value(second, c)]
            if len(shared) == 1:
                pairs.append((first, second, shared[0]))
    if not pairs:
        return None
    first, second, category = view.pick(pairs)
    program = Program()
    references = [view.refer(program, first), view.refer(program, second)]
    if None in references:
        return None
    (step_a, ref_a), (step_b, ref_b) = references
    program.add("common", "", (step_a, step_b))
    question = fill("What do {a} and {b} have in common?", a=ref_a, b=ref_b)
    full = fill(f"The {category}.")
    return Draft(question, full, program, category, ("compare", "attr", "twoCommon"), "twoCommon", "category")


def comparative(view: SceneView) -> Draft | None:
    """Who is older, the man or the boy? choose <comparative> over two selected objects."""
    comparative_name = view.pick(sorted(COMPARATIVES))
    pairs = []
    for first in view.ids:
        for second in view.ids:
            if first == second or view.name(first) == view.name(second):
                continue
            keys = [comparative_key(view.scene, i, comparative_name) for i in (first, second)]
            if None in keys:
                continue
            geometric = comparative_name in ("taller", "shorter", "higher", "lower")
            if abs(keys[0] - keys[1]) >= (GEOMETRY_MARGIN if geometric else 1):
                pairs.append((first, second, keys[0] > keys[1]))
    if not pairs:
        return None
    first, second, first_wins = view.pick(pairs)
    program = Program()
    references = [view.refer(program, first), view.refer(program, second)]
    if None in references:
        return None
    (step_a, ref_a), (step_b, ref_b) = references
    program.add(f"choose {comparative_name}", "", (step_a, step_b))
    asker = COMPARATIVES[comparative_name][1].capitalize()
    question = fill(asker + " is {c}, {a} or {b}?", c=text.words(comparative_name), a=ref_a, b=ref_b)
    winner, loser = (ref_a, ref_b) if first_wins else (ref_b, ref_a)
    full = fill("{w} is {c} than {l}.", w=winner, c=text.words(comparative_name), l=loser)
    answer = view.name(first if first_wins else second)
    return Draft(question, full, program, answer, ("compare", "attr", "compare"), f"compare-{comparative_name}", "name")


def filter_position(view: SceneView) -> Draft | None:
    """What color is the cup on the left? select -> filter hposition -> query, for a repeated name."""
    candidates = []
    for same in view.by_name.values():
        for object_id in same:
            position = view.value(object_id, "hposition")
            unique_side = all(view.value(o, "hposition") != position for o in same if o != object_id)
            if position != "middle" and unique_side and len(same) > 1 and view.value(object_id, "color"):
                candidates.append(object_id)
    object_id = view.pick(sorted(candidates))
    if object_id is None:
        return None
    program = Program()
    step, ref = view.refer(program, object_id, prefer_position=True)
    value = view.value(object_id, "color")
    program.add("query", "color", (step,))
    return Draft(fill(QUERY_TEMPLATES["color"], ref=ref), fill("{ref} is {v}.", ref=ref, v=text.words(value)),
                 program, value, ("query", "attr", "queryAttr"), f"queryAttr-{view.name(object_id)}_color", "color")


# template -> weight. Yes/no templates weigh about as much as open ones, as in GQA's balanced set.
TEMPLATES: dict[Callable[[SceneView], Draft | None], float] = {
    query_attribute: 3, query_relation: 3, query_filtered_relation: 1, verify_attribute: 3, choose_attribute: 2,
    choose_name: 1, verify_relation: 2, choose_relation: 2, exist_relation: 2, exist_attribute: 1,
    logical_or: 1, logical_and: 1, same_pair: 1, same_set: 1, common: 1, comparative: 2, filter_position: 1,
}


def generate_questions(scene: dict, rng: np.random.Generator) -> list[dict]:
    """GQA question records for one scene (without ids and imageId): 10-15 distinct questions."""
    view = SceneView(scene, rng)
    templates = list(TEMPLATES)
    weights = np.array([TEMPLATES[t] for t in templates], dtype=float)
    weights /= weights.sum()
    wanted = int(rng.integers(*QUESTIONS_PER_IMAGE))
    records, seen = [], set()
    for _attempt in range(wanted * 4):
        if len(records) >= wanted:
            break
        template = templates[int(rng.choice(len(templates), p=weights))]
        draft = template(view)
        if draft is None:
            continue
        question, question_annotations = text.render(draft.question)
        if question in seen:
            continue
        answer = evaluate(draft.program.steps, scene)
        if answer != draft.answer:
            raise AssertionError(f"{template.__name__}: template meant {draft.answer!r}, program gives {answer!r}: "
                                 f"{question} {draft.program.steps}")
        seen.add(question)
        full_answer, full_annotations = text.render(draft.full_answer)
        records.append(_record(draft, question, question_annotations, answer, full_answer, full_annotations))
    return records


def _record(draft: Draft, question: str, question_annotations: dict, answer: str, full_answer: str,
            full_annotations: dict) -> dict:
    structural, semantic, detailed = draft.types
    steps = draft.program.steps
    semantic_str = "->".join(
        f"{step['operation']}: {step['argument']}" + (f" {step['dependencies']}" if step["dependencies"] else "")
        for step in steps
    )
    return {
        "question": question,
        "answer": answer,
        "fullAnswer": full_answer,
        "semantic": steps,
        "semanticStr": semantic_str,
        "types": {"structural": structural, "semantic": semantic, "detailed": detailed},
        "annotations": {"answer": {}, "question": question_annotations, "fullAnswer": full_annotations},
        "groups": {"global": draft.answer_group, "local": draft.group},
        "isBalanced": True,
        "entailed": [],
        "equivalent": [],
    }


def families(program: list[dict]) -> list[str]:
    """The distinct operation families of a program, in first-use order."""
    seen: list[str] = []
    for step in program:
        family = family_of(step["operation"])
        if family not in seen:
            seen.append(family)
    return seen
