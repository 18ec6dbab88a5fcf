"""The small steps the numbered notebooks are made of, so every cell is one call into `rexlib`.

* Where things live: `workspace(...)` resolves the repository root, the output folder and the dataset,
  run, figure and table folders for a notebook size.
* Data: `ensure_world` and `ensure_dataset` build the embedded world and its GQA-REX store when missing.
* Training runs live in `rexlib.notebook_support.runs` (configs, train, evaluate, reuse); galleries in
  `rexlib.notebook_support.gallery`.
* Tables: `metrics_row` flattens a `metrics_{split}.json` into the paper's columns, `results_frame` makes
  one row per run of them, `summary_table` shows mean ± standard deviation over seeds, `save_table` writes
  csv + markdown (the markdown tables marked for the report end up in OUTPUT/REPORT.md).
* Diagnostics: `question_only_lookup`, `oracle_store` / `oracle_workspace`, `diagnostic_rows`,
  `budget_curve`: does the answer read the image?
* Analysis: `load_examples` joins a split's questions, ground truth and a run's predictions in one pandas
  table; `explanation_statistics` describes a built store.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from rexlib import layout
from rexlib.boxes import iou_matrix
from rexlib.dataset.store import read_region_boxes, regions_path
from rexlib.io import atomic_h5, atomic_path, decode_strings, read_json, write_json
from rexlib.notebook_support.gallery import first_explanation, pick_gallery

load_json = read_json  # the notebooks' name: a missing file is an error that names it

REPORT_MARKER = "<!-- rex:report -->"  # the same marker rexlib.notebook_support.runner looks for

# The evaluation table's columns, in the paper's order.
PAPER_COLUMNS = ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE", "Grounding", "Accuracy",
                 "OOD all", "OOD head", "OOD tail")
# Beyond the paper: are the explanations true of the scene graph, and do they imply the answer?
TRUTH_COLUMNS = ("Faithfulness", "Consistency", "Parse rate")


# ------------------------------------------------------------------------------------------ places


def find_root(root: str | os.PathLike = "") -> Path:
    """The repository root: `root` if given, else the first folder above the working directory that holds
    `rexlib/` and `notebooks/`, else the folder above this package (an editable install)."""
    if root:
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: repository root not found")
        return path
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "rexlib").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return Path(__file__).resolve().parents[2]  # rexlib/notebook_support/<this file>


@dataclass(frozen=True)
class Workspace:
    """Every folder a notebook reads or writes, resolved to absolute paths."""

    root: Path
    output_dir: Path
    size: str
    world_dir: Path
    data_dir: Path
    runs_dir: Path
    figures_dir: Path
    tables_dir: Path

    def run_dir(self, name: str) -> Path:
        return self.runs_dir / f"{self.size}-{name}"

    def figure(self, name: str) -> Path:
        return self.figures_dir / f"{name}.png"


def workspace(root: str = "", output_dir: str = "outputs", size: str = "demo", world_dir: str = "",
              data_dir: str = "") -> Workspace:
    """Resolve a notebook's folders. Relative paths are relative to the repository root.

    The demo world is `outputs/datasets/world` (the folder `make world` writes); other sizes get their own
    `world-{size}`; the GQA-REX store is `outputs/datasets/gqa-rex-{size}` unless `data_dir` is given.
    """
    base = find_root(root)

    def resolve(path: str | os.PathLike) -> Path:
        path = Path(path).expanduser()
        return (path if path.is_absolute() else base / path).resolve()

    output = resolve(output_dir)
    world = resolve(world_dir) if world_dir else output / "datasets" / ("world" if size == "demo" else f"world-{size}")
    data = resolve(data_dir) if data_dir else output / "datasets" / f"gqa-rex-{size}"
    places = Workspace(base, output, size, world, data, output / "runs", output / "figures", output / "tables")
    for folder in (places.runs_dir, places.figures_dir, places.tables_dir):
        folder.mkdir(parents=True, exist_ok=True)
    return places


# -------------------------------------------------------------------------------------------- data


def ensure_world(world_dir: str | os.PathLike, images: int, seed: int = 0, render: bool = True) -> dict:
    """Build the embedded GQA-format world into `world_dir` unless an identical one is there already.

    Returns the manifest (`world.json`). A world built with other parameters is an error
    (`rexlib.world.WorldExistsError`): the notebooks never overwrite data silently.
    """
    from rexlib.world import build_world

    return build_world(world_dir, images=images, seed=seed, render=render, progress=False)


def ensure_dataset(gqa_dir: str | os.PathLike, data_dir: str | os.PathLike, regions: str | os.PathLike = "",
                   splits: Sequence[str] = ("train", "val", "testdev"), workers: int = 1) -> dict:
    """Build the GQA-REX store from GQA-format files unless `data_dir/dataset.json` exists already.

    regions: regions.h5 (default: `gqa_dir/regions.h5`, where the embedded world writes it).
    Returns the build reports, split -> `build_report_{split}.json` contents.
    """
    data_dir = Path(data_dir)
    if not (data_dir / layout.DATASET_INFO).is_file():
        from rexlib.dataset.build import build

        regions_path = Path(regions) if regions else Path(gqa_dir) / layout.REGIONS
        available = [split for split in splits if (Path(gqa_dir) / "questions" /
                                                   f"{split}_balanced_questions.json").is_file()]
        if not available:
            raise FileNotFoundError(f"{gqa_dir}/questions: none of {', '.join(splits)} has a "
                                    "{split}_balanced_questions.json")
        build(gqa_dir, regions_path, data_dir, splits=available, workers=workers)
    return build_reports(data_dir)


def build_reports(data_dir: str | os.PathLike) -> dict[str, dict]:
    """split -> the builder's report for it."""
    order = {split: index for index, split in enumerate(("train", "val", "testdev", "test", "challenge"))}
    paths = sorted(Path(data_dir).glob("build_report_*.json"),
                   key=lambda path: (order.get(path.stem.removeprefix("build_report_"), 99), path.name))
    return {path.stem.removeprefix("build_report_"): json.loads(path.read_text()) for path in paths}


def build_summary(reports: dict[str, dict]) -> pd.DataFrame:
    """One row per split of the builder's reports: counts, answer agreement, lengths, grounding."""
    rows = []
    for split, report in reports.items():
        length = report.get("length", {})
        rows.append({
            "split": split, "questions": report.get("questions"), "explanations": report.get("explanations"),
            "skipped": report.get("skipped"), "answer agreement (%)": 100 * report.get("agreement", float("nan")),
            "mean tokens": length.get("mean_tokens"), "max tokens": length.get("max_tokens"),
            "over limit": length.get("over_limit"), "#k per explanation": report.get("grounded_tokens_per_explanation"),
            "@k per explanation": report.get("grid_tokens_per_explanation"),
            "grounding upper bound": report.get("upper_bound_mean"),
        })
    return pd.DataFrame(rows)


def operation_counts(reports: dict[str, dict]) -> pd.DataFrame:
    """How often each GQA operation was executed, per split (long table: split, operation, steps)."""
    rows = [{"split": split, "operation": operation, "steps": count}
            for split, report in reports.items() for operation, count in report.get("operations", {}).items()]
    return pd.DataFrame(rows, columns=["split", "operation", "steps"]).sort_values(
        ["split", "steps"], ascending=[True, False]).reset_index(drop=True)


def family_agreement(reports: dict[str, dict]) -> pd.DataFrame:
    """Per split and operation family: questions and how often the executor re-derives GQA's answer."""
    rows = [{"split": split, "family": family, "questions": entry["questions"],
             "answer agreement (%)": 100 * entry["agreement"]}
            for split, report in reports.items() for family, entry in report.get("families", {}).items()]
    return pd.DataFrame(rows, columns=["split", "family", "questions", "answer agreement (%)"])


def skip_reasons(reports: dict[str, dict]) -> pd.DataFrame:
    """Why questions were skipped, per split."""
    rows = [{"split": split, "reason": reason, "questions": count}
            for split, report in reports.items() for reason, count in report.get("skipped_by_reason", {}).items()]
    return pd.DataFrame(rows, columns=["split", "reason", "questions"])


def pick_question(questions: dict, index: int = 0, min_steps: int = 3, visible=None, scene_graphs=None):
    """A question worth following step by step: the index-th (in id order, one per image and per
    answering family while they last, see `pick_gallery`) whose program has at least `min_steps` steps
    and a relate step if any has one; falls back to any question.

    With `visible` (an `ObjectVisibility`) and `scene_graphs` (image id -> `SceneGraph`), only a
    question whose explanation's objects all show in the picture is picked.
    """
    ordered = [questions[key] for key in sorted(questions)]
    if not ordered:
        raise ValueError("no questions to pick from")
    objects = None
    if visible is not None and scene_graphs is not None:
        from rexlib.program import ExecutionError, execute

        def objects(question_id: str) -> tuple[str, ...]:
            question = questions[question_id]
            try:
                return execute(question, scene_graphs[question.image_id]).object_ids
            except (ExecutionError, KeyError):
                return ()
    for condition in (lambda q: len(q.program) >= min_steps and any(s.family == "relate" for s in q.program),
                      lambda q: len(q.program) >= min_steps, lambda q: True):
        chosen = [question for question in ordered if condition(question)]
        frame = pd.DataFrame({"question_id": [q.question_id for q in chosen], "image_id": [q.image_id for q in chosen],
                              "families": [",".join(dict.fromkeys(s.family for s in q.program)) for q in chosen]})
        gallery = pick_gallery(frame, index + 1, visible=visible if objects else None, objects=objects)
        if len(gallery):
            return questions[gallery["question_id"].iloc[min(index, len(gallery) - 1)]]
    raise ValueError("no question has its objects visible")


def program_table(question) -> pd.DataFrame:
    """A question's program, one row per step: operation, family, argument, dependencies."""
    return pd.DataFrame([{"step": step.index, "operation": step.operation, "family": step.family,
                          "argument": step.argument, "dependencies": ", ".join(map(str, step.dependencies))}
                         for step in question.program])


def steps_table(execution, scene=None) -> pd.DataFrame:
    """Each step's intermediate result, as `rexlib.program.describe_steps` words it."""
    from rexlib.program import describe_steps

    rows = []
    for line in describe_steps(execution, scene):
        head, _, result = line.partition(" → ")
        rows.append({"step": head, "result": result})
    return pd.DataFrame(rows)


def region_words(grounded, scene) -> dict[str, str]:
    """`#k` token -> the name of the scene object grounded to region k (for colour-matched HTML)."""
    words = {}
    for object_id, region in zip(grounded.objects, grounded.regions):
        if region >= 0 and object_id in scene.objects:
            words.setdefault(f"#{region}", scene.objects[object_id].name)
    return words


def split_table(data_dir: str | os.PathLike, split: str) -> pd.DataFrame:
    """One row per question of a built split: ids, question text, types, families, image and answer."""
    data_dir = Path(data_dir)
    path = data_dir / layout.split_file(split)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (is '{split}' a built split of {data_dir}?)")
    vocab = read_json(data_dir / layout.VOCAB)
    with h5py.File(path, "r") as store:
        question_ids = decode_strings(store["question_ids"])
        frame = pd.DataFrame({"question_id": question_ids,
                              "image_index": np.asarray(store["image_index"][()], dtype=np.int64)})
        for key in ("types_structural", "types_semantic", "types_detailed", "families"):
            frame[key.removeprefix("types_")] = decode_strings(store[key]) if key in store else ""
        question_vocab = vocab["question"]
        questions, lengths = store["questions"][()], store["question_lengths"][()]
        answers = store["answers"][()]
        frame["truncated"] = store["explanation_truncated"][()].astype(bool) if "explanation_truncated" in store \
            else False
    special = {"<pad>", "[CLS]", "[SEP]"}
    frame["question"] = [
        " ".join(question_vocab[token] for token in row[:length] if question_vocab[token] not in special)
        for row, length in zip(questions, lengths)
    ]
    answer_vocab = vocab["answer"]
    frame["answer_gt"] = [answer_vocab[answer] if answer >= 0 else None for answer in answers]
    with h5py.File(regions_path(data_dir), "r") as regions:
        image_ids = decode_strings(regions["image_ids"])
        sizes = np.asarray(regions["sizes"][()])
    frame["image_id"] = [image_ids[index] for index in frame["image_index"]]
    frame["width"] = [int(sizes[index][0]) for index in frame["image_index"]]
    frame["height"] = [int(sizes[index][1]) for index in frame["image_index"]]
    explanations_path = data_dir / f"converted_explanation_{split}.json"
    if explanations_path.is_file():
        explanations = json.loads(explanations_path.read_text())
        frame["explanation_gt"] = [first_explanation(explanations.get(question_id, "")) for question_id in question_ids]
    return frame


class ImageRowBoxes:
    """A store's detector boxes by image row (the `image_index` of its questions), for the explorer and
    figures; read once through `rexlib.dataset.store.read_region_boxes`."""

    def __init__(self, data_dir: str | os.PathLike):
        self.boxes = read_region_boxes(regions_path(Path(data_dir))).boxes

    def __call__(self, image_index: int) -> np.ndarray:
        return self.boxes[int(image_index)]


def explanation_statistics(data_dir: str | os.PathLike, split: str) -> pd.DataFrame:
    """Per question of a split: explanation length, grounded region / grid tokens, words, types, families."""
    frame = split_table(data_dir, split)
    tokens = frame["explanation_gt"].fillna("").str.split()
    frame["length"] = tokens.map(len)
    frame["region_tokens"] = tokens.map(lambda words: sum(word.startswith("#") for word in words))
    frame["grid_tokens"] = tokens.map(lambda words: sum(word.startswith("@") for word in words))
    frame["grounded_tokens"] = frame["region_tokens"] + frame["grid_tokens"]
    return frame


def family_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """How many questions use each operation family (a question counts once per distinct family)."""
    counts = Counter(family for text in frame["families"] for family in set(filter(None, text.split(","))))
    return (pd.DataFrame(sorted(counts.items(), key=lambda item: -item[1]), columns=["family", "questions"])
            .reset_index(drop=True))


def word_frequencies(frame: pd.DataFrame, top: int = 25) -> pd.DataFrame:
    """The most frequent explanation words (grounded tokens are counted as `#k` / `@k` classes)."""
    counts: Counter = Counter()
    for text in frame["explanation_gt"].fillna(""):
        for token in text.split():
            counts["#k (region)" if token.startswith("#") else "@k (grid cell)" if token.startswith("@") else token] += 1
    return pd.DataFrame(counts.most_common(top), columns=["word", "count"])


def vocabulary_summary(data_dir: str | os.PathLike) -> pd.DataFrame:
    """Sizes of the three vocabularies of a store."""
    vocab = read_json(Path(data_dir) / layout.VOCAB)
    words = [token for token in vocab["explanation"] if not (token.startswith(("#", "@", "<")) and len(token) > 1)]
    rows = [("explanation tokens (all)", len(vocab["explanation"])), ("explanation words", len(words)),
            ("answers", len(vocab["answer"])), ("question words", len(vocab["question"]))]
    return pd.DataFrame(rows, columns=["vocabulary", "size"])


# ---------------------------------------------------------------------------------------- analysis


def load_predictions(run_dir: str | os.PathLike, split: str = "val") -> dict[str, dict]:
    path = Path(run_dir) / f"predictions_{split}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; evaluate the run on '{split}' first")
    return json.loads(path.read_text())


def load_examples(data_dir: str | os.PathLike, split: str = "val", run_dir: str | os.PathLike | None = None,
                  per_question_grounding: bool = True) -> pd.DataFrame:
    """One row per question: the split's table joined with a run's predictions (when a run is given).

    Adds `explanation_pred`, `answer_pred`, `correct` and, when `per_question_grounding`, `grounding`
    (the question's grounding score ×100, NaN where the upper bound is 0).
    """
    frame = split_table(data_dir, split)
    if run_dir is None:
        return frame
    predictions = load_predictions(run_dir, split)
    frame = frame[frame["question_id"].isin(predictions)].reset_index(drop=True)
    frame["explanation_pred"] = [predictions[qid]["explanation"] for qid in frame["question_id"]]
    frame["answer_pred"] = [predictions[qid]["answer"] for qid in frame["question_id"]]
    frame["correct"] = frame["answer_pred"] == frame["answer_gt"]
    if per_question_grounding:
        frame["grounding"] = _per_question_grounding(Path(data_dir), split, frame)
    return frame


def _per_question_grounding(data_dir: Path, split: str, frame: pd.DataFrame) -> list[float]:
    from rexlib.evaluation.metrics.grounding import grounding_score

    truth_path = data_dir / f"grounding_{split}.json"
    if not truth_path.is_file():
        return [float("nan")] * len(frame)
    truth = json.loads(truth_path.read_text())
    boxes = ImageRowBoxes(data_dir)
    image_of = dict(zip(frame["question_id"], frame["image_index"]))
    size_of = {qid: (width, height) for qid, width, height in zip(frame["question_id"], frame["width"], frame["height"])}
    scores = grounding_score(dict(zip(frame["question_id"], frame["explanation_pred"])), truth,
                             lambda qid: boxes(image_of[qid]), size_of.__getitem__, per_question=True)
    per_question = scores["per_question"]
    return [per_question.get(qid, float("nan")) for qid in frame["question_id"]]


def accuracy_by(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Accuracy and mean grounding per value of a column (`families` is split into its families)."""
    if column == "families":
        frame = frame.assign(family=frame["families"].str.split(",")).explode("family")
        frame = frame[frame["family"].fillna("") != ""]
        column = "family"
    grouped = frame.groupby(column)
    table = pd.DataFrame({"questions": grouped.size(), "accuracy": 100 * grouped["correct"].mean()})
    if "grounding" in frame:
        table["grounding"] = grouped["grounding"].mean()
    return table.sort_values("questions", ascending=False).reset_index()


# ------------------------------------------------------------------------------------------ tables


def _value(mapping, *keys):
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return None
        mapping = mapping[key]
    return mapping


def metrics_row(metrics: dict) -> dict:
    """The paper's evaluation columns (plus attribute recall) from one `metrics_{split}.json`."""
    captions = metrics.get("captions", {})
    row = {name: captions.get(name) for name in ("BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE")}
    row["Grounding"] = _value(metrics, "grounding", "score")
    row["Accuracy"] = _value(metrics, "accuracy", "overall")
    for part in ("all", "head", "tail"):
        row[f"OOD {part}"] = _value(metrics, "ood", part, "accuracy")
    row["Attribute recall"] = _value(metrics, "attributes", "overall")
    for column, key in zip(TRUTH_COLUMNS, ("faithfulness", "consistency", "parse_rate")):  # rexlib.evaluation.metrics.faithfulness
        row[column] = _value(metrics, "faithfulness", key)
    return row


def summary_table(frame: pd.DataFrame, by: str | list[str] = "model",
                  columns: Sequence[str] = PAPER_COLUMNS, digits: int = 1) -> pd.DataFrame:
    """Mean ± standard deviation over the rows of each group (seeds), as strings ready to print."""
    columns = [column for column in columns if column in frame.columns]
    grouped = frame.groupby(by, sort=False)[columns]
    means, spreads, counts = grouped.mean(), grouped.std(ddof=1), grouped.size()

    def cell(mean, spread, count) -> str:
        if pd.isna(mean):
            return "n/a"
        if count < 2 or pd.isna(spread):
            return f"{mean:.{digits}f}"
        return f"{mean:.{digits}f} ± {spread:.{digits}f}"

    table = pd.DataFrame({column: [cell(means.loc[key, column], spreads.loc[key, column], counts.loc[key])
                                   for key in means.index] for column in columns}, index=means.index)
    table.insert(0, "seeds", counts.values)
    return table.reset_index()


def learning_curves(runs: dict[str, str | os.PathLike]) -> pd.DataFrame:
    """The `metrics.csv` logs of several runs in one long table with a `run` column."""
    frames = []
    for label, run_dir in runs.items():
        path = Path(run_dir) / layout.METRICS_LOG
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the run wrote no metrics log")
        frame = pd.read_csv(path)
        frame.insert(0, "run", label)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def long_curves(frame: pd.DataFrame, x: str | None = None) -> tuple[pd.DataFrame, str]:
    """`learning_curves` reshaped to one row per (run, x, quantity) for plotting every logged number.

    x defaults to the first of `step`, `iteration`, `epoch` the log has.
    """
    if x is None:
        x = next((name for name in ("step", "iteration", "epoch") if name in frame.columns), None)
        if x is None:
            raise ValueError(f"metrics.csv has no step / iteration / epoch column (columns: {list(frame.columns)})")
    skipped = {"run", "split", x, "epoch", "step", "iteration", "time", "lr", "samples_per_second"}
    numeric = [column for column in frame.columns
               if column not in skipped and pd.api.types.is_numeric_dtype(frame[column])]
    keys = ["run", x] + (["split"] if "split" in frame.columns else [])
    melted = frame.melt(id_vars=keys, value_vars=numeric, var_name="quantity").dropna(subset=["value"])
    return melted, x


def markdown_table(frame: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub markdown table (no extra dependency)."""
    def text(value) -> str:
        if isinstance(value, float):
            return "n/a" if np.isnan(value) else f"{value:.{digits}f}"
        return "" if value is None else str(value).replace("|", "\\|")

    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "|" + "|".join("---:" if pd.api.types.is_numeric_dtype(frame[column]) else "---"
                          for column in frame.columns) + "|"
    body = ["| " + " | ".join(text(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def save_table(frame: pd.DataFrame, name: str, tables_dir: str | os.PathLike, caption: str = "",
               report: bool = True) -> Path:
    """Write `name.csv` and `name.md` (a captioned markdown table) atomically; returns the csv path.

    report=True marks the markdown for OUTPUT/REPORT.md (`python -m rexlib run-notebooks` collects it).
    """
    tables_dir = Path(tables_dir)
    tables_dir.mkdir(parents=True, exist_ok=True)
    csv_path = tables_dir / f"{name}.csv"
    with atomic_path(csv_path) as temporary:
        frame.to_csv(temporary, index=False)
    lines = [REPORT_MARKER] if report else []
    lines += [f"### {caption or name}", "", markdown_table(frame), ""]
    with atomic_path(tables_dir / f"{name}.md") as temporary:
        temporary.write_text("\n".join(lines))
    return csv_path


def explanation_overlap(ground_truth: str, predicted: str) -> float:
    """Token F1 ×100 between two explanations (a per-question stand-in for the corpus caption metrics)."""
    truth, guess = Counter(str(ground_truth).split()), Counter(str(predicted).split())
    common = sum((truth & guess).values())
    if not common:
        return 0.0
    precision, recall = common / sum(guess.values()), common / sum(truth.values())
    return 200 * precision * recall / (precision + recall)


def quality_by_correctness(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean explanation overlap and grounding for questions answered correctly and wrongly."""
    frame = frame.assign(overlap=[explanation_overlap(truth, guess) for truth, guess
                                  in zip(frame["explanation_gt"], frame["explanation_pred"])])
    grouped = frame.groupby(frame["correct"].map({True: "correct answer", False: "wrong answer"}))
    table = pd.DataFrame({"questions": grouped.size(), "explanation token F1": grouped["overlap"].mean()})
    if "grounding" in frame:
        table["grounding"] = grouped["grounding"].mean()
    return table.reset_index().rename(columns={"correct": "answer"})


def ood_table(metrics: dict) -> pd.DataFrame:
    """GQA-OOD accuracy on all, head and tail questions from one `metrics_{split}.json`."""
    ood = metrics.get("ood", {})
    return pd.DataFrame([{"part": part, "accuracy": _value(ood, part, "accuracy"),
                          "questions": _value(ood, part, "questions")} for part in ("all", "head", "tail")])


def attribute_table(metrics: dict) -> pd.DataFrame:
    """Attribute recall per category (empty when the store has no attribute table)."""
    attributes = metrics.get("attributes", {})
    per_category = attributes.get("per_category") or {}
    counts = attributes.get("counts") or {}
    return pd.DataFrame([{"category": category, "recall": value, "stated": counts.get(category)}
                         for category, value in per_category.items()], columns=["category", "recall", "stated"])


# ------------------------------------------------------------------------------------- diagnostics
# Does the answer come from the image? Three references that need no new model code: a lookup table that
# never sees the image, a store whose regions are a clean encoding of the scene graph (reading the image
# made trivial, so what remains is reasoning), and evaluation with every image's regions swapped for
# another image's (`rexlib.evaluation.evaluate.evaluate_run(..., regions="swapped")`).


def question_only_lookup(data_dir, split: str = "val", train_split: str = "train") -> dict:
    """Accuracy ×100 of answering each `split` question with the most frequent `train_split` answer of the
    same question text (word ids), else of its `types.detailed`, else the most frequent answer overall."""
    def read(name: str):
        with h5py.File(Path(data_dir) / layout.split_file(name), "r") as handle:
            lengths = handle["question_lengths"][:]
            questions = [tuple(row[:length]) for row, length in zip(handle["questions"][:], lengths)]
            return questions, handle["answers"][:], decode_strings(handle["types_detailed"])

    train_questions, train_answers, train_types = read(train_split)
    by_text: dict[tuple, Counter] = {}
    by_type: dict[str, Counter] = {}
    for question, answer, detailed in zip(train_questions, train_answers, train_types):
        if answer >= 0:
            by_text.setdefault(question, Counter())[int(answer)] += 1
            by_type.setdefault(detailed, Counter())[int(answer)] += 1
    overall = Counter(int(answer) for answer in train_answers if answer >= 0)
    questions, answers, types_detailed = read(split)
    correct, seen_text = 0, 0
    for question, answer, detailed in zip(questions, answers, types_detailed):
        counts = by_text.get(question) or by_type.get(detailed) or overall
        seen_text += question in by_text
        correct += int(answer >= 0 and counts.most_common(1)[0][0] == answer)
    return {"accuracy": 100.0 * correct / max(len(questions), 1), "questions": len(questions),
            "seen_text": 100.0 * seen_text / max(len(questions), 1)}


def oracle_store(data_dir, gqa_dir, out_dir, min_iou: float = 0.5) -> Path:
    """A copy of the store whose regions carry a clean encoding of the scene graph: each region's feature
    is the multi-hot of the name and attributes of the object it covers best (IoU >= `min_iou`), or a
    background bit. Same boxes, questions and explanations (the other files are linked), so a model
    trained on it separates reading the image from reasoning. Returns `out_dir`."""
    data_dir, out_dir = Path(data_dir).resolve(), Path(out_dir)
    if (out_dir / layout.DATASET_INFO).is_file():
        return out_dir
    scenes: dict = {}
    for path in sorted((Path(gqa_dir) / "sceneGraphs").glob("*_sceneGraphs.json")):
        scenes.update(json.loads(path.read_text()))
    words = sorted({word for scene in scenes.values() for obj in scene["objects"].values()
                    for word in [f"name:{obj['name']}", *(f"attribute:{value}" for value in obj["attributes"])]})
    column = {word: index + 1 for index, word in enumerate(words)}  # column 0: background
    info = read_json(data_dir / layout.DATASET_INFO)
    regions = regions_path(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with h5py.File(regions, "r") as source:
        image_ids = decode_strings(source["image_ids"])
        boxes = source["boxes"][:]
        features = np.zeros((len(image_ids), boxes.shape[1], len(words) + 1), np.float16)
        for row, image_id in enumerate(image_ids):
            objects = list(scenes.get(image_id, {"objects": {}})["objects"].values())
            features[row, :, 0] = 1.0
            if not objects:
                continue
            truth = np.array([[o["x"], o["y"], o["x"] + o["w"], o["y"] + o["h"]] for o in objects], np.float32)
            overlap = iou_matrix(boxes[row], truth)
            for region, best in enumerate(overlap.argmax(axis=1)):
                if overlap[region, best] >= min_iou:
                    obj = objects[best]
                    features[row, region, 0] = 0.0
                    for word in [f"name:{obj['name']}", *(f"attribute:{value}" for value in obj["attributes"])]:
                        features[row, region, column[word]] = 1.0
        with atomic_h5(out_dir / "regions_oracle.h5") as target:
            for key in source:
                target[key] = features if key == "features" else source[key][:]
    for path in data_dir.iterdir():
        if path.name not in (layout.DATASET_INFO, "partial") and not (out_dir / path.name).exists():
            (out_dir / path.name).symlink_to(path)
    write_json(out_dir / layout.DATASET_INFO, {**info, "regions": "regions_oracle.h5",
                                           "source": f"oracle regions of {data_dir} from {gqa_dir} scene graphs"})
    return out_dir


def results_frame(configs: dict, metrics: Sequence[dict]) -> pd.DataFrame:
    """One row per run with the paper's columns: configs maps (model label, seed) -> its TrainConfig (a dict
    in the order of `metrics`, e.g. what `rexlib.notebook_support.runs.evaluate` returned for its values)."""
    return pd.DataFrame([{"model": label, "seed": seed, "run": config.out, **metrics_row(values)}
                         for ((label, seed), config), values in zip(configs.items(), metrics)])


def diagnostic_rows(lookup: dict, swapped: pd.DataFrame, seeds: Sequence[int]) -> pd.DataFrame:
    """Rows to put beside a results table (same columns): the question-only lookup (`question_only_lookup`,
    once per seed so it lines up) and runs evaluated with every image's regions swapped for another
    image's (`results_frame` of those evaluations). An answer that reads the image falls when its regions
    are swapped; one read off the question keeps its accuracy."""
    rows = pd.DataFrame([{"model": "question-only lookup (no image)", "seed": seed, "Accuracy": lookup["accuracy"]}
                         for seed in seeds])
    return pd.concat([rows, swapped.assign(model=swapped["model"] + ", regions swapped")], ignore_index=True)


def budget_curve(runs: dict[str, str | os.PathLike], split: str = "val") -> pd.DataFrame:
    """Validation answer accuracy (×100) against training samples seen, from each run's metrics.csv
    (answers do not depend on the decoding, so the teacher-forced accuracy is the evaluated one)."""
    curves = learning_curves(runs)
    curves = curves[curves["split"] == split]
    frames = []
    for label, run_dir in runs.items():
        saved = json.loads((Path(run_dir) / "config.json").read_text())
        batch = saved["train"]["batch_size"] * saved.get("world_size", 1)
        frame = curves[curves["run"] == label][["run", "step", "answer_accuracy", "token_accuracy"]].copy()
        frame["samples"] = frame["step"] * batch
        frame["answer_accuracy"] *= 100
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def oracle_workspace(places: Workspace) -> Workspace:
    """`places` with the oracle-regions store (`oracle_store`, built once beside the store) and its own
    runs folder, so its runs never mix with those on the detector's regions."""
    data_dir = oracle_store(places.data_dir, places.world_dir, places.data_dir.parent / f"{places.data_dir.name}-oracle")
    oracle = replace(places, data_dir=data_dir, runs_dir=places.runs_dir / "oracle-regions")
    oracle.runs_dir.mkdir(parents=True, exist_ok=True)
    return oracle
