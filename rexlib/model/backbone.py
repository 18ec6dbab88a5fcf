"""The vision-language backbone: question tokens + 36 region features -> [CLS] and fused region states.

VisualBERT (the paper's choice) reads region features only; with `box_geometry` (the default) each region's
normalised box x1, y1, x2, y2, its width, height and area are projected and added to VisualBERT's visual
embedding (`GeometryAwareProjection`), since many questions ask where things are. LXMERT reads the boxes itself.
Both come from `transformers`, built from a small config by default, or loaded from a local directory
(`local_files_only=True`: a model never downloads anything behind the user's back).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import AutoConfig, LxmertConfig, LxmertModel, VisualBertConfig, VisualBertModel

from rexlib import layout
from rexlib.model.config import GEOMETRY_SIZE, REXConfig


def box_geometry(boxes: torch.Tensor) -> torch.Tensor:
    """Normalised boxes (..., 4) x1, y1, x2, y2 -> (..., 7): the box, its width, height and area."""
    width = (boxes[..., 2] - boxes[..., 0]).clamp(min=0.0)
    height = (boxes[..., 3] - boxes[..., 1]).clamp(min=0.0)
    return torch.cat([boxes, width[..., None], height[..., None], (width * height)[..., None]], dim=-1)


class GeometryAwareProjection(nn.Module):
    """VisualBERT's visual projection (same `weight` / `bias` names, so pretrained weights load into it)
    plus a projection of each region's geometry, read from the last 7 columns of its input.

    VisualBERT adds its token-type and position embeddings to this output before LayerNorm, so the
    geometry lands in the visual embedding itself. `zero_geometry` makes a loaded model start exactly as
    the pretrained one.
    """

    def __init__(self, original: nn.Linear):
        super().__init__()
        self.feature_dim = original.in_features
        self.weight = original.weight
        self.bias = original.bias
        self.geometry = nn.Linear(GEOMETRY_SIZE, original.out_features)

    def zero_geometry(self) -> None:
        nn.init.zeros_(self.geometry.weight)
        nn.init.zeros_(self.geometry.bias)

    def forward(self, visual_inputs):
        features, geometry = visual_inputs[..., : self.feature_dim], visual_inputs[..., self.feature_dim :]
        return nn.functional.linear(features, self.weight, self.bias) + self.geometry(geometry)


def load_geometry(projection: GeometryAwareProjection, pretrained: str) -> None:
    """The box projection pretrained with the backbone when its directory has one, else zeros (so a
    backbone pretrained without geometry, e.g. `visualbert-vqa-coco-pre`, starts exactly as it was)."""
    path = Path(pretrained) / layout.BACKBONE_GEOMETRY
    if not path.is_file():
        projection.zero_geometry()
        return
    weights = load_file(str(path))
    expected = {"weight": tuple(projection.geometry.weight.shape), "bias": tuple(projection.geometry.bias.shape)}
    found = {key: tuple(value.shape) for key, value in weights.items()}
    if found != expected:
        raise ValueError(f"{path}: box projection of shapes {found}, the backbone needs {expected}")
    projection.geometry.load_state_dict(weights)


@dataclass
class BackboneOutput:
    cls: torch.Tensor        # (B, H)     [CLS] state: the question read against the image
    regions: torch.Tensor    # (B, 36, H) fused region states (what the decoder attends to and points at)
    text: torch.Tensor       # (B, Lq, H) fused question-token states (their mask is the input's)


def visualbert_config(config: REXConfig) -> VisualBertConfig:
    return VisualBertConfig(
        vocab_size=config.question_vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        visual_embedding_dim=config.region_feature_dim,
        max_position_embeddings=max(64, config.max_question_length),
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.attention_dropout,
        pad_token_id=0,
    )


def pretrained_sizes(pretrained: str) -> dict:
    """The REXConfig sizes of the backbone saved in a local Hugging Face directory (its config.json decides
    them when the weights load, whatever the preset says), so a run's config.json names what it trained."""
    saved = AutoConfig.from_pretrained(pretrained, local_files_only=True)
    # LXMERT's num_hidden_layers is a dict per encoder; its language layers are what REXConfig.num_layers sets
    layers = getattr(saved, "l_layers", None) or saved.num_hidden_layers
    sizes = {"hidden_size": saved.hidden_size, "num_layers": layers, "num_heads": saved.num_attention_heads,
             "intermediate_size": saved.intermediate_size}
    return {name: value for name, value in sizes.items() if value is not None}


def _lxmert_config(config: REXConfig) -> LxmertConfig:
    return LxmertConfig(
        vocab_size=config.question_vocab_size,
        hidden_size=config.hidden_size,
        num_attention_heads=config.num_heads,
        intermediate_size=config.intermediate_size,
        l_layers=config.num_layers,
        x_layers=max(1, config.num_layers // 2),
        r_layers=config.num_layers,
        visual_feat_dim=config.region_feature_dim,
        visual_pos_dim=4,
        max_position_embeddings=max(64, config.max_question_length),
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.attention_dropout,
        pad_token_id=0,
    )


class Backbone(nn.Module):
    def __init__(self, config: REXConfig):
        super().__init__()
        self.kind = config.backbone
        self.geometry = False
        if config.backbone == "visualbert":
            if config.pretrained:
                self.model = VisualBertModel.from_pretrained(config.pretrained, local_files_only=True,
                                                             add_pooling_layer=False)
            else:
                self.model = VisualBertModel(visualbert_config(config), add_pooling_layer=False)
            feature_dim = self.model.config.visual_embedding_dim
            self.geometry = config.box_geometry
            if self.geometry:
                projection = GeometryAwareProjection(self.model.embeddings.visual_projection)
                if config.pretrained:
                    load_geometry(projection, config.pretrained)
                self.model.embeddings.visual_projection = projection
        elif config.backbone == "lxmert":
            if config.pretrained:
                self.model = LxmertModel.from_pretrained(config.pretrained, local_files_only=True)
            else:
                self.model = LxmertModel(_lxmert_config(config))
            feature_dim = self.model.config.visual_feat_dim
        else:
            raise ValueError(f"backbone must be 'visualbert' or 'lxmert', got {config.backbone!r}")
        if feature_dim != config.region_feature_dim:
            raise ValueError(f"backbone {config.pretrained or config.backbone} expects {feature_dim}-d region "
                             f"features, the store has {config.region_feature_dim}-d")
        self.hidden_size = self.model.config.hidden_size

    def forward(self, question_tokens, question_mask, region_features, region_boxes) -> BackboneOutput:
        # question_tokens (B,Lq) long, question_mask (B,Lq) bool, region_features (B,36,D), region_boxes (B,36,4)
        text_length = question_tokens.shape[1]
        region_mask = torch.ones(region_features.shape[:2], dtype=torch.long, device=region_features.device)
        if self.kind == "visualbert":
            visual_inputs = region_features
            if self.geometry:
                visual_inputs = torch.cat([region_features, box_geometry(region_boxes)], dim=-1)  # (B,36,D+7)
            hidden = self.model(
                input_ids=question_tokens,
                attention_mask=question_mask.long(),
                visual_embeds=visual_inputs,
                visual_attention_mask=region_mask,
            ).last_hidden_state                                           # (B, Lq+36, H)
            return BackboneOutput(cls=hidden[:, 0], regions=hidden[:, text_length:], text=hidden[:, :text_length])
        output = self.model(
            input_ids=question_tokens,
            visual_feats=region_features,
            visual_pos=region_boxes,
            attention_mask=question_mask.long(),
            visual_attention_mask=region_mask,
        )
        return BackboneOutput(cls=output.language_output[:, 0], regions=output.vision_output,  # (B,H), (B,36,H)
                              text=output.language_output)
