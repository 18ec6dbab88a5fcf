"""Vocabularies: the contract's fixed order, frequency order with alphabetical ties, min counts."""

import pytest

from rexlib.dataset.vocab import (
    Vocabularies,
    answer_vocabulary,
    build_vocabularies,
    explanation_vocabulary,
    question_vocabulary,
    tokenize_question,
)


def test_explanation_vocabulary_order():
    vocabulary = explanation_vocabulary(["the #3 is red", "the #7 is blue @2", "a red cup"], min_count=1)
    assert vocabulary.tokens[:4] == ("<pad>", "<start>", "<end>", "<unk>")
    assert vocabulary.id("#0") == 4 and vocabulary.id("#35") == 39
    assert vocabulary.id("@1") == 40 and vocabulary.id("@16") == 55
    # is/red/the twice (alphabetical among ties), then the rest alphabetically
    assert vocabulary.tokens[56:] == ("is", "red", "the", "a", "blue", "cup")
    assert vocabulary.encode(["the", "zebra"]) == [58, 3]
    assert vocabulary.decode([58, 4, 2, 0], stop_at="<end>") == ["the", "#0"]
    assert explanation_vocabulary(["a a b"], min_count=2).tokens[56:] == ("a",)


def test_answer_and_question_vocabularies():
    answers = answer_vocabulary(["no", "yes", "no", "red"])
    assert answers.tokens == ("no", "red", "yes") and answers.id("purple") == -1
    assert tokenize_question("Is the man's cup BLUE, or red?") == ["is", "the", "man's", "cup", "blue", ",",
                                                                   "or", "red", "?"]
    questions = question_vocabulary(["Is it red?", "Is it blue?"])
    assert questions.tokens[:4] == ("<pad>", "<unk>", "[CLS]", "[SEP]")
    assert questions.tokens[4:] == ("?", "is", "it", "blue", "red") and questions.id("green") == 1


def test_vocab_json_round_trip_and_validation(tmp_path):
    vocabularies = build_vocabularies(["the #1 is red"], ["red"], ["What color?"])
    vocabularies.save(tmp_path / "vocab.json")
    loaded = Vocabularies.load(tmp_path / "vocab.json")
    assert loaded.to_json() == vocabularies.to_json()
    with pytest.raises(ValueError, match="fixed"):
        Vocabularies.from_json({"explanation": ["<pad>"], "answer": [], "question": []})
    with pytest.raises(ValueError, match="question"):
        Vocabularies.from_json({"explanation": [], "answer": []})
