"""The notebooks' runs: configs name their folders, train once, evaluate once; 02's lesson tables."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from store_fixture import build_world_store

from rexlib.notebook_support import experiments, lesson, runs
from rexlib.training.config import TrainConfig


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    root = tmp_path_factory.mktemp("notebook-runs")
    world, data = build_world_store(root, images=30, feature_dim=8)
    return experiments.workspace(str(root), "out", "tiny", world_dir=str(world), data_dir=str(data))


def test_run_names_follow_the_config_and_tell_configs_apart(places):
    assert runs.run_name(runs.recipe()) == "rex-seed0"
    assert runs.run_name(dataclasses.replace(runs.recipe(), structure_gate=False, seed=2)) == "baseline-seed2"
    # a backbone other than the recipe's is named by its folder, never by its whole path
    other = dataclasses.replace(runs.recipe(), pretrained="/somewhere/weights/visualbert-x")
    assert runs.run_name(other) == "rex-pretrainedvisualbert-x-seed0"
    short = runs.run_config(places, beta=0.5, max_steps=104, val_every_steps=26, device="cpu")
    assert short.out.endswith("tiny-rex-beta0.5-steps104-val26-seed0") and short.data == str(places.data_dir)
    assert runs.run_name(dataclasses.replace(short, box_geometry=False)) == "rex-beta0.5-no-box-geometry-steps104-val26-seed0"
    pretrained = runs.run_config(places, mode="explanation", epochs=1)
    finetune = runs.run_config(places, mode="vqa-finetune", fraction=0.05, init_from=pretrained)
    assert finetune.init_from == pretrained.out
    assert finetune.out.endswith("finetune-f0.05-seed0-from-tiny-explanation-only-e1-seed0")
    # with --init-from the backbone is inherited, so `pretrained` (resolved to None there) names nothing
    assert runs.run_name(dataclasses.replace(finetune, pretrained="/w/visualbert-x")) == runs.run_name(finetune)
    variants = [runs.recipe(), short, pretrained, finetune, dataclasses.replace(finetune, init_from=None),
                *(dataclasses.replace(short, **change) for change in
                  ({"alpha": 0.5}, {"answer_head": "cls"}, {"regions": "none"}, {"mode": "answer-only"},
                   {"max_steps": 52}, {"epochs": 4}, {"seed": 1}))]
    assert len({runs.run_name(config) for config in variants}) == len(variants)
    with pytest.raises(TypeError, match="decides"):
        runs.run_config(places, out="elsewhere")


def test_config_changes_and_changes_table(places):
    reference = runs.run_config(places, max_steps=4)
    configs = {("REX", 0): reference, ("β = 2", 0): runs.run_config(places, max_steps=4, beta=2.0),
               ("β = 1", 0): runs.run_config(places, max_steps=4, beta=1.0)}
    changes = runs.config_changes(configs["β = 2", 0], reference)
    assert changes.to_dict("records") == [{"field": "beta", "reference": 1.0, "this run": 2.0}]
    table = runs.changes_table(configs, ["β = 2", "β = 1"], "REX")
    assert list(table["field"]) == ["beta", "(nothing: the reference run)"]
    assert list(runs.config_changes(reference)["field"]) == ["max_steps"]
    # validation rows never change what is trained: not shown as a change (but they name another run)
    with_rows = dataclasses.replace(reference, val_every_steps=2)
    assert runs.config_changes(with_rows, reference).empty and runs.run_name(with_rows) != runs.run_name(reference)


def test_train_and_evaluate_once_then_reuse(places):
    config = runs.run_config(places, max_steps=2, epochs=1, device="cpu")
    same = runs.run_config(places, max_steps=2, epochs=1, device="cpu")
    run_dir, again = runs.train([config, same], processes=2)
    assert run_dir == again
    assert runs.is_trained(config) and (run_dir / runs.LOG_FILE).is_file()
    assert json.loads((run_dir / runs.REQUEST_FILE).read_text())["max_steps"] == 2
    trained_at = (run_dir / "checkpoint_best.pt").stat().st_mtime_ns
    runs.train([config])
    assert (run_dir / "checkpoint_best.pt").stat().st_mtime_ns == trained_at  # reused, not retrained

    (metrics,) = runs.evaluate([config], "val", meteor=False)
    evaluated_at = (run_dir / "metrics_val.json").stat().st_mtime_ns
    assert runs.evaluate([config], "val", meteor=False) == [metrics]
    assert (run_dir / "metrics_val.json").stat().st_mtime_ns == evaluated_at
    (answers,) = runs.evaluate_answers([config], "val")
    assert answers["accuracy"]["overall"] == pytest.approx(metrics["accuracy"]["overall"])
    times = json.loads((run_dir / runs.TIMES_FILE).read_text())
    assert {"train", "evaluate val", "evaluate val answers"} <= set(times) and times["train"]["steps"] == 2

    # A folder trained with another config under the same name (e.g. an older recipe) is trained afresh.
    request = json.loads((run_dir / runs.REQUEST_FILE).read_text())
    (run_dir / runs.REQUEST_FILE).write_text(json.dumps({**request, "lr": 0.5}))
    assert not runs.is_trained(config)
    runs.train([config], processes=1)
    assert runs.is_trained(config) and not (run_dir / "metrics_val.json").exists()


def test_a_failing_run_names_itself_and_foreign_folders_are_kept(places, tmp_path):
    broken = dataclasses.replace(runs.run_config(places, max_steps=1), val_split="no-such-split")
    with pytest.raises(RuntimeError, match="train_one.*no-such-split"):
        runs.train([broken], processes=1)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not a run")
    with pytest.raises(RuntimeError, match="not written by the notebooks"):
        runs.train([dataclasses.replace(runs.run_config(places, max_steps=1), out=str(foreign))], processes=1)
    assert (foreign / "notes.txt").is_file()
    with pytest.raises(FileNotFoundError, match="not trained"):
        runs.evaluate([runs.run_config(places, max_steps=3, beta=3.0)])


def test_lesson_tables_read_one_batch_through_rex(places):
    from rexlib.model import REX, compute_losses
    from rexlib.training.data import REXDataset, load_dataset_info, load_vocab
    from rexlib.training.loop import build_model_config

    dataset = REXDataset(places.data_dir, "train")
    vocab = load_vocab(places.data_dir)
    config = build_model_config(TrainConfig(data="", out=""), vocab, dataset.feature_dim, load_dataset_info(places.data_dir))
    batch = dataset.batch(range(8))
    assert dict(zip(lesson.shapes(batch)["name"], lesson.shapes(batch)["shape"]))["region_features"] == (8, 36, 8)
    torch.manual_seed(0)
    model = REX(config).eval()
    with torch.no_grad():
        output = model(batch)
    assert tuple(lesson.shapes(output).set_index("name").loc["gate", "shape"]) == tuple(batch["explanation_tokens"].shape)
    row = lesson.explained_row(batch, config.region_token_ids)
    table = lesson.gate_table(output, batch, row, vocab["explanation"])
    assert len(table) == int(batch["explanation_mask"][row].sum())
    assert (table["word weight g_t"] + table["region weight 1-g_t"]).round(6).eq(1).all()
    assert list(table["kind"] == "region") == list(table["gate target"] == 0)
    assert lesson.pointed_explanation(table).split() and "<end>" not in lesson.pointed_explanation(table)
    losses = compute_losses(output, batch, config)
    terms = lesson.loss_table(losses, config).set_index("term")
    assert terms.loc["total", "value"] == pytest.approx(terms.loc["total", "weighted"], rel=1e-5)
    assert terms.loc["total", "value"] == pytest.approx(
        float(losses["answer"] + config.alpha * losses["explanation"] + config.beta * losses["gate"]
              + config.gamma * losses["answer_attention"]), rel=1e-5)
    baseline = REX(dataclasses.replace(config, structure_gate=False)).eval()
    with torch.no_grad(), pytest.raises(ValueError, match="no structure gate"):
        lesson.gate_table(baseline(batch), batch, row, vocab["explanation"])
