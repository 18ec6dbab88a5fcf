"""Training: run files, exact resume after a simulated kill, VQA fine-tuning from a run, torchrun (DDP)."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import torch
from store_fixture import make_tiny_store, save_tiny_pretrained

from rexlib.model import REX
from rexlib.model.pretrained import load_trained_run
from rexlib.training.config import TrainConfig
from rexlib.training.data import REXDataset
from rexlib.training.loop import autocast_for, native_bf16, train

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_tiny_store(tmp_path_factory.mktemp("store"), n_train=42, n_val=10)


def config(store, out, **overrides) -> TrainConfig:
    values = {"data": str(store), "out": str(out), "epochs": 2, "batch_size": 8, "lr": 2e-3, "progress": False,
              "log_every": 2, "seed": 3}
    values.update(overrides)
    return TrainConfig(**values)


def test_run_directory_and_no_dropped_batch(store, tmp_path):
    summary = train(config(store, tmp_path / "run"))
    run = tmp_path / "run"
    assert summary["global_step"] == 2 * math.ceil(42 / 8)  # the last, smaller batch is trained on
    assert summary["epochs_done"] == 2
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["structure_gate"] is True and saved["train"]["batch_size"] == 8
    assert json.loads((run / "vocab.json").read_text()) == json.loads((store / "vocab.json").read_text())
    assert list(run.glob("events.out.tfevents.*"))
    with (run / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["split"] for row in rows} == {"train", "val"}
    assert [int(row["step"]) for row in rows if row["split"] == "val"] == [6, 12]
    for name in ("checkpoint_last.pt", "checkpoint_best.pt"):
        state = torch.load(run / name, weights_only=True)
        assert "model" in state
    last = torch.load(run / "checkpoint_last.pt", weights_only=True)
    assert last["data_order"] == {"epoch": 2, "step_in_epoch": 0, "seed": 3, "batch_size": 8}
    # The run loads without the training loop: model, vocab.json, tokenizer and the training options.
    loaded = load_trained_run(run, which="last")
    assert loaded.train["batch_size"] == 8 and loaded.vocab["explanation"][:3] == ["<pad>", "<start>", "<end>"]
    assert loaded.tokenizer is None and not loaded.model.training
    for name, value in loaded.model.state_dict().items():
        assert torch.equal(value, last["model"][name]), name
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_trained_run(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="which must be one of"):
        load_trained_run(run, which="middle")


def test_save_pretrained_round_trip_and_old_run_errors(store, tmp_path):
    train(config(store, tmp_path / "run", max_steps=2, val_split=""))
    model = REX.from_pretrained(tmp_path / "run")
    saved = tmp_path / "saved"
    model.save_pretrained(saved, "best", global_step=2)
    again = REX.from_pretrained(saved)
    assert again.config == model.config
    for name, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name
    assert torch.load(saved / "checkpoint_best.pt", weights_only=True)["global_step"] == 2
    # Saving keeps config.json's other sections (a training run's options).
    model.save_pretrained(tmp_path / "run", "best")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["max_steps"] == 2
    # A run folder without a model section, or with an unknown field, is an error naming config.json.
    (saved / "config.json").write_text(json.dumps({"train": {}}))
    with pytest.raises(ValueError, match=r"config.json: no 'model' section"):
        REX.from_pretrained(saved)
    (saved / "config.json").write_text(json.dumps({"model": {"hidden_sizes": 3}}))
    with pytest.raises(ValueError, match=r"config.json: REXConfig: unknown fields \['hidden_sizes'\]"):
        REX.from_pretrained(saved)
    model.save_pretrained(saved, "best")
    with pytest.raises(FileNotFoundError, match="checkpoint_last.pt: not found"):
        REX.from_pretrained(saved, which="last")


def test_resume_after_kill_matches_uninterrupted_run(store, tmp_path):
    # Dropout and scheduled sampling both draw random numbers: the RNG states must be restored too.
    options = {"dropout": 0.2, "scheduled_sampling": 0.3, "epochs": 3, "schedule": "cosine"}
    train(config(store, tmp_path / "whole", **options))
    killed = config(store, tmp_path / "killed", stop_after_steps=4, **options)   # mid-epoch 1
    assert train(killed)["stopped_early"]
    order = torch.load(tmp_path / "killed" / "checkpoint_last.pt", weights_only=True)["data_order"]
    assert order["epoch"] == 0 and order["step_in_epoch"] == 4
    train(config(store, tmp_path / "killed", stop_after_steps=9, resume=True, **options))   # killed again, epoch 2
    summary = train(config(store, tmp_path / "killed", resume=True, **options))
    assert summary["global_step"] == 3 * 6
    whole = torch.load(tmp_path / "whole" / "checkpoint_last.pt", weights_only=True)
    resumed = torch.load(tmp_path / "killed" / "checkpoint_last.pt", weights_only=True)
    for name, value in whole["model"].items():
        assert torch.equal(value, resumed["model"][name]), name

    def losses(run):
        with (tmp_path / run / "metrics.csv").open() as handle:
            return [(row["step"], row["split"], row["loss"]) for row in csv.DictReader(handle)]

    assert losses("whole") == losses("killed")


def test_vqa_finetune_from_explanation_run_on_a_fraction(store, tmp_path):
    train(config(store, tmp_path / "explain", mode="explanation", epochs=1))
    summary = train(config(store, tmp_path / "vqa", mode="vqa-finetune", init_from=str(tmp_path / "explain"),
                           fraction=0.5, epochs=1))
    assert summary["best_metric"] == "answer_accuracy"
    assert summary["global_step"] < math.ceil(42 / 8)   # a stratified half of the training questions
    explained = torch.load(tmp_path / "explain" / "checkpoint_best.pt", weights_only=True)["model"]
    tuned = torch.load(tmp_path / "vqa" / "checkpoint_last.pt", weights_only=True)["model"]
    # Transfer trains the paper's whole loss on the subset: answer head and explanation decoder both move.
    decoder = [name for name in tuned if name.startswith("decoder.")]
    assert decoder and any(not torch.equal(tuned[name], explained[name]) for name in decoder)
    assert any(not torch.equal(tuned[name], explained[name]) for name in tuned if name.startswith("answer_head."))
    rows = list(csv.DictReader((tmp_path / "vqa" / "metrics.csv").open()))
    assert any(float(row["explanation_loss"]) > 0 and float(row["gate_loss"]) > 0 for row in rows)
    # The answer-only diagnostic never reaches the decoder: its weights stay the explanation run's.
    train(config(store, tmp_path / "answer", mode="answer-only", init_from=str(tmp_path / "explain"), epochs=1))
    answered = torch.load(tmp_path / "answer" / "checkpoint_last.pt", weights_only=True)["model"]
    assert all(torch.equal(answered[name], explained[name]) for name in decoder)


def test_precision_picks_the_training_autocast(store, tmp_path):
    cpu = torch.device("cpu")
    for precision, expected in (("fp32", False), ("bf16", True), ("auto", native_bf16(cpu))):
        with autocast_for(precision, cpu):
            assert torch.is_autocast_enabled("cpu") is expected, precision
    summary = train(config(store, tmp_path / "bf16", precision="bf16", epochs=1))
    assert math.isfinite(summary["validation"]["loss"]) and summary["precision"] == "bf16 backbone"
    assert train(config(store, tmp_path / "fp32", precision="fp32", epochs=1))["precision"] == "fp32"
    weights = torch.load(tmp_path / "bf16" / "checkpoint_last.pt", weights_only=True)["model"]
    assert {value.dtype for value in weights.values() if value.is_floating_point()} == {torch.float32}
    with pytest.raises(ValueError, match="precision"):
        config(store, tmp_path / "x", precision="fp8")


def test_the_backbone_trains_at_its_own_learning_rate(store, tmp_path):
    """--backbone-lr-scale: the backbone's group runs at the scaled rate (0 freezes it), the rest at --lr."""
    from rexlib.model.rex import compute_losses
    from rexlib.training.loop import parameter_groups

    train(config(store, tmp_path / "run", epochs=1))
    model = load_trained_run(tmp_path / "run").model
    groups = parameter_groups(model, config(store, tmp_path / "x", backbone_lr_scale=0.25, lr=1e-3))
    assert [group["lr"] for group in groups] == [0.25e-3, 1e-3]
    assert sum(len(group["params"]) for group in groups) == len(list(model.parameters()))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimiser = torch.optim.Adam(parameter_groups(model, config(store, tmp_path / "x", backbone_lr_scale=0.0)))
    batch = REXDataset(store, "train").batch(range(4))
    model.train()
    compute_losses(model(batch), batch, model.config)["total"].backward()
    optimiser.step()
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in after if k.startswith("backbone."))
    assert any(not torch.equal(before[k], after[k]) for k in after if k.startswith("decoder."))


def test_weight_decay_is_decoupled(store, tmp_path):
    """--weight-decay shrinks each weight by lr x decay per step, whatever its gradient (AdamW's rule): with no
    gradient at all, Adam's coupled L2 would instead move every weight by about lr (its step is normalised)."""
    from rexlib.training.loop import make_optimizer

    model = torch.nn.Module()  # parameter_groups needs only a backbone and other parameters
    model.backbone, model.head = torch.nn.Linear(3, 3), torch.nn.Linear(3, 1)
    before = [p.detach().clone() for p in model.parameters()]
    optimiser = make_optimizer(model, config(store, tmp_path / "x", lr=1e-2, weight_decay=0.5))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimiser.step()
    for old, new in zip(before, model.parameters()):
        torch.testing.assert_close(new.detach(), old * (1 - 1e-2 * 0.5))


def test_bad_options_are_refused(store, tmp_path):
    with pytest.raises(ValueError, match="mode"):
        train(config(store, tmp_path / "x", mode="captioning"))
    with pytest.raises(ValueError, match="fraction"):
        train(config(store, tmp_path / "x", fraction=0.0))
    with pytest.raises(Exception, match="dataset.json"):
        train(config(tmp_path / "empty", tmp_path / "x"))


def test_torchrun_two_processes_on_cpu(store, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "rexlib", "train", "--data", str(store), "--out", str(out), "--max-steps", "3",
               "--batch-size", "4", "--no-progress", "--val-max-questions", "4", "--seed", "1"]
    environment = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    result = subprocess.run(command, check=False, cwd=REPO, env=environment, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    saved = json.loads((out / "config.json").read_text())
    assert saved["world_size"] == 2
    last = torch.load(out / "checkpoint_last.pt", weights_only=True)
    assert last["global_step"] == 3
    # 42 questions over 2 ranks: 21 each, 6 batches of 4 per rank per epoch; stopped at step 3.
    assert last["data_order"]["step_in_epoch"] == 3


def test_training_with_a_local_pretrained_backbone(store, tmp_path, monkeypatch):
    from transformers import BertTokenizerFast

    pretrained = save_tiny_pretrained(store, tmp_path / "visualbert")
    tokenizer = BertTokenizerFast.from_pretrained(pretrained, local_files_only=True)
    train(config(store, tmp_path / "run", pretrained=str(pretrained), max_steps=2))
    model, _, run_tokenizer, train_options = load_trained_run(tmp_path / "run", which="last")
    assert train_options["pretrained"] == str(pretrained) and len(run_tokenizer) == len(tokenizer)
    assert model.backbone.hidden_size == 64 and model.config.question_vocab_size == len(tokenizer)
    # the run's config.json names the backbone it loaded (64 wide, 1 layer, 2 heads), not the tiny preset
    assert (model.config.hidden_size, model.config.num_layers, model.config.num_heads) == (64, 1, 2)
    # VQA fine-tuning from it re-tokenises questions with the same tokenizer, without being told.
    summary = train(config(store, tmp_path / "vqa", mode="vqa-finetune", init_from=str(tmp_path / "run"),
                           max_steps=1, val_split=""))
    assert summary["global_step"] == 1
    # evaluate and submission decode both runs with that tokenizer: the --init-from run has no
    # --pretrained of its own, its model config carries it.
    from rexlib.evaluation import evaluate
    from rexlib.evaluation.submission import predictions_from_run

    seen = []
    original = evaluate.decode_split

    def recording(*args, **kwargs):
        seen.append(kwargs.get("tokenizer"))
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluate, "decode_split", recording)
    monkeypatch.setattr("rexlib.evaluation.submission.decode_split", recording)
    monkeypatch.setattr(evaluate, "compute_metrics", lambda *args, **kwargs: {})  # the tiny store has no truth files
    monkeypatch.setattr(evaluate, "_explanation_references", lambda data_dir, split: defaultdict(lambda: [""]))
    for run in ("run", "vqa"):
        evaluate.evaluate_run(tmp_path / run, store, "val", which="last", progress=False)
        predictions = predictions_from_run(tmp_path / run, store, "val", which="last", progress=False)
        assert len(predictions) == 10
    assert len(seen) == 4 and all(found is not None and len(found) == len(tokenizer) for found in seen)
