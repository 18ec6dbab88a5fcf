"""Attribute categories come from the data: mined from the programs, merged with a GQA mapping file."""

from __future__ import annotations

import json

import pytest

from rexlib.dataset.build import build
from rexlib.gqa import parse_scene_graph
from rexlib.program.attributes import CategoryTable
from rexlib.world import build_world
from rexlib.world.ontology import CATEGORY_OF_VALUE


def test_mined_categories_written_and_unknown_values_reported(tmp_path):
    world = tmp_path / "world"
    build_world(world, seed=0, images=6, render=False, feature_dim=4, progress=False, log=lambda _: None)
    out = tmp_path / "out"
    build(world, world / "regions.h5", out, log=lambda *_: None)

    table = json.loads((out / "attribute_categories.json").read_text(encoding="utf-8"))
    used = {}
    for split in ("train", "val", "testdev"):
        graphs = json.loads((world / "sceneGraphs" / f"{split}_sceneGraphs.json").read_text(encoding="utf-8"))
        for graph in graphs.values():
            for obj in graph["objects"].values():
                for value in obj.get("attributes", ()):
                    used[value] = used.get(value, 0) + 1
    assert table and list(table) == sorted(table)
    for value, category in table.items():  # what the programs say agrees with the world's own ontology
        assert CATEGORY_OF_VALUE[value] == category, value
    report = json.loads((out / "build_report_val.json").read_text(encoding="utf-8"))["attribute_categories"]
    unknown = {value: count for value, count in used.items() if value not in table}
    assert report["without_category"] == dict(sorted(unknown.items(), key=lambda item: (-item[1], item[0])))
    assert report["scene_graph_values_without_category"] == len(unknown)


def _step(operation, argument, dependencies=()):
    return {"operation": operation, "argument": argument, "dependencies": list(dependencies)}


def test_mining_reads_filter_verify_choose_and_query_answers():
    records = [
        {"answer": "yes", "semantic": [_step("select", "cup (1)"), _step("filter color", "white", [0]),
                                       _step("verify material", " wooden ", [1])]},
        {"answer": "blue", "semantic": [_step("select", "car (2)"), _step("query", "color", [0])]},
        {"answer": "red", "semantic": [_step("select", "car (2)"), _step("choose color", "red|green", [0])]},
        {"answer": "no", "semantic": [_step("select", "sky (3)"), _step("filter color", "not(dark)", [0]),
                                      _step("verify tone", "dark", [0])]},
        {"answer": "left", "semantic": [_step("select", "cup (1)"), _step("query", "hposition", [0])]},
        {"answer": "cup", "semantic": [_step("select", "cup (1)"), _step("query", "name", [0])]},
    ]
    table = CategoryTable.mine(records)
    assert table.primary() == {"blue": "color", "dark": "color", "green": "color", "red": "color",
                               "white": "color", "wooden": "material"}
    assert table.categories_of("dark") == ("color", "tone")  # ties: alphabetical
    scene = parse_scene_graph("i", {"width": 10, "height": 10, "objects": {"1": {
        "name": "cup", "x": 0, "y": 0, "w": 1, "h": 1, "attributes": ["wooden", "dark", "white"]}}})
    assert table.values(scene.objects["1"], "color") == ("dark", "white")
    assert table.values(scene.objects["1"], "tone") == ("dark",)


def test_gqa_mapping_file_forms_merge_and_bad_file(tmp_path):
    gqa_form = tmp_path / "gqa.json"
    gqa_form.write_text(json.dumps({"comparative": {"taller": {"tall": 1}},
                                    "categorized": {"color": ["teal"], "material": ["wicker"]}}))
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"striped": "pattern"}))
    mined = CategoryTable.mine([{"answer": "x", "semantic": [_step("filter color", "teal")]}])
    merged = mined.merged(CategoryTable.from_mapping(gqa_form)).merged(CategoryTable.from_mapping(flat))
    assert merged.primary() == {"striped": "pattern", "teal": "color", "wicker": "material"}
    assert merged.counts["teal"]["color"] == 2
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="bad.json"):
        CategoryTable.from_mapping(bad)
