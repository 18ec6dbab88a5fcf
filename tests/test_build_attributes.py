"""The builder writes attribute_categories.json (value -> category) covering the scene graphs' values."""

from __future__ import annotations

import json

from rexlib.builder import build
from rexlib.program.attributes import CATEGORY_VALUES, attribute_categories
from rexlib.world import build_world


def test_attribute_categories_written_and_cover_the_world(tmp_path):
    world = tmp_path / "world"
    build_world(world, seed=0, images=6, render=False, feature_dim=4, progress=False, log=lambda _: None)
    out = tmp_path / "out"
    build(world, world / "regions.h5", out, log=lambda *_: None)

    table = json.loads((out / "attribute_categories.json").read_text(encoding="utf-8"))
    used = set()
    for split in ("train", "val", "testdev"):
        graphs = json.loads((world / "sceneGraphs" / f"{split}_sceneGraphs.json").read_text(encoding="utf-8"))
        used |= {value for graph in graphs.values() for obj in graph["objects"].values()
                 for value in obj.get("attributes", ())}
    assert used, "the tiny world has no attributes to check"
    assert not used - set(table), f"values without a category: {sorted(used - set(table))}"
    for value, category in table.items():
        assert value in CATEGORY_VALUES[category]
    assert list(table) == sorted(table)


def test_value_in_several_categories_gets_the_preferred_one():
    table = attribute_categories()
    assert table["dark"] == "color"  # also brightness, tone
    assert table["little"] == "size"  # also age
    assert table["short"] == "height"  # height before length in the table's order
    assert set(table) == set().union(*CATEGORY_VALUES.values())
