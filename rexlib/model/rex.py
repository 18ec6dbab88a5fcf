"""The whole REX model (backbone + answer head + explanation decoder) and its losses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rexlib import layout
from rexlib.io import atomic_path, read_json, write_json
from rexlib.model.backbone import Backbone
from rexlib.model.config import REXConfig
from rexlib.model.decoder import DecoderContext, ExplanationDecoder

LOSS_MODES = ("multitask", "explanation", "vqa")


@dataclass
class REXOutput:
    """The same structure whatever the options: the baseline leaves `gate`/`region_similarity` as None."""

    log_probs: torch.Tensor                        # (B, T, V) log of the (mixed) word distribution
    answer_logits: torch.Tensor                    # (B, A)
    gate: torch.Tensor | None = None               # (B, T) structure gate g_t (1 = word, 0 = region)
    region_similarity: torch.Tensor | None = None  # (B, T, 36) s_t
    answer_attention: torch.Tensor | None = None   # (B, 36) the region-reading answer head's attention


class AnswerHead(nn.Module):
    """An MLP on the [CLS] state -> answer logits (the paper's head)."""

    def __init__(self, hidden_size: int, inner_size: int, answer_vocab_size: int, dropout: float,
                 input_size: int | None = None):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(input_size or hidden_size, inner_size), nn.GELU(), nn.LayerNorm(inner_size), nn.Dropout(dropout),
            nn.Linear(inner_size, answer_vocab_size),
        )

    def forward(self, cls, regions=None):
        return self.layers(cls), None                                                  # (B,A), no attention


class RegionReadingAnswerHead(AnswerHead):
    """[CLS] plus the regions the question points at: attention a_k = softmax(w . tanh(W_r r_k + W_q cls)),
    then the MLP reads [cls, sum_k a_k r_k, cls * sum_k a_k r_k]. [CLS] alone must squeeze 36 regions
    into one vector; reading the attended regions directly gives the answer the image's own states."""

    def __init__(self, hidden_size: int, inner_size: int, answer_vocab_size: int, dropout: float):
        super().__init__(hidden_size, inner_size, answer_vocab_size, dropout, input_size=3 * hidden_size)
        self.region_projection = nn.Linear(hidden_size, hidden_size)
        self.question_projection = nn.Linear(hidden_size, hidden_size, bias=False)
        self.score = nn.Linear(hidden_size, 1)

    def forward(self, cls, regions=None):
        # cls (B,H), regions (B,K,H)
        scores = self.score(torch.tanh(self.region_projection(regions) + self.question_projection(cls)[:, None]))
        attention = torch.softmax(scores, dim=1)                                       # (B,K,1)
        attended = (attention * regions).sum(dim=1)                                    # (B,H)
        return self.layers(torch.cat([cls, attended, cls * attended], dim=-1)), attention.squeeze(-1)


def full_precision(like: torch.Tensor):
    """Turns a surrounding bf16 autocast (`--precision`) off: only the backbone, most of a step's time, trains in
    bf16. The heads and the decoder stay fp32: the pointer over 36 regions and the gate's loss want full
    precision, and a whole-model bf16 run lost 5.6 grounding points (2 epochs, batch 32, seed 0)."""
    return torch.autocast(like.device.type, enabled=False)


class REX(nn.Module):
    def __init__(self, config: REXConfig):
        super().__init__()
        self.config = config
        self.backbone = Backbone(config)
        hidden = self.backbone.hidden_size
        head = RegionReadingAnswerHead if config.answer_head == "regions" else AnswerHead
        self.answer_head = head(hidden, config.answer_hidden_size, config.answer_vocab_size, config.dropout)
        self.decoder = ExplanationDecoder(config, hidden)

    def encode(self, batch) -> tuple[DecoderContext, torch.Tensor]:
        """Backbone + answer head: the decoder's context and the answer logits (B,A)."""
        context, answer_logits, _ = self._encode(batch)
        return context, answer_logits

    def _encode(self, batch):
        fused = self.backbone(batch["question_tokens"], batch["question_mask"], batch["region_features"],
                              batch["region_boxes"])
        cls, regions, text = fused.cls.float(), fused.regions.float(), fused.text.float()
        with full_precision(cls):
            answer_logits, attention = self.answer_head(cls, regions)
            context = self.decoder.prepare(cls, regions, text, batch["question_mask"].bool())
        return context, answer_logits, attention

    def forward(self, batch) -> REXOutput:
        context, answer_logits, attention = self._encode(batch)
        with full_precision(context.regions):
            log_probs, gate, similarity = self.decoder(context, batch["explanation_tokens"])
        return REXOutput(log_probs=log_probs, answer_logits=answer_logits, gate=gate, region_similarity=similarity,
                         answer_attention=attention)

    # -- a run folder holds the model as config.json's "model" section and checkpoint_{best,last}.pt's "model"
    def save_pretrained(self, run_dir: str | os.PathLike, which: str = "best", **state) -> None:
        """Write what :meth:`from_pretrained` reads: the REXConfig into ``run_dir/config.json`` (its other
        sections, e.g. the training options, are kept) and the weights into ``checkpoint_{which}.pt``, with
        ``state`` beside them (e.g. the step they were taken at)."""
        run_dir = Path(run_dir)
        config_path = run_dir / layout.RUN_CONFIG
        saved = read_json(config_path) if config_path.is_file() else {}
        write_json(config_path, {**saved, "model": self.config.to_dict()}, indent=2)
        with atomic_path(run_dir / layout.checkpoint_file(which)) as temporary:
            torch.save({"model": self.state_dict(), **state}, temporary)

    @classmethod
    def from_pretrained(cls, run_dir: str | os.PathLike, which: str = "best") -> REX:
        """The model saved in a run folder (a training run, or :meth:`save_pretrained`), on the CPU in eval mode."""
        path = Path(run_dir) / layout.checkpoint_file(which)
        config = saved_model_config(run_dir)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(checkpoint, dict) or "model" not in checkpoint:
            raise ValueError(f"{path}: no 'model' weights")
        model = cls(config)
        model.load_state_dict(checkpoint["model"])
        return model.eval()


def saved_model_config(run_dir: str | os.PathLike) -> REXConfig:
    """The REXConfig in a run folder's config.json; a missing file or section is an error naming it."""
    path = Path(run_dir) / layout.RUN_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; is {run_dir} a training run?")
    saved = read_json(path)
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
        raise ValueError(f"{path}: no 'model' section (the run's REXConfig)")  # noqa: TRY004 - a bad file
    try:
        return REXConfig.from_dict(saved["model"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from error


def explained_regions(explanation_tokens, region_token_ids) -> torch.Tensor:
    """(B,K) float: 1 where the explanation names region k with its `#k` token."""
    ids = torch.as_tensor(region_token_ids, device=explanation_tokens.device)                    # (K,)
    return (explanation_tokens[..., None] == ids).any(dim=1).float()                              # (B,K)


def compute_losses(output: REXOutput, batch, config: REXConfig, mode: str = "multitask") -> dict[str, torch.Tensor]:
    """`total`, `explanation`, `answer`, `gate` (scalars).

    The paper's total: answer + alpha explanation + beta gate (multitask, plus gamma times the answer head's
    attention loss); explanation: no answer term; vqa: the answer loss alone.
    """
    if mode not in LOSS_MODES:
        raise ValueError(f"loss mode must be one of {LOSS_MODES}, got {mode!r}")
    targets = batch["explanation_tokens"]                                          # (B,T)
    mask = batch["explanation_mask"].float()                                       # (B,T)
    token_nll = -output.log_probs.gather(-1, targets[..., None]).squeeze(-1)       # (B,T)
    explanation = (token_nll * mask).sum() / mask.sum().clamp(min=1.0)

    answers = batch["answers"]
    if (answers >= 0).any():
        answer = F.cross_entropy(output.answer_logits, answers, ignore_index=-1)
    else:
        answer = output.answer_logits.sum() * 0.0

    if output.gate is not None:
        gate_targets = batch["gate_targets"]
        positives = (gate_targets * mask).sum()
        negatives = ((1 - gate_targets) * mask).sum()
        total_tokens = positives + negatives
        # Class-balanced: words (1) far outnumber region tokens (0); each class weighs half.
        weights = torch.where(gate_targets > 0.5, total_tokens / (2 * positives.clamp(min=1.0)),
                              total_tokens / (2 * negatives.clamp(min=1.0))) * mask
        gate_bce = F.binary_cross_entropy(output.gate.clamp(1e-6, 1 - 1e-6), gate_targets, reduction="none")
        gate = (gate_bce * weights).sum() / mask.sum().clamp(min=1.0)
    else:
        gate = explanation.new_zeros(())

    attention = explanation.new_zeros(())
    # Multi-task only: the attention is taught by explanations, which the answer-only diagnostic must not see.
    if output.answer_attention is not None and config.gamma > 0 and mode == "multitask":
        # Teach the answer head where to look: the regions the ground-truth explanation points at.
        named = explained_regions(targets * batch["explanation_mask"], config.region_token_ids)
        has_regions = named.sum(dim=1) > 0
        if has_regions.any():
            target = named[has_regions] / named[has_regions].sum(dim=1, keepdim=True)
            log_attention = output.answer_attention[has_regions].clamp(min=1e-9).log()
            attention = -(target * log_attention).sum(dim=1).mean()

    if mode == "multitask":
        total = answer + config.alpha * explanation + config.beta * gate + config.gamma * attention
    elif mode == "explanation":
        total = config.alpha * explanation + config.beta * gate
    else:
        total = answer
    return {"total": total, "explanation": explanation, "answer": answer, "gate": gate, "answer_attention": attention}


@torch.no_grad()
def batch_accuracies(output: REXOutput, batch) -> dict[str, float]:
    """Cheap in-loop metrics: teacher-forced token accuracy and answer accuracy (as counts)."""
    mask = batch["explanation_mask"]
    correct_tokens = ((output.log_probs.argmax(-1) == batch["explanation_tokens"]) & mask).sum().item()
    answers = batch["answers"]
    known = answers >= 0
    correct_answers = ((output.answer_logits.argmax(-1) == answers) & known).sum().item()
    return {"correct_tokens": correct_tokens, "tokens": mask.sum().item(),
            "correct_answers": correct_answers, "answers": known.sum().item()}
