"""`REXConfig`: every size and switch of the REX model in one flat dataclass (nanoGPT's GPTConfig).

Each field states its default and help once (`rexlib.options.option`); the training options that set a
model field (`rexlib.training.config.TrainConfig`) read both from here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rexlib.options import check_choices, option

PRESETS: dict[str, dict] = {
    # CPU-sized: trains on the synthetic world in minutes on two cores.
    "tiny": {"hidden_size": 128, "num_layers": 2, "num_heads": 4, "intermediate_size": 256, "decoder_hidden_size": 128,
                 "word_embedding_size": 64, "attention_size": 128, "answer_hidden_size": 256},
    # The paper's sizes: BERT-base backbone over 2048-d bottom-up region features.
    "base": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072, "decoder_hidden_size": 1024,
                 "word_embedding_size": 300, "attention_size": 512, "answer_hidden_size": 1536, "region_feature_dim": 2048},
}
# The paper's model exactly: base sizes, region features only (no box geometry), answer from [CLS].
PRESETS["paper"] = {**PRESETS["base"], "box_geometry": False, "answer_head": "cls", "region_feedback": False,
                    "question_attention": False, "pointer_coverage": False}

ANSWER_HEADS = ("cls", "regions")
BACKBONES = ("visualbert", "lxmert")
GEOMETRY_SIZE = 7  # x1, y1, x2, y2, w, h, area of the normalised box


@dataclass
class REXConfig:
    # vocabularies (filled from vocab.json by `vocab_overrides`)
    explanation_vocab_size: int = option(128, "explanation tokens incl. <pad>/<start>/<end>/<unk>, #k, @k")
    answer_vocab_size: int = option(16, "answers seen in training")
    question_vocab_size: int = option(64, "word-level question vocabulary (ignored with `pretrained`)")
    pad_token_id: int = option(0, "explanation <pad>")
    start_token_id: int = option(1, "explanation <start>")
    end_token_id: int = option(2, "explanation <end>")
    region_token_ids: tuple[int, ...] = option(help="ids of #0..#35", default_factory=lambda: tuple(range(4, 40)))
    # inputs
    region_feature_dim: int = option(32, "D of regions.h5 features (2048 for bottom-up features)")
    num_regions: int = option(36, "detector boxes per image")
    max_explanation_length: int = option(12, "L: decoded tokens before <end>")
    max_question_length: int = option(24, "question tokens incl. [CLS]/[SEP]")
    # backbone
    backbone: str = option("visualbert", "the vision-and-language encoder", choices=BACKBONES)
    pretrained: str | None = option(None, "local Hugging Face directory (never downloaded)")
    hidden_size: int = option(128, "backbone width H")
    num_layers: int = option(2, "backbone layers (LXMERT: language / cross / region each)")
    num_heads: int = option(4, "attention heads")
    intermediate_size: int = option(256, "backbone feed-forward width")
    box_geometry: bool = option(True, "add each region's projected normalised box (+ w, h, area) to VisualBERT's "
                                      "visual embedding; off: the paper's inputs")
    # decoder
    decoder_hidden_size: int = option(128, "both GRUs' state size")
    word_embedding_size: int = option(64, "explanation word embedding")
    attention_size: int = option(128, "region-attention inner size")
    answer_hidden_size: int = option(256, "answer MLP width")
    answer_head: str = option("cls", "cls: MLP on [CLS] (the paper's); regions: [CLS] plus a question-conditioned "
                                     "attention over the fused regions", choices=ANSWER_HEADS)
    dropout: float = option(0.1, "backbone hidden states, word embeddings, decoder output")
    attention_dropout: float = option(0.0, "backbone attention probabilities (a costly mask on CPU)")
    structure_gate: bool = option(True, "the structure gate (REX); off: the baseline (p = p_vocab)")
    question_attention: bool = option(False, "each decoder step also attends over the question's token states and "
                                             "feeds what it read to the attention GRU (the paper's decoder sees the "
                                             "question through [CLS] only); 2 epochs on the demo world: no gain, 9% "
                                             "slower steps")
    region_feedback: bool = option(True, "the region last pointed at (#k) feeds every later step's input and word "
                                         "scores, so the words after it can say what it shows; off: the paper's "
                                         "decoder (the #k embedding alone)")
    pointer_coverage: bool = option(False, "the pointer's region scores get a learnt offset on the regions this "
                                           "explanation has already pointed at (starts at 0, the paper's pointer); "
                                           "references never name a region twice")
    scheduled_sampling: float = option(0.0, "probability of feeding the model's own previous word in training")
    # loss weights, the paper's: total = answer + alpha * explanation + beta * gate (+ gamma * answer attention)
    alpha: float = option(1.0, "explanation-loss (NLL) weight: total = answer + alpha explanation + beta gate")
    beta: float = option(1.0, "structure-gate loss (BCE) weight")
    gamma: float = option(0.0, "answer head 'regions' only: weight of the NLL of its attention on the regions the "
                               "ground-truth explanation points at (#k tokens); 0 = off")

    @classmethod
    def preset(cls, name: str, **overrides) -> REXConfig:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def __post_init__(self):
        check_choices(self)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["region_token_ids"] = list(self.region_token_ids)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> REXConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"REXConfig: unknown fields {sorted(unknown)}")
        values = dict(values)
        # runs saved before these options: the paper's decoder
        for added in ("region_feedback", "question_attention", "pointer_coverage"):
            values.setdefault(added, False)
        if "region_token_ids" in values:
            values["region_token_ids"] = tuple(values["region_token_ids"])
        return cls(**values)


def vocab_overrides(vocab: dict, num_regions: int = 36) -> dict:
    """REXConfig fields that come from vocab.json: sizes and the special / region token ids."""
    explanation = {token: index for index, token in enumerate(vocab["explanation"])}
    missing = [token for token in ("<pad>", "<start>", "<end>") if token not in explanation]
    missing += [f"#{k}" for k in range(num_regions) if f"#{k}" not in explanation]
    if missing:
        raise ValueError(f"vocab.json: explanation vocabulary lacks {missing[:5]}")
    return {
        "explanation_vocab_size": len(vocab["explanation"]),
        "answer_vocab_size": max(len(vocab["answer"]), 1),
        "question_vocab_size": len(vocab["question"]),
        "pad_token_id": explanation["<pad>"],
        "start_token_id": explanation["<start>"],
        "end_token_id": explanation["<end>"],
        "region_token_ids": tuple(explanation[f"#{k}"] for k in range(num_regions)),
        "num_regions": num_regions,
    }
