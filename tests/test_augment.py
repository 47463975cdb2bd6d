"""Augmentation: off by default, seeded from the manifest, flips shared by image and mask, identical in R."""

from __future__ import annotations

import os

import numpy as np
import pytest

from parity.data.synthetic import make_synthetic
from python_impl.augment import augment_batch
from python_impl.data import load_tiles

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
CONFIG = {"encoding": "geotiff", "tile_size": 0, "input_channels": 3, "augment": True}
SEEDS = np.array([[1, 2], [3, 4], [2147483647, 0], [123456, 654321], [7, 7], [8, 9]], dtype=np.int32)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("augment-data")
    make_synthetic(root, count=6, size=24, seed=9)
    return root, load_tiles(root, list(range(6)), CONFIG)


def test_off_by_default_returns_the_batch_unchanged(batch):
    _, (images, masks) = batch
    out = augment_batch(images, masks, SEEDS, dict(CONFIG, augment=False))
    assert out[0] is images and out[1] is masks


def test_same_seeds_same_result_masks_only_flipped_images_clipped(batch):
    _, (images, masks) = batch
    a_img, a_mask = augment_batch(images, masks, SEEDS, CONFIG)
    b_img, b_mask = augment_batch(images, masks, SEEDS, CONFIG)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_mask, b_mask)
    assert a_img.dtype == np.float32 and a_img.min() >= 0 and a_img.max() <= 1
    assert not np.array_equal(augment_batch(images, masks, SEEDS + 1, CONFIG)[0], a_img)
    flips = []
    for i in range(len(images)):
        options = {"none": masks[i], "lr": masks[i][:, ::-1], "ud": masks[i][::-1], "both": masks[i][::-1, ::-1]}
        match = [name for name, m in options.items() if np.array_equal(m, a_mask[i])]
        assert match, f"sample {i}: mask is not a flip of the original"
        flips.append(match[0])
    assert len(set(flips)) > 1  # the seeds really choose different flips

# R augments to the same bits (RGB and greyscale): r_impl/tests/testthat/test-augment.R.


def test_crop_batch_cuts_each_sample_at_its_offsets_and_refuses_offsets_outside_the_tile():
    from python_impl.augment import crop_batch

    images = np.arange(2 * 6 * 6 * 3, dtype=np.float32).reshape(2, 6, 6, 3)
    masks = np.arange(2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6, 1)
    x, y = crop_batch(images, masks, [[0, 2], [4, 1]], 2)
    assert x.shape == (2, 2, 2, 3) and y.shape == (2, 2, 2, 1)
    assert np.array_equal(x[0], images[0, 0:2, 2:4]) and np.array_equal(x[1], images[1, 4:6, 1:3])
    assert np.array_equal(y[1], masks[1, 4:6, 1:3])
    assert crop_batch(images, masks, None, 0) == (images, masks)
    with pytest.raises(ValueError, match="leave the 6 x 6 tiles"):
        crop_batch(images, masks, [[0, 0], [5, 0]], 2)
    with pytest.raises(ValueError, match="2 images but 1 crop offsets"):
        crop_batch(images, masks, [[0, 0]], 2)

# R crops to the same bits: r_impl/tests/testthat/test-augment.R.
