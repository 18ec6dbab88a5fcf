"""rexlib.program.postprocess: each realisation rule on its own."""

from rexlib.gqa import parse_scene_graph
from rexlib.program.postprocess import (
    absent_token,
    copula,
    indefinite_article,
    modifier,
    normalised_location,
    object_token,
    position_phrase,
    relation_phrase,
    singular,
    split_modifiers,
    value_phrase,
)


def test_singular_nouns():
    assert singular("cups") == "cup"
    assert singular("boxes") == "box"
    assert singular("benches") == "bench"
    assert singular("strawberries") == "strawberry"
    assert singular("men") == "man" and singular("children") == "child" and singular("knives") == "knife"
    assert singular("tennis balls") == "tennis ball"
    for already in ("glass", "bus", "cactus", "table", "sheep", "cup", "tv", "glasses"):
        assert singular(already) == already


def test_indefinite_article():
    assert indefinite_article("apple") == "an" and indefinite_article("cup") == "a"
    assert indefinite_article("umbrella") == "an" and indefinite_article("white") == "a"


def test_position_phrases():
    assert [position_phrase(v) for v in ("left", "right", "middle", "top", "bottom")] == [
        "on the left", "on the right", "in the middle", "at the top", "at the bottom"]


def test_normalised_location_is_the_rounded_box_centre():
    scene = parse_scene_graph("1", {"width": 200, "height": 100, "objects": {
        "1": {"name": "cup", "x": 20, "y": 60, "w": 20, "h": 20, "attributes": [], "relations": []},
        "2": {"name": "cup", "x": 190, "y": -10, "w": 40, "h": 10, "attributes": [], "relations": []}}})
    assert normalised_location(scene.objects["1"], scene) == "(0.1,0.7)"
    assert normalised_location(scene.objects["2"], scene) == "(1.0,0.0)"  # clamped into the image


def test_negations():
    assert copula(True) == "is" and copula(False) == "is not" and copula(False, plural=True) == "are not"
    assert relation_phrase("on") == "is on" and relation_phrase("on", False) == "is not on"
    assert relation_phrase("wearing", False) == "is not wearing"
    assert relation_phrase("has") == "has" and relation_phrase("has", False) == "does not have"
    assert relation_phrase("contains", False) == "does not contain"


def test_object_references():
    assert object_token("12") == "(obj:12)"
    assert absent_token("cats") == "(obj*:cat)"


def test_modifiers_and_values():
    assert modifier("white", False) == "white" and modifier("white", True) == "non-white"
    filters = (("color", "white", False), ("hposition", "left", False), ("material", "wood", True))
    assert split_modifiers(filters) == (["white", "non-wood"], ["on the left"])
    assert split_modifiers(filters, stated="white") == (["non-wood"], ["on the left"])
    assert value_phrase("name", "apple") == "an apple" and value_phrase("place", "street") == "a street"
    assert value_phrase("color", "white") == "white"
