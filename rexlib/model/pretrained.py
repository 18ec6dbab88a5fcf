"""A trained run, loaded without the training loop: the model, its vocabularies and its question tokenizer.

A run folder (`python -m rexlib train`, or `REX.save_pretrained`) holds config.json ({"train": the
training options, "model": the REXConfig, ...}), checkpoint_best.pt / checkpoint_last.pt and vocab.json
(the store's, copied). Evaluation, submission and the notebooks read runs through `load_trained_run`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from rexlib import layout
from rexlib.dataset.vocab import Vocabularies
from rexlib.io import read_json
from rexlib.model.rex import REX


class TrainedRun(NamedTuple):
    model: REX         # eval mode, on the CPU; model.config is its REXConfig
    vocab: dict        # vocab.json: {"explanation": [...], "answer": [...], "question": [...]}
    tokenizer: Any     # the pretrained backbone's BERT tokenizer, or None for the store's word ids
    train: dict        # the training options the run was made with (config.json's "train"; {} if none)


def question_tokenizer(pretrained: str | None):
    """The BERT tokenizer saved beside pretrained backbone weights (None: the store's word-level ids)."""
    if not pretrained:
        return None
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(pretrained, local_files_only=True)


def load_trained_run(run_dir: str | os.PathLike, which: str = "best") -> TrainedRun:
    """The model of ``checkpoint_{which}.pt``, the run's vocab.json, its tokenizer and training options.

    The tokenizer follows the model's config (`pretrained`), which `--init-from` runs inherit from the run
    they started from."""
    run_dir = Path(run_dir)
    model = REX.from_pretrained(run_dir, which=which)
    vocab = Vocabularies.load(run_dir / layout.RUN_VOCAB).to_json()
    train = read_json(run_dir / layout.RUN_CONFIG).get("train") or {}
    return TrainedRun(model, vocab, question_tokenizer(model.config.pretrained), train)
