"""Checkpoints that let a killed run continue exactly where it stopped.

``checkpoint_last.pt`` holds the model, optimiser and schedule, the python / numpy / torch random states,
the data order (epoch, batches done in it, shuffling seed, batch size), the step, the best validation
value so far and the metrics window not yet logged. ``checkpoint_best.pt`` holds the weights chosen by
validation (``REX.save_pretrained``). Both load with ``weights_only=True``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rexlib.io import atomic_path


def empty_window() -> dict:
    """Sums since the last metrics row (kept in checkpoints, so a resumed run writes the same rows)."""
    return {"loss": 0.0, "explanation": 0.0, "answer": 0.0, "gate": 0.0, "steps": 0, "samples": 0, "seconds": 0.0,
            "correct_tokens": 0, "tokens": 0, "correct_answers": 0, "answers": 0}


@dataclass
class Progress:
    """Where a run stands: what a checkpoint saves besides the model, optimiser and schedule."""

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0          # batches of `epoch` already trained on
    best_value: float | None = None
    window: dict = field(default_factory=empty_window)


def save(value: dict, path: Path) -> None:
    with atomic_path(path) as temporary:
        torch.save(value, temporary)


def training_state(model, optimizer, scheduler, progress: Progress, *, seed: int, batch_size: int,
                   best_metric: str, next_epoch: int, step_in_epoch: int) -> dict:
    """Everything ``checkpoint_last.pt`` holds, to continue at batch ``step_in_epoch`` of ``next_epoch``."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "data_order": {"epoch": next_epoch, "step_in_epoch": step_in_epoch, "seed": seed, "batch_size": batch_size},
        "global_step": progress.global_step,
        "best_value": progress.best_value,
        "best_metric": best_metric,
        "log_window": dict(progress.window),
    }


def resume(path: Path, model, optimizer, scheduler, *, seed: int, batch_size: int, device) -> Progress:
    """Load ``checkpoint_last.pt`` into the model, optimiser and schedule, restore the random states and
    return the progress it saved; a different seed or batch size (another data order) is an error."""
    checkpoint = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    order = checkpoint["data_order"]
    if order["seed"] != seed or order["batch_size"] != batch_size:
        raise ValueError(f"{path}: saved with seed {order['seed']} / batch size {order['batch_size']}; "
                         f"resume with the same values")
    set_rng_state(checkpoint["rng"])
    return Progress(checkpoint["global_step"], order["epoch"], order["step_in_epoch"], checkpoint.get("best_value"),
                    dict(checkpoint["log_window"]))


def rng_state() -> dict:
    state = np.random.get_state()
    return {
        "python": random.getstate(),
        # numpy's state holds an ndarray; keep plain types so `weights_only=True` can load it.
        "numpy": [state[0], torch.from_numpy(state[1].astype(np.int64)), int(state[2]), int(state[3]), float(state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
