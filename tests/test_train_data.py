"""rexlib.training.data: the contract's batch, lazy vs preloaded regions, stratified subsets, clear errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from store_fixture import make_tiny_store

from rexlib.training.data import REXDataset, StoreError, collate, split_types, stratified_subset
from rexlib.training.sampler import EpochSampler


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_tiny_store(tmp_path_factory.mktemp("store"), n_train=60, n_val=12)


def test_batch_follows_the_contract(store):
    dataset = REXDataset(store, "train")
    assert len(dataset) == 60 and dataset.feature_dim == 32
    batch = dataset.batch([3, 0, 7])
    expected = {"question_tokens": torch.long, "question_mask": torch.bool, "region_features": torch.float32,
                "region_boxes": torch.float32, "answers": torch.long, "explanation_tokens": torch.long,
                "explanation_mask": torch.bool, "gate_targets": torch.float32, "index": torch.long}
    assert {key: value.dtype for key, value in batch.items()} == expected
    assert batch["region_features"].shape == (3, 36, 32) and batch["region_boxes"].shape == (3, 36, 4)
    # Explanation columns stop at the batch's longest explanation (with <end>): length-bucketed steps.
    with h5py.File(store / "train.h5") as handle:
        longest = int(handle["explanation_lengths"][[0, 3, 7]].max())
    assert longest < 13 and batch["explanation_tokens"].shape == (3, longest)
    assert batch["gate_targets"].shape == (3, longest) and batch["explanation_mask"][:, -1].any()
    assert 0.0 <= batch["region_boxes"].min() and batch["region_boxes"].max() <= 1.0
    assert batch["index"].tolist() == [3, 0, 7]
    with h5py.File(store / "train.h5") as handle:
        lengths = handle["explanation_lengths"][[0, 3, 7]]
        assert batch["explanation_mask"].sum(1).tolist() == [lengths[1], lengths[0], lengths[2]]
        assert batch["question_tokens"][0, 0].item() == 2  # [CLS]
        image = handle["image_index"][3]
    with h5py.File(store / "regions.h5") as handle:
        features = torch.from_numpy(handle["features"][image].astype(np.float32))
    assert torch.equal(batch["region_features"][0], features)
    # Whole-batch fetching and item-by-item collation agree.
    stacked = collate([dataset[i] for i in (3, 0, 7)])
    for key in batch:
        assert torch.equal(stacked[key], batch[key]), key


def test_lazy_regions_equal_preloaded_and_subsets_keep_rows(store):
    indices = [5, 1, 40]
    preloaded = REXDataset(store, "train", indices=indices)
    lazy = REXDataset(store, "train", indices=indices, max_preload_bytes=0)
    assert preloaded.preloaded and not lazy.preloaded
    first, second = preloaded.batch([0, 1, 2]), lazy.batch([2, 1, 0])
    for key in first:
        assert torch.equal(first[key], second[key].flip(0)), key
    assert first["index"].tolist() == indices


def test_dataloader_batches_through_getitems(store):
    loader = torch.utils.data.DataLoader(REXDataset(store, "val"), batch_size=5, collate_fn=collate)
    sizes = [batch["answers"].shape[0] for batch in loader]
    assert sizes == [5, 5, 2]


def test_stratified_subset_keeps_every_type_and_is_seeded(store):
    types = split_types(store, "train")
    subset = stratified_subset(types, 0.1, seed=4)
    assert set(types[subset]) == set(types)
    assert np.array_equal(subset, stratified_subset(types, 0.1, seed=4))
    assert not np.array_equal(stratified_subset(types, 0.5, seed=4), stratified_subset(types, 0.5, seed=5))
    for group in set(types):
        count = (types == group).sum()
        assert (types[stratified_subset(types, 0.5, seed=0)] == group).sum() == max(1, round(0.5 * count))
    assert len(stratified_subset(types, 1.0, seed=0)) == len(types)
    with pytest.raises(ValueError, match="fraction"):
        stratified_subset(types, 1.5, seed=0)


def test_epoch_sampler_resumes_and_shards():
    sampler = EpochSampler(10, seed=2)
    sampler.set_epoch(1)
    full = list(sampler)
    assert sorted(full) == list(range(10))
    sampler.set_epoch(1, skip=4)
    assert list(sampler) == full[4:] and len(sampler) == 6
    sampler.set_epoch(2)
    assert list(sampler) != full
    shards = [EpochSampler(10, seed=2, rank=rank, world_size=3) for rank in range(3)]
    for shard in shards:
        shard.set_epoch(1)
    together = [index for shard in shards for index in shard]
    assert len(together) == 12 and set(together) == set(range(10)) and all(len(s) == 4 for s in shards)


def test_errors_name_the_file_and_question(store, tmp_path):
    with pytest.raises(StoreError, match="test.h5"):
        REXDataset(store, "test")
    with pytest.raises(StoreError, match="dataset.json"):
        REXDataset(tmp_path, "train")
    broken = make_tiny_store(tmp_path / "broken", n_train=4, n_val=2)
    with h5py.File(broken / "train.h5", "r+") as handle:
        handle["explanation_lengths"][2] = 40
        question_id = handle["question_ids"][2].decode()
    with pytest.raises(StoreError, match=question_id):
        REXDataset(broken, "train")
    info = json.loads((broken / "dataset.json").read_text())
    (broken / "dataset.json").write_text(json.dumps(dict(info, regions="missing.h5")))
    with pytest.raises(StoreError, match="missing.h5"):
        REXDataset(broken, "val")


def test_length_buckets_keep_every_sample_and_shorten_batches():
    """A bucketed epoch is still a permutation of the share, fixed by (seed, epoch), different across
    epochs; its batches' longest explanations are shorter than plain shuffling's; resuming skips samples."""
    lengths = np.random.default_rng(0).integers(2, 14, 1000)
    plain = EpochSampler(1000, seed=4)
    bucketed = EpochSampler(1000, seed=4, lengths=lengths, batch_size=16, pool_batches=10)
    order = bucketed.order()
    assert sorted(order) == list(range(1000)) and order == bucketed.order()
    bucketed.set_epoch(1)
    assert bucketed.order() != order and sorted(bucketed.order()) == list(range(1000))

    def mean_longest(indices):
        return np.mean([lengths[indices[i : i + 16]].max() for i in range(0, len(indices), 16)])

    assert mean_longest(order) < mean_longest(plain.order()) - 3
    # Smaller pools (--length-bucket-pool) mix more lengths into a batch: between the two.
    small = EpochSampler(1000, seed=4, lengths=lengths, batch_size=16, pool_batches=2)
    assert sorted(small.order()) == list(range(1000))
    assert mean_longest(order) < mean_longest(small.order()) < mean_longest(plain.order())
    bucketed.set_epoch(1, skip=32)
    assert list(bucketed) == bucketed.order()[32:] and len(bucketed) == 1000 - 32


def test_region_sources_for_the_diagnostics(store):
    """`none` zeroes every region; `swapped` gives each question another image's regions (never its own),
    keeping the question, its answer and its explanation."""
    own = REXDataset(store, "train")
    swapped = REXDataset(store, "train", regions="swapped")
    empty = REXDataset(store, "train", regions="none")
    rows = list(range(20))
    batch, other, blank = own.batch(rows), swapped.batch(rows), empty.batch(rows)
    assert (swapped.arrays["image_index"] != own.arrays["image_index"]).all()
    assert sorted(set(swapped.arrays["image_index"])) == sorted(set(own.arrays["image_index"]))
    assert not torch.equal(batch["region_features"], other["region_features"])
    assert torch.equal(batch["question_tokens"], other["question_tokens"])
    assert torch.equal(batch["explanation_tokens"], other["explanation_tokens"])
    assert blank["region_features"].abs().sum() == 0 and blank["region_boxes"].abs().sum() == 0
    with pytest.raises(ValueError, match="regions"):
        REXDataset(store, "train", regions="shuffled")
