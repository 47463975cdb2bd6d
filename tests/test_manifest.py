"""The split manifest: decided once from a seed, verified by hash, read the same way by R."""

from __future__ import annotations

import json

import numpy as np
import pytest

from parity.data.manifest import ManifestError, make_manifest, read_manifest, split_sizes, verify_files, write_manifest
from parity.data.synthetic import make_synthetic

CONFIG = {"seed": 42, "encoding": "geotiff", "split_train": 0.7, "split_val": 0.2, "epochs": 3, "batch_size": 4}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("manifest-data")
    make_synthetic(root, count=12, size=16, seed=1)
    return root


def test_split_is_seeded_disjoint_and_complete(data):
    ids = list(range(12))
    m = make_manifest(CONFIG, data, ids, {99: "why"})
    assert m == make_manifest(CONFIG, data, ids, {99: "why"})
    assert make_manifest(dict(CONFIG, seed=43), data, ids)["train"] != m["train"]
    assert sorted(m["train"] + m["val"] + m["test"]) == ids
    assert (len(m["train"]), len(m["val"]), len(m["test"])) == split_sizes(12, 0.7, 0.2) == (8, 2, 2)
    assert m["excluded"] == {"99": "why"}
    assert m["fixed_batch"] == [0, 1]
    assert len(m["files"]) == 24 and "img_tiff/img_0.tif" in m["files"]


def test_batches_cover_train_each_epoch_and_seeds_are_int32_pairs(data):
    m = make_manifest(CONFIG, data, range(12))
    assert len(m["batches"]) == 3
    for epoch, batches in enumerate(m["batches"]):
        assert [len(b) for b in batches] == [4, 4]
        assert sorted(p for b in batches for p in b) == list(range(8))
        seeds = np.array(m["augment_seeds"][epoch])
        assert seeds.shape == (8, 2) and seeds.min() >= 0 and seeds.max() <= np.iinfo(np.int32).max
    assert m["batches"][0] != m["batches"][1]
    # More epochs never change the split or the earlier epochs.
    longer = make_manifest(dict(CONFIG, epochs=5), data, range(12))
    assert longer["train"] == m["train"] and longer["batches"][:3] == m["batches"]


def test_written_manifest_verifies_and_tampering_is_caught(data, tmp_path):
    m = make_manifest(CONFIG, data, range(12))
    path = tmp_path / "manifest.json"
    digest = write_manifest(m, path)
    back = read_manifest(path)
    assert back["manifest_sha256"] == digest and back["batches"] == m["batches"]
    assert verify_files(back) == []
    path.write_text(path.read_text().replace('"seed": 42', '"seed": 41'))
    with pytest.raises(ManifestError, match="edited after it was written"):
        read_manifest(path)

# R reads the same manifest and catches tampering: r_impl/tests/testthat/test-manifest.R.


def test_crops_are_drawn_only_for_a_crop_size_inside_the_tile_and_kept_when_epochs_grow(data):
    m = make_manifest(CONFIG, data, range(12))
    assert m["crop_size"] == 0 and m["crops"] == []
    cropped = make_manifest(dict(CONFIG, tile_size=24, crop_size=8), data, range(12))
    assert cropped["train"] == m["train"] and cropped["crop_size"] == 8
    assert len(cropped["crops"]) == 3
    offsets = np.array(cropped["crops"])
    assert offsets.shape == (3, 8, 2) and offsets.min() >= 0 and offsets.max() <= 24 - 8
    assert len({tuple(o) for o in offsets.reshape(-1, 2)}) > 8  # drawn, not one position
    longer = make_manifest(dict(CONFIG, tile_size=24, crop_size=8, epochs=5), data, range(12))
    assert longer["crops"][:3] == cropped["crops"] and longer["batches"][:3] == cropped["batches"]
