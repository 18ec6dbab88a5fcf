"""Explanation quality as caption metrics: BLEU-1..4, METEOR, ROUGE-L, CIDEr and (when possible) SPICE.

Scoring goes through ``pycocoevalcap`` (the COCO caption toolkit the REX authors used). Two choices
differ from a plain COCO evaluation, on purpose:

* **No PTB tokenizer.** Explanations are already space-separated tokens, and the tokenizer would split
  region tokens ``#3`` into ``# 3`` and drop punctuation. We split on whitespace, so ``#k`` and ``@k``
  stay whole words: a wrong region is a wrong word.
* **Empty predictions are penalised, not dropped** (``empty_predictions="penalize"``, the default). The
  authors' code removes empty predictions before scoring and multiplies every corpus score by
  ``kept / (kept + empty)``. We do the same, so an empty prediction contributes 0 to every metric: for
  the metrics that average per question (ROUGE-L, CIDEr, SPICE) this is exactly "score 0 for that
  question"; for BLEU and METEOR, which pool statistics over the corpus, it is the authors' scaling.
  ``empty_predictions="skip"`` drops them without penalty (only for diagnosis; never for a table).

Scores are multiplied by 100, as in the paper's tables (CIDEr therefore reads ``464.2``, not ``4.642``).
CIDEr-D takes its document frequencies from the evaluated references themselves, so it needs a corpus of
several questions: a single question always scores 0.

SPICE needs Stanford CoreNLP jars that ``pycocoevalcap`` would download on first use. We never download:
when the jars are missing from pycocoevalcap's ``spice/lib`` folder, the result holds ``"SPICE": None``
and ``"SPICE_status": "unavailable: ..."``, and every other metric is still computed.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

BLEU_NAMES = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")
METRIC_NAMES = (*BLEU_NAMES, "METEOR", "ROUGE-L", "CIDEr", "SPICE")
EMPTY_PREDICTION_POLICIES = ("penalize", "skip")

# The jars pycocoevalcap's get_stanford_models() would otherwise fetch from the internet.
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def spice_library_folder() -> Path:
    """pycocoevalcap's ``spice/lib`` folder, where SPICE looks for the Stanford CoreNLP jars."""
    import pycocoevalcap

    return Path(next(iter(pycocoevalcap.__path__))) / "spice" / "lib"


def spice_status() -> str:
    """``"available"``, or ``"unavailable: <reason>"``; never triggers a download."""
    if shutil.which("java") is None:
        return "unavailable: no java executable on PATH"
    folder = spice_library_folder()
    missing = [name for name in CORENLP_JARS if not (folder / name).is_file()]
    if missing:
        return f"unavailable: Stanford CoreNLP jars not found in {folder} (missing {', '.join(missing)})"
    return "available"


@contextlib.contextmanager
def meteor_scorer() -> Iterator[object]:
    """A running pycocoevalcap METEOR scorer (one java process), closed on exit whatever happens.

    Starting java costs a few seconds, so score a whole corpus in one call inside one ``with``.
    """
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        yield scorer
    finally:
        process = scorer.meteor_p
        with contextlib.suppress(OSError, ValueError):
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except Exception:  # noqa: BLE001 - whatever went wrong, the process must not outlive us
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.close()


def _normalise(text: str) -> str:
    """One space between tokens; pycocoevalcap's scorers split on single spaces."""
    return " ".join(text.split())


def caption_scores(
    references: Mapping[str, Sequence[str]],
    predictions: Mapping[str, str],
    *,
    empty_predictions: str = "penalize",
    include_meteor: bool = True,
    include_spice: bool = True,
    per_question: bool = False,
) -> dict:
    """Score predicted explanations against reference explanations, every score ×100.

    Args:
        references: question id -> reference explanations (token strings). A question whose
            references are all empty has no ground truth and is left out (as in the authors' code).
        predictions: question id -> predicted explanation (space-separated tokens). Every predicted
            question id must have references.
        empty_predictions: ``"penalize"`` (default, the authors' rule): an empty prediction is kept
            and contributes 0 to every metric, by scaling each corpus score by non-empty / all.
            ``"skip"``: empty predictions are left out of the corpus entirely.
        include_meteor: run METEOR (one java process, a few seconds to start).
        include_spice: run SPICE when its jars are present; otherwise report why not.
        per_question: also return ``"per_question": {metric: {question id: score}}`` for BLEU-4,
            METEOR, ROUGE-L and CIDEr (empty predictions score 0 there).

    Returns:
        ``{"BLEU-1".."BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE": float | None,
        "METEOR_status", "SPICE_status": str, "questions": scored, "empty_predictions": count,
        "without_reference": count, "empty_prediction_policy": str}``.
    """
    if empty_predictions not in EMPTY_PREDICTION_POLICIES:
        raise ValueError(
            f"empty_predictions must be one of {EMPTY_PREDICTION_POLICIES}, not {empty_predictions!r}"
        )
    gts: dict[str, list[str]] = {}
    res: dict[str, list[str]] = {}
    empty: list[str] = []
    without_reference = 0
    for question_id, prediction in predictions.items():
        if question_id not in references:
            raise ValueError(f"question {question_id}: a prediction without reference explanations")
        if not isinstance(prediction, str):
            raise TypeError(
                f"question {question_id}: prediction must be a string, not {type(prediction).__name__}"
            )
        kept_references = [_normalise(text) for text in references[question_id] if _normalise(text)]
        if not kept_references:
            without_reference += 1
            continue
        if not _normalise(prediction):
            empty.append(question_id)
            continue
        gts[question_id] = kept_references
        res[question_id] = [_normalise(prediction)]

    counted = len(res) + (len(empty) if empty_predictions == "penalize" else 0)
    if counted == 0:
        raise ValueError("no question to score: every prediction lacks a reference explanation")
    # Each corpus score is scaled by kept / counted: empty predictions weigh in as zeros.
    weight = len(res) / counted

    result: dict = {name: None for name in METRIC_NAMES}
    per_question_scores: dict[str, dict[str, float]] = {}

    def record(name: str, corpus_score: float, scores: Sequence[float] | None) -> None:
        result[name] = float(corpus_score) * 100.0 * weight
        if per_question and scores is not None:
            table = {question_id: float(score) * 100.0 for question_id, score in zip(res, scores)}
            if empty_predictions == "penalize":
                table.update({question_id: 0.0 for question_id in empty})
            per_question_scores[name] = table

    if res:
        bleu, bleu_per_question = Bleu(4).compute_score(gts, res, verbose=0)
        for order, name in enumerate(BLEU_NAMES):
            record(name, bleu[order], bleu_per_question[order] if name == "BLEU-4" else None)
        rouge, rouge_per_question = Rouge().compute_score(gts, res)
        record("ROUGE-L", rouge, rouge_per_question)
        cider, cider_per_question = Cider().compute_score(gts, res)
        record("CIDEr", cider, cider_per_question)
    else:  # only empty predictions, all penalised
        for name in (*BLEU_NAMES, "ROUGE-L", "CIDEr"):
            result[name] = 0.0

    result["METEOR_status"] = "skipped: include_meteor=False"
    if include_meteor:
        if shutil.which("java") is None:
            result["METEOR_status"] = "unavailable: no java executable on PATH"
        elif res:
            try:
                with meteor_scorer() as scorer:
                    meteor, meteor_per_question = scorer.compute_score(gts, res)
            except (OSError, ValueError) as error:  # java could not start, or died (e.g. out of memory)
                result["METEOR_status"] = f"failed: {type(error).__name__}: {error}"
            else:
                record("METEOR", meteor, meteor_per_question)
                result["METEOR_status"] = "computed"
        else:
            result["METEOR"] = 0.0
            result["METEOR_status"] = "computed"

    result["SPICE_status"] = "skipped: include_spice=False"
    if include_spice:
        status = spice_status()
        result["SPICE_status"] = status
        if status == "available" and res:
            try:
                from pycocoevalcap.spice.spice import Spice

                spice, _ = Spice().compute_score(gts, res)
                record("SPICE", spice, None)
                result["SPICE_status"] = "computed"
            except Exception as error:  # noqa: BLE001 - SPICE is optional; report and carry on
                result["SPICE_status"] = f"failed: {type(error).__name__}: {error}"
        elif status == "available":
            result["SPICE"] = 0.0
            result["SPICE_status"] = "computed"

    result.update(
        questions=counted,
        empty_predictions=len(empty),
        without_reference=without_reference,
        empty_prediction_policy=empty_predictions,
    )
    if per_question:
        result["per_question"] = per_question_scores
    return result
