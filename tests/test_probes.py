"""Linear probes of the regions, and whether generated explanations name what the pointed region shows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from store_fixture import build_world_store

from rexlib.evaluation import probes
from rexlib.model import REX, REXConfig, vocab_overrides
from rexlib.training.data import REXDataset, load_vocab

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_linear_probe_reads_a_linear_code_and_not_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 600)
    codes = rng.standard_normal((5, 16))
    inputs = codes[labels] + 0.3 * rng.standard_normal((600, 16))
    test = np.arange(600) % 5 == 0
    assert probes.linear_probe(inputs, labels, test) > 0.95
    assert probes.linear_probe(rng.standard_normal((600, 16)), labels, test) < 0.4   # chance is 0.2


def test_held_out_images_are_a_fifth_and_fixed():
    rows = np.repeat(np.arange(500), 3)
    held = probes.held_out(rows)
    assert 0.15 < held.mean() < 0.25 and np.array_equal(held, probes.held_out(rows))
    assert all(len(set(held[rows == row])) == 1 for row in range(0, 500, 37))   # an image is on one side only


def test_values_named_at_the_right_region():
    categories = {"white": "color", "red": "color", "wooden": "material"}
    predictions = {
        "1": {"explanation_gt": "the #3 is white", "explanation": "the #3 is white"},       # right region, right
        "2": {"explanation_gt": "the #3 is white", "explanation": "the #3 is red"},         # right region, wrong
        "3": {"explanation_gt": "the #2 is red", "explanation": "the #5 is red"},           # elsewhere, right
        "4": {"explanation_gt": "the #2 is wooden", "explanation": "the #2 is red"},        # no colour asked
        "5": {"explanation_gt": "the #2 is red", "explanation": "the #2 is wooden"},        # no colour named
    }
    found = probes.values_named_at_the_right_region(predictions, categories, "color")
    assert found["at the right region"] == {"questions": 2, "right value": 50.0}
    assert found["elsewhere"] == {"questions": 1, "right value": 100.0}


def test_attribute_probe_on_a_world(tmp_path):
    """The world writes each object's colour into its region's feature: the probe reads it far above the
    most frequent colour, from the features and from a model's fused region states alike."""
    world, data = build_world_store(tmp_path, images=40, feature_dim=32)
    scenes = world / "sceneGraphs" / "train_sceneGraphs.json"
    dataset = REXDataset(data, "train")
    positions, regions, values = probes.grounded_values(data, scenes, "train", "color", dataset)
    assert len(positions) == len(regions) == len(values) > 50
    categories = json.loads((data / "attribute_categories.json").read_text())
    assert {categories[value] for value in values} == {"color"}
    torch.manual_seed(0)
    model = REX(REXConfig.preset("tiny", **vocab_overrides(load_vocab(data)), region_feature_dim=32, hidden_size=32,
                                 intermediate_size=64, num_heads=2))
    states = probes.region_representations(dataset, positions[:10], regions[:10], model)
    assert states.shape == (10, 32)
    features = probes.region_representations(dataset, positions[:10], regions[:10])
    assert np.allclose(features, dataset.batch(positions[:10])["region_features"][np.arange(10), regions[:10]])
    result = probes.attribute_probe(data, scenes, "train", "color", {"untrained REX": (model, None)})
    assert result["detector features"] > result["most frequent value"] + 30
    assert result["untrained REX"] > result["most frequent value"] + 10     # a random backbone keeps the feature
    assert result["values"] >= 3
