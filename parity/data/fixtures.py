"""Broken-file fixtures, made by code: a small synthetic dataset with one tile broken in one way.

Each fixture is ``count`` good synthetic tiles (``parity/data/synthetic.py``) of which tile ``BAD_TILE`` is then
broken; ``empty`` is a folder with nothing in it. ``FIXTURES`` says, per kind, which encoding the broken file
belongs to and a fragment of the message that the checks must give, so tests can assert both.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from parity.data.synthetic import make_synthetic, make_tile, tile_transform, write_geotiff, write_jpeg

BAD_TILE = 3
FIXTURE_SEED = 11

# kind -> (encoding of the broken file, fragment of the problem message, what was broken)
FIXTURES = {
    "truncated_jpeg": ("jpeg", "not a readable JPEG", "img/img_3.jpeg cut to 90% of its bytes (no end marker)"),
    "narrow_geotiff": ("geotiff", "sizes differ", "img_tiff/img_3.tif is 448 x 48 (like real tile 23)"),
    "nan_geotiff": ("geotiff", "NaN", "img_tiff/img_3.tif has a 4 x 4 block of NaN"),
    "mask_0_255": ("geotiff", "not 0 or 1", "mask_tiff/mask_3.tif holds a ramp of values 0..255"),
    "mask_0_255_jpeg": ("jpeg", "not a two-class mask", "mask/mask_3.jpeg holds a ramp of values 0..255"),
    "missing_mask": ("geotiff", "mask missing", "mask_tiff/mask_3.tif and mask/mask_3.jpeg deleted"),
    "grid_mismatch": ("geotiff", "not on the same grid", "mask_tiff/mask_3.tif shifted by 10 pixels"),
    "int_geotiff": ("geotiff", "expected float32", "img_tiff/img_3.tif holds uint16 reflectance x 10000"),
    "nodata_mask": ("geotiff", "nodata", "mask_tiff/mask_3.tif declares nodata 9 and has a 4 x 4 block of it"),
    "empty": (None, "no tiles found", "an empty folder"),
}


def make_fixture(kind: str, out_dir: Path | str, count: int = 4, size: int = 32) -> Path:
    """Write fixture ``kind`` (a key of FIXTURES) into a fresh ``out_dir``; returns the folder."""
    if kind not in FIXTURES:
        raise ValueError(f"unknown fixture {kind!r}; kinds: {', '.join(FIXTURES)}")
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if kind == "empty":
        return out
    make_synthetic(out, count=count, size=size, seed=FIXTURE_SEED)
    bands, mask = make_tile(FIXTURE_SEED, BAD_TILE, size)
    transform = tile_transform(FIXTURE_SEED, BAD_TILE, size)
    img_tif, mask_tif = out / "img_tiff" / f"img_{BAD_TILE}.tif", out / "mask_tiff" / f"mask_{BAD_TILE}.tif"
    img_jpeg, mask_jpeg = out / "img" / f"img_{BAD_TILE}.jpeg", out / "mask" / f"mask_{BAD_TILE}.jpeg"
    if kind == "truncated_jpeg":
        data = img_jpeg.read_bytes()
        img_jpeg.write_bytes(data[: int(len(data) * 0.9)])
    elif kind == "narrow_geotiff":
        big, _ = make_tile(FIXTURE_SEED, BAD_TILE, 448)
        write_geotiff(img_tif, np.ascontiguousarray(big[:, :, :48]), transform, descriptions=("B2", "B3", "B4"))
    elif kind == "nan_geotiff":
        bands[:, 2:6, 2:6] = np.nan
        write_geotiff(img_tif, bands, transform, descriptions=("B2", "B3", "B4"))
    elif kind == "mask_0_255":
        ramp = (np.arange(size * size) % 256).astype(np.uint8).reshape(1, size, size)
        write_geotiff(mask_tif, ramp, transform)
    elif kind == "mask_0_255_jpeg":
        ramp = np.tile(np.linspace(0, 255, size).round().astype(np.uint8), (size, 1))
        write_jpeg(mask_jpeg, ramp)
    elif kind == "missing_mask":
        mask_tif.unlink()
        mask_jpeg.unlink()
    elif kind == "int_geotiff":
        write_geotiff(img_tif, np.round(bands * 10000).astype(np.uint16), transform, descriptions=("B2", "B3", "B4"))
    elif kind == "nodata_mask":
        labels = mask[None].astype(np.uint8)
        labels[:, 2:6, 2:6] = 9
        write_geotiff(mask_tif, labels, transform, nodata=9)
    elif kind == "grid_mismatch":
        from rasterio.transform import Affine

        write_geotiff(mask_tif, mask[None], transform @ Affine.translation(10, 0))
    return out
