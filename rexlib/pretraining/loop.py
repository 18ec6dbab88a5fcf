"""Pretrain a small VisualBERT on scene-graph captions, as VisualBERT was pretrained on COCO captions.

Two objectives over (caption, 36 regions) pairs, VisualBERT's own: masked language modelling of the
caption's content words, and sentence-image matching (does this caption describe these regions?), here
with hard negatives. A third, UNITER's word-region alignment, is added because the first two alone did not
teach the small backbone to bind words to regions (1,500 steps: matching 54% held out, near chance): each
word of an object's phrase picks, among the 36 regions, the one that shows the object. The result is a
Hugging Face directory (config.json, model.safetensors, the word-level tokenizer) that `python -m rexlib train
--pretrained DIR` loads like `visualbert-vqa-coco-pre`, plus
`box_geometry.safetensors` (the projection of each region's box, which REX adds to the visual embedding)
and `pretraining.json` (recipe, command, metrics, the regions file it was trained against, checksums).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from transformers import VisualBertForPreTraining

from rexlib import gqa, layout
from rexlib.dataset.store import regions_path
from rexlib.dataset.vocab import QUESTION_SPECIALS, Vocabularies
from rexlib.io import atomic_path, file_sha256, read_json, write_json
from rexlib.model.backbone import GeometryAwareProjection, visualbert_config
from rexlib.model.config import REXConfig
from rexlib.options import option
from rexlib.pretraining import shipped
from rexlib.pretraining.data import (
    IGNORE,
    CaptionImages,
    basic_tokens,
    build_tokenizer,
    caption_words,
    make_batch,
)


@dataclass
class PretrainConfig:
    gqa: str = option(help="GQA-layout folder: sceneGraphs/{split}_sceneGraphs.json")
    store: str = option(help="GQA-REX store: its regions file, question vocabulary and attribute categories")
    out: str = option(help="output directory (a Hugging Face model directory), e.g. weights/visualbert-world-tiny")
    split: str = option("train", "scene graphs captioned (the store's training images only)")
    preset: str = option("tiny", "REXConfig preset giving the backbone's sizes")
    num_layers: int | None = option(None, "backbone layers; None: the preset's (tiny: 2)")
    steps: int = option(1500, "optimiser steps")
    batch_size: int = option(128, "captions per step")
    lr: float = option(2e-3, "peak AdamW learning rate (linear warmup, linear decay)")
    warmup_fraction: float = option(0.05, "share of the steps spent warming up")
    weight_decay: float = option(0.01, "AdamW weight decay (matrices only)")
    mask_probability: float = option(0.4, "per content word of a caption (at least one is masked)")
    negative_probability: float = option(0.5, "captions that do not match their regions (half corrupted, half "
                                         "another image's)")
    held_out_images: int = option(100, "images of the split kept out of training, for the metrics")
    box_geometry: bool = option(True, "pretrain the box projection REX adds to the visual embedding")
    alignment_weight: float = option(1.0, "weight of the word-region alignment loss (0: VisualBERT's two "
                                     "objectives only)")
    align_masked: bool = option(False, "align masked object words too: the [MASK] of 'the [MASK] is to the left "
                                "of the table' points at the object the rest of the caption singles out (6,000 steps: "
                                "REX then answered 58.8 against 64.4 without, seed 0)")
    eval_every: int = option(250, "steps between held-out metrics (and checkpoints)")
    seed: int = option(0, "initialisation, captions, masks and order")
    resume: bool = option(False, "continue from OUT's checkpoint (written at every evaluation)")
    stop_after_steps: int | None = option(None, "simulate a kill: return at the first checkpoint after this many "
                                          "steps")
    device: str = option("auto", "auto (cuda when there is one) | cpu | cuda[:N]")
    serves: str | None = option(None, "another world's regions.h5 this backbone serves too (the default world's, when "
                                      "pretraining on a world grown from it): each of its images must be in the "
                                      "store's regions file with equal boxes and features; recorded in the recipe")


def _question_words(store: Path) -> set[str]:
    """The store's question words as the tokenizer splits them (the backbone must read every question)."""
    question = Vocabularies.load(store / layout.VOCAB).question.tokens
    return {token for word in question if word not in QUESTION_SPECIALS for token in basic_tokens(word)}


class WordRegionAlignment(nn.Module):
    """Scores of each word state against each region state, (B,L,K): a pretraining head only (not saved with
    the backbone), so what it learns must live in the backbone's fused states."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.words = nn.Linear(hidden_size, hidden_size)
        self.regions = nn.Linear(hidden_size, hidden_size)

    def forward(self, words: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
        return self.words(words) @ self.regions(regions).transpose(1, 2) / math.sqrt(words.shape[-1])


def build_model(config: PretrainConfig, vocab_size: int, feature_dim: int) -> VisualBertForPreTraining:
    layers = {"num_layers": config.num_layers} if config.num_layers else {}
    rex = REXConfig.preset(config.preset, question_vocab_size=vocab_size, region_feature_dim=feature_dim, **layers)
    model = VisualBertForPreTraining(visualbert_config(rex))
    if config.box_geometry:
        embeddings = model.visual_bert.embeddings
        embeddings.visual_projection = GeometryAwareProjection(embeddings.visual_projection)
    model.alignment = WordRegionAlignment(rex.hidden_size)
    return model


def _losses(model, batch, alignment_weight: float = 1.0) -> dict[str, torch.Tensor]:
    device = next(model.parameters()).device
    batch = {key: value.to(device) for key, value in batch.items()}
    visual = batch["visual_embeds"]
    if not isinstance(model.visual_bert.embeddings.visual_projection, GeometryAwareProjection):
        visual = visual[..., :-7]
    output = model.visual_bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               token_type_ids=torch.zeros_like(batch["input_ids"]), visual_embeds=visual,
                               visual_attention_mask=torch.ones(visual.shape[:2], dtype=torch.long, device=device))
    text_length = batch["input_ids"].shape[1]
    # The word head reads the caption's positions only (the 36 region positions have no word to predict).
    logits = model.cls.predictions(output.last_hidden_state[:, :text_length])               # (B,L,V)
    relationship = model.cls.seq_relationship(output.pooler_output)                         # (B,2)
    labels = batch["labels"]
    masked = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE) \
        if (labels != IGNORE).any() else logits.sum() * 0.0
    matching = F.cross_entropy(relationship, batch["sentence_image_labels"])
    aligned = batch["alignment_labels"]
    region_scores = model.alignment(output.last_hidden_state[:, :text_length],
                                    output.last_hidden_state[:, text_length:])              # (B,L,36)
    alignment = F.cross_entropy(region_scores.reshape(-1, region_scores.shape[-1]), aligned.reshape(-1),
                                ignore_index=IGNORE) if (aligned != IGNORE).any() else region_scores.sum() * 0.0
    with torch.no_grad():
        known = labels != IGNORE
        masked_correct = ((logits.argmax(-1) == labels) & known).sum().item()
        matching_correct = (relationship.argmax(-1) == batch["sentence_image_labels"]).sum().item()
        # Unmasked words (the word names its object) apart from masked ones (the rest of the caption must).
        aligned_right = region_scores.argmax(-1) == aligned
        alignable = (aligned != IGNORE) & ~known
        referring = (aligned != IGNORE) & known
        alignment_correct = (aligned_right & alignable).sum().item()
        referring_correct = (aligned_right & referring).sum().item()
    return {"total": masked + matching + alignment_weight * alignment, "masked": masked, "matching": matching,
            "alignment": alignment, "masked_correct": masked_correct, "masked_count": known.sum().item(),
            "matching_correct": matching_correct, "matching_count": len(labels),
            "alignment_correct": alignment_correct, "alignment_count": alignable.sum().item(),
            "referring_correct": referring_correct, "referring_count": referring.sum().item()}


@torch.no_grad()
def evaluate(model, images, rows, tokenizer, config: PretrainConfig, batches: int = 8) -> dict[str, float]:
    """Masked-word, matching and alignment accuracy on held-out images (a fixed random stream); alignment of
    unmasked words, and of masked ones ("referring": the region the rest of the caption singles out), whatever
    the recipe trains."""
    model.eval()
    rng = np.random.default_rng([config.seed, 1])
    sums = {"masked_correct": 0, "masked_count": 0, "matching_correct": 0, "matching_count": 0,
            "alignment_correct": 0, "alignment_count": 0, "referring_correct": 0, "referring_count": 0}
    for _ in range(batches):
        batch = make_batch(images, rng.choice(rows, config.batch_size), tokenizer, rng,
                           mask_probability=config.mask_probability, negative_probability=config.negative_probability,
                           align_masked=True)
        result = _losses(model, batch)
        for key in sums:
            sums[key] += result[key]
    model.train()
    return {"masked_accuracy": sums["masked_correct"] / max(sums["masked_count"], 1),
            "matching_accuracy": sums["matching_correct"] / max(sums["matching_count"], 1),
            "alignment_accuracy": sums["alignment_correct"] / max(sums["alignment_count"], 1),
            "referring_accuracy": sums["referring_correct"] / max(sums["referring_count"], 1)}


LOSS_TERMS = ("masked", "matching", "alignment")


def _empty_window() -> dict[str, float]:
    """Running sums of each loss term between two evaluations."""
    return {**dict.fromkeys(LOSS_TERMS, 0.0), "n": 0}


def _learning_rate(step: int, config: PretrainConfig) -> float:
    warmup = max(1, int(config.warmup_fraction * config.steps))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    return config.lr * max(0.0, (config.steps - step) / max(1, config.steps - warmup))


def save_backbone(model: VisualBertForPreTraining, tokenizer, out: Path, recipe: dict) -> dict:
    """Write the backbone as a Hugging Face VisualBERT directory; box projection and recipe beside it."""
    backbone = model.visual_bert
    projection = backbone.embeddings.visual_projection
    geometry = isinstance(projection, GeometryAwareProjection)
    if geometry:  # the Hugging Face model keeps its plain projection; the geometry goes in its own file
        plain = nn.Linear(projection.weight.shape[1], projection.weight.shape[0])
        plain.weight, plain.bias = projection.weight, projection.bias
        backbone.embeddings.visual_projection = plain
    staging = out.with_name(f".{out.name}.staging")
    pooler, backbone.pooler = backbone.pooler, None  # the matching head's pooler: REX reads no pooled state
    backbone.save_pretrained(staging)
    backbone.pooler = pooler
    tokenizer.save_pretrained(staging)
    if geometry:
        backbone.embeddings.visual_projection = projection
        save_file({"weight": projection.geometry.weight.detach().contiguous(),
                   "bias": projection.geometry.bias.detach().contiguous()}, str(staging / layout.BACKBONE_GEOMETRY))
    recipe = dict(recipe, sha256={p.name: file_sha256(p) for p in sorted(staging.iterdir()) if p.is_file()})
    write_json(staging / layout.BACKBONE_RECIPE, recipe, indent=1)
    if out.exists():
        shutil.rmtree(out)
    os.replace(staging, out)
    return recipe


def pretrain(config: PretrainConfig, log=print) -> dict | None:
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    store, out = Path(config.store), Path(config.out)
    regions_file = regions_path(store)
    categories_file = store / layout.ATTRIBUTE_CATEGORIES
    categories = read_json(categories_file) if categories_file.is_file() else {}
    _questions_file, scenes_file = gqa.split_files(config.gqa, config.split)
    served = [shipped.check_serves(regions_file, Path(config.serves))] if config.serves else []  # fail fast
    images = CaptionImages(Path(scenes_file), regions_file, categories)
    words = caption_words(images.vocabularies) | _question_words(store)
    tokenizer = build_tokenizer(words)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(images))
    held_out, training = order[: config.held_out_images], order[config.held_out_images:]
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device)
    model = build_model(config, len(tokenizer), images.features.shape[-1]).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    log(f"pretraining a {config.preset} VisualBERT ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
        f"parameters) on {len(training)} images of {scenes_file} ({len(held_out)} held out), "
        f"vocabulary {len(tokenizer)}, {config.steps} steps of {config.batch_size}")
    history, first_step, spent = [], 0, 0.0
    checkpoint_file = out.with_name(f".{out.name}.checkpoint.pt")
    if config.resume and checkpoint_file.is_file():
        state = torch.load(checkpoint_file, weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"].cpu())
        history, first_step, spent = state["history"], state["step"], state["seconds"]
        log(f"resumed from {checkpoint_file} at step {first_step}")
    started = time.perf_counter() - spent
    window = _empty_window()
    model.train()
    for step in range(first_step, config.steps):
        for group in optimiser.param_groups:
            group["lr"] = _learning_rate(step, config)
        batch = make_batch(images, rng.choice(training, config.batch_size), tokenizer, rng,
                           mask_probability=config.mask_probability, negative_probability=config.negative_probability,
                           align_masked=config.align_masked)
        losses = _losses(model, batch, config.alignment_weight)
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        for term in LOSS_TERMS:
            window[term] += losses[term].item()
        window["n"] += 1
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            elapsed = time.perf_counter() - started
            row = {"step": step + 1, **{f"{term}_loss": window[term] / window["n"] for term in LOSS_TERMS},
                   **evaluate(model, images, held_out, tokenizer, config),
                   "samples_per_second": (step + 1 - first_step) * config.batch_size / (elapsed - spent)}
            history.append(row)
            window = _empty_window()
            log("step {step}: masked loss {masked_loss:.3f}, matching loss {matching_loss:.3f}; held out: masked "
                "words {masked_accuracy:.3f}, matching {matching_accuracy:.3f}, alignment {alignment_accuracy:.3f}, "
                "referring {referring_accuracy:.3f} "
                "({samples_per_second:.0f} captions/s)".format(**row))
            with atomic_path(checkpoint_file) as temporary:
                torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step + 1,
                            "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                            "history": history, "seconds": elapsed}, temporary)
        if config.stop_after_steps is not None and step + 1 >= config.stop_after_steps:
            log(f"stopped after step {step + 1}; --resume continues from {checkpoint_file}")
            return None
    recipe = {
        "command": "python -m rexlib pretrain " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["pretrain"] else None,
        "config": dataclasses.asdict(config),
        "regions": shipped.regions_record(regions_file),
        **({"serves": served} if served else {}),
        "images": len(training), "held_out_images": len(held_out),
        "seconds": round(time.perf_counter() - started, 1),
        "history": history,
        "torch": torch.__version__,
    }
    recipe = save_backbone(model.cpu(), tokenizer, out, recipe)
    checkpoint_file.unlink(missing_ok=True)
    log(f"wrote {out} ({math.ceil(sum(p.stat().st_size for p in out.iterdir()) / 1024)} KiB)")
    return recipe

