"""`TrainConfig`: every option of a training run, each stated once with its default and help.

`python -m rexlib train` makes its flags from these fields (`rexlib.options.add_flags`), so the command,
the library and the notebooks train the same recipe by default. The fields that set the model
(`model_option`) take their help and choices from `REXConfig`, and `model_overrides` copies them onto it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from rexlib import layout
from rexlib.dataset.store import regions_path
from rexlib.model.config import REXConfig
from rexlib.options import check_choices, choices_of, default_of, help_of, option
from rexlib.pretraining import shipped
from rexlib.training.sampler import POOL_BATCHES

# mode -> loss mode. Transfer (`vqa-finetune` on a `--fraction` of the questions) trains the paper's whole
# multi-task loss (answer + explanation + gate) on the subset; `answer-only` is the diagnostic without
# explanations.
TRAIN_MODES = {"multitask": "multitask", "explanation": "explanation", "vqa-finetune": "multitask",
               "answer-only": "vqa"}
AUTO_BEST_METRIC = {"multitask": "val_loss", "explanation": "token_accuracy", "vqa-finetune": "answer_accuracy",
                    "answer-only": "answer_accuracy"}
BEST_METRICS = {"val_loss": min, "token_accuracy": max, "answer_accuracy": max}
SCHEDULES = ("linear", "cosine", "constant")
PRECISIONS = ("auto", "bf16", "fp32")

# Peak learning rate per preset when none is given: the tiny preset trains in a few CPU epochs (2e-3 reached
# BLEU-4 38 in 3 epochs on the demo world where 5e-4 reached 23; at batch 64, 3e-3 answered 71.6 where 2e-3
# answered 70.0, seed 0); the base preset is usually initialised from pretrained weights, where BERT's usual
# fine-tuning rate applies.
DEFAULT_LR = {"tiny": 3e-3, "base": 1e-4}

# Model options an `--init-from` run may change; the others (the architecture) come from the initialising run.
FINE_TUNABLE = "fine_tunable"


def model_option(name: str, default=dataclasses.MISSING, help: str | None = None, *, fine_tunable: bool = False):
    """A training option that sets the REXConfig field ``name``: its help and choices are REXConfig's, and so
    is its default unless the training recipe differs (``default``). None leaves the preset's value."""
    return option(default_of(REXConfig, name) if default is dataclasses.MISSING else default,
                  help_of(REXConfig, name) if help is None else help, choices=choices_of(REXConfig, name),
                  model=FINE_TUNABLE if fine_tunable else True)


@dataclass
class TrainConfig:
    data: str = option(help="GQA-REX store directory (dataset.json, vocab.json, {split}.h5)")
    out: str = option(help="run directory, e.g. outputs/runs/rex_tiny")
    mode: str = option("multitask", "multitask; explanation; vqa-finetune: the multi-task loss on --fraction of "
                       "the questions (transfer); answer-only: the answer loss alone (a diagnostic)",
                       choices=TRAIN_MODES)
    preset: str = option("tiny", "REXConfig preset (sizes)", choices=DEFAULT_LR)
    structure_gate: bool = model_option("structure_gate")
    region_feedback: bool = model_option("region_feedback")
    question_attention: bool = model_option("question_attention")
    pointer_coverage: bool = model_option("pointer_coverage")
    backbone: str = model_option("backbone")
    pretrained: str | None = model_option("pretrained", "auto", help="local Hugging Face directory for the "
                                          "backbone weights and tokenizer (never downloaded); auto: the backbone rex "
                                          "ships (weights/visualbert-world-tiny) when the store's regions are the "
                                          "ones it was pretrained on (the default world), else none; none: random")
    # 3 at batch 64: 70.1 +- 1.6 accuracy over three seeds against 67.5 at 2 epochs of batch 32, for 1.2-1.3x the time
    epochs: int = option(3, "passes over the (subset of the) training split (the demo recipe)")
    seed: int = option(0, "model init, dropout, data order, subset choice")
    # 64: 1.1-1.2x the samples/s of 32; at equal epochs 32 explains better (2 epochs: BLEU-4 +2 to +4, grounding +2
    # to +7), but 3 epochs of 64 answer better than 2 of 32 (README, the recipe against training budget)
    batch_size: int = option(64, "questions per step (per process under torchrun)")
    lr: float | None = option(None, "peak Adam learning rate; None: the preset's (rexlib.training.config.DEFAULT_LR)")
    backbone_lr_scale: float = option(1.0, "the backbone's learning rate as a multiple of --lr (the heads and "
                                      "the decoder train at --lr)")
    weight_decay: float = option(0.0, "decoupled weight decay (AdamW's): each step shrinks the weights by lr x this")
    grad_clip: float = option(1.0, "max gradient norm (0: no clipping)")
    schedule: str = option("linear", "learning rate after warmup", choices=SCHEDULES)
    warmup_fraction: float = option(0.05, "share of all steps spent warming up")
    alpha: float = model_option("alpha", fine_tunable=True)
    beta: float = model_option("beta", fine_tunable=True)
    box_geometry: bool = model_option("box_geometry")
    # regions: +3.5 answer accuracy after one demo epoch over the paper's cls head
    answer_head: str = model_option("answer_head", "regions")
    # 1: with the alignment-pretrained backbone, +4.3 accuracy and +13 grounding after two demo epochs (seed 0)
    gamma: float = model_option("gamma", 1.0, fine_tunable=True)
    regions: str = option("image", "training regions: image; none: without regions (the question-only diagnostic)",
                          choices=("image", "none"))
    length_buckets: bool = option(False, "batches of similar explanation lengths: fewer decoder steps (1.48x "
                                  "samples/s on the demo world) but batches of one question type each, which slows "
                                  "answer learning (one epoch: accuracy 28.2 vs 37.5)")
    length_bucket_pool: int = option(POOL_BATCHES, "with --length-buckets: batches per pool sorted by length (fewer: batches "
                                     "mix more question types, and save fewer decoder steps)")
    scheduled_sampling: float = model_option("scheduled_sampling", fine_tunable=True)
    dropout: float | None = model_option("dropout", None, f"{help_of(REXConfig, 'dropout')}; None: the preset's",
                                         fine_tunable=True)
    max_steps: int | None = option(None, "stop (and finish normally) after this many optimiser steps")
    stop_after_steps: int | None = option(None, "simulate a kill: checkpoint and return after this many steps")
    checkpoint_every_steps: int = option(0, "extra mid-epoch checkpoint_last (0: only at epoch ends)")
    val_every_steps: int = option(0, "also validate every N steps (metrics.csv rows: accuracy against training "
                                  "budget; 0: at epoch ends only)")
    best_metric: str = option("auto", "the checkpoint_best criterion; auto: by mode",
                              choices=("auto", *BEST_METRICS))
    train_split: str = option("train", "the split trained on")
    val_split: str = option("val", "the split validated on; '' skips validation")
    val_max_questions: int | None = option(2000, "validation cost cap (first N questions of the split)")
    fraction: float = option(1.0, "stratified (types_detailed) share of training questions")
    init_from: str | None = option(None, "run directory whose best weights (and architecture) initialise this run")
    resume: bool = option(False, "continue from OUT/checkpoint_last.pt")
    num_workers: int = option(0, "DataLoader workers (batches are cheap; 0 is usually best)")
    device: str = option("auto", "auto | cpu | cuda[:N]")
    precision: str = option("auto", "bf16: the backbone's training forward pass in bf16 autocast (the heads, "
                            "the decoder, the weights, Adam and evaluation stay fp32); fp32; auto: bf16 where the "
                            "device computes it natively (CPUs with AVX512-BF16 or AMX, GPUs from Ampere on), "
                            "1.16-1.45x samples/s on the demo CPU", choices=PRECISIONS)
    log_every: int = option(20, "steps between metrics.csv / TensorBoard rows")
    progress: bool = option(True, "tqdm bars")

    def __post_init__(self):
        check_choices(self)
        if self.pretrained in ("", "none"):
            self.pretrained = None
        elif self.pretrained == shipped.AUTO:
            # Resolved here, so a saved config.json names the backbone the run really started from.
            store_known = bool(self.data) and (Path(self.data) / layout.DATASET_INFO).is_file()
            found = shipped.backbone_for(regions_path(self.data)) if store_known and not self.init_from else None
            self.pretrained = str(found) if found else None

    @property
    def loss_mode(self) -> str:
        return TRAIN_MODES[self.mode]

    @property
    def chosen_best_metric(self) -> str:
        return AUTO_BEST_METRIC[self.mode] if self.best_metric == "auto" else self.best_metric

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.preset]


def model_overrides(config: TrainConfig, *, fine_tuning: bool = False) -> dict:
    """The REXConfig fields this run's options set (only those an `--init-from` run may change when
    ``fine_tuning``); a None option leaves the preset's value."""
    overrides = {}
    for found in dataclasses.fields(config):
        kind = found.metadata.get("model")
        if kind and (kind == FINE_TUNABLE or not fine_tuning) and getattr(config, found.name) is not None:
            overrides[found.name] = getattr(config, found.name)
    return overrides
