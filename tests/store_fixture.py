"""A tiny, learnable GQA-REX store written in code, in exactly the format of docs/contracts.md.

Each image holds three objects (a name and a colour) sitting in three of its 36 regions; every region's
feature encodes the object it covers (one-hot name, one-hot colour, a little noise), the other regions
are noise. Questions name an object, so the model can learn to find the region whose feature encodes
it and point at it with its `#k` token:

    what color is the ball ?   ->  red   "the #7 is red , so the answer is red"
    is the cup blue ?          ->  no    "the #2 is green , so the answer is no"
    is there a lamp ?          ->  yes   "there is a #30 , so the answer is yes"  (or "there is no lamp ...")

Tests use it to prove overfitting, the structure gate and resuming without waiting for the real builder.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import h5py
import numpy as np

NUM_REGIONS = 36
MAX_EXPLANATION_LENGTH = 12
MAX_QUESTION_LENGTH = 24
OBJECT_NAMES = ("ball", "cube", "cup", "hat", "book", "lamp")
COLORS = ("red", "blue", "green", "yellow")
IMAGE_SIZE = (320, 240)  # (w, h) pixels
OBJECTS_PER_IMAGE = 3
QUESTIONS_PER_IMAGE = 2


def _image(rng: np.random.Generator, feature_dim: int) -> dict:
    """One image: region boxes, region features and the three objects with the regions they sit in."""
    width, height = IMAGE_SIZE
    x1 = rng.uniform(0, width * 0.7, NUM_REGIONS)
    y1 = rng.uniform(0, height * 0.7, NUM_REGIONS)
    x2 = np.minimum(x1 + rng.uniform(10, width * 0.3, NUM_REGIONS), width)
    y2 = np.minimum(y1 + rng.uniform(10, height * 0.3, NUM_REGIONS), height)
    boxes = np.stack([x1, y1, x2, y2], axis=1).astype(np.float32)
    features = rng.normal(0.0, 0.1, (NUM_REGIONS, feature_dim)).astype(np.float32)
    names = rng.choice(len(OBJECT_NAMES), OBJECTS_PER_IMAGE, replace=False)
    regions = rng.choice(NUM_REGIONS, OBJECTS_PER_IMAGE, replace=False)
    objects = []
    for name_index, region in zip(names, regions):
        color_index = int(rng.integers(len(COLORS)))
        # The identity lives in the first dimensions: one-hot name, then one-hot colour.
        features[region, name_index] += 1.0
        features[region, len(OBJECT_NAMES) + color_index] += 1.0
        objects.append({"name": OBJECT_NAMES[name_index], "color": COLORS[color_index], "region": int(region)})
    return {"boxes": boxes, "features": features.astype(np.float16), "objects": objects}


def _question(rng: np.random.Generator, image: dict) -> dict:
    """One question about the image, with its answer, explanation tokens and GQA-like types."""
    kind = ("queryAttr", "verifyAttr", "exist")[int(rng.integers(3))]
    target = image["objects"][int(rng.integers(len(image["objects"])))]
    region_token = f"#{target['region']}"
    if kind == "queryAttr":
        question = f"what color is the {target['name']} ?"
        answer = target["color"]
        explanation = f"the {region_token} is {target['color']} , so the answer is {answer}"
        structural, semantic, families = "query", "attr", "select,query"
    elif kind == "verifyAttr":
        asked = COLORS[int(rng.integers(len(COLORS)))]
        question = f"is the {target['name']} {asked} ?"
        answer = "yes" if asked == target["color"] else "no"
        explanation = f"the {region_token} is {target['color']} , so the answer is {answer}"
        structural, semantic, families = "verify", "attr", "select,verify"
    else:
        name = OBJECT_NAMES[int(rng.integers(len(OBJECT_NAMES)))]
        present = [obj for obj in image["objects"] if obj["name"] == name]
        question = f"is there a {name} ?"
        if present:
            answer = "yes"
            explanation = f"there is a #{present[0]['region']} , so the answer is yes"
        else:
            answer = "no"
            explanation = f"there is no {name} , so the answer is no"
        structural, semantic, families = "verify", "obj", "select,exist"
    return {
        "question": question,
        "answer": answer,
        "explanation": explanation,
        "types": {"structural": structural, "semantic": semantic, "detailed": kind},
        "families": families,
    }


def _write_json(path: Path, value) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(value, indent=1))
    temporary.replace(path)


def make_tiny_store(directory, n_train: int = 64, n_val: int = 32, feature_dim: int = 32, seed: int = 0) -> Path:
    """Write dataset.json, vocab.json, {train,val}.h5, regions.h5 and the json files into `directory`."""
    if feature_dim < len(OBJECT_NAMES) + len(COLORS):
        raise ValueError(f"feature_dim must be >= {len(OBJECT_NAMES) + len(COLORS)} to encode the objects")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    split_sizes = {"train": n_train, "val": n_val}

    images, questions = [], {}
    for split, count in split_sizes.items():
        questions[split] = []
        for _ in range((count + QUESTIONS_PER_IMAGE - 1) // QUESTIONS_PER_IMAGE):
            image = _image(rng, feature_dim)
            images.append(image)
            for _ in range(QUESTIONS_PER_IMAGE):
                if len(questions[split]) < count:
                    record = _question(rng, image)
                    record["image_index"] = len(images) - 1
                    questions[split].append(record)

    # Vocabularies in the contract's fixed order.
    word_counts = Counter(
        token
        for records in questions.values()
        for record in records
        for token in record["explanation"].split()
        if not token.startswith("#")
    )
    words = sorted(word_counts, key=lambda word: (-word_counts[word], word))
    explanation_vocab = (
        ["<pad>", "<start>", "<end>", "<unk>"]
        + [f"#{k}" for k in range(NUM_REGIONS)]
        + [f"@{k}" for k in range(1, 17)]
        + words
    )
    answer_counts = Counter(record["answer"] for record in questions["train"])
    answer_vocab = sorted(answer_counts, key=lambda answer: (-answer_counts[answer], answer))
    question_words = sorted({w for records in questions.values() for r in records for w in r["question"].split()})
    question_vocab = ["<pad>", "<unk>", "[CLS]", "[SEP]"] + question_words
    _write_json(directory / "vocab.json", {"explanation": explanation_vocab, "answer": answer_vocab,
                                           "question": question_vocab})

    explanation_ids = {token: index for index, token in enumerate(explanation_vocab)}
    question_ids = {word: index for index, word in enumerate(question_vocab)}
    answer_ids = {answer: index for index, answer in enumerate(answer_vocab)}
    string = h5py.string_dtype("utf-8")
    for split, records in questions.items():
        count = len(records)
        encoded_questions = np.zeros((count, MAX_QUESTION_LENGTH), np.int32)
        question_lengths = np.zeros(count, np.int32)
        explanations = np.zeros((count, MAX_EXPLANATION_LENGTH + 1), np.int32)
        explanation_lengths = np.zeros(count, np.int32)
        gate_targets = np.zeros((count, MAX_EXPLANATION_LENGTH + 1), np.uint8)
        identifiers = [f"{split}{index:06d}" for index in range(count)]
        for row, record in enumerate(records):
            tokens = ["[CLS]"] + record["question"].split() + ["[SEP]"]
            encoded_questions[row, : len(tokens)] = [question_ids[t] for t in tokens]
            question_lengths[row] = len(tokens)
            words_ = record["explanation"].split()[:MAX_EXPLANATION_LENGTH]
            ids = [explanation_ids[t] for t in words_] + [explanation_ids["<end>"]]
            explanations[row, : len(ids)] = ids
            explanation_lengths[row] = len(ids)
            gate_targets[row, : len(ids)] = [0 if t.startswith("#") else 1 for t in words_] + [1]
        with h5py.File(directory / f"{split}.h5.tmp", "w") as handle:
            handle["question_ids"] = np.array(identifiers, dtype=object).astype(string)
            handle["image_index"] = np.array([r["image_index"] for r in records], np.int32)
            handle["questions"] = encoded_questions
            handle["question_lengths"] = question_lengths
            handle["answers"] = np.array([answer_ids.get(r["answer"], -1) for r in records], np.int32)
            handle["explanations"] = explanations
            handle["explanation_lengths"] = explanation_lengths
            handle["gate_targets"] = gate_targets
            handle["explanation_truncated"] = np.zeros(count, bool)
            for key in ("structural", "semantic", "detailed"):
                handle[f"types_{key}"] = np.array([r["types"][key] for r in records], dtype=object).astype(string)
            handle["families"] = np.array([r["families"] for r in records], dtype=object).astype(string)
        (directory / f"{split}.h5.tmp").replace(directory / f"{split}.h5")
        _write_json(directory / f"converted_explanation_{split}.json",
                    {qid: r["explanation"] for qid, r in zip(identifiers, records)})
        _write_json(directory / f"processed_explanation_{split}.json",
                    {qid: r["explanation"] for qid, r in zip(identifiers, records)})

    with h5py.File(directory / "regions.h5.tmp", "w") as handle:
        handle["image_ids"] = np.array([f"img{index}".encode() for index in range(len(images))])
        handle["boxes"] = np.stack([image["boxes"] for image in images])
        handle["features"] = np.stack([image["features"] for image in images])
        handle["sizes"] = np.tile(np.array(IMAGE_SIZE, np.int32), (len(images), 1))
    (directory / "regions.h5.tmp").replace(directory / "regions.h5")

    _write_json(directory / "dataset.json", {
        "regions": "regions.h5",
        "splits": list(split_sizes),
        "max_explanation_length": MAX_EXPLANATION_LENGTH,
        "max_question_length": MAX_QUESTION_LENGTH,
        "source": f"tests.store_fixture (seed {seed})",
    })
    return directory


def save_tiny_pretrained(store: Path, directory: Path) -> Path:
    """A tiny randomly initialised VisualBERT and a BERT tokenizer over the store's question words, saved
    with `save_pretrained`: stands in for local pretrained weights (never downloaded) in tests."""
    import json

    from transformers import BertTokenizerFast, VisualBertConfig, VisualBertModel

    words = [w for w in json.loads((Path(store) / "vocab.json").read_text())["question"]
             if not w.startswith(("<", "["))]
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    tokenizer = BertTokenizerFast(vocab={token: index for index, token in enumerate(tokens)})
    VisualBertModel(VisualBertConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=128,
                                     visual_embedding_dim=32)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def build_world_store(root: Path, images: int, feature_dim: int, splits=("train", "val")) -> tuple[Path, Path]:
    """A small embedded world (no pictures) in ROOT/world and its GQA-REX store in ROOT/data, built by the
    package's own commands: for tests that need real scene graphs beside the store."""
    from rexlib.dataset.build import build
    from rexlib.world import build_world

    world, data = Path(root) / "world", Path(root) / "data"
    build_world(world, images=images, seed=0, feature_dim=feature_dim, render=False, progress=False,
                log=lambda _: None)
    build(world, world / "regions.h5", data, splits=list(splits), workers=1)
    return world, data
