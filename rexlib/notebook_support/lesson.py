"""Tables for 02's walk through one batch: tensor shapes, the structure gate token by token, the losses.

The notebook makes the calls itself (`REXConfig`, `REX(config)(batch)`, `compute_losses`, an optimiser
step); these functions only lay what they return out as tables a student can read.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import torch


def shapes(values) -> pd.DataFrame:
    """name, shape and dtype of each tensor of a batch dict or of a dataclass such as `REXOutput`."""
    items = dataclasses.asdict(values).items() if dataclasses.is_dataclass(values) else values.items()
    return pd.DataFrame([{"name": name, "shape": tuple(value.shape) if torch.is_tensor(value) else None,
                          "dtype": str(value.dtype).removeprefix("torch.") if torch.is_tensor(value) else type(value).__name__}
                         for name, value in items], columns=["name", "shape", "dtype"])


def explained_row(batch: dict, region_token_ids) -> int:
    """The first question of the batch whose explanation points at a region (a `#k` token)."""
    ids = torch.as_tensor(list(region_token_ids))
    named = (torch.isin(batch["explanation_tokens"], ids) & batch["explanation_mask"]).any(dim=1)
    if not named.any():
        raise ValueError("no explanation of this batch holds a region token")
    return int(named.nonzero()[0, 0])


def gate_table(output, batch: dict, row: int, explanation_vocabulary: list[str]) -> pd.DataFrame:
    """The structure gate on one explanation, one row per token (teacher forcing: the model reads the
    true previous tokens): the token, whether it is a word or a region, the gate's target, the weights
    g_t (word) and 1 - g_t (region), and the region s_t points at most with its probability."""
    if output.gate is None:
        raise ValueError("this model has no structure gate (the baseline)")
    length = int(batch["explanation_mask"][row].sum())
    tokens = batch["explanation_tokens"][row, :length].tolist()
    gate = output.gate[row, :length].detach()
    similarity = output.region_similarity[row, :length].detach()
    rows = []
    for step, token in enumerate(tokens):
        word = explanation_vocabulary[token]
        region = int(similarity[step].argmax())
        rows.append({"step": step, "token": word, "kind": "region" if word.startswith("#") else "word",
                     "gate target": float(batch["gate_targets"][row, step]), "word weight g_t": float(gate[step]),
                     "region weight 1-g_t": float(1 - gate[step]), "points at": f"#{region}",
                     "s_t of it": float(similarity[step, region])})
    return pd.DataFrame(rows)


def pointed_explanation(table: pd.DataFrame) -> str:
    """The explanation with each region token replaced by the region the model points at (to draw)."""
    return " ".join(row["points at"] if row["kind"] == "region" else row["token"] for _, row in table.iterrows()
                    if row["token"] != "<end>")


def loss_table(losses: dict, config) -> pd.DataFrame:
    """Each loss term, its weight in the paper's total (answer + α explanation + β gate, plus γ on the
    answer head's attention when γ > 0) and its weighted value; the last row is `total` as computed."""
    weights = {"answer": 1.0, "explanation": config.alpha, "gate": config.beta, "answer_attention": config.gamma}
    rows = [{"term": term, "value": float(losses[term]), "weight": weight, "weighted": weight * float(losses[term])}
            for term, weight in weights.items() if term in losses]
    rows.append({"term": "total", "value": float(losses["total"]), "weight": None,
                 "weighted": sum(row["weighted"] for row in rows)})
    return pd.DataFrame(rows)
