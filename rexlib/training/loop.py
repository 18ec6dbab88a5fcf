"""Training REX: multi-task, explanation-only, or VQA fine-tuning on a fraction of the questions.

`train(config)` reads top to bottom as its steps: processes and device -> data -> model -> optimiser and
schedule -> (resume) -> run files -> the loop (`TrainingLoop`) with validation, metrics and checkpoints.
A checkpoint holds everything needed to continue exactly where a killed run stopped
(`rexlib.training.checkpoints`). Under `torchrun` it trains with DDP (gloo on CPU, nccl on GPU); only
rank 0 writes.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from rexlib import layout
from rexlib.io import atomic_path, write_json
from rexlib.model import REX, REXConfig, batch_accuracies, compute_losses, vocab_overrides
from rexlib.model.backbone import pretrained_sizes
from rexlib.model.pretrained import question_tokenizer
from rexlib.model.rex import saved_model_config
from rexlib.training import checkpoints
from rexlib.training.checkpoints import Progress, empty_window
from rexlib.training.config import BEST_METRICS, TrainConfig, model_overrides
from rexlib.training.data import (
    REXDataset,
    collate,
    load_dataset_info,
    load_vocab,
    split_types,
    stratified_subset,
)
from rexlib.training.sampler import EpochSampler

METRIC_COLUMNS = ("step", "epoch", "split", "loss", "explanation_loss", "answer_loss", "gate_loss",
                  "token_accuracy", "answer_accuracy", "lr", "samples_per_second")


# ------------------------------------------------------------------------------------------ the steps
@dataclass
class Processes:
    """This process's place under torchrun (one process, rank 0, without it) and its device."""

    rank: int
    world_size: int
    device: torch.device
    owns_process_group: bool  # this call started the process group, so it ends it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def finish(self) -> None:
        if self.owns_process_group:
            dist.destroy_process_group()


def start_processes(config: TrainConfig) -> Processes:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if config.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device)
    owns_process_group = world_size > 1 and not dist.is_initialized()
    if owns_process_group:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world_size, device, owns_process_group)


@functools.cache  # asked at every training step; the answer never changes for a device
def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes bf16 matrix products in hardware (on other CPUs bf16 is emulated, and slower)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def uses_bf16(precision: str, device: torch.device) -> bool:
    return precision == "bf16" or (precision == "auto" and native_bf16(device))


def autocast_for(precision: str, device: torch.device):
    """The training forward pass's autocast context: bf16 for `precision` bf16 (or auto on a native-bf16
    device), otherwise a disabled one. The model keeps its heads and decoder in fp32 inside it
    (`rexlib.model.rex.full_precision`); gradients, Adam's state and the saved weights stay fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(precision, device))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainingData:
    info: dict                  # dataset.json (regions path resolved)
    vocab: dict                 # the store's vocab.json
    train_set: REXDataset
    val_set: REXDataset | None
    sampler: EpochSampler
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader | None
    steps_per_epoch: int        # batches per epoch on this rank
    total_steps: int            # optimiser steps of the whole run (epochs, or max_steps)


def load_data(config: TrainConfig, processes: Processes) -> TrainingData:
    """The training (subset) and validation questions, read with the backbone's tokenizer, and their loaders."""
    info = load_dataset_info(config.data)
    vocab = load_vocab(Path(config.data) / layout.VOCAB)
    pretrained = config.pretrained
    if config.init_from:
        # The fine-tuned model keeps the initialising run's backbone, so its questions need that tokenizer.
        pretrained = saved_model_config(config.init_from).pretrained
    tokenizer = question_tokenizer(pretrained)
    train_rows = None
    if config.fraction < 1.0:
        train_rows = stratified_subset(split_types(config.data, config.train_split), config.fraction, config.seed)
    train_set = REXDataset(config.data, config.train_split, indices=train_rows, tokenizer=tokenizer,
                           regions=config.regions)
    if len(train_set) == 0:
        raise ValueError(f"{Path(config.data) / layout.split_file(config.train_split)}: no training questions")
    val_set = None
    if config.val_split:
        val_rows = None
        if config.val_max_questions is not None:
            with h5py.File(Path(config.data) / layout.split_file(config.val_split), "r") as handle:
                val_rows = np.arange(min(config.val_max_questions, len(handle["question_ids"])))
        val_set = REXDataset(config.data, config.val_split, indices=val_rows, tokenizer=tokenizer,
                             regions=config.regions)
    sampler = EpochSampler(len(train_set), config.seed, processes.rank, processes.world_size,
                           lengths=train_set.arrays["explanation_lengths"] if config.length_buckets else None,
                           batch_size=config.batch_size, pool_batches=config.length_bucket_pool)
    loader_generator = torch.Generator().manual_seed(config.seed)  # keeps the DataLoader off the global RNG
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=config.batch_size, sampler=sampler, collate_fn=collate, drop_last=False,
        num_workers=config.num_workers, generator=loader_generator, persistent_workers=False,
    )
    val_loader = None
    if val_set is not None:
        val_loader = torch.utils.data.DataLoader(val_set, batch_size=max(config.batch_size, 128),
                                                 collate_fn=collate, shuffle=False)
    steps_per_epoch = math.ceil(sampler.per_rank / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    return TrainingData(info, vocab, train_set, val_set, sampler, train_loader, val_loader, steps_per_epoch,
                        total_steps)


def build_model(config: TrainConfig, data: TrainingData) -> REX:
    """A fresh model from the preset, or the architecture and weights of an explanation-pretrained run
    (`--init-from`) with this run's loss weights and regularisation."""
    if config.init_from:
        init_model, init_vocab = REX.from_pretrained(config.init_from, which="best"), load_vocab(config.init_from)
        if init_vocab["explanation"] != data.vocab["explanation"] or init_vocab["answer"] != data.vocab["answer"]:
            raise ValueError(f"--init-from {config.init_from}: its {layout.RUN_VOCAB} differs from "
                             f"{Path(config.data) / layout.VOCAB}")
        model = REX(dataclasses.replace(init_model.config, **model_overrides(config, fine_tuning=True)))
        model.load_state_dict(init_model.state_dict())
    else:
        model = REX(build_model_config(config, data.vocab, data.train_set.feature_dim, data.info))
    if model.config.region_feature_dim != data.train_set.feature_dim:
        raise ValueError(f"{data.train_set.regions_path}: {data.train_set.feature_dim}-d features, the model "
                         f"expects {model.config.region_feature_dim}-d")
    return model


def write_run_files(config: TrainConfig, run_dir: Path, model_config: REXConfig, best_metric: str,
                    world_size: int, info: dict) -> None:
    """config.json (the training options, the model, the dataset's description) and the store's vocab.json."""
    write_json(run_dir / layout.RUN_CONFIG, {
        "train": dataclasses.asdict(config), "model": model_config.to_dict(), "best_metric": best_metric,
        "world_size": world_size, "dataset": {k: v for k, v in info.items() if k != "regions_path"}}, indent=2)
    with atomic_path(run_dir / layout.RUN_VOCAB) as temporary:
        shutil.copyfile(Path(config.data) / layout.VOCAB, temporary)


def parameter_groups(model: REX, config: TrainConfig) -> list[dict]:
    """The backbone at `backbone_lr_scale` times the peak learning rate, the heads and decoder at it."""
    backbone = list(model.backbone.parameters())
    ids = {id(p) for p in backbone}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [{"params": backbone, "lr": config.learning_rate * config.backbone_lr_scale},
            {"params": rest, "lr": config.learning_rate}]


def make_optimizer(model: REX, config: TrainConfig) -> torch.optim.Adam:
    """Adam over `parameter_groups`, with decoupled (AdamW's) weight decay: Adam's L2 term, divided by the
    gradient's scale, pulled the pretrained backbone to zero (0.01 over 2 demo epochs: accuracy 30%, BLEU-4 0)."""
    return torch.optim.Adam(parameter_groups(model, config), lr=config.learning_rate,
                            weight_decay=config.weight_decay, decoupled_weight_decay=True)


def schedule(config: TrainConfig, total_steps: int):
    """The learning-rate factor per step: linear warmup, then linear / cosine decay or constant."""
    warmup = int(config.warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if config.schedule == "linear":
            return max(0.0, 1.0 - progress)
        if config.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    return factor


def _to_device(batch: dict, device) -> dict:
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def build_model_config(config: TrainConfig, vocab: dict, feature_dim: int, info: dict) -> REXConfig:
    """The REXConfig of a fresh run: the preset's sizes, the store's vocabularies and lengths, and the
    model options of ``config``."""
    model_config = REXConfig.preset(
        config.preset,
        **vocab_overrides(vocab),
        region_feature_dim=feature_dim,
        max_explanation_length=int(info.get("max_explanation_length", 12)),
        max_question_length=int(info.get("max_question_length", 24)),
        **model_overrides(config),
    )
    if config.pretrained:
        model_config = dataclasses.replace(model_config, question_vocab_size=len(question_tokenizer(config.pretrained)),
                                           **pretrained_sizes(config.pretrained))
    return model_config


@torch.no_grad()
def validate(model, loader, model_config: REXConfig, loss_mode: str, device) -> dict[str, float]:
    """Teacher-forced validation: mean losses, token accuracy, answer accuracy."""
    was_training = model.training
    model.eval()
    sums = {"loss": 0.0, "explanation_loss": 0.0, "answer_loss": 0.0, "gate_loss": 0.0}
    counts = {"correct_tokens": 0, "tokens": 0, "correct_answers": 0, "answers": 0}
    questions = 0
    for batch in loader:
        batch = _to_device(batch, device)
        output = model(batch)
        losses = compute_losses(output, batch, model_config, loss_mode)
        size = batch["answers"].shape[0]
        questions += size
        for name, key in (("loss", "total"), ("explanation_loss", "explanation"), ("answer_loss", "answer"),
                          ("gate_loss", "gate")):
            sums[name] += float(losses[key]) * size
        for key, value in batch_accuracies(output, batch).items():
            counts[key] += value
    model.train(was_training)
    result = {name: value / max(questions, 1) for name, value in sums.items()}
    result["token_accuracy"] = counts["correct_tokens"] / max(counts["tokens"], 1)
    result["answer_accuracy"] = counts["correct_answers"] / max(counts["answers"], 1)
    return result


class MetricsLog:
    """metrics.csv (appended, header once) and TensorBoard scalars; a no-op on ranks other than 0."""

    def __init__(self, run_dir: Path, enabled: bool, resume_step: int | None):
        self.enabled = enabled
        self.path = run_dir / layout.METRICS_LOG
        self.writer = None
        if not enabled:
            return
        if resume_step is not None and self.path.exists():
            # Drop rows the killed run wrote after its last checkpoint: they will be written again.
            with self.path.open() as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_step]
            self._rewrite(rows)
        elif resume_step is None:
            self._rewrite([])
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir), purge_step=resume_step)

    def _rewrite(self, rows) -> None:
        with atomic_path(self.path) as temporary, temporary.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=METRIC_COLUMNS).writerow({k: row.get(k, "") for k in METRIC_COLUMNS})
        for key, value in row.items():
            if key not in ("step", "epoch", "split") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{row['split']}/{key}", value, row["step"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# ------------------------------------------------------------------------------------------------- train
def train(config: TrainConfig) -> dict:
    """Train one run into `config.out`; returns a summary (steps, best metric, last validation, speed)."""
    best_metric = config.chosen_best_metric
    processes = start_processes(config)
    run_dir = Path(config.out)
    if processes.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        print(f"backbone: pretrained, from {config.pretrained}" if config.pretrained else
              "backbone: inherited from the --init-from run" if config.init_from else "backbone: randomly initialised")
    seed_everything(config.seed)

    data = load_data(config, processes)
    model = build_model(config, data)
    model.to(processes.device)
    optimizer = make_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(config, data.total_steps))

    progress = Progress()
    last_path = run_dir / layout.checkpoint_file("last")
    resumed = config.resume and last_path.exists()
    if resumed:
        progress = checkpoints.resume(last_path, model, optimizer, scheduler, seed=config.seed,
                                      batch_size=config.batch_size, device=processes.device)
        if processes.is_main:
            print(f"resuming {run_dir} at epoch {progress.epoch}, step {progress.step_in_epoch} of "
                  f"{data.steps_per_epoch} (global step {progress.global_step})")
    elif config.resume and processes.is_main:
        print(f"{last_path} not found: starting a fresh run")
    if processes.world_size > 1:
        # Different dropout per rank; identical initial weights come from DDP's broadcast.
        torch.manual_seed(config.seed * 1000 + processes.rank + progress.global_step)

    if processes.is_main:
        write_run_files(config, run_dir, model.config, best_metric, processes.world_size, data.info)
    log = MetricsLog(run_dir, processes.is_main, progress.global_step if resumed else None)
    loop = TrainingLoop(config, processes, data, model, optimizer, scheduler, progress, log, run_dir)
    return loop.run()


class TrainingLoop:
    """Epochs of optimiser steps from `progress` on: metrics rows, mid-epoch validation and checkpoints,
    validation and checkpoints at each epoch's end, and the simulated kill of `stop_after_steps`."""

    def __init__(self, config: TrainConfig, processes: Processes, data: TrainingData, model: REX, optimizer,
                 scheduler, progress: Progress, log: MetricsLog, run_dir: Path):
        self.config, self.processes, self.data, self.model = config, processes, data, model
        self.optimizer, self.scheduler, self.progress, self.log = optimizer, scheduler, progress, log
        self.loss_mode, self.best_metric = config.loss_mode, config.chosen_best_metric
        self.last_path = run_dir / layout.checkpoint_file("last")
        self.best_path = run_dir / layout.checkpoint_file("best")
        self.run_dir = run_dir
        self.trained_model = model
        if processes.world_size > 1:
            device = processes.device
            self.trained_model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
        self.samples_seen, self.train_seconds = 0, 0.0

    def run(self) -> dict:
        config, data, progress = self.config, self.data, self.progress
        self.model.train()
        summary = {"run_dir": str(self.run_dir), "stopped_early": False, "best_metric": self.best_metric}
        last_metrics: dict = {}
        finished = progress.global_step >= data.total_steps
        while not finished and progress.epoch < config.epochs:
            data.sampler.set_epoch(progress.epoch, progress.step_in_epoch * config.batch_size)
            bar = tqdm(total=data.steps_per_epoch, initial=progress.step_in_epoch,
                       desc=f"epoch {progress.epoch + 1}/{config.epochs}",
                       disable=not (self.processes.is_main and config.progress), leave=False)
            for batch in data.train_loader:
                self.train_step(batch)
                bar.update(1)
                if progress.global_step % config.log_every == 0 or progress.step_in_epoch == data.steps_per_epoch:
                    row = self.log_training_row()
                    bar.set_postfix(loss=f"{row['loss']:.3f}", tokens=f"{row['token_accuracy']:.2f}")
                if progress.global_step >= data.total_steps:
                    finished = True
                    break
                if config.stop_after_steps is not None and progress.global_step >= config.stop_after_steps:
                    # As if the process were killed right after this step's checkpoint.
                    self.save_last(progress.epoch, progress.step_in_epoch)
                    bar.close()
                    self.log.close()
                    self.processes.finish()
                    summary.update(stopped_early=True, global_step=progress.global_step)
                    return summary
                self.mid_epoch_extras()
            bar.close()
            if progress.step_in_epoch >= data.steps_per_epoch:
                progress.epoch, progress.step_in_epoch = progress.epoch + 1, 0
            last_metrics = self.validate_and_save(progress.epoch, progress.step_in_epoch)
            if self.processes.is_main and last_metrics:
                print(f"epoch {progress.epoch} step {progress.global_step}: "
                      + ", ".join(f"{k} {v:.4f}" for k, v in last_metrics.items()))
        self.log.close()
        summary.update(
            global_step=progress.global_step,
            epochs_done=progress.epoch,
            best_value=progress.best_value,
            validation=last_metrics,
            train_samples_per_second=self.samples_seen * self.processes.world_size / max(self.train_seconds, 1e-9),
            # what `precision` resolved to on this device (auto differs between machines)
            precision="bf16 backbone" if uses_bf16(self.config.precision, self.processes.device) else "fp32",
        )
        if self.processes.is_main:
            write_json(self.run_dir / layout.RUN_SUMMARY, summary, indent=2, allow_nan=True)
        self.processes.finish()
        return summary

    def train_step(self, batch: dict) -> None:
        """One optimiser step on a batch; its losses and accuracies join the metrics window."""
        started = time.perf_counter()
        batch = _to_device(batch, self.processes.device)
        with autocast_for(self.config.precision, self.processes.device):
            output = self.trained_model(batch)
            losses = compute_losses(output, batch, self.model.config, self.loss_mode)
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        progress = self.progress
        progress.global_step += 1
        progress.step_in_epoch += 1
        seconds = time.perf_counter() - started
        size = batch["answers"].shape[0]
        self.samples_seen += size
        self.train_seconds += seconds
        window = progress.window
        window["steps"] += 1
        window["samples"] += size
        window["seconds"] += seconds
        for key in ("explanation", "answer", "gate"):
            window[key] += losses[key].item()
        window["loss"] += losses["total"].item()
        for key, value in batch_accuracies(output, batch).items():
            window[key] += value

    def log_training_row(self) -> dict:
        """The metrics.csv row of the window's means; the window starts again."""
        window, steps = self.progress.window, self.progress.window["steps"]
        row = {"step": self.progress.global_step, "epoch": self.progress.epoch, "split": "train",
               "loss": window["loss"] / steps, "explanation_loss": window["explanation"] / steps,
               "answer_loss": window["answer"] / steps, "gate_loss": window["gate"] / steps,
               "token_accuracy": window["correct_tokens"] / max(window["tokens"], 1),
               "answer_accuracy": window["correct_answers"] / max(window["answers"], 1),
               "lr": self.scheduler.get_last_lr()[0],
               "samples_per_second": window["samples"] * self.processes.world_size / max(window["seconds"], 1e-9)}
        self.log.write(row)
        self.progress.window = empty_window()
        return row

    def mid_epoch_extras(self) -> None:
        """`--val-every-steps` rows and `--checkpoint-every-steps` checkpoints inside an epoch."""
        config, progress, data = self.config, self.progress, self.data
        inside_epoch = progress.step_in_epoch < data.steps_per_epoch
        if config.val_every_steps and progress.global_step % config.val_every_steps == 0 and self.processes.is_main \
                and data.val_loader is not None and inside_epoch:
            # Validation draws no random numbers, so these rows leave training (and resuming) unchanged.
            self.log.write({"step": progress.global_step, "epoch": progress.epoch, "split": config.val_split,
                            **self.validate()})
        if config.checkpoint_every_steps and progress.global_step % config.checkpoint_every_steps == 0 \
                and inside_epoch:
            self.save_last(progress.epoch, progress.step_in_epoch)

    def validate(self) -> dict[str, float]:
        return validate(self.model, self.data.val_loader, self.model.config, self.loss_mode, self.processes.device)

    def save_last(self, next_epoch: int, step_in_epoch: int) -> None:
        """Rank 0 writes checkpoint_last.pt; the others wait."""
        if self.processes.is_main:
            checkpoints.save(self.training_state(next_epoch, step_in_epoch), self.last_path)
        self.processes.barrier()

    def training_state(self, next_epoch: int, step_in_epoch: int) -> dict:
        return checkpoints.training_state(self.model, self.optimizer, self.scheduler, self.progress,
                                          seed=self.config.seed, batch_size=self.config.batch_size,
                                          best_metric=self.best_metric, next_epoch=next_epoch,
                                          step_in_epoch=step_in_epoch)

    def validate_and_save(self, next_epoch: int, step_in_epoch: int) -> dict:
        """Rank 0 validates and writes last (and best); the others wait."""
        metrics = {}
        progress = self.progress
        if self.processes.is_main:
            if self.data.val_loader is not None:
                metrics = self.validate()
                self.log.write({"step": progress.global_step, "epoch": progress.epoch, "split": self.config.val_split,
                                **metrics})
                value = metrics["loss" if self.best_metric == "val_loss" else self.best_metric]
                lower_is_better = BEST_METRICS[self.best_metric] is min
                best = progress.best_value
                if best is None or (value < best if lower_is_better else value > best):
                    progress.best_value = value
                    self.model.save_pretrained(self.run_dir, "best", global_step=progress.global_step,
                                               best_metric=self.best_metric, best_value=value)
            checkpoints.save(self.training_state(next_epoch, step_in_epoch), self.last_path)
            if self.data.val_loader is None:
                with atomic_path(self.best_path) as temporary:
                    shutil.copyfile(self.last_path, temporary)
        self.processes.barrier()
        return metrics
