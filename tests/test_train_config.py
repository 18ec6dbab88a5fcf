"""Training options stated once: every TrainConfig field is a flag of `python -m rexlib train` whose default,
choices and help are the field's, and the model options are REXConfig's."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from rexlib.model import REXConfig
from rexlib.options import flag_name
from rexlib.training import cli as train_cli
from rexlib.training.config import TrainConfig, model_overrides


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(prog="train")
    train_cli.add_arguments(made)
    return made


def test_every_field_has_a_flag_with_its_default():
    options = {option for action in parser()._actions for option in action.option_strings}
    defaults = TrainConfig(data="d", out="o")
    parsed = train_cli.config_from_args(parser().parse_args(["--data", "d", "--out", "o"]))
    for found in dataclasses.fields(TrainConfig):
        assert flag_name(found.name, getattr(defaults, found.name)) in options, found.name
        assert getattr(parsed, found.name) == getattr(defaults, found.name), found.name
    assert parsed == defaults


def test_flags_keep_their_names_and_meanings():
    config = train_cli.config_from_args(parser().parse_args([
        "--data", "d", "--out", "o", "--no-structure-gate", "--no-box-geometry", "--no-progress", "--length-buckets",
        "--resume", "--answer-head", "cls", "--batch-size", "8", "--lr", "0.01", "--val-max-questions", "5",
        "--init-from", "runs/a", "--mode", "vqa-finetune", "--fraction", "0.25", "--dropout", "0.3"]))
    assert (config.structure_gate, config.box_geometry, config.progress) == (False, False, False)
    assert (config.length_buckets, config.resume, config.answer_head) == (True, True, "cls")
    assert (config.batch_size, config.lr, config.val_max_questions, config.fraction) == (8, 0.01, 5, 0.25)
    assert (config.init_from, config.mode, config.dropout) == ("runs/a", "vqa-finetune", 0.3)
    with pytest.raises(SystemExit):
        parser().parse_args(["--data", "d", "--out", "o", "--answer-head", "nowhere"])
    with pytest.raises(SystemExit):
        parser().parse_args(["--out", "o"])  # --data is required


def test_a_changed_dataclass_default_shows_in_the_flags(monkeypatch, capsys):
    monkeypatch.setattr(TrainConfig.__dataclass_fields__["epochs"], "default", 7)
    monkeypatch.setattr(TrainConfig.__dataclass_fields__["batch_size"], "metadata",
                        {"help": "questions per optimiser step, 9% of them, as the test says"})
    args = parser().parse_args(["--data", "d", "--out", "o"])
    assert args.epochs == 7
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "passes over the (subset of the) training split (the demo recipe) (default: 7)" in text
    assert "questions per optimiser step, 9% of them, as the test says" in text  # argparse %-formats help
    assert "option_strings" not in text


def test_model_options_come_from_rexconfig():
    model_fields = {f.name: f for f in dataclasses.fields(REXConfig)}
    for found in dataclasses.fields(TrainConfig):
        if not found.metadata.get("model"):
            continue
        assert found.name in model_fields, found.name
        assert found.metadata.get("choices") == model_fields[found.name].metadata.get("choices"), found.name
    config = TrainConfig(data="d", out="o", structure_gate=False, alpha=0.5, dropout=None)
    overrides = model_overrides(config)
    assert overrides["structure_gate"] is False and overrides["alpha"] == 0.5 and "dropout" not in overrides
    assert overrides["answer_head"] == "regions"  # the training recipe's, not the paper's REXConfig default
    # An --init-from run changes the loss weights and regularisation, never the architecture.
    assert set(model_overrides(config, fine_tuning=True)) == {"alpha", "beta", "gamma", "scheduled_sampling"}


def test_bad_choices_name_the_field():
    with pytest.raises(ValueError, match="TrainConfig.mode must be one of"):
        TrainConfig(data="d", out="o", mode="nowhere")
    with pytest.raises(ValueError, match="REXConfig.answer_head must be one of"):
        REXConfig(answer_head="nowhere")
