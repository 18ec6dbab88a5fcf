"""Pretraining batches: scene-graph captions against their image's 36 regions.

Each row pairs an image's regions with a caption. With probability `negative_probability` the caption
does not match (label 1, as VisualBERT's sentence-image head counts): half of those are another image's
caption, half this image's caption with one content word swapped (a hard negative: "the red cup" where the
cup is white). Every caption has content words masked; on matching captions (label 0) the masked-language
loss scores them: the words can only be recovered by reading the regions, which is what the backbone is
meant to learn. On matching captions each unmasked word of an object's phrase ("white", "cup") is also
labelled with the region that best covers that object (IoU >= `ALIGNMENT_IOU`): word-region alignment, a
direct lesson in which region a word speaks of, which the two objectives above teach only through a
sentence-level signal. With `align_masked` a masked object word is aligned as well: the [MASK] of "the [MASK]
is to the left of the wooden table" must point at the region the rest of the caption singles out, a referring
expression resolved through a relation. Evaluation always labels them (referring accuracy, a measure of how
well the backbone resolves a relation); training on them did not pay (see `PretrainConfig.align_masked`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import h5py
import numpy as np
import torch
from transformers import BertTokenizerFast

from rexlib.boxes import iou_matrix
from rexlib.io import decode_strings
from rexlib.model.backbone import box_geometry
from rexlib.pretraining.captions import CONTENT_ROLES, corrupt, scene_caption, scene_vocabularies

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
IGNORE = -100
# Below it no region shows the object: the rule the faithfulness checker resolves a region to an object by
# (rexlib.evaluation.metrics.MIN_RESOLUTION_IOU), kept here so pretraining does not import the metrics.
ALIGNMENT_IOU = 0.5
# BERT's basic tokenisation for plain English: lower case, words and single punctuation marks.
_TOKEN = re.compile(r"\w+|[^\w\s]")


def basic_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def caption_words(vocabularies) -> set[str]:
    words = {"the", "is", "a", "there", "on", "at", "in", "of", "image", "middle", "left", "right", "top", "bottom"}
    for phrase in (*vocabularies.names, *vocabularies.attributes, *vocabularies.relations):
        words.update(basic_tokens(phrase))
    return words


def build_tokenizer(words: set[str]) -> BertTokenizerFast:
    """A word-level BERT tokenizer over `words` (every word a whole token)."""
    tokens = [*SPECIAL_TOKENS, *sorted(words - set(SPECIAL_TOKENS))]
    return BertTokenizerFast(vocab={token: index for index, token in enumerate(tokens)}, do_lower_case=True)


class CaptionImages:
    """The scene graphs of one split and their regions (features, normalised boxes) in memory."""

    def __init__(self, scenes_file: Path, regions_file: Path, attribute_category: dict[str, str] | None = None):
        with open(scenes_file, encoding="utf-8") as handle:
            scenes = json.load(handle)
        with h5py.File(regions_file, "r") as handle:
            row_of = {image_id: row for row, image_id in enumerate(decode_strings(handle["image_ids"][:]))}
            missing = [image_id for image_id in scenes if image_id not in row_of]
            if missing:
                raise ValueError(f"{regions_file}: no regions for {len(missing)} images of {scenes_file} "
                                 f"(first: {missing[0]})")
            self.image_ids = sorted(scenes, key=row_of.__getitem__)
            rows = np.array([row_of[i] for i in self.image_ids])
            self.features = handle["features"][:][rows]                                  # (N,36,D) float16
            boxes = handle["boxes"][:][rows].astype(np.float32)                          # (N,36,4) pixels
            sizes = handle["sizes"][:][rows].astype(np.float32)                          # (N,2) w, h
        scale = np.maximum(np.concatenate([sizes, sizes], axis=-1)[:, None, :], 1.0)
        self.boxes = np.clip(boxes / scale, 0.0, 1.0)
        self.scenes = [scenes[i] for i in self.image_ids]
        self._aligned: dict[tuple[int, str], int] = {}
        self.vocabularies = scene_vocabularies(scenes)
        self.attribute_category = attribute_category or {}

    def __len__(self) -> int:
        return len(self.image_ids)

    def aligned_region(self, row: int, object_id: str) -> int:
        """The region (0..35) that best covers the object, or IGNORE when none reaches ALIGNMENT_IOU."""
        key = (row, object_id)
        if key not in self._aligned:
            scene = self.scenes[row]
            obj = scene["objects"][object_id]
            scale = np.array([max(scene.get("width", 1), 1.0), max(scene.get("height", 1), 1.0)] * 2, np.float32)
            box = np.array([[obj["x"], obj["y"], obj["x"] + obj["w"], obj["y"] + obj["h"]]], np.float32) / scale
            overlaps = iou_matrix(box, self.boxes[row])[0]
            best = int(overlaps.argmax())
            self._aligned[key] = best if overlaps[best] >= ALIGNMENT_IOU else IGNORE
        return self._aligned[key]


def make_batch(images: CaptionImages, rows: np.ndarray, tokenizer: BertTokenizerFast, rng: np.random.Generator,
               max_length: int = 24, mask_probability: float = 0.4, negative_probability: float = 0.5,
               align_masked: bool = False) -> dict:
    """Tensors for one batch: token ids, masks, MLM and alignment labels (B,L), ITM labels (B,), visual inputs
    (B,36,D+7). ``align_masked``: masked object words are aligned too (see the module's docstring)."""
    captions, matches = [], []
    for row in rows:
        caption = scene_caption(images.scenes[row], rng)
        matched = caption is not None and rng.random() >= negative_probability
        if not matched:
            # half the negatives: this image's caption with one content word swapped (None if nothing swaps)
            caption = corrupt(caption, images.vocabularies, rng, images.attribute_category) if (
                caption is not None and rng.random() < 0.5) else None
        if caption is None:  # the other negatives: another image's caption
            other = int(rng.integers(len(images)))
            while other == row and len(images) > 1:
                other = int(rng.integers(len(images)))
            caption = scene_caption(images.scenes[other], rng) or scene_caption(images.scenes[row], rng)
            matched = False
        captions.append(caption)
        matches.append(matched)
    encoded = tokenizer([c.words for c in captions], is_split_into_words=True, padding="longest",
                        truncation=True, max_length=max_length, return_tensors="np")
    input_ids = encoded["input_ids"].copy()
    labels = np.full_like(input_ids, IGNORE)
    alignment = np.full_like(input_ids, IGNORE)
    for b, (caption, matched) in enumerate(zip(captions, matches)):
        # Every caption is masked alike (a mask must not tell a matching caption from a negative); only
        # matching ones are scored: a negative's words are not in its image.
        content = [t for t, w in enumerate(encoded.word_ids(b)) if w is not None and caption.roles[w] in CONTENT_ROLES]
        if not content:
            continue
        chosen = [t for t in content if rng.random() < mask_probability] or [content[int(rng.integers(len(content)))]]
        if matched:
            labels[b, chosen] = input_ids[b, chosen]
            for t, w in enumerate(encoded.word_ids(b)):
                object_id = caption.object_of(w) if w is not None and (align_masked or t not in chosen) else None
                if object_id is not None:
                    alignment[b, t] = images.aligned_region(int(rows[b]), object_id)
        input_ids[b, chosen] = tokenizer.mask_token_id
    boxes = torch.from_numpy(images.boxes[rows])
    visual = torch.cat([torch.from_numpy(images.features[rows].astype(np.float32)), box_geometry(boxes)], dim=-1)
    return {
        "input_ids": torch.from_numpy(input_ids).long(),
        "attention_mask": torch.from_numpy(encoded["attention_mask"]).long(),
        "labels": torch.from_numpy(labels).long(),
        "alignment_labels": torch.from_numpy(alignment).long(),
        "sentence_image_labels": torch.tensor([0 if m else 1 for m in matches], dtype=torch.long),
        "visual_embeds": visual,
    }
