"""The readers: synthetic tiles, reading rules, resizing, and bitwise parity of the R reader with Python."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio

from parity.artifacts.diffs import first_difference
from parity.data.compare import compare_encoding
from parity.env import default_data_dir
from parity.data.synthetic import make_synthetic
from python_impl.data import (DataError, list_tiles, load_tiles, read_tile, resize_index, resize_nearest,
                              tile_paths)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
CONFIG = {"encoding": "geotiff", "tile_size": 0, "input_channels": 3}


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    make_synthetic(root, count=5, size=40, seed=5)
    return root


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_synthetic_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    make_synthetic(tmp_path / "a", count=3, size=24, seed=1)
    make_synthetic(tmp_path / "b", count=3, size=24, seed=1)
    make_synthetic(tmp_path / "c", count=3, size=24, seed=2)
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b")
    assert _tree_digest(tmp_path / "a") != _tree_digest(tmp_path / "c")
    with rasterio.open(tmp_path / "a" / "img_tiff" / "img_0.tif") as src:
        assert (src.count, src.dtypes[0], src.crs.to_epsg()) == (3, "float32", 4326)
        assert src.descriptions == ("B2", "B3", "B4")


def test_load_tiles_shapes_ranges_and_binary_masks(synth):
    ids = list_tiles(synth, "geotiff")
    assert ids == [0, 1, 2, 3, 4] == list_tiles(synth, "jpeg")
    for encoding in ("geotiff", "jpeg"):
        images, masks = load_tiles(synth, ids, dict(CONFIG, encoding=encoding))
        assert images.shape == (5, 40, 40, 3) and images.dtype == np.float32
        assert masks.shape == (5, 40, 40, 1) and masks.dtype == np.float32
        assert images.min() >= 0 and images.max() <= 1
        assert set(np.unique(masks)) <= {0.0, 1.0} and masks.sum() > 0


def test_load_tiles_refuses_a_tile_of_another_size_by_name(tmp_path):
    # tile_size = 0 keeps the tiles' own sizes; the arrays are allocated at the first tile's (R: test-data.R).
    make_synthetic(tmp_path / "a", count=3, size=24, seed=3)
    make_synthetic(tmp_path / "b", count=4, size=32, seed=3)
    for rel in ("img_tiff/img_3.tif", "mask_tiff/mask_3.tif", "img/img_3.jpeg", "mask/mask_3.jpeg"):
        (tmp_path / "a" / rel).write_bytes((tmp_path / "b" / rel).read_bytes())
    for encoding in ("geotiff", "jpeg"):
        images, _ = load_tiles(tmp_path / "a", [2, 0, 1], dict(CONFIG, encoding=encoding))
        assert images.shape == (3, 24, 24, 3)
        with pytest.raises(DataError, match=r"tile 3: size 32 x 32 differs from tile 0 \(24 x 24\); set tile_size"):
            load_tiles(tmp_path / "a", [0, 3], dict(CONFIG, encoding=encoding))


def test_geotiff_rule_rgb_is_b4_b3_b2_times_3_clipped(synth):
    image, _ = read_tile(synth, 2, CONFIG)
    with rasterio.open(tile_paths(synth, 2, "geotiff")[0]) as src:
        bands = src.read().astype(np.float64)
    expected = np.clip(bands[::-1] * 3.0, 0, 1).transpose(1, 2, 0).astype(np.float32)
    assert np.array_equal(image, expected)
    assert not np.array_equal(image[..., 0], image[..., 2])  # red and blue really differ in these tiles


def test_greyscale_is_luma_of_unrounded_rgb(synth):
    grey, _ = read_tile(synth, 1, dict(CONFIG, input_channels=1))
    assert grey.shape == (40, 40, 1)
    with rasterio.open(tile_paths(synth, 1, "geotiff")[0]) as src:
        rgb = np.clip(src.read().astype(np.float64)[::-1] * 3.0, 0, 1)
    luma = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]).astype(np.float32)
    assert np.array_equal(grey[..., 0], luma)


def test_resize_rule_and_masks_stay_binary(synth):
    assert resize_index(448, 128).tolist() == [((2 * i + 1) * 448) // 256 for i in range(128)]
    assert resize_index(40, 40).tolist() == list(range(40))
    image, mask = read_tile(synth, 0, dict(CONFIG, tile_size=17))
    full_image, full_mask = read_tile(synth, 0, CONFIG)
    assert image.shape == (17, 17, 3) and mask.shape == (17, 17)
    idx = resize_index(40, 17)
    assert np.array_equal(image, full_image[idx][:, idx]) and np.array_equal(mask, full_mask[idx][:, idx])
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert resize_nearest(full_image, 40) is full_image


def test_read_tile_names_the_tile_and_file_for_a_missing_mask(tmp_path):
    make_synthetic(tmp_path, count=2, size=16, seed=3)
    (tmp_path / "mask_tiff" / "mask_1.tif").unlink()
    with pytest.raises(DataError, match=r"tile 1: .*mask_1\.tif: file missing"):
        read_tile(tmp_path, 1, CONFIG)


def test_first_difference_reports_position_and_values():
    a = np.zeros((3, 4, 2), np.float32)
    b = a.copy()
    assert first_difference(a, b) is None
    b[1, 2, 1] = np.nextafter(np.float32(0), np.float32(1))
    b[2, 3, 0] = 0.5
    d = first_difference(a, b)
    assert d["index"] == [1, 2, 1] and d["a"] == 0.0 and d["b"] > 0
    assert d["max_abs_diff"] == 0.5 and d["n_differ"] == 2


@pytest.mark.heavy
@pytest.mark.parametrize("encoding,tile_size,channels", [("geotiff", 0, 3), ("jpeg", 0, 3), ("geotiff", 23, 1),
                                                          ("jpeg", 23, 3), ("jpeg", 23, 1)])
def test_r_reader_gives_the_same_float32_bits(synth, encoding, tile_size, channels):
    report = compare_encoding(synth, encoding, tile_size, channels)
    assert [row["status"] for row in report["tiles"]] == ["equal"] * 5, report["tiles"]


@pytest.mark.heavy
@pytest.mark.parametrize("kind", ["int_geotiff", "nodata_mask", "nan_geotiff", "narrow_geotiff"])
def test_r_and_python_readers_refuse_the_same_broken_geotiff(tmp_path, kind):
    from parity.data.fixtures import BAD_TILE, make_fixture

    report = compare_encoding(make_fixture(kind, tmp_path / kind), "geotiff", 0, 3)
    status = {row["tile"]: row["status"] for row in report["tiles"]}
    assert status.pop(BAD_TILE) == "both_failed", report["tiles"]
    assert set(status.values()) == {"equal"}


REAL = default_data_dir()
needs_real = pytest.mark.skipif(REAL is None, reason="real tiles not found: set TAILINGS_DATA or put them in "
                                                     "../shared/data/tailings")


@needs_real
@pytest.mark.heavy
def test_real_tiles_are_bit_identical_in_r_and_python_and_tile_23_fails_in_both():
    for encoding in ("geotiff", "jpeg"):
        report = compare_encoding(REAL, encoding, tile_ids=[5, 23, 107])
        status = {row["tile"]: row["status"] for row in report["tiles"]}
        assert status[5] == status[107] == "equal"
        assert status[23] == ("both_failed" if encoding == "geotiff" else "equal")
