"""Every number the paper reports about an explanation and an answer.

``captions`` (BLEU, METEOR, ROUGE-L, CIDEr, SPICE via pycocoevalcap), ``grounding`` (IoU of the named
regions with the referred objects, over its upper bound), ``attributes`` (attribute recall per category),
``answers`` (accuracy per type and family, GQA-OOD head/tail). ``rexlib.evaluate`` ties them to files.
"""

from rexlib.metrics.answers import answer_accuracy, derive_ood_splits, ood_accuracy, ood_question_ids
from rexlib.metrics.attributes import attribute_recall
from rexlib.metrics.captions import caption_scores, spice_status
from rexlib.metrics.grounding import grounding_score, region_indices, union_iou

__all__ = [
    "answer_accuracy",
    "attribute_recall",
    "caption_scores",
    "derive_ood_splits",
    "grounding_score",
    "ood_accuracy",
    "ood_question_ids",
    "region_indices",
    "spice_status",
    "union_iou",
]
