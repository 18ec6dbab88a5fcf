"""The REX model: `REXConfig` -> `REX` (backbone, answer head, explanation decoder with structure gate)."""

from rexlib.model.config import ANSWER_HEADS, PRESETS, REXConfig, vocab_overrides
from rexlib.model.decoder import (
    AttentionGRU,
    DecoderContext,
    DecoderState,
    ExplanationDecoder,
    LanguageGRU,
    RegionAttention,
    StructureGate,
    mix_distributions,
)
from rexlib.model.rex import (
    LOSS_MODES,
    REX,
    AnswerHead,
    RegionReadingAnswerHead,
    REXOutput,
    batch_accuracies,
    compute_losses,
)

__all__ = [
    "ANSWER_HEADS",
    "LOSS_MODES",
    "PRESETS",
    "REX",
    "AnswerHead",
    "AttentionGRU",
    "DecoderContext",
    "DecoderState",
    "ExplanationDecoder",
    "LanguageGRU",
    "REXConfig",
    "REXOutput",
    "RegionAttention",
    "RegionReadingAnswerHead",
    "StructureGate",
    "batch_accuracies",
    "compute_losses",
    "mix_distributions",
    "vocab_overrides",
]
