"""`python -m rexlib run-notebooks`: execute the numbered notebooks in order with papermill.

Each notebook has a cell tagged `parameters` holding what `make demo` runs; a size (`tiny` for tests,
`full` for a longer study) overrides them from the `SIZES` table below, `demo` keeps them. Executed copies go to
OUTPUT/notebooks/, the notebooks themselves write figures to OUTPUT/figures/ and tables to OUTPUT/tables/,
and this command assembles OUTPUT/REPORT.md from the tables marked for the report.

The kernel is the interpreter running this command: a kernelspec pointing at `sys.executable` is written
to a private folder placed first on JUPYTER_PATH, so a user-wide `python3` kernel from another
environment can never be picked up by mistake.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from rexlib.io import AtomicTarget, write_bytes

NOTEBOOKS = ("01_dataset_creation", "02_training", "03_ablations", "04_analysis")
KERNEL_NAME = "rexlib-runner"
REPORT_MARKER = "<!-- rex:report -->"

# What each size changes in the notebooks' `parameters` cells: values shared by every notebook (`common`), then
# each notebook's own. A notebook receives only the names its parameters cell declares (papermill would
# otherwise warn about unknown parameters). `demo` changes nothing: the parameters cells hold what `make demo`
# runs, so a notebook opened in JupyterLab trains what the README reports. The names that pick the runs 02
# trains (preset, epochs, max_steps, seeds, device) are common, so 03 and 04 ask for 02's runs and reuse them.
SIZES: dict[str, dict[str, dict]] = {
    # A few dozen images and two optimisation steps per run: for tests, about a minute per notebook.
    "tiny": {
        "common": {"world_images": 30, "world_seed": 0, "preset": "tiny", "device": "cpu", "split": "val",
                   "epochs": 1, "max_steps": 2, "seeds": [0], "meteor": False},
        "02_training": {"examples": 2},
        "03_ablations": {"ablation_steps": 2, "ablation_seeds": [0], "val_every_steps": 1, "betas": [2.0],
                         "alphas": [0.5], "fractions": [0.5], "pretrain_epochs": 1, "finetune_epochs": 1},
        "04_analysis": {"examples": 2},
    },
    # The default 2,000-image world and the recipe: the notebooks' own defaults.
    "demo": {"common": {}},
    # A larger world, the base model and longer training: hours on CPU, minutes on a GPU. The ablations train
    # the recipe's epochs (no step limit, no extra validation), so their reference run is 02's REX.
    "full": {
        "common": {"world_images": 10000, "world_seed": 0, "preset": "base", "device": "auto", "split": "val",
                   "epochs": 20, "max_steps": 0, "seeds": [0, 1, 2]},
        "02_training": {"examples": 6},
        "03_ablations": {"ablation_steps": 0, "ablation_seeds": [0, 1, 2], "val_every_steps": 0,
                         "betas": [0.25, 0.5, 1.0, 2.0, 4.0], "alphas": [0.25, 0.5, 1.0, 2.0],
                         "fractions": [0.01, 0.05, 0.1, 1.0], "pretrain_epochs": 15, "finetune_epochs": 10},
        "04_analysis": {"examples": 8},
    },
}


def repository_root() -> Path:
    """The repository holding the notebooks (this module sits two levels below it)."""
    return Path(__file__).resolve().parents[2]  # rexlib/notebook_support/<this file>


def notebook_path(name: str, root: Path | None = None) -> Path:
    return (root or repository_root()) / "notebooks" / f"{name}.ipynb"


def select_notebooks(only: str | None) -> list[str]:
    """`--only 02` or `--only 01,03` or a full name: the notebooks to run, in their order."""
    if not only:
        return list(NOTEBOOKS)
    wanted = [part.strip() for part in only.split(",") if part.strip()]
    chosen = []
    for part in wanted:
        matches = [name for name in NOTEBOOKS if name == part or name.startswith(part)]
        if not matches:
            raise ValueError(f"--only {part!r} matches no notebook; choose from {', '.join(NOTEBOOKS)}")
        chosen.extend(matches)
    return [name for name in NOTEBOOKS if name in chosen]


def declared_parameters(path: Path) -> dict:
    """The names and defaults of a notebook's `parameters` cell (papermill's own inspection)."""
    import papermill as pm

    return {name: info for name, info in pm.inspect_notebook(str(path)).items()}


def parameters_for(name: str, size: str, root: Path, output_dir: Path, declared: dict | None = None) -> dict:
    """The overrides for one notebook at one size, restricted to the names the notebook declares."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {', '.join(SIZES)}")
    values = {"root": str(root), "output_dir": str(output_dir), "size": size}
    values.update(SIZES[size]["common"])
    values.update(SIZES[size].get(name, {}))
    if declared is not None:
        values = {key: value for key, value in values.items() if key in declared}
    return values


@contextlib.contextmanager
def runner_kernel():
    """Yield a kernel name that runs this very interpreter (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="rex-kernel-") as folder:
        spec_dir = Path(folder) / "kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python (rexlib runner)", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        previous = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = folder + (os.pathsep + previous if previous else "")
        try:
            yield KERNEL_NAME
        finally:
            if previous is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = previous


class NotebookFailed(RuntimeError):
    """A cell failed; the message names the notebook, the cell and the error."""


def execute(name: str, size: str, output_dir: Path, root: Path | None = None, kernel_name: str | None = None,
            log_output: bool = False, timeout: int | None = None) -> float:
    """Run one notebook through papermill; return its wall time in seconds. Raises NotebookFailed."""
    import papermill as pm

    root = root or repository_root()
    source = notebook_path(name, root)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: notebook not found")
    parameters = parameters_for(name, size, root, output_dir, declared_parameters(source))
    executed_dir = output_dir / "notebooks"
    executed_dir.mkdir(parents=True, exist_ok=True)
    target = executed_dir / f"{name}.ipynb"
    partial = AtomicTarget(target, keep_ending=True)  # papermill reads the format from the ending
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(source), str(partial.temporary), parameters=parameters, kernel_name=kernel_name or KERNEL_NAME,
            cwd=str(source.parent), progress_bar=False, log_output=log_output, execution_timeout=timeout,
            report_mode=False,
        )
    except pm.PapermillExecutionError as error:
        partial.commit()  # the executed copy, with the traceback, is what the reader needs
        raise NotebookFailed(
            f"{name}.ipynb failed in cell {error.cell_index} of the executed copy (execution count "
            f"{error.exec_count}, counting the injected parameters cell): "
            f"{error.ename}: {error.evalue}\n  executed copy with the traceback: {target}"
        ) from error
    except BaseException:
        partial.discard()
        raise
    partial.commit()
    return time.perf_counter() - start


def run_times(output_dir: Path, since: float | None = None) -> list[str]:
    """Markdown rows of the runs trained or evaluated since `since` (a time.time()), from the times each run
    folder records (`rexlib.notebook_support.runs.TIMES_FILE`): where a notebook's time went."""
    from rexlib.notebook_support.runs import TIMES_FILE

    paths = sorted((output_dir / "runs").glob(f"**/{TIMES_FILE}"), key=lambda path: path.stat().st_mtime)
    rows = []
    for path in paths:
        if since is not None and path.stat().st_mtime < since:
            continue
        times = json.loads(path.read_text())
        train = times.get("train", {})
        evaluations = sum(stage["seconds"] for name, stage in times.items() if name.startswith("evaluate"))
        speed = train.get("samples_per_second")
        rows.append(f"| {path.parent.relative_to(output_dir / 'runs')} | {train.get('steps', '')} | "
                    f"{'' if speed is None else f'{speed:.0f}'} | {train.get('seconds', '')} | {evaluations:.0f} |")
    if not rows:
        return []
    return ["| run | steps | samples/s (one process) | train (s) | evaluations (s) |", "|---|---:|---:|---:|---:|",
            *rows, ""]


def assemble_report(output_dir: Path, size: str, timings: dict[str, float], since: float | None = None) -> Path:
    """Write OUTPUT/REPORT.md from the tables the notebooks marked for the report, in notebook order, after
    the notebooks' wall times and those of the runs trained or evaluated since `since` (a time.time())."""
    lines = ["# REX: results of the numbered notebooks", "",
             f"Size `{size}`; executed notebooks in `notebooks/`, figures in `figures/`, tables in `tables/`.", ""]
    if timings:
        lines += ["| notebook | wall time (s) |", "|---|---:|"]
        lines += [f"| {name} | {seconds:.0f} |" for name, seconds in timings.items()]
        lines += [f"| all | {sum(timings.values()):.0f} |", ""]
        lines += run_times(output_dir, since)
    tables_dir = output_dir / "tables"
    # notebook order first, then the order the notebook wrote its tables in
    tables = sorted(tables_dir.glob("*.md"), key=lambda path: (path.name.split("_", 1)[0], path.stat().st_mtime)) \
        if tables_dir.is_dir() else []
    for table in tables:
        text = table.read_text()
        if REPORT_MARKER in text:
            lines += [text.replace(REPORT_MARKER, "").strip(), ""]
    figures_dir = output_dir / "figures"
    figures = sorted(figures_dir.glob("*.png")) if figures_dir.is_dir() else []
    if figures:
        lines += ["## Figures", ""] + [f"- `figures/{figure.name}`" for figure in figures] + [""]
    path = output_dir / "REPORT.md"
    write_bytes(path, "\n".join(lines).encode("utf-8"))
    return path


def clear_tables(output_dir: Path, name: str) -> None:
    """Remove the tables and figures a notebook wrote before, so a report never mixes runs."""
    prefix = name.split("_", 1)[0] + "_"
    for folder in (output_dir / "tables", output_dir / "figures"):
        if folder.is_dir():
            for path in folder.glob(prefix + "*"):
                path.unlink()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", choices=sorted(SIZES), default="demo",
                        help="tiny (tests, minutes), demo (make demo: the notebooks' own defaults), full (long)")
    parser.add_argument("--only", default=None, help="run only these notebooks: 02, or 01,03, or a full name")
    parser.add_argument("--output-dir", default="outputs", help="where notebooks, figures, tables and REPORT.md go")
    parser.add_argument("--kernel", default=None,
                        help="a Jupyter kernel name to use instead of this interpreter (e.g. rex)")
    parser.add_argument("--log-output", action="store_true", help="stream the cells' output to the terminal")
    parser.add_argument("--timeout", type=int, default=None, help="seconds one cell may run (default: no limit)")


def run(args: argparse.Namespace) -> int:
    root = repository_root()
    output_dir = Path(args.output_dir).resolve()
    try:
        names = select_notebooks(args.only)
    except ValueError as error:
        print(f"run-notebooks: {error}", file=sys.stderr)
        return 2
    timings: dict[str, float] = {}
    started = time.time()
    with contextlib.ExitStack() as stack:
        kernel = args.kernel or stack.enter_context(runner_kernel())
        for name in names:
            clear_tables(output_dir, name)
            print(f"[run-notebooks] {name} (size {args.size}) ...", flush=True)
            try:
                timings[name] = execute(name, args.size, output_dir, root, kernel, args.log_output, args.timeout)
            except NotebookFailed as error:
                print(f"[run-notebooks] {error}", file=sys.stderr)
                assemble_report(output_dir, args.size, timings, started)
                return 1
            print(f"[run-notebooks] {name} done in {timings[name]:.0f} s", flush=True)
    report = assemble_report(output_dir, args.size, timings, started)
    print(f"[run-notebooks] {len(names)} notebooks in {sum(timings.values()):.0f} s; report: {report}")
    return 0
