"""Checkpoint × split -> predictions and every metric: ``python -m rexlib evaluate --run DIR``.

Two halves, kept apart so notebooks and tests can use the second without a model:

* ``decode_split`` runs a trained model over a split (greedy, or beam search when ``beam_size > 1``)
  and returns question id -> predicted explanation tokens and answer.
* ``compute_metrics`` scores such predictions against the dataset's ground-truth files: caption
  metrics of the explanation (``converted_explanation_{split}.json``), the grounding score
  (``grounding_{split}.json`` plus the detector boxes of the ``regions.h5`` named in ``dataset.json``),
  attribute recall, answer accuracy overall / per type / per operation family (``{split}.h5``) and
  GQA-OOD all / head / tail accuracy.

``evaluate_run`` does both and writes ``predictions_{split}.json`` and ``metrics_{split}.json`` into the
run folder, atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rexlib import layout
from rexlib.dataset.store import regions_path
from rexlib.evaluation.metrics.answers import answer_accuracy, correctness, ood_accuracy, ood_question_ids
from rexlib.evaluation.metrics.attributes import attribute_recall
from rexlib.evaluation.metrics.captions import caption_scores
from rexlib.evaluation.metrics.faithfulness import explanation_truth, format_truth
from rexlib.evaluation.metrics.grounding import GROUNDING_MODES, grounding_score
from rexlib.evaluation.truth import SplitTruth, load_split_truth
from rexlib.io import decode_strings, read_json, write_json


def load_attribute_table(data_dir: str | Path) -> dict[str, str] | None:
    """Attribute value -> category for the dataset, or ``None`` when there is none to be had.

    ``DATA/attribute_categories.json``: the table the build mined from the questions' programs (merged
    with GQA's own mapping file when one was passed), on the world and on GQA alike. A store without it
    (an old build) gets ``None``: a guessed table would give misleading recalls.
    """
    path = Path(data_dir) / layout.ATTRIBUTE_CATEGORIES
    if not path.is_file():
        return None
    table = read_json(path)
    if not isinstance(table, dict) or not all(isinstance(value, str) for value in table.values()):
        raise ValueError(f"{path}: expected a json object attribute value -> category name")
    return table


# -------------------------------------------------------------------------------------------- metrics


def _explanation_references(data_dir: Path, split: str) -> dict[str, list[str]]:
    path = data_dir / layout.converted_explanations_file(split)
    content = read_json(path)
    references = {}
    for question_id, value in content.items():
        if isinstance(value, str):
            references[question_id] = [value]
        elif isinstance(value, list) and all(isinstance(text, str) for text in value):
            references[question_id] = value
        else:
            raise ValueError(
                f"{path}: question {question_id}: expected a token string, got {type(value).__name__}"
            )
    return references


def _check_predictions(predictions: dict[str, dict]) -> None:
    for question_id, prediction in predictions.items():
        if not isinstance(prediction, dict) or not {"explanation", "answer"} <= set(prediction):
            raise ValueError(f"question {question_id}: a prediction needs 'explanation' and 'answer'")


def ood_groups(truth: SplitTruth, question_ids) -> dict[str, str]:
    """question id -> its GQA-OOD group: GQA's ``groups.local`` (GQA-OOD's own unit), or for a store
    written without it, ``types.detailed`` (coarser: every balanced yes/no group then falls in the tail)."""
    return {
        question_id: truth.local_groups.get(question_id) or truth.types[question_id].get("detailed", "")
        for question_id in question_ids
    }


def compute_metrics(
    predictions: dict[str, dict],
    data_dir: str | Path,
    split: str = "val",
    *,
    grounding_mode: str = "union",
    attribute_categories: dict[str, str] | None = None,
    ood_dir: str | Path | None = None,
    alpha: float = 0.2,
    include_meteor: bool = True,
    include_spice: bool = True,
    empty_predictions: str = "penalize",
) -> dict:
    """Every metric for ``predictions`` (question id -> {"explanation": tokens, "answer": str}).

    Args:
        data_dir: a GQA-REX dataset folder (``dataset.json``, ``vocab.json``, ``{split}.h5``,
            ``converted_explanation_{split}.json``, ``grounding_{split}.json``).
        grounding_mode: ``"union"`` (every ground-truth box) or ``"reference"`` (the authors' code:
            last box only); see ``rexlib.evaluation.metrics.grounding``.
        attribute_categories: attribute value -> category; default ``DATA/attribute_categories.json``.
            Without a table, attribute recall is reported as unavailable.
        ood_dir: folder with GQA-OOD's question-id files for ``split``; also searched: ``DATA/ood`` and
            ``DATA``. Without them head / tail are derived by GQA-OOD's rule (``rexlib.evaluation.metrics.answers``).
        alpha: GQA-OOD's head / tail margin.
        empty_predictions: see ``rexlib.evaluation.metrics.captions.caption_scores``.
    """
    data_dir = Path(data_dir)
    _check_predictions(predictions)
    truth = load_split_truth(data_dir, split)
    unknown = [question_id for question_id in predictions if question_id not in truth.row_of]
    if unknown:
        raise ValueError(
            f"{data_dir / layout.split_file(split)}: question {unknown[0]} is predicted but not in the split "
            f"({len(unknown)} such questions)"
        )
    explanations = {question_id: prediction["explanation"] for question_id, prediction in predictions.items()}
    answers = {question_id: prediction["answer"] for question_id, prediction in predictions.items()}

    references = _explanation_references(data_dir, split)
    missing_reference = [question_id for question_id in predictions if question_id not in references]
    if missing_reference:
        raise ValueError(
            f"{data_dir / layout.converted_explanations_file(split)}: no reference explanation for question "
            f"{missing_reference[0]} ({len(missing_reference)} such questions)"
        )
    captions = caption_scores(
        references,
        explanations,
        empty_predictions=empty_predictions,
        include_meteor=include_meteor,
        include_spice=include_spice,
    )

    grounding_truth = read_json(data_dir / layout.grounding_file(split))
    with h5py.File(regions_path(data_dir), "r") as regions:
        boxes = np.asarray(regions["boxes"][()], dtype=np.float64)  # (images, regions, 4) pixels
        sizes = np.asarray(regions["sizes"][()], dtype=np.float64)  # (images, 2) width, height
    image_of = {question_id: int(truth.image_index[truth.row_of[question_id]]) for question_id in predictions}
    for question_id, image in image_of.items():
        if not 0 <= image < len(boxes):
            raise ValueError(
                f"{data_dir / layout.split_file(split)}: question {question_id}: image_index {image} outside the regions"
            )
    grounding = grounding_score(
        explanations,
        grounding_truth,
        lambda question_id: boxes[image_of[question_id]],
        lambda question_id: tuple(sizes[image_of[question_id]]),
        mode=grounding_mode,
    )

    table = attribute_categories if attribute_categories is not None else load_attribute_table(data_dir)
    if table is None:
        attributes = {
            "status": f"unavailable: no attribute value -> category table (pass attribute_categories "
            f"or write {data_dir / layout.ATTRIBUTE_CATEGORIES})"
        }
    else:
        attributes = attribute_recall({qid: refs[0] for qid, refs in references.items()}, explanations, table)
        attributes["status"] = "computed"

    answer_truth = {question_id: truth.answers[question_id] for question_id in predictions}
    accuracy = answer_accuracy(
        answers,
        answer_truth,
        {question_id: truth.types[question_id] for question_id in predictions},
        {question_id: truth.families[question_id] for question_id in predictions},
    )
    folders = [folder for folder in (ood_dir, data_dir / "ood", data_dir) if folder is not None]
    has_local = all(truth.local_groups.get(question_id) for question_id in predictions)
    splits, source = ood_question_ids(split, answer_truth, ood_groups(truth, predictions), folders, alpha,
                                      "groups.local" if has_local else "groups.local, else types.detailed")
    ood = {"source": source, **ood_accuracy(correctness(answers, answer_truth), splits)}

    # beyond the paper: are the statements true of the scene graph, and do they imply the answer?
    truth_of_explanations = explanation_truth(
        predictions, data_dir, split, lambda question_id: boxes[image_of[question_id]], truth.families
    )

    return {
        "split": split,
        "questions": len(predictions),
        "captions": captions,
        "grounding": grounding,
        "attributes": attributes,
        "accuracy": accuracy,
        "ood": ood,
        "spice": captions["SPICE_status"],
        "faithfulness": truth_of_explanations,
    }


def _number(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_table(metrics: dict) -> str:
    """A compact, fixed-width summary of ``compute_metrics``'s result."""
    captions, grounding, accuracy = metrics["captions"], metrics["grounding"], metrics["accuracy"]
    lines = [f"split {metrics['split']}: {metrics['questions']} questions"]
    names = ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE")
    lines.append("explanation  " + "  ".join(f"{name} {_number(captions[name])}" for name in names))
    if captions["METEOR"] is None:
        lines.append(f"             METEOR {captions['METEOR_status']}")
    if captions["SPICE"] is None:
        lines.append(f"             SPICE {captions['SPICE_status']}")
    if captions["empty_predictions"]:
        lines.append(f"             {captions['empty_predictions']} empty predictions scored 0")
    lines.append(
        f"grounding    {_number(grounding['score'])} ({grounding['mode']}, {grounding['questions']} questions, "
        f"{grounding['excluded_upper_bound_zero']} with upper bound 0 left out)"
    )
    attributes = metrics["attributes"]
    if attributes.get("status") == "computed":
        parts = [
            f"{category} {_number(value, 1)}"
            for category, value in attributes["per_category"].items()
            if value is not None
        ]
        lines.append(f"attributes   overall {_number(attributes['overall'])}  " + "  ".join(parts))
    else:
        lines.append(f"attributes   {attributes['status']}")
    lines.append(f"accuracy     overall {_number(accuracy['overall'])}")
    for kind in ("structural", "semantic"):
        parts = [f"{name} {_number(value['accuracy'], 1)}" for name, value in accuracy.get(kind, {}).items()]
        lines.append(f"  {kind:<11}" + "  ".join(parts))
    if accuracy.get("families"):
        parts = [f"{name} {_number(value['accuracy'], 1)}" for name, value in accuracy["families"].items()]
        lines.append("  families   " + "  ".join(parts))
    ood = metrics["ood"]
    parts = [
        f"{part} {_number(ood[part]['accuracy'])} ({ood[part]['questions']})"
        for part in ("all", "head", "tail")
    ]
    lines.append("OOD          " + "  ".join(parts) + f"   [{ood['source']}]")
    lines.append(format_truth(metrics.get("faithfulness")))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- decoding


def _config_value(config: Any, *names: str) -> Any:
    for name in names:
        if isinstance(config, dict) and config.get(name) is not None:
            return config[name]
        if getattr(config, name, None) is not None:
            return getattr(config, name)
    return None


def decode_split(
    model: Any,
    data_dir: str | Path,
    split: str = "val",
    *,
    vocab: dict | None = None,
    tokenizer: Any = None,
    beam_size: int = 1,
    batch_size: int = 64,
    max_length: int | None = None,
    progress: bool = True,
    regions: str = "image",
    repeat_regions: bool = False,
) -> dict[str, dict]:
    """Run ``model`` over every question of ``split``: question id -> {"explanation", "answer"}.

    Greedy decoding when ``beam_size == 1``, else beam search (``rexlib.model.decoding``). The batches come
    from ``rexlib.training.data.REXDataset`` / ``collate``; tensors go to the model's device.

    Args:
        vocab: the vocabularies the model was trained with (``load_trained_run(...).vocab``); default the
            dataset's ``vocab.json``. Token and answer ids are read back through it.
        tokenizer: the BERT tokenizer of a pretrained backbone (``rexlib.model.pretrained.question_tokenizer``).
        max_length: explanation words before ``<end>``; default the model's, else ``dataset.json``'s.
        regions: ``image`` (each question's own), ``none`` or ``swapped`` (``rexlib.training.data.REGION_SOURCES``:
            the diagnostics of whether answers read the image).
        repeat_regions: let an explanation name one region twice (the paper's decoding); by default none
            does (``rexlib.model.decoding``), which never changes the answers.
    """
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    from rexlib.model.decoding import beam_search, greedy, tokens_to_text
    from rexlib.training.data import REXDataset, collate

    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, not {beam_size}")
    data_dir = Path(data_dir)
    vocabulary = vocab if vocab is not None else read_json(data_dir / layout.VOCAB)
    explanation_vocabulary, answer_vocabulary = vocabulary["explanation"], vocabulary["answer"]
    if max_length is None:
        max_length = _config_value(getattr(model, "config", None), "max_explanation_length")
    if max_length is None:
        max_length = read_json(data_dir / layout.DATASET_INFO).get("max_explanation_length", 12)
    with h5py.File(data_dir / layout.split_file(split), "r") as store:
        question_ids = decode_strings(store["question_ids"])
    dataset = REXDataset(data_dir, split, tokenizer=tokenizer, regions=regions)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    device = next(model.parameters()).device
    model.eval()
    predictions: dict[str, dict] = {}
    with torch.no_grad():
        for batch in tqdm(loader, desc=f"decode {split}", disable=not progress):
            batch = {
                key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()
            }
            if beam_size == 1:
                tokens, answer_logits = greedy(model, batch, max_length=int(max_length), repeat_regions=repeat_regions)
            else:
                tokens, answer_logits = beam_search(
                    model, batch, beam_size=beam_size, max_length=int(max_length), repeat_regions=repeat_regions
                )
            answer_ids = answer_logits.argmax(dim=-1).tolist()
            texts = tokens_to_text(tokens, explanation_vocabulary)
            for row, text, answer_id in zip(batch["index"].tolist(), texts, answer_ids):
                predictions[question_ids[row]] = {
                    "explanation": text,
                    "answer": answer_vocabulary[answer_id],
                }
    if len(predictions) != len(question_ids):
        raise RuntimeError(f"decoded {len(predictions)} of the {len(question_ids)} questions of {split}")
    return predictions


def resolve_data_dir(run_dir: str | Path, data_dir: str | Path | None, train: dict | None = None) -> Path:
    """``data_dir`` if given, else the dataset the run was trained on (``train``: config.json's training
    options, read from the run folder when not given)."""
    if data_dir is not None:
        return Path(data_dir)
    if train is None:
        config_path = Path(run_dir) / layout.RUN_CONFIG
        train = (read_json(config_path).get("train") or {}) if config_path.is_file() else {}
    found = _config_value(train, "data_dir", "data")
    if found is None:
        raise ValueError(f"{Path(run_dir) / layout.RUN_CONFIG}: the run names no dataset; pass --data DIR")
    return Path(found)


def evaluate_run(
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    split: str = "val",
    beam_size: int = 1,
    batch_size: int = 64,
    *,
    which: str = "best",
    grounding_mode: str = "union",
    attribute_categories: dict[str, str] | None = None,
    ood_dir: str | Path | None = None,
    include_meteor: bool = True,
    include_spice: bool = True,
    progress: bool = True,
    regions: str | None = None,
    repeat_regions: bool = False,
) -> dict:
    """Decode ``split`` with the run's checkpoint, score it, and write both files into ``run_dir``.

    Writes ``predictions_{split}.json`` (question id -> {"explanation", "answer", "answer_gt",
    "explanation_gt"}) and ``metrics_{split}.json``; returns the metrics. The questions are read with
    the run's own tokenizer and ids with the run's vocab.json (``rexlib.model.pretrained``). With
    ``regions`` other than the run's own (``image``, or ``none`` for a question-only run; the default)
    the files are ``predictions_{split}-regions-{regions}.json`` / ``metrics_{split}-regions-{regions}.json``;
    with ``repeat_regions``, ``-repeat-regions`` follows (``output_suffix``).
    """
    from rexlib.model.pretrained import load_trained_run

    run_dir = Path(run_dir)
    run = load_trained_run(run_dir, which=which)
    data_dir = resolve_data_dir(run_dir, data_dir, run.train)
    trained_with = _config_value(run.train, "regions") or "image"
    regions = regions or trained_with
    predictions = decode_split(
        run.model, data_dir, split, vocab=run.vocab, tokenizer=run.tokenizer, beam_size=beam_size,
        batch_size=batch_size, progress=progress, regions=regions, repeat_regions=repeat_regions,
    )
    metrics = compute_metrics(
        predictions,
        data_dir,
        split,
        grounding_mode=grounding_mode,
        attribute_categories=attribute_categories,
        ood_dir=ood_dir,
        include_meteor=include_meteor,
        include_spice=include_spice,
    )
    metrics["decoding"] = {"beam_size": beam_size, "checkpoint": which, "data_dir": str(data_dir), "regions": regions,
                           "trained_regions": trained_with, "repeat_regions": repeat_regions}
    truth = load_split_truth(data_dir, split)
    references = _explanation_references(data_dir, split)
    for question_id, prediction in predictions.items():
        prediction["answer_gt"] = truth.answers[question_id]
        prediction["explanation_gt"] = references[question_id][0]
    suffix = output_suffix(split, metrics["decoding"])
    write_json(run_dir / layout.predictions_file(suffix), predictions, indent=1, allow_nan=True)
    write_json(run_dir / layout.metrics_file(suffix), metrics, indent=1, allow_nan=True)
    return metrics


def output_suffix(split: str, decoding: dict) -> str:
    """The part of predictions_*.json / metrics_*.json after the underscore: the split, then what differs from
    the run's own decoding (other regions, regions named twice)."""
    suffix = split if decoding["regions"] == decoding["trained_regions"] else f"{split}-regions-{decoding['regions']}"
    return suffix + ("-repeat-regions" if decoding.get("repeat_regions") else "")


# ------------------------------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run folder (config.json, checkpoint_best.pt, ...)")
    parser.add_argument("--data", default=None, help="GQA-REX dataset folder (default: the run's config)")
    parser.add_argument("--split", default="val", help="split to evaluate (default: val)")
    parser.add_argument("--beam", type=int, default=1, help="beam size; 1 decodes greedily (default: 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="questions per batch (default: 64)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    parser.add_argument(
        "--grounding-mode",
        choices=GROUNDING_MODES,
        default="union",
        help="union: every ground-truth box (default); reference: the authors' last-box-only score",
    )
    parser.add_argument("--attributes", default=None, help="json attribute value -> category table")
    parser.add_argument("--ood-dir", default=None, help="folder with GQA-OOD question-id files")
    parser.add_argument("--no-meteor", action="store_true", help="skip METEOR (saves the java start)")
    parser.add_argument("--no-spice", action="store_true", help="skip SPICE even when its jars are present")
    parser.add_argument("--regions", choices=("image", "none", "swapped"), default=None,
                        help="none: zero regions; swapped: every image's regions replaced by another image's "
                             "(diagnostics: does the answer read the image?); default: what the run trained on")
    parser.add_argument("--repeat-regions", action="store_true",
                        help="let an explanation name one region twice (the paper's decoding; files "
                             "*-repeat-regions.json); by default none does, as no reference does")


def run(args: argparse.Namespace) -> int:
    metrics = evaluate_run(
        args.run,
        args.data,
        args.split,
        args.beam,
        args.batch_size,
        which=args.checkpoint,
        grounding_mode=args.grounding_mode,
        attribute_categories=read_json(args.attributes) if args.attributes else None,
        ood_dir=args.ood_dir,
        include_meteor=not args.no_meteor,
        include_spice=not args.no_spice,
        regions=args.regions,
        repeat_regions=args.repeat_regions,
    )
    print(format_table(metrics))
    suffix = output_suffix(args.split, metrics["decoding"])
    print(f"wrote {Path(args.run) / layout.predictions_file(suffix)} and {layout.metrics_file(suffix)}")
    return 0
