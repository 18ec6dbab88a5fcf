"""Every number the paper reports about an explanation and an answer.

``captions`` (BLEU, METEOR, ROUGE-L, CIDEr, SPICE via pycocoevalcap), ``grounding`` (IoU of the named
regions with the referred objects, over its upper bound), ``attributes`` (attribute recall per category),
``answers`` (accuracy per type and family, GQA-OOD head/tail). Beyond the paper: ``statements`` reads a
generated explanation back into the executor's statements and ``faithfulness`` checks them on the scene
graph (faithfulness, consistency with the answer, parse rate). ``rexlib.evaluation.evaluate`` ties them to files.
"""

from rexlib.evaluation.metrics.answers import (
    answer_accuracy,
    derive_ood_splits,
    ood_accuracy,
    ood_question_ids,
)
from rexlib.evaluation.metrics.attributes import attribute_recall
from rexlib.evaluation.metrics.captions import caption_scores, spice_status
from rexlib.evaluation.metrics.faithfulness import (
    MIN_RESOLUTION_IOU,
    explanation_truth,
    judge,
    judge_predictions,
)
from rexlib.evaluation.metrics.grounding import grounding_score, region_indices, union_iou
from rexlib.evaluation.metrics.statements import Lexicon, read_explanation

__all__ = [
    "MIN_RESOLUTION_IOU",
    "Lexicon",
    "answer_accuracy",
    "attribute_recall",
    "caption_scores",
    "derive_ood_splits",
    "explanation_truth",
    "grounding_score",
    "judge",
    "judge_predictions",
    "ood_accuracy",
    "ood_question_ids",
    "read_explanation",
    "region_indices",
    "spice_status",
    "union_iou",
]
