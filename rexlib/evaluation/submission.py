"""GQA test-standard submission: ``python -m rexlib submission --run DIR --data DIR --split testdev --out FILE``.

GQA's evaluation server takes one json list, ``[{"questionId": "201307251", "prediction": "yes"}, ...]``,
with an answer for every question of the submitted split. The answers come from decoding the split
with the run's checkpoint, or from an existing ``predictions_{split}.json`` (``--predictions``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rexlib.evaluation.evaluate import decode_split, resolve_data_dir
from rexlib.io import read_json, write_json


def submission_entries(predictions: dict[str, dict | str]) -> list[dict[str, str]]:
    """Predictions (question id -> {"answer": ...} or the answer itself) -> GQA's submission list."""
    entries = []
    for question_id, prediction in predictions.items():
        answer = prediction.get("answer") if isinstance(prediction, dict) else prediction
        if not isinstance(answer, str):
            raise TypeError(f"question {question_id}: no answer string to submit (got {answer!r})")
        entries.append({"questionId": str(question_id), "prediction": answer})
    return entries


def write_submission(predictions: dict[str, dict | str], out: str | Path) -> int:
    """Write the submission file atomically; returns the number of answers written."""
    entries = submission_entries(predictions)
    write_json(out, entries, indent=1)
    return len(entries)


def predictions_from_run(
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    split: str = "testdev",
    *,
    which: str = "best",
    batch_size: int = 64,
    progress: bool = True,
) -> dict[str, dict]:
    """Decode ``split`` greedily with the run's checkpoint (answers do not depend on the beam)."""
    from rexlib.model.pretrained import load_trained_run

    run = load_trained_run(run_dir, which=which)
    return decode_split(
        run.model,
        resolve_data_dir(run_dir, data_dir, run.train),
        split,
        vocab=run.vocab,
        tokenizer=run.tokenizer,
        batch_size=batch_size,
        progress=progress,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", default=None, help="run folder with checkpoint_best.pt")
    parser.add_argument("--data", default=None, help="GQA-REX dataset folder (default: the run's config)")
    parser.add_argument("--split", default="testdev", help="split to answer (default: testdev)")
    parser.add_argument("--out", required=True, help="submission json to write")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint")
    parser.add_argument("--batch-size", type=int, default=64, help="questions per batch (default: 64)")
    parser.add_argument(
        "--predictions", default=None, help="use this predictions_{split}.json instead of decoding again"
    )


def run(args: argparse.Namespace) -> int:
    if args.predictions:
        predictions = read_json(args.predictions)
        if not isinstance(predictions, dict):
            raise ValueError(f"{args.predictions}: expected a json object question id -> prediction")
    elif args.run:
        predictions = predictions_from_run(
            args.run, args.data, args.split, which=args.checkpoint, batch_size=args.batch_size
        )
    else:
        raise SystemExit("submission: pass --run DIR (decode) or --predictions FILE")
    count = write_submission(predictions, args.out)
    print(f"wrote {count} answers for {args.split} to {args.out}")
    return 0
