"""Backbone pretraining: captions from scene graphs, their hard negatives, the batches, and the saved
directory loading into REX through `--pretrained` (weights, box projection, tokenizer)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from store_fixture import build_world_store

from rexlib.model import REX, REXConfig
from rexlib.model.backbone import pretrained_sizes
from rexlib.model.pretrained import question_tokenizer
from rexlib.pretraining import captions as C
from rexlib.pretraining.data import CaptionImages, build_tokenizer, caption_words, make_batch
from rexlib.pretraining.loop import PretrainConfig, _losses, build_model, pretrain

SCENE = {
    "width": 300, "height": 300,
    "objects": {
        "1": {"name": "cup", "x": 10, "y": 10, "w": 40, "h": 40, "attributes": ["white", "glass"],
              "relations": [{"name": "to the left of", "object": "2"}]},
        "2": {"name": "table", "x": 200, "y": 200, "w": 90, "h": 90, "attributes": ["brown"], "relations": []},
    },
}
CATEGORY = {"white": "color", "brown": "color", "red": "color", "glass": "material", "wood": "material"}


def test_captions_name_objects_of_the_scene_with_roles():
    rng = np.random.default_rng(0)
    seen_kinds = set()
    for _ in range(200):
        caption = C.scene_caption(SCENE, rng)
        assert len(caption.words) == len(caption.roles)
        text = " ".join(caption.words)
        assert "cup" in text or "table" in text
        for word, role in zip(caption.words, caption.roles):
            if role == C.NAME:
                assert word in ("cup", "table")
            if role == C.ATTRIBUTE:
                assert word in ("white", "glass", "brown")
        if "to the left of" in text:
            seen_kinds.add("relation")
            assert text.index("cup") < text.index("to the left of") < text.index("table")
        if text.endswith("of the image"):
            seen_kinds.add("position")
            # the cup's centre is in the top-left third, the table's in the bottom-right
            assert ("cup" in text and ("left" in text or "top" in text)) or (
                "table" in text and ("right" in text or "bottom" in text))
        if text.startswith("there is a"):
            seen_kinds.add("exists")
    assert seen_kinds == {"relation", "position", "exists"}


def test_caption_words_name_the_object_they_describe():
    rng = np.random.default_rng(3)
    for _ in range(100):
        caption = C.scene_caption(SCENE, rng)
        assert len(caption.objects) == len(caption.words)
        for word, role, object_id in zip(caption.words, caption.roles, caption.objects):
            if role in (C.NAME, C.ATTRIBUTE):  # every name and attribute word belongs to its object
                assert object_id in SCENE["objects"]
                obj = SCENE["objects"][object_id]
                assert word == obj["name"] or word in obj["attributes"]
            else:
                assert object_id is None
    vocabularies = C.Vocabularies(names=["cup", "table", "dog"], attributes=["white", "red"], relations=["on"])
    caption = C.Caption(["the", "white", "cup"], [None, C.ATTRIBUTE, C.NAME], [None, "1", "1"])
    assert C.corrupt(caption, vocabularies, rng).objects == [None, None, None]  # a negative names nothing here


def test_a_corrupted_caption_swaps_one_content_phrase_for_one_of_its_kind():
    vocabularies = C.Vocabularies(names=["cup", "table", "dog"], attributes=["white", "brown", "red", "glass", "wood"],
                                  relations=["to the left of", "on"])
    caption = C.Caption(["the", "white", "cup", "is", "to", "the", "left", "of", "the", "table"],
                        [None, C.ATTRIBUTE, C.NAME, None] + [C.RELATION] * 4 + [None, C.NAME])
    rng = np.random.default_rng(1)
    kinds = set()
    for _ in range(100):
        corrupted = C.corrupt(caption, vocabularies, rng, CATEGORY)
        assert corrupted is not None and corrupted.words != caption.words
        before, after = " ".join(caption.words), " ".join(corrupted.words)
        if "white" not in after:
            kinds.add("attribute")
            assert "brown cup" in after or "red cup" in after  # a colour for a colour, never "glass"
        elif after.endswith("the table") and "to the left of" not in after:
            kinds.add("relation")
            assert " on the table" in after
        else:
            kinds.add("name")
            assert sum(a != b for a, b in zip(before.split(), after.split())) == 1
    assert kinds == {"attribute", "relation", "name"}
    assert C.corrupt(C.Caption(["there", "is"], [None, None]), vocabularies, rng) is None


@pytest.fixture(scope="module")
def world_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretraining")
    world, data = build_world_store(root, images=40, feature_dim=16)
    return world, data


def test_batches_mask_content_words_of_matching_captions_only(world_store):
    world, _data = world_store
    images = CaptionImages(world / "sceneGraphs" / "train_sceneGraphs.json", world / "regions.h5")
    tokenizer = build_tokenizer(caption_words(images.vocabularies))
    batch = make_batch(images, np.arange(len(images)), tokenizer, np.random.default_rng(0))
    matched = batch["sentence_image_labels"] == 0
    assert 0 < matched.sum() < len(matched)
    has_label = (batch["labels"] != -100).any(dim=1)
    assert torch.equal(has_label, matched)                                  # negatives teach matching only
    masked = batch["labels"] != -100
    assert (batch["input_ids"][masked] == tokenizer.mask_token_id).all()
    # negatives carry masks too, or a mask alone would tell a matching caption from a negative
    assert ((batch["input_ids"] == tokenizer.mask_token_id).any(dim=1) | ~matched).all()
    assert (batch["input_ids"][~matched] == tokenizer.mask_token_id).any(dim=1).float().mean() > 0.9
    assert not (batch["labels"][masked] == tokenizer.unk_token_id).any()   # every caption word is in the vocabulary
    assert batch["visual_embeds"].shape == (len(images), 36, 16 + 7)


def test_alignment_labels_point_object_words_at_the_region_that_covers_them(world_store):
    from rexlib.boxes import iou_matrix

    world, _data = world_store
    images = CaptionImages(world / "sceneGraphs" / "train_sceneGraphs.json", world / "regions.h5")
    tokenizer = build_tokenizer(caption_words(images.vocabularies))
    rows = np.arange(len(images))
    batch = make_batch(images, rows, tokenizer, np.random.default_rng(0), align_masked=True)
    aligned = batch["alignment_labels"]
    matched = batch["sentence_image_labels"] == 0
    assert (aligned[~matched] == -100).all()                                # negatives are never aligned
    assert (aligned[matched] != -100).any(dim=1).float().mean() > 0.8
    masked = batch["input_ids"] == tokenizer.mask_token_id
    assert (aligned[masked] != -100).any()               # a masked object word points where its object is
    unmasked_only = make_batch(images, rows, tokenizer, np.random.default_rng(0))   # the default
    assert not (unmasked_only["alignment_labels"][unmasked_only["input_ids"] == tokenizer.mask_token_id] != -100).any()
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    checked = 0
    for b, t in (aligned != -100).nonzero().tolist():
        scene, region = images.scenes[b], int(aligned[b, t])
        word = vocab[int(batch["labels"][b, t] if masked[b, t] else batch["input_ids"][b, t])]
        scale = np.array([scene["width"], scene["height"]] * 2, np.float32)
        covered = [o for o in scene["objects"].values()
                   if word == o["name"] or word in o["attributes"] or word in o["name"].split()]
        boxes = np.array([[o["x"], o["y"], o["x"] + o["w"], o["y"] + o["h"]] for o in covered]) / scale
        overlaps = iou_matrix(boxes, images.boxes[b])                        # the word's candidate objects
        assert (overlaps[:, region] >= 0.5).any() and np.isclose(overlaps.max(axis=1), overlaps[:, region]).any()
        checked += 1
    assert checked >= 10


def test_pretraining_learns_a_batch(world_store):
    """Both objectives fall on a batch seen again and again: the heads and the backbone can learn."""
    world, _data = world_store
    torch.manual_seed(0)
    images = CaptionImages(world / "sceneGraphs" / "train_sceneGraphs.json", world / "regions.h5")
    tokenizer = build_tokenizer(caption_words(images.vocabularies))
    batch = make_batch(images, np.arange(16), tokenizer, np.random.default_rng(0))
    model = build_model(PretrainConfig(gqa="", store="", out=""), len(tokenizer), 16)
    optimiser = torch.optim.AdamW(model.parameters(), lr=5e-3)
    first = _losses(model, batch)
    for _ in range(30):
        losses = _losses(model, batch)
        optimiser.zero_grad()
        losses["total"].backward()
        optimiser.step()
    assert losses["masked"].item() < 0.3 * first["masked"].item()
    assert losses["matching"].item() < 0.5
    assert losses["alignment"].item() < 0.3 * first["alignment"].item()
    assert losses["alignment_count"] > 0


def test_the_pretrained_directory_loads_into_rex(world_store, tmp_path):
    world, data = world_store
    out = tmp_path / "visualbert"
    recipe = pretrain(PretrainConfig(gqa=str(world), store=str(data), out=str(out), steps=6, batch_size=8,
                                     eval_every=3, held_out_images=5, num_layers=3), log=lambda _: None)
    assert [row["step"] for row in recipe["history"]] == [3, 6]
    for name, digest in recipe["sha256"].items():                           # the checksums are of the files
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert json.loads((out / "pretraining.json").read_text())["regions"]["sha256"]
    tokenizer = question_tokenizer(str(out))
    vocab = json.loads((data / "vocab.json").read_text())["question"]
    assert tokenizer.unk_token_id not in tokenizer(" ".join(w for w in vocab if w[0] not in "<["))["input_ids"]
    config = REXConfig.preset("tiny", pretrained=str(out), region_feature_dim=16, question_vocab_size=len(tokenizer))
    model = REX(config)
    assert len(model.backbone.model.encoder.layer) == 3                   # the directory's depth, not the preset's
    assert pretrained_sizes(str(out))["num_layers"] == 3                  # what a run's config.json then records
    geometry = load_file(str(out / "box_geometry.safetensors"))
    assert torch.equal(model.backbone.model.embeddings.visual_projection.geometry.weight.detach(), geometry["weight"])
    assert geometry["weight"].abs().sum() > 0                               # pretrained, not the zeros of a plain one
    assert not list(out.parent.glob(".*"))                                  # no staging or checkpoint left behind


def _subset_regions(source, out, keep: int, alter: str | None = None):
    """The first `keep` images of regions file `source` as another world's file (`alter`: one image's
    features changed)."""
    import h5py

    from rexlib.world.detector import RegionWriter

    with h5py.File(source, "r") as handle:
        ids = [value.decode() for value in handle["image_ids"][:keep]]
        boxes, features, sizes = (handle[name][:keep] for name in ("boxes", "features", "sizes"))
    writer = RegionWriter(out, keep, features.shape[-1])
    for index, image_id in enumerate(ids):
        feature = features[index] + (1 if image_id == alter else 0)
        writer.add(image_id, boxes[index], feature, tuple(int(v) for v in sizes[index]))
    writer.close()
    return ids


def test_a_backbone_serves_a_world_whose_images_it_was_pretrained_on(world_store, tmp_path):
    from rexlib.pretraining import shipped

    world, data = world_store
    served = tmp_path / "default" / "regions.h5"
    ids = _subset_regions(world / "regions.h5", served, keep=6)
    out = tmp_path / "visualbert"
    pretrain(PretrainConfig(gqa=str(world), store=str(data), out=str(out), steps=2, batch_size=4, eval_every=2,
                            held_out_images=5, serves=str(served)), log=lambda _: None)
    recipe = json.loads((out / "pretraining.json").read_text())
    assert recipe["serves"][0]["images"] == 6 and recipe["serves"][0]["sha256"] == hashlib.sha256(
        served.read_bytes()).hexdigest()
    assert shipped.backbone_for(served, out) == out                        # the served world's file
    assert shipped.backbone_for(world / "regions.h5", out) == out           # and the one it was pretrained on
    changed = tmp_path / "changed" / "regions.h5"
    _subset_regions(world / "regions.h5", changed, keep=6, alter=ids[3])
    assert shipped.backbone_for(changed, out) is None
    with pytest.raises(ValueError, match=f"image {ids[3]}'s features differ"):
        pretrain(PretrainConfig(gqa=str(world), store=str(data), out=str(tmp_path / "refused"), steps=2,
                                batch_size=4, eval_every=2, held_out_images=5, serves=str(changed)), log=lambda _: None)
    assert not (tmp_path / "refused").exists()


def test_the_shipped_backbone_applies_only_to_the_regions_it_was_pretrained_on(world_store, tmp_path):
    from rexlib.pretraining import shipped

    world, data = world_store
    out = tmp_path / "visualbert"
    pretrain(PretrainConfig(gqa=str(world), store=str(data), out=str(out), steps=2, batch_size=4, eval_every=2,
                            held_out_images=5), log=lambda _: None)
    assert shipped.backbone_for(world / "regions.h5", out) == out
    other = tmp_path / "regions.h5"
    other.write_bytes((world / "regions.h5").read_bytes()[:-1] + b"\0")    # same size, other content
    assert shipped.backbone_for(other, out) is None
    assert shipped.backbone_for(world / "regions.h5", tmp_path / "nothing") is None
    assert shipped.verify(out) == []
    (out / "config.json").write_text((out / "config.json").read_text() + " ")
    assert shipped.verify(out) == ["config.json"]



def test_a_killed_pretraining_resumes_where_it_stopped(world_store, tmp_path):
    """4 steps straight, or 2 steps, killed, then resumed to 4: the same weights, bit for bit."""
    world, data = world_store
    common = {"gqa": str(world), "store": str(data), "batch_size": 4, "eval_every": 2, "held_out_images": 5,
              "device": "cpu", "steps": 4}
    pretrain(PretrainConfig(out=str(tmp_path / "straight"), **common), log=lambda _: None)
    resumed = tmp_path / "resumed"
    assert pretrain(PretrainConfig(out=str(resumed), stop_after_steps=2, **common), log=lambda _: None) is None
    assert (tmp_path / ".resumed.checkpoint.pt").is_file() and not resumed.exists()
    pretrain(PretrainConfig(out=str(resumed), resume=True, **common), log=lambda _: None)
    assert not (tmp_path / ".resumed.checkpoint.pt").exists()
    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    again = load_file(str(resumed / "model.safetensors"))
    assert straight.keys() == again.keys() and all(torch.equal(straight[k], again[k]) for k in straight)


def test_the_shipped_backbone_is_intact_and_loads_into_rex(world_store):
    from rexlib.pretraining import shipped
    from rexlib.training.config import TrainConfig

    assert shipped.verify() == []
    tokenizer = question_tokenizer(str(shipped.SHIPPED_BACKBONE))
    assert tokenizer.tokenize("what color is the cup to the left of the wooden table ?") == \
        ["what", "color", "is", "the", "cup", "to", "the", "left", "of", "the", "wooden", "table", "?"]
    config = REXConfig.preset("tiny", pretrained=str(shipped.SHIPPED_BACKBONE), region_feature_dim=256,
                              question_vocab_size=len(tokenizer))
    model = REX(config)
    assert model.backbone.model.embeddings.visual_projection.geometry.weight.abs().sum() > 0
    # another world's regions: the default resolves to a random initialisation, and the config says so
    assert TrainConfig(data=str(world_store[1]), out="x").pretrained is None


def test_auto_resolves_to_the_backbone_pretrained_on_the_stores_regions(world_store, tmp_path, monkeypatch):
    from rexlib.pretraining import shipped
    from rexlib.training.config import TrainConfig

    world, data = world_store
    out = tmp_path / "visualbert"
    pretrain(PretrainConfig(gqa=str(world), store=str(data), out=str(out), steps=2, batch_size=4, eval_every=2,
                            held_out_images=5), log=lambda _: None)
    monkeypatch.setattr(shipped, "SHIPPED_BACKBONE", out)
    monkeypatch.setattr(shipped.backbone_for, "__defaults__", (out,))
    assert TrainConfig(data=str(data), out="x").pretrained == str(out)
    assert TrainConfig(data=str(data), out="x", pretrained="none").pretrained is None
    assert TrainConfig(data=str(data), out="x", init_from="run").pretrained is None  # the init run's backbone
