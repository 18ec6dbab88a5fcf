"""The numbered notebooks: committed clean, and executed end to end by papermill at the tiny size."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from rexlib.notebook_support import runner as notebooks

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_FILES = [ROOT / "notebooks" / f"{name}.ipynb" for name in notebooks.NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda path: path.stem)
def test_committed_notebook_is_clean_and_parameterised(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown" and "What it needs" in notebook.cells[0].source
    parameter_cells = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameter_cells) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    for line in parameter_cells[0].source.splitlines():
        assert " = " in line and "  # " in line, f"{path.name}: parameter without a comment: {line!r}"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {index} holds outputs; strip them before committing"
            assert cell.execution_count is None, f"{path.name}: cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda path: path.stem)
def test_every_size_overrides_only_declared_parameters(path):
    declared = notebooks.declared_parameters(path)
    for size in notebooks.SIZES:
        values = notebooks.parameters_for(path.stem, size, ROOT, ROOT / "outputs")
        unknown = set(values) - set(declared) - {"root", "output_dir", "size", *notebooks.SIZES[size]["common"]}
        assert not unknown, f"{path.name} at size {size}: the SIZES table sets undeclared {sorted(unknown)}"
        assert set(notebooks.parameters_for(path.stem, size, ROOT, ROOT / "outputs", declared)) <= set(declared)


def _defaults(path: Path) -> dict:
    import ast

    return {name: ast.literal_eval(info["default"]) for name, info in notebooks.declared_parameters(path).items()}


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda path: path.stem)
def test_notebook_defaults_are_what_make_demo_runs(path):
    """Opening a notebook and running it as it is trains what `make demo` trains: the demo size passes
    papermill nothing but the notebook's places, so the parameters cell holds the demo's values."""
    declared = notebooks.declared_parameters(path)
    values = notebooks.parameters_for(path.stem, "demo", ROOT, ROOT / "outputs", declared)
    assert set(values) <= {"root", "output_dir", "size"}, f"{path.name}: make demo overrides {sorted(values)}"
    defaults = _defaults(path)
    assert defaults["size"] == values["size"] == "demo" and defaults["root"] == "" and defaults["output_dir"] == "outputs"


def test_notebooks_ask_for_the_runs_02_trains_at_every_size():
    """03 and 04 reuse 02's runs only when they build the same configs: the parameters naming them agree."""
    shared = ("world_images", "world_seed", "preset", "epochs", "max_steps", "seeds", "device", "split")
    for size in notebooks.SIZES:
        values = {}
        for path in NOTEBOOK_FILES[1:]:
            merged = {**_defaults(path), **notebooks.parameters_for(path.stem, size, ROOT, ROOT, None)}
            values[path.stem] = {name: merged.get(name) for name in shared}
        assert values["03_ablations"] == values["02_training"] == values["04_analysis"], size


def test_recipe_epochs_are_the_train_commands():
    """The notebooks' `epochs` default is the recipe's (TrainConfig's), which the train command trains."""
    from rexlib.training.config import TrainConfig

    for path in NOTEBOOK_FILES[1:]:
        assert _defaults(path)["epochs"] == TrainConfig(data="d", out="o").epochs, path.name


def test_select_notebooks_and_bad_names():
    assert notebooks.select_notebooks(None) == list(notebooks.NOTEBOOKS)
    assert notebooks.select_notebooks("03,01") == ["01_dataset_creation", "03_ablations"]
    with pytest.raises(ValueError, match="matches no notebook"):
        notebooks.select_notebooks("07")
    with pytest.raises(ValueError, match="unknown size"):
        notebooks.parameters_for("02_training", "huge", ROOT, ROOT)


def test_report_collects_only_marked_tables(tmp_path):
    from rexlib.notebook_support.experiments import save_table

    frame = pd.DataFrame({"model": ["REX"], "CIDEr": [12.345]})
    save_table(frame, "02_main", tmp_path / "tables", "Main table")
    save_table(frame, "02_side", tmp_path / "tables", "Side table", report=False)
    from rexlib.notebook_support.runs import TIMES_FILE, record_time

    old_run, new_run = tmp_path / "runs" / "tiny-rex-seed0", tmp_path / "runs" / "tiny-baseline-seed0"
    record_time(old_run.mkdir(parents=True) or old_run, "train", 9.0, steps=2, samples_per_second=20.0)
    os.utime(old_run / TIMES_FILE, (1.0, 1.0))  # written before this invocation: reused, costs nothing now
    new_run.mkdir()
    record_time(new_run, "train", 12.5, steps=4, samples_per_second=31.0)
    record_time(new_run, "evaluate val", 3.2)
    report = notebooks.assemble_report(tmp_path, "tiny", {"02_training": 3.0}, since=100.0).read_text()
    assert "### Main table" in report and "| REX | 12.35 |" in report
    assert "Side table" not in report and "| 02_training | 3 |" in report
    assert "| tiny-baseline-seed0 | 4 | 31 | 12.5 | 3 |" in report and "tiny-rex-seed0" not in report


def test_a_failing_cell_names_notebook_cell_and_error(tmp_path, monkeypatch):
    bad = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# bad\nWhat it needs: nothing"),
        nbformat.v4.new_code_cell("size = 'demo'  # the size", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise ValueError('broken on purpose: ' + size)"),
    ])
    bad.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "notebooks").mkdir()
    nbformat.write(bad, tmp_path / "notebooks" / "09_bad.ipynb")
    with notebooks.runner_kernel() as kernel, pytest.raises(notebooks.NotebookFailed) as failure:
        notebooks.execute("09_bad", "tiny", tmp_path / "out", root=tmp_path, kernel_name=kernel)
    message = str(failure.value)
    assert "09_bad.ipynb" in message and "cell 3 of the executed copy" in message and "broken on purpose: tiny" in message
    assert (tmp_path / "out" / "notebooks" / "09_bad.ipynb").is_file()


@pytest.fixture(scope="module")
def tiny_outputs(tmp_path_factory):
    """Run all four notebooks at the tiny size once (a few minutes on 2 cores)."""
    import argparse

    output_dir = tmp_path_factory.mktemp("run-notebooks")
    parser = argparse.ArgumentParser()
    notebooks.add_arguments(parser)
    status = notebooks.run(parser.parse_args(["--size", "tiny", "--output-dir", str(output_dir)]))
    assert status == 0, "run-notebooks --size tiny failed (see the captured output)"
    return output_dir


def _table(output_dir: Path, name: str) -> pd.DataFrame:
    path = output_dir / "tables" / f"{name}.csv"
    assert path.is_file(), f"{name}.csv was not written"
    return pd.read_csv(path)


def _png(output_dir: Path, name: str) -> None:
    path = output_dir / "figures" / f"{name}.png"
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG", f"figure {name}.png missing"


@pytest.mark.slow
def test_tiny_run_writes_executed_notebooks_and_report(tiny_outputs):
    for name in notebooks.NOTEBOOKS:
        executed = nbformat.read(tiny_outputs / "notebooks" / f"{name}.ipynb", as_version=4)
        errors = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs
                  if output.output_type == "error"]
        assert not errors
        injected = [cell for cell in executed.cells if "injected-parameters" in cell.metadata.get("tags", [])]
        assert injected and "size = \"tiny\"" in injected[0].source
    report = (tiny_outputs / "REPORT.md").read_text()
    for caption in ("GQA-REX build", "Multi-task setting", "Structure gate", "Transfer", "GQA-OOD"):
        assert caption in report


@pytest.mark.slow
def test_tiny_run_01_dataset_tables_and_figures(tiny_outputs):
    summary = _table(tiny_outputs, "01_build_summary")
    assert list(summary["split"]) == ["train", "val", "testdev"]
    assert (summary["explanations"] > 0).all()
    assert {"family", "answer agreement (%)"} <= set(_table(tiny_outputs, "01_answer_agreement").columns)
    for figure in ("01_example_grounded", "01_explanation_lengths", "01_operations", "01_vocabulary_and_families",
                   "01_answer_agreement"):
        _png(tiny_outputs, figure)
    assert json.loads((tiny_outputs / "datasets" / "gqa-rex-tiny" / "dataset.json").read_text())["splits"]


@pytest.mark.slow
def test_tiny_run_02_paper_table(tiny_outputs):
    table = _table(tiny_outputs, "02_evaluation")
    assert list(table["model"]) == ["REX", "baseline (no gate)", "question-only lookup (no image)",
                                    "REX, regions swapped"]
    for column in ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE", "Grounding", "Accuracy", "OOD head", "OOD tail"):
        assert column in table.columns
    per_seed = _table(tiny_outputs, "02_evaluation_per_seed")
    assert per_seed["Accuracy"].between(0, 100).all()
    for figure in ("02_learning_curves", "02_rex_vs_baseline", "02_examples"):
        _png(tiny_outputs, figure)


@pytest.mark.slow
def test_tiny_run_03_ablations(tiny_outputs):
    assert list(_table(tiny_outputs, "03_structure_gate")["model"]) == ["REX (gate)", "no gate"]
    assert set(_table(tiny_outputs, "03_training_setting")["model"]) == {"answer only", "explanation only",
                                                                         "multi-task (REX)"}
    transfer = _table(tiny_outputs, "03_transfer")
    assert set(transfer["initialisation"]) == {"explanation pretraining", "from scratch"}
    assert len(transfer) == 2 * len(notebooks.SIZES["tiny"]["03_ablations"]["fractions"])
    for figure in ("03_loss_weights", "03_training_setting", "03_transfer", "03_budget_curve"):
        _png(tiny_outputs, figure)
    reading = _table(tiny_outputs, "03_reading_the_image")
    assert {"question-only REX (no regions)", "REX, oracle regions", "REX, regions swapped",
            "REX, paper's inputs (no box geometry)", "REX, the paper's [CLS] answer head"} <= set(reading["model"])
    assert {"samples", "answer_accuracy"} <= set(_table(tiny_outputs, "03_budget_curve").columns)


@pytest.mark.slow
def test_tiny_run_04_analysis(tiny_outputs):
    family = _table(tiny_outputs, "04_by_family")
    assert {"family", "questions", "accuracy", "grounding"} <= set(family.columns)
    assert set(_table(tiny_outputs, "04_ood")["part"]) == {"all", "head", "tail"}
    assert {"answer", "explanation token F1"} <= set(_table(tiny_outputs, "04_quality_by_correctness").columns)
    for figure in ("04_by_family", "04_ood", "04_quality_by_correctness"):
        _png(tiny_outputs, figure)
    truth = _table(tiny_outputs, "04_truth")  # beyond the paper: explanations checked on the scene graph
    assert list(truth["model"]) == ["REX", "baseline (no gate)"]
    assert {"Faithfulness", "Consistency", "Parse rate"} <= set(truth.columns)
    assert list(_table(tiny_outputs, "04_truth_by_correctness")["answer"]) == ["right answer", "wrong answer"]
    assert "Beyond the paper" in (tiny_outputs / "REPORT.md").read_text()
