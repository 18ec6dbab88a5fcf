"""Linear probes: does a representation of the regions carry what the explanations must say?

REX names the wrong colour most of the time. Either colour is missing from what the model reads, or the
model has it and fails to use it (points at the wrong region, or never learns to say what it sees). A probe
separates the two: a linear classifier is fitted from each grounded region's representation to its object's
value in one attribute category (colour, material, ...) on four fifths of the images, and scored on the
rest. Two representations are probed: the detector's region features, and the fused region states of a
trained run's backbone reading the question each region was grounded for.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rexlib import layout
from rexlib.io import read_json
from rexlib.training.data import REXDataset

HELD_OUT_SHARE = 0.2  # images whose regions score the probe (chosen by a hash of the image row)


def grounded_values(data_dir: str | Path, scene_graphs_file: str | Path, split: str, category: str,
                    dataset: REXDataset | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """For each question of ``split`` (dataset positions) and each object its explanation names that has
    exactly one value of ``category``: (positions (N,), regions (N,), values (N,) as strings).

    The region is the one the build grounded the object to (`grounding_{split}.json`); the value comes from
    the scene graph, the category from the store's mined table (`attribute_categories.json`)."""
    data_dir = Path(data_dir)
    dataset = dataset or REXDataset(data_dir, split)
    categories = read_json(data_dir / layout.ATTRIBUTE_CATEGORIES)
    grounding = read_json(data_dir / layout.grounding_file(split))
    objects = {object_id: obj for scene in read_json(scene_graphs_file).values()
               for object_id, obj in (scene.get("objects") or {}).items()}
    positions, regions, values = [], [], []
    for position, question_id in enumerate(dataset.question_ids):
        grounded = grounding.get(str(question_id)) or {}
        for object_id, region in zip(grounded.get("objects", []), grounded.get("regions", [])):
            found = [a for a in (objects.get(object_id) or {}).get("attributes", []) if categories.get(a) == category]
            if len(found) == 1 and region is not None and region >= 0:
                positions.append(position)
                regions.append(int(region))
                values.append(found[0])
    return np.array(positions, dtype=np.int64), np.array(regions, dtype=np.int64), values


@torch.no_grad()
def region_representations(dataset: REXDataset, positions: np.ndarray, regions: np.ndarray, model=None,
                           batch_size: int = 128) -> np.ndarray:
    """(N, D) the detector features of the chosen regions, or (N, H) the fused states ``model``'s backbone
    gives them while reading each position's question."""
    rows = []
    for start in range(0, len(positions), batch_size):
        batch = dataset.batch(positions[start:start + batch_size])
        chosen = torch.as_tensor(regions[start:start + batch_size])
        if model is None:
            states = batch["region_features"]
        else:
            states = model.backbone(batch["question_tokens"], batch["question_mask"], batch["region_features"],
                                    batch["region_boxes"]).regions
        rows.append(states[torch.arange(len(chosen)), chosen].float().numpy())
    return np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)


def held_out(image_rows: np.ndarray) -> np.ndarray:
    """True for the images that score the probe: a fixed hash of the image row, so no image is on both sides."""
    return np.array([zlib.crc32(str(int(row)).encode()) % 1000 < HELD_OUT_SHARE * 1000 for row in image_rows])


def linear_probe(inputs: np.ndarray, labels: np.ndarray, test: np.ndarray, steps: int = 300, seed: int = 0) -> float:
    """Accuracy on ``test`` rows of a softmax regression fitted (full batch, Adam) on the other rows."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(inputs, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.long)
    train = ~torch.as_tensor(test)
    mean, std = x[train].mean(0), x[train].std(0).clamp(min=1e-6)
    x = (x - mean) / std
    layer = torch.nn.Linear(x.shape[1], int(y.max()) + 1)
    torch.nn.init.normal_(layer.weight, std=0.01, generator=generator)
    optimiser = torch.optim.Adam(layer.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(steps):
        optimiser.zero_grad()
        F.cross_entropy(layer(x[train]), y[train]).backward()
        optimiser.step()
    with torch.no_grad():
        return float((layer(x[~train]).argmax(1) == y[~train]).float().mean())


def attribute_probe(data_dir: str | Path, scene_graphs_file: str | Path, split: str = "train",
                    category: str = "color", models: dict | None = None, max_rows: int = 6000) -> dict:
    """Probe accuracy (%) of ``category`` from the detector features and from each of ``models`` (name ->
    (REX, its question tokenizer or None)), with the share of the most frequent value among the held-out
    rows (what a probe that reads nothing scores) and the numbers of objects and values probed."""
    dataset = REXDataset(data_dir, split)
    positions, regions, values = grounded_values(data_dir, scene_graphs_file, split, category, dataset)
    positions, regions, values = positions[:max_rows], regions[:max_rows], values[:max_rows]
    if len(positions) < 20:
        raise ValueError(f"{data_dir}: {split}: only {len(positions)} grounded objects with a {category} value")
    names = sorted(set(values))
    labels = np.array([names.index(value) for value in values])
    test = held_out(dataset.arrays["image_index"][positions])
    results = {"detector features": 100 * linear_probe(region_representations(dataset, positions, regions),
                                                       labels, test)}
    for name, (model, tokenizer) in (models or {}).items():
        # The same questions in the same order, read with the model's own tokenizer.
        read = REXDataset(data_dir, split, tokenizer=tokenizer) if tokenizer is not None else dataset
        results[name] = 100 * linear_probe(region_representations(read, positions, regions, model.eval()), labels, test)
    results["most frequent value"] = 100 * float(np.bincount(labels[test]).max() / max(test.sum(), 1))
    results["objects"], results["values"] = len(labels), len(names)
    return results


def first_region(tokens: list[str]) -> str | None:
    return next((token for token in tokens if token.startswith("#")), None)


def values_named_at_the_right_region(predictions: dict, categories: dict[str, str], category: str = "color") -> dict:
    """Does REX say what the region it points at shows? Over the questions whose ground-truth explanation
    names one value of ``category``: how often the generated explanation names the right value (%), split by
    whether it points first at the ground truth's first region (`#k`) or elsewhere.

    ``predictions``: question id -> {"explanation", "explanation_gt"} (an evaluation's predictions file)."""
    counts = {"at the right region": [0, 0], "elsewhere": [0, 0]}
    for prediction in predictions.values():
        truth, generated = prediction["explanation_gt"].split(), prediction["explanation"].split()
        wanted = [word for word in truth if categories.get(word) == category]
        named = [word for word in generated if categories.get(word) == category]
        if len(wanted) != 1 or not named:
            continue
        same = first_region(truth) is not None and first_region(truth) == first_region(generated)
        tally = counts["at the right region" if same else "elsewhere"]
        tally[0] += 1
        tally[1] += named[0] == wanted[0]
    return {where: {"questions": total, "right value": 100 * right / total if total else float("nan")}
            for where, (total, right) in counts.items()}
