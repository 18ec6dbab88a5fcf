"""Training REX: multi-task, explanation-only, or VQA fine-tuning on a fraction of the questions.

Reads top to bottom: configuration -> data -> model -> optimiser and schedule -> (resume) -> loop with
validation, metrics and checkpoints. A checkpoint holds everything needed to continue exactly where a
killed run stopped: model, optimiser, schedule, the python / numpy / torch random states and the data
order (epoch, batches done in it, shuffling seed). Under `torchrun` it trains with DDP (gloo on CPU,
nccl on GPU); only rank 0 writes.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import random
import shutil
import time
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from rexlib import layout
from rexlib.io import atomic_path, write_json
from rexlib.model import REX, REXConfig, batch_accuracies, compute_losses, vocab_overrides
from rexlib.model.pretrained import question_tokenizer
from rexlib.model.rex import saved_model_config
from rexlib.training.config import BEST_METRICS, TrainConfig, model_overrides
from rexlib.training.data import (
    REXDataset,
    collate,
    load_dataset_info,
    load_vocab,
    split_types,
    stratified_subset,
)

METRIC_COLUMNS = ("step", "epoch", "split", "loss", "explanation_loss", "answer_loss", "gate_loss",
                  "token_accuracy", "answer_accuracy", "lr", "samples_per_second")


class EpochSampler(torch.utils.data.Sampler):
    """A fresh shuffled order each epoch from (seed, epoch), sharded across ranks, that can start mid-epoch.

    Like DistributedSampler (drop_last=False): the order is padded by repeating its first indices so every
    rank gets the same count; `set_epoch(epoch, skip)` skips the first `skip` samples of this rank's share.

    With `lengths` and `batch_size` the share is length-bucketed: cut into pools of `pool_batches`
    batches, each pool sorted by length and cut into batches, and the batches shuffled. A batch's
    explanations then have similar lengths, so the decoder runs about as many steps as they have words
    (batches are trimmed to their longest explanation) instead of nearly the longest of the split.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 lengths=None, batch_size: int = 0, pool_batches: int = 50):
        self.size, self.seed, self.rank, self.world_size, self.shuffle = size, seed, rank, world_size, shuffle
        self.per_rank = math.ceil(size / world_size)
        self.epoch, self.skip = 0, 0
        self.lengths = None if lengths is None else np.asarray(lengths)
        self.batch_size, self.pool_batches = batch_size, pool_batches

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def order(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        padding = self.per_rank * self.world_size - self.size
        order += (order * (padding // max(self.size, 1) + 1))[:padding]
        share = order[self.rank :: self.world_size]
        if self.lengths is None or self.batch_size < 1 or not self.shuffle:
            return share
        return self._bucketed(share)

    def _bucketed(self, share: list[int]) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 7919 + self.epoch)
        pool = self.batch_size * self.pool_batches
        batches = []
        for start in range(0, len(share), pool):
            members = sorted(share[start : start + pool], key=lambda index: int(self.lengths[index]))
            batches += [members[i : i + self.batch_size] for i in range(0, len(members), self.batch_size)]
        # The one short batch (the share's remainder) stays last, so every other batch is full.
        full = [batch for batch in batches if len(batch) == self.batch_size]
        short = [batch for batch in batches if len(batch) < self.batch_size]
        shuffled = [full[i] for i in torch.randperm(len(full), generator=generator).tolist()] + short
        return [index for batch in shuffled for index in batch]

    def __iter__(self):
        return iter(self.order()[self.skip :])

    def __len__(self) -> int:
        return self.per_rank - self.skip


# ----------------------------------------------------------------------------------------------- helpers
def _atomic_save(value, path: Path) -> None:
    with atomic_path(path) as temporary:
        torch.save(value, temporary)


def _rng_state() -> dict:
    state = np.random.get_state()
    return {
        "python": random.getstate(),
        # numpy's state holds an ndarray; keep plain types so `weights_only=True` can load it.
        "numpy": [state[0], torch.from_numpy(state[1].astype(np.int64)), int(state[2]), int(state[3]), float(state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _schedule(config: TrainConfig, total_steps: int):
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


def _empty_window() -> dict:
    return {"loss": 0.0, "explanation": 0.0, "answer": 0.0, "gate": 0.0, "steps": 0, "samples": 0, "seconds": 0.0,
            "correct_tokens": 0, "tokens": 0, "correct_answers": 0, "answers": 0}


def _to_device(batch: dict, device) -> dict:
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def _distributed() -> tuple[int, int, int]:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world_size, int(os.environ.get("LOCAL_RANK", "0"))


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
        tokenizer = question_tokenizer(config.pretrained)
        model_config.question_vocab_size = len(tokenizer)
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
    loss_mode, best_metric = config.loss_mode, config.chosen_best_metric

    # -- processes and device
    rank, world_size, local_rank = _distributed()
    if config.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device)
    owns_process_group = world_size > 1 and not dist.is_initialized()
    if owns_process_group:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    is_main = rank == 0
    run_dir = Path(config.out)
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    # -- data
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
        raise ValueError(f"{config.data}/{config.train_split}.h5: no training questions")
    val_set = None
    if config.val_split:
        val_rows = None
        if config.val_max_questions is not None:
            with h5py.File(Path(config.data) / layout.split_file(config.val_split), "r") as handle:
                val_rows = np.arange(min(config.val_max_questions, len(handle["question_ids"])))
        val_set = REXDataset(config.data, config.val_split, indices=val_rows, tokenizer=tokenizer,
                             regions=config.regions)
    sampler = EpochSampler(len(train_set), config.seed, rank, world_size,
                           lengths=train_set.arrays["explanation_lengths"] if config.length_buckets else None,
                           batch_size=config.batch_size)
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

    # -- model (from a preset, or the architecture and weights of an explanation-pretrained run)
    if config.init_from:
        init_model, init_vocab = REX.from_pretrained(config.init_from, which="best"), load_vocab(config.init_from)
        if init_vocab["explanation"] != vocab["explanation"] or init_vocab["answer"] != vocab["answer"]:
            raise ValueError(f"--init-from {config.init_from}: its {layout.RUN_VOCAB} differs from "
                             f"{Path(config.data) / layout.VOCAB}")
        model_config = dataclasses.replace(init_model.config, **model_overrides(config, fine_tuning=True))
        model = REX(model_config)
        model.load_state_dict(init_model.state_dict())
        del init_model
    else:
        model_config = build_model_config(config, vocab, train_set.feature_dim, info)
        model = REX(model_config)
    if model_config.region_feature_dim != train_set.feature_dim:
        raise ValueError(f"{train_set.regions_path}: {train_set.feature_dim}-d features, the model expects "
                         f"{model_config.region_feature_dim}-d")
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config, total_steps))

    # -- resume
    global_step, epoch, skip_batches = 0, 0, 0
    window = _empty_window()  # sums since the last metrics row (kept in checkpoints: resumed rows match)
    best_value = None
    last_path, best_path = run_dir / layout.checkpoint_file("last"), run_dir / layout.checkpoint_file("best")
    resumed = config.resume and last_path.exists()
    if resumed:
        checkpoint = torch.load(last_path, map_location=device, weights_only=True)
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        order = checkpoint["data_order"]
        if order["seed"] != config.seed or order["batch_size"] != config.batch_size:
            raise ValueError(f"{last_path}: saved with seed {order['seed']} / batch size {order['batch_size']}; "
                             f"resume with the same values")
        global_step, epoch, skip_batches = checkpoint["global_step"], order["epoch"], order["step_in_epoch"]
        best_value = checkpoint.get("best_value")
        window = dict(checkpoint["log_window"])
        _set_rng_state(checkpoint["rng"])
        if is_main:
            print(f"resuming {run_dir} at epoch {epoch}, step {skip_batches} of {steps_per_epoch} "
                  f"(global step {global_step})")
    elif config.resume and is_main:
        print(f"{last_path} not found: starting a fresh run")
    if world_size > 1:
        # Different dropout per rank; identical initial weights come from DDP's broadcast.
        torch.manual_seed(config.seed * 1000 + rank + global_step)

    if is_main:
        write_json(run_dir / layout.RUN_CONFIG, {
            "train": dataclasses.asdict(config), "model": model_config.to_dict(), "best_metric": best_metric,
            "world_size": world_size, "dataset": {k: v for k, v in info.items() if k != "regions_path"}}, indent=2)
        with atomic_path(run_dir / layout.RUN_VOCAB) as temporary:
            shutil.copyfile(Path(config.data) / layout.VOCAB, temporary)
    log = MetricsLog(run_dir, is_main, global_step if resumed else None)

    trained_model = model
    if world_size > 1:
        trained_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)

    def checkpoint_state(next_epoch: int, step_in_epoch: int) -> dict:
        return {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(),
            "data_order": {"epoch": next_epoch, "step_in_epoch": step_in_epoch, "seed": config.seed,
                           "batch_size": config.batch_size},
            "global_step": global_step,
            "best_value": best_value,
            "best_metric": best_metric,
            "log_window": dict(window),
        }

    def validate_and_save(next_epoch: int, step_in_epoch: int) -> dict:
        """Rank 0 validates and writes last (and best); the others wait."""
        nonlocal best_value
        metrics = {}
        if is_main:
            if val_loader is not None:
                metrics = validate(model, val_loader, model_config, loss_mode, device)
                log.write({"step": global_step, "epoch": epoch, "split": config.val_split, **metrics})
                value = metrics["loss" if best_metric == "val_loss" else best_metric]
                lower_is_better = BEST_METRICS[best_metric] is min
                if best_value is None or (value < best_value if lower_is_better else value > best_value):
                    best_value = value
                    model.save_pretrained(run_dir, "best", global_step=global_step, best_metric=best_metric,
                                          best_value=value)
            _atomic_save(checkpoint_state(next_epoch, step_in_epoch), last_path)
            if val_loader is None:
                with atomic_path(best_path) as temporary:
                    shutil.copyfile(last_path, temporary)
        if world_size > 1:
            dist.barrier()
        return metrics

    # -- loop
    model.train()
    summary = {"run_dir": str(run_dir), "stopped_early": False, "best_metric": best_metric}
    last_metrics: dict = {}
    samples_seen, train_seconds = 0, 0.0
    finished = global_step >= total_steps
    while not finished and epoch < config.epochs:
        sampler.set_epoch(epoch, skip_batches * config.batch_size)
        bar = tqdm(total=steps_per_epoch, initial=skip_batches, desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not (is_main and config.progress), leave=False)
        step_in_epoch = skip_batches
        for batch in train_loader:
            started = time.perf_counter()
            batch = _to_device(batch, device)
            output = trained_model(batch)
            losses = compute_losses(output, batch, model_config, loss_mode)
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            global_step += 1
            step_in_epoch += 1
            seconds = time.perf_counter() - started
            size = batch["answers"].shape[0]
            samples_seen += size
            train_seconds += seconds
            window["steps"] += 1
            window["samples"] += size
            window["seconds"] += seconds
            for key in ("explanation", "answer", "gate"):
                window[key] += losses[key].item()
            window["loss"] += losses["total"].item()
            for key, value in batch_accuracies(output, batch).items():
                window[key] += value
            bar.update(1)
            if global_step % config.log_every == 0 or step_in_epoch == steps_per_epoch:
                steps = window["steps"]
                row = {"step": global_step, "epoch": epoch, "split": "train", "loss": window["loss"] / steps,
                       "explanation_loss": window["explanation"] / steps, "answer_loss": window["answer"] / steps,
                       "gate_loss": window["gate"] / steps,
                       "token_accuracy": window["correct_tokens"] / max(window["tokens"], 1),
                       "answer_accuracy": window["correct_answers"] / max(window["answers"], 1),
                       "lr": scheduler.get_last_lr()[0],
                       "samples_per_second": window["samples"] * world_size / max(window["seconds"], 1e-9)}
                log.write(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", tokens=f"{row['token_accuracy']:.2f}")
                window = _empty_window()

            if global_step >= total_steps:
                finished = True
                break
            if config.stop_after_steps is not None and global_step >= config.stop_after_steps:
                # As if the process were killed right after this step's checkpoint.
                if is_main:
                    _atomic_save(checkpoint_state(epoch, step_in_epoch), last_path)
                if world_size > 1:
                    dist.barrier()
                bar.close()
                log.close()
                if owns_process_group:
                    dist.destroy_process_group()
                summary.update(stopped_early=True, global_step=global_step)
                return summary
            if config.val_every_steps and global_step % config.val_every_steps == 0 and is_main \
                    and val_loader is not None and step_in_epoch < steps_per_epoch:
                # Validation draws no random numbers, so these rows leave training (and resuming) unchanged.
                log.write({"step": global_step, "epoch": epoch, "split": config.val_split,
                           **validate(model, val_loader, model_config, loss_mode, device)})
            if config.checkpoint_every_steps and global_step % config.checkpoint_every_steps == 0 \
                    and step_in_epoch < steps_per_epoch:
                if is_main:
                    _atomic_save(checkpoint_state(epoch, step_in_epoch), last_path)
                if world_size > 1:
                    dist.barrier()
        bar.close()
        if step_in_epoch >= steps_per_epoch:
            epoch, skip_batches = epoch + 1, 0
            last_metrics = validate_and_save(epoch, 0)
        else:
            skip_batches = step_in_epoch
            last_metrics = validate_and_save(epoch, skip_batches)
        if is_main and last_metrics:
            print(f"epoch {epoch} step {global_step}: " + ", ".join(f"{k} {v:.4f}" for k, v in last_metrics.items()))

    log.close()
    summary.update(
        global_step=global_step,
        epochs_done=epoch,
        best_value=best_value,
        validation=last_metrics,
        train_samples_per_second=samples_seen * world_size / max(train_seconds, 1e-9),
    )
    if is_main:
        write_json(run_dir / layout.RUN_SUMMARY, summary, indent=2, allow_nan=True)
    if owns_process_group:
        dist.destroy_process_group()
    return summary
