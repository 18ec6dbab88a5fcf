"""Vocabularies for explanations, answers and questions, built from the training split only.

Explanation vocabulary, in the fixed order of docs/contracts.md: ``<pad>``=0, ``<start>``=1,
``<end>``=2, ``<unk>``=3, then ``#0``..``#35`` (ids 4..39), ``@1``..``@16`` (ids 40..55), then words
by descending frequency (ties alphabetical). The region tokens sit at fixed ids so the model can place
its region distribution on them without a lookup table.

Question vocabulary: ``<pad>``=0, ``<unk>``=1, ``[CLS]``=2, ``[SEP]``=3, then words by frequency.
Answer vocabulary: training answers by descending frequency; an unknown answer encodes to -1.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from rexlib import layout
from rexlib.boxes import GRID_SIZE, NUM_REGIONS
from rexlib.io import read_json, write_json

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
CLS, SEP = "[CLS]", "[SEP]"
EXPLANATION_SPECIALS = (PAD, START, END, UNK)
REGION_TOKENS = tuple(f"#{k}" for k in range(NUM_REGIONS))
GRID_TOKENS = tuple(f"@{k}" for k in range(1, GRID_SIZE * GRID_SIZE + 1))
QUESTION_SPECIALS = (PAD, UNK, CLS, SEP)
FIRST_REGION_ID = len(EXPLANATION_SPECIALS)  # 4
FIRST_GRID_ID = FIRST_REGION_ID + NUM_REGIONS  # 40
FIRST_WORD_ID = FIRST_GRID_ID + len(GRID_TOKENS)  # 56

# Words (letters/digits, with inner apostrophes or hyphens) or single punctuation marks.
_QUESTION_TOKEN = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*|[^\sa-z0-9]")


def tokenize_question(text: str) -> list[str]:
    """Lower-case and split punctuation off: ``"Is the cup blue?"`` -> ``is the cup blue ?``."""
    return _QUESTION_TOKEN.findall(text.lower())


def _by_frequency(counts: Counter, min_count: int) -> list[str]:
    return sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))


@dataclass(frozen=True)
class Vocabulary:
    """An ordered token list with its index; ``unknown`` is the id for tokens not in it."""

    tokens: tuple[str, ...]
    unknown: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {token: i for i, token in enumerate(self.tokens)})
        if len(self.index) != len(self.tokens):
            raise ValueError("vocabulary holds duplicate tokens")

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def id(self, token: str) -> int:
        return self.index.get(token, self.unknown)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        index, unknown = self.index, self.unknown
        return [index.get(token, unknown) for token in tokens]

    def decode(self, ids: Iterable[int], *, stop_at: str | None = None, skip: Sequence[str] = ()) -> list[str]:
        """Ids back to tokens; stops before ``stop_at`` and leaves out tokens in ``skip``."""
        out = []
        for i in ids:
            token = self.tokens[int(i)] if 0 <= int(i) < len(self.tokens) else UNK
            if token == stop_at:
                break
            if token not in skip:
                out.append(token)
        return out


def explanation_vocabulary(explanations: Iterable[str | Sequence[str]], min_count: int = 1) -> Vocabulary:
    """From converted explanations (space-separated strings or token lists) of the training split."""
    # One Counter over all the tokens (counting runs in C; an update per explanation costs a call each).
    counts = Counter(chain.from_iterable(
        explanation.split() if isinstance(explanation, str) else explanation for explanation in explanations))
    fixed = set(EXPLANATION_SPECIALS) | set(REGION_TOKENS) | set(GRID_TOKENS)
    for token in fixed:
        counts.pop(token, None)
    words = _by_frequency(counts, min_count)
    return Vocabulary(EXPLANATION_SPECIALS + REGION_TOKENS + GRID_TOKENS + tuple(words), unknown=3)


def answer_vocabulary(answers: Iterable[str], min_count: int = 1) -> Vocabulary:
    """Training answers by descending frequency (ties alphabetical); unknown answers encode to -1."""
    return Vocabulary(tuple(_by_frequency(Counter(answers), min_count)), unknown=-1)


def question_vocabulary(questions: Iterable[str | Sequence[str]], min_count: int = 1) -> Vocabulary:
    """From raw question texts of the training split (tokenized with :func:`tokenize_question`), or
    from their token lists when the caller has them already."""
    counts = Counter(chain.from_iterable(
        tokenize_question(question) if isinstance(question, str) else question for question in questions))
    for token in QUESTION_SPECIALS:
        counts.pop(token, None)
    return Vocabulary(QUESTION_SPECIALS + tuple(_by_frequency(counts, min_count)), unknown=1)


@dataclass(frozen=True)
class Vocabularies:
    explanation: Vocabulary
    answer: Vocabulary
    question: Vocabulary

    def to_json(self) -> dict:
        return {"explanation": list(self.explanation.tokens), "answer": list(self.answer.tokens),
                "question": list(self.question.tokens)}

    @classmethod
    def from_json(cls, data: dict, *, source: str = layout.VOCAB) -> Vocabularies:
        missing = [key for key in ("explanation", "answer", "question") if not isinstance(data.get(key), list)]
        if missing:
            raise ValueError(f"{source}: {', '.join(missing)} missing or not a list")
        explanation = tuple(data["explanation"])
        expected = EXPLANATION_SPECIALS + REGION_TOKENS + GRID_TOKENS
        if explanation[: len(expected)] != expected:
            raise ValueError(f"{source}: explanation vocabulary does not start with the fixed "
                             "<pad> <start> <end> <unk> #0..#35 @1..@16 order")
        if tuple(data["question"][:4]) != QUESTION_SPECIALS:
            raise ValueError(f"{source}: question vocabulary does not start with <pad> <unk> [CLS] [SEP]")
        return cls(Vocabulary(explanation, 3), Vocabulary(tuple(data["answer"]), -1),
                   Vocabulary(tuple(data["question"]), 1))

    def save(self, path: str | Path) -> None:

        write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Vocabularies:
        return cls.from_json(read_json(path), source=str(path))


def build_vocabularies(explanations: Iterable, answers: Iterable[str], questions: Iterable[str], *,
                       explanation_min_count: int = 1, answer_min_count: int = 1,
                       question_min_count: int = 1) -> Vocabularies:
    """All three vocabularies from the training split's converted explanations, answers, questions."""
    return Vocabularies(
        explanation_vocabulary(explanations, explanation_min_count),
        answer_vocabulary(answers, answer_min_count),
        question_vocabulary(questions, question_min_count),
    )
