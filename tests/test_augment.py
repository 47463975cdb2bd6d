"""Augmentation: off by default, seeded from the manifest, flips shared by image and mask, identical in R."""

from __future__ import annotations

import os

import numpy as np
import pytest

from parity.datacompare import run_rscript
from parity.env import R_IMPL_DIR
from parity.synthetic import make_synthetic
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


R_AUGMENT = """
args <- commandArgs(trailingOnly = TRUE)
source(file.path(args[1], "R", "data.R"))
source(file.path(args[1], "R", "augment.R"))
np <- reticulate::import("numpy", convert = FALSE)
seeds <- matrix(c(1L, 2L, 3L, 4L, 2147483647L, 0L, 123456L, 654321L, 7L, 7L, 8L, 9L), ncol = 2, byrow = TRUE)
for (channels in c(3L, 1L)) {
  config <- list(encoding = "geotiff", tile_size = 0, input_channels = channels, augment = TRUE)
  d <- load_tiles(args[2], 0:5, config)
  a <- augment_batch(d$images, d$masks, seeds, config)
  np$savez(file.path(args[3], sprintf("r%d.npz", channels)), images = to_numpy(a$images), masks = to_numpy(a$masks))
}
"""


def test_r_augments_to_the_same_bits_rgb_and_greyscale(batch, tmp_path):
    root, _ = batch
    proc = run_rscript(R_AUGMENT, [R_IMPL_DIR, root, tmp_path], timeout_s=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for channels in (3, 1):
        config = dict(CONFIG, input_channels=channels)
        images, masks = load_tiles(root, list(range(6)), config)
        expected = augment_batch(images, masks, SEEDS, config)
        got = np.load(tmp_path / f"r{channels}.npz")
        assert got["images"].shape == expected[0].shape
        assert np.array_equal(got["images"].view(np.uint32), expected[0].view(np.uint32)), f"channels={channels}"
        assert np.array_equal(got["masks"], expected[1])
