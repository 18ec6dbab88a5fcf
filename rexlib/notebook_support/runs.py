"""Training runs for the notebooks: a `TrainConfig` per run, trained and evaluated two at a time, reused.

A notebook states each run as a `rexlib.training.config.TrainConfig` (`run_config`: the recipe's defaults
plus what the run changes) and makes two visible calls:

    train(configs)                 # rexlib.training.loop.train(config) for each, two processes at a time
    evaluate(configs, split)       # rexlib.evaluation.evaluate.evaluate_run on each trained run

The cache key is the config itself: a run folder is named after the fields that differ from the recipe
(`run_name`), and it is reused when it was trained with exactly the same config (recorded in
`notebook_request.json` after training) and evaluated with the same options. So 03 and 04 reuse the runs
and evaluations of 02 when they ask for the same configs, and a changed recipe retrains.

Processes: the tiny model is too small to keep two threads busy, so on 2 cores two one-thread processes
train about 1.7x as many samples per second as one two-thread process. The processes of a call are forked
from a server that imported torch and rexlib once (`forkserver`), and each trains its runs one after the
other; a call with one run left trains it in the calling process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import pandas as pd

from rexlib.io import write_json
from rexlib.training.config import TrainConfig

REQUEST_FILE = "notebook_request.json"  # in a run folder: the config it was trained with
LOG_FILE = "notebook_train.log"          # in a run folder: what its training printed
TIMES_FILE = "notebook_times.json"       # in a run folder: seconds its training and evaluations took
DEFAULT_PROCESSES = 2

# The run name starts with what the run is (mode, gate), then lists every other field that differs from
# the recipe; these fields never name a run (where it lives, how it reports) or are named separately.
UNNAMED_FIELDS = ("data", "out", "progress", "device", "num_workers", "log_every", "mode", "structure_gate",
                  "seed", "init_from")
SHORT_NAMES = {"epochs": "e", "max_steps": "steps", "fraction": "f", "val_every_steps": "val",
               "answer_head": "head-", "regions": "regions-", "batch_size": "batch"}
REPORTING_FIELDS = ("data", "out", "progress", "val_every_steps")  # never shown as what a run changes
MODE_NAMES = {"multitask": "rex", "explanation": "explanation-only", "vqa-finetune": "finetune",
              "answer-only": "answer-only"}


def recipe(data: str = "") -> TrainConfig:
    """The demo recipe: `TrainConfig`'s defaults (what `python -m rexlib train` trains without flags); on a
    store, its backbone is the one the recipe picks for that store (`pretrained="auto"`)."""
    return TrainConfig(data=data, out="")


def _format(value) -> str:
    if isinstance(value, str) and os.sep in value:  # a path (a backbone directory): its folder's name
        return Path(value).name
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_name(config: TrainConfig) -> str:
    """A readable name that differs whenever the configs differ (but for where they live and report):
    `rex-seed0`, `baseline-seed1`, `rex-beta0.5-steps104-val26-seed0`, `finetune-f0.05-seed0-from-...`."""
    name = MODE_NAMES[config.mode]
    if not config.structure_gate:
        name = "baseline" if config.mode == "multitask" else name + "-nogate"
    parts, defaults = [name], recipe(config.data)
    for field in dataclasses.fields(TrainConfig):
        value, default = getattr(config, field.name), getattr(defaults, field.name)
        if field.name in UNNAMED_FIELDS or value == default:
            continue
        if field.name == "pretrained" and config.init_from:  # the backbone comes from the --init-from run
            continue
        if isinstance(value, bool):
            parts.append(("" if value else "no-") + field.name.replace("_", "-"))
        else:
            parts.append(SHORT_NAMES.get(field.name, field.name.replace("_", "-")) + _format(value))
    parts.append(f"seed{config.seed}")
    if config.init_from:
        parts.append("from-" + Path(config.init_from).name)
    return "-".join(parts)


def run_config(places, **fields) -> TrainConfig:
    """The recipe with `fields` changed, on the workspace's store, in a run folder named by `run_name`."""
    if "data" in fields or "out" in fields:
        raise TypeError("run_config: the workspace decides `data` and `out`")
    fields = {key: value for key, value in fields.items() if value is not None or key in ("max_steps", "lr")}
    if isinstance(fields.get("init_from"), TrainConfig):
        fields["init_from"] = fields["init_from"].out
    config = TrainConfig(data=str(places.data_dir), out="", progress=False, **fields)
    return dataclasses.replace(config, out=str(places.run_dir(run_name(config))))


def config_changes(config: TrainConfig, reference: TrainConfig | None = None) -> pd.DataFrame:
    """The fields in which `config` differs from `reference` (default: the recipe), one row each. Left out:
    where the run lives, progress bars, and `val_every_steps` (extra validation rows are not part of the
    recipe; note that each one draws the validation loader's seed from torch's global generator, so a run
    with them follows another random stream: a few tenths of a point at the demo size)."""
    reference = reference or recipe()
    rows = [{"field": field.name, "reference": getattr(reference, field.name), "this run": getattr(config, field.name)}
            for field in dataclasses.fields(TrainConfig)
            if field.name not in REPORTING_FIELDS and getattr(config, field.name) != getattr(reference, field.name)]
    return pd.DataFrame(rows, columns=["field", "reference", "this run"])


# ---------------------------------------------------------------------------------------- processes


# Modules every worker needs, imported once by the forkserver (about 11 CPU-seconds for torch and
# transformers): each pool's workers then fork from it ready to run, instead of importing them again.
WORKER_MODULES = ["rexlib.notebook_support.runs", "rexlib.training.loop", "rexlib.evaluation.evaluate"]


def _context():
    if "forkserver" not in get_all_start_methods():
        return get_context("spawn")  # Windows: every pool's workers import the modules themselves
    context = get_context("forkserver")
    context.set_forkserver_preload(WORKER_MODULES)
    return context


def _one_worker_share(threads: int, parent: int) -> None:
    """A worker's start: its share of the threads, and an exit of its own should the process that
    submitted the runs die (a killed notebook kernel must not leave idle workers behind)."""
    import threading

    import torch

    torch.set_num_threads(threads)

    def watch() -> None:
        while True:
            time.sleep(5)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def in_processes(function: Callable, jobs: Sequence, processes: int = DEFAULT_PROCESSES) -> list:
    """`[function(job) for job in jobs]` in up to `processes` fresh processes (one job: in this one), results
    in the jobs' order.

    With several processes each gets an equal share of the CPU threads (one each on 2 cores). A failed job
    raises its own error (with the job in the message) once the others have stopped.
    """
    jobs = list(jobs)
    workers = max(1, min(processes, len(jobs)))
    if workers == 1:  # one at a time: here, without paying for a new process's imports
        results = []
        for job in jobs:
            try:
                results.append(function(job))
            except Exception as error:
                raise RuntimeError(f"{function.__name__}({job}) failed: {type(error).__name__}: {error}") from error
        return results
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(workers, mp_context=_context(), initializer=_one_worker_share,
                             initargs=(threads, os.getpid())) as pool:
        futures = [pool.submit(function, job) for job in jobs]
        results = []
        for job, future in zip(jobs, futures):
            try:
                results.append(future.result())
            except Exception as error:
                for other in futures:
                    other.cancel()
                raise RuntimeError(f"{function.__name__}({job}) failed: {type(error).__name__}: {error}") from error
    return results


# ------------------------------------------------------------------------------------------ training


def _request(config: TrainConfig) -> dict:
    values = dataclasses.asdict(config)
    values.pop("progress")
    return values


def is_trained(config: TrainConfig) -> bool:
    """The run folder holds a finished run trained with exactly this config."""
    run_dir = Path(config.out)
    request = run_dir / REQUEST_FILE
    return request.is_file() and json.loads(request.read_text()) == _request(config) \
        and (run_dir / "checkpoint_best.pt").is_file()


def _clear(run_dir: Path) -> None:
    if run_dir.exists():
        if not (run_dir / REQUEST_FILE).is_file() and any(run_dir.iterdir()):
            raise FileExistsError(f"{run_dir}: exists and was not written by the notebooks; remove it or "
                                  "choose another output folder")
        shutil.rmtree(run_dir)  # trained by a notebook with another config: train afresh


def train_one(config: TrainConfig) -> dict:
    """`rexlib.training.loop.train(config)`, its printout in the run folder, then the request recorded."""
    from rexlib.training.loop import train as train_run

    run_dir = Path(config.out)
    _clear(run_dir)
    run_dir.mkdir(parents=True)
    started = time.perf_counter()
    with open(run_dir / LOG_FILE, "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        summary = train_run(config)
    record_time(run_dir, "train", time.perf_counter() - started, steps=summary.get("global_step"),
                samples_per_second=summary.get("train_samples_per_second"))
    write_json(run_dir / REQUEST_FILE, _request(config), indent=1)
    return summary


def record_time(run_dir: Path, stage: str, seconds: float, **details) -> None:
    """Add one stage's wall time (and details) to the run's TIMES_FILE (the runner's report lists them)."""
    path = Path(run_dir) / TIMES_FILE
    times = json.loads(path.read_text()) if path.is_file() else {}
    times[stage] = {"seconds": round(seconds, 1), **details}
    write_json(path, times, indent=1)


def train(configs: Iterable[TrainConfig], processes: int = DEFAULT_PROCESSES) -> list[Path]:
    """Train every config not trained yet (`is_trained`), `processes` at a time; returns the run folders.

    A config asked for twice is trained once; an `init_from` run must be trained by an earlier call.
    """
    configs = list(configs)
    pending: dict[str, TrainConfig] = {}
    for config in configs:
        if config.out in pending and pending[config.out] != config:
            raise ValueError(f"{config.out}: asked for with two different configs")
        if not is_trained(config):
            if config.init_from and not (Path(config.init_from) / "checkpoint_best.pt").is_file():
                raise FileNotFoundError(f"{config.out}: its init_from run {config.init_from} is not trained yet")
            pending[config.out] = config
    # The longest runs first, so the processes finish together.
    order = sorted(pending.values(), key=lambda config: -_samples(config))
    in_processes(train_one, order, processes)
    return [Path(config.out) for config in configs]


def _samples(config: TrainConfig) -> float:
    """Training samples the run will see (to start the longest runs first)."""
    import h5py

    with h5py.File(Path(config.data) / f"{config.train_split}.h5", "r") as handle:
        questions = len(handle["question_ids"]) * config.fraction
    per_epoch = -(-int(questions) // config.batch_size) * config.batch_size
    return min(config.epochs * per_epoch, (config.max_steps or float("inf")) * config.batch_size)


# ---------------------------------------------------------------------------------------- evaluation


def _metrics_path(run_dir: Path, split: str, regions: str | None) -> Path:
    return run_dir / (f"metrics_{split}.json" if regions in (None, "own") else f"metrics_{split}-regions-{regions}.json")


def _is_evaluated(run_dir: Path, split: str, regions: str | None, meteor: bool) -> bool:
    path = _metrics_path(run_dir, split, regions)
    if not path.is_file() or path.stat().st_mtime < (run_dir / "checkpoint_best.pt").stat().st_mtime:
        return False
    # An evaluation without METEOR does not serve one that asks for it (unless METEOR cannot run here).
    status = json.loads(path.read_text()).get("captions", {}).get("METEOR_status", "")
    return not meteor or not status.startswith("skipped")


def evaluate_one(job: tuple) -> dict:
    """`rexlib.evaluation.evaluate.evaluate_run` for one (run folder, data, split, regions, meteor) job."""
    from rexlib.evaluation.evaluate import evaluate_run

    run_dir, data_dir, split, regions, meteor = job
    started = time.perf_counter()
    metrics = evaluate_run(run_dir, data_dir, split, regions=None if regions == "own" else regions,
                           include_meteor=meteor, include_spice=False, progress=False)
    record_time(Path(run_dir), f"evaluate {_metrics_path(Path(run_dir), split, regions).stem.removeprefix('metrics_')}",
                time.perf_counter() - started, meteor=meteor)
    return metrics


def evaluate(configs: Iterable[TrainConfig], split: str = "val", *, regions: str = "own", meteor: bool = True,
             processes: int = DEFAULT_PROCESSES) -> list[dict]:
    """Each trained run's metrics on `split` (`metrics_{split}.json`): decoded greedily and scored once,
    then read back. regions: `own` (what the run trained on), `swapped` or `none` (the diagnostics).
    meteor=False skips METEOR (a Java process per evaluation: about half its time)."""
    configs = list(configs)
    for config in configs:
        if not (Path(config.out) / "checkpoint_best.pt").is_file():
            raise FileNotFoundError(f"{config.out}: not trained; call train([...]) first")
    jobs = {config.out: (config.out, config.data, split, regions, meteor) for config in configs
            if not _is_evaluated(Path(config.out), split, regions, meteor)}
    in_processes(evaluate_one, list(jobs.values()), processes)
    return [json.loads(_metrics_path(Path(config.out), split, regions).read_text()) for config in configs]


def evaluate_answers(configs: Iterable[TrainConfig], split: str = "val") -> list[dict]:
    """Answer accuracy only (no explanation decoding: the answer head reads the encoder alone), for runs
    whose tables show nothing else (transfer). Written once to `metrics_{split}-answers.json`."""
    from rexlib.evaluation.metrics.answers import answer_accuracy

    results = []
    for config in configs:
        run_dir = Path(config.out)
        path = run_dir / f"metrics_{split}-answers.json"
        if not path.is_file() or path.stat().st_mtime < (run_dir / "checkpoint_best.pt").stat().st_mtime:
            started = time.perf_counter()
            predicted, truth, types, families = _predict_answers(run_dir, config.data, split)
            write_json(path, {"split": split, "questions": len(predicted),
                              "accuracy": answer_accuracy(predicted, truth, types, families)}, indent=1)
            record_time(run_dir, f"evaluate {split} answers", time.perf_counter() - started)
        results.append(json.loads(path.read_text()))
    return results


def _predict_answers(run_dir: Path, data_dir: str, split: str):
    import torch

    from rexlib.evaluation.evaluate import load_split_truth
    from rexlib.model.pretrained import load_trained_run
    from rexlib.training.data import REXDataset

    run = load_trained_run(run_dir)
    model, vocab = run.model, run.vocab
    dataset = REXDataset(data_dir, split, tokenizer=run.tokenizer, regions=run.train.get("regions", "image"))
    truth = load_split_truth(data_dir, split)
    predicted = {}
    with torch.no_grad():
        for start in range(0, len(dataset), 256):
            batch = dataset.batch(range(start, min(start + 256, len(dataset))))
            _, answer_logits = model.encode(batch)
            for position, answer in zip(range(start, start + len(answer_logits)), answer_logits.argmax(-1).tolist()):
                predicted[str(dataset.question_ids[position])] = vocab["answer"][answer]
    return (predicted, {qid: truth.answers[qid] for qid in predicted}, {qid: truth.types[qid] for qid in predicted},
            {qid: truth.families[qid] for qid in predicted})


def load_model(config: TrainConfig):
    """The trained model of a run (its best checkpoint, eval mode, CPU)."""
    from rexlib.model.pretrained import load_trained_run

    return load_trained_run(config.out).model


def changes_table(configs: dict, labels: Iterable[str], reference: str) -> pd.DataFrame:
    """What each labelled run changes from the `reference` run, one row per changed field (configs: (label,
    seed) -> TrainConfig; the first seed of each label is compared, the seed itself never counts)."""
    seeds = {}
    for label, seed in configs:
        seeds.setdefault(label, seed)
    rows = []
    for label in labels:
        config = configs[label, seeds[label]]
        against = dataclasses.replace(configs[reference, seeds[reference]], seed=config.seed)
        changes = config_changes(config, against)
        if changes.empty:
            rows.append({"run": label, "field": "(nothing: the reference run)", "reference": None, "this run": None})
        rows += [{"run": label, **change} for change in changes.to_dict("records")]
    return pd.DataFrame(rows, columns=["run", "field", "reference", "this run"])
