"""Synthetic tailings tiles, made by seeded code: the embedded default dataset.

Tailings-like irregular bright patches on a textured, vegetation-coloured background, written in the same
layout as the real tiles (``img_tiff/ mask_tiff/ img/ mask/``, see ``data/README.md``):

- ``img_tiff/img_N.tif``: 3 bands float32 named B2, B3, B4 (surface reflectance, about 0.0 to 0.4),
  EPSG:4326, a north-up transform, LZW;
- ``mask_tiff/mask_N.tif``: 1 band uint8, exactly 0/1, on the same grid;
- ``img/img_N.jpeg``: RGB = (B4, B3, B2) * 3 clipped to [0, 1], as uint8, JPEG quality 90 (Pillow), the way
  the original project made its JPEGs from the GeoTIFFs;
- ``mask/mask_N.jpeg``: the mask * 255, greyscale JPEG quality 90 (lossy: values near 0 and 255 occur).

The same ``(count, size, seed)`` gives the same bytes: every random number comes from
``numpy.random.Generator(PCG64([seed, tile]))`` and neither writer stores a time stamp.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from python_impl.config import load_rules

# Pixel size of the real tiles (degrees), so that synthetic transforms look like the real ones.
PIXEL_DEG = 8.929e-05
JPEG_QUALITY = 90
# The factor the original project used to turn reflectance into display values (data/README.md).


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise: a ``cells x cells`` random grid bilinearly interpolated to ``size x size``, in [0, 1]."""
    grid = rng.random((cells + 1, cells + 1))
    pos = np.linspace(0.0, cells, size, endpoint=False)
    i0 = np.floor(pos).astype(int)
    f = pos - i0
    # Interpolate rows then columns; pure numpy, so the result depends only on the seed.
    top = grid[i0][:, i0] * (1 - f)[None, :] + grid[i0][:, i0 + 1] * f[None, :]
    bottom = grid[i0 + 1][:, i0] * (1 - f)[None, :] + grid[i0 + 1][:, i0 + 1] * f[None, :]
    return top * (1 - f)[:, None] + bottom * f[:, None]


def _patch_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """Boolean mask of 1 to 3 irregular blobs (star-shaped, radius wobbling with the angle)."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    mask = np.zeros((size, size), dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(0.15, 0.85, 2) * size
        radius = rng.uniform(0.08, 0.22) * size
        amps = rng.uniform(0.0, 0.25, 4)
        phases = rng.uniform(0.0, 2 * np.pi, 4)
        theta = np.arctan2(rows - cy, cols - cx)
        wobble = 1 + sum(a * np.cos((k + 2) * theta + p) for k, (a, p) in enumerate(zip(amps, phases)))
        mask |= np.hypot(rows - cy, cols - cx) < radius * wobble
    return mask


def make_tile(seed: int, tile_id: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic tile: reflectance (3, size, size) float32 in band order B2, B3, B4, and a 0/1 uint8 mask."""
    rng = np.random.Generator(np.random.PCG64([seed, tile_id]))
    texture = 0.6 * _smooth_noise(rng, size, 4) + 0.4 * _smooth_noise(rng, size, 16)
    mask = _patch_mask(rng, size)
    # Background: vegetation and soil (green above red above blue); tailings: bright, reddish grey.
    background = np.array([0.035, 0.065, 0.050])
    variation = np.array([0.030, 0.045, 0.060])
    tailings = np.array([0.22, 0.25, 0.29])
    bands = background[:, None, None] + variation[:, None, None] * texture[None]
    grain = rng.normal(0.0, 0.012, (3, size, size))
    bright = tailings[:, None, None] * (0.9 + 0.2 * _smooth_noise(rng, size, 8))[None]
    bands = np.where(mask[None], bright, bands) + grain
    return np.clip(bands, 0.0, 0.45).astype(np.float32), mask.astype(np.uint8)


def tile_transform(seed: int, tile_id: int, size: int):
    """A north-up affine transform for tile ``tile_id`` (EPSG:4326, tiles side by side along longitude)."""
    from rasterio.transform import from_origin

    west = -50.0 + (seed % 100) * 0.5 + tile_id * size * PIXEL_DEG
    return from_origin(west, -6.0, PIXEL_DEG, PIXEL_DEG)


def write_geotiff(path: Path | str, array: np.ndarray, transform, crs: str | None = "EPSG:4326",
                  descriptions: tuple[str, ...] | None = None, nodata: float | None = None) -> None:
    """Write ``array`` (bands, rows, cols) as an LZW GeoTIFF (also used by ``parity/data/fixtures.py``)."""
    import rasterio

    count, height, width = array.shape
    profile = {"driver": "GTiff", "height": height, "width": width, "count": count, "dtype": array.dtype.name,
               "compress": "lzw", "transform": transform}
    if crs is not None:
        profile["crs"] = crs
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
        for i, name in enumerate(descriptions or ()):
            dst.set_band_description(i + 1, name)


def write_jpeg(path: Path | str, array: np.ndarray) -> None:
    """Write a uint8 (H, W, 3) or (H, W) array as a JPEG, quality 90, with Pillow."""
    from PIL import Image

    Image.fromarray(array).save(path, format="JPEG", quality=JPEG_QUALITY)


def display_rgb(bands: np.ndarray) -> np.ndarray:
    """(B2, B3, B4) reflectance -> (H, W, 3) uint8 RGB = round(clip((B4, B3, B2) * 3, 0, 1) * 255)."""
    # The JPEG is made by the GeoTIFF reading rule, so that both encodings of a tile show the same picture.
    rgb = np.clip(bands[::-1].astype(np.float64) * load_rules()["geotiff_factor"], 0.0, 1.0)
    return np.round(rgb * 255).astype(np.uint8).transpose(1, 2, 0)


def make_synthetic(out_dir: Path | str, count: int = 24, size: int = 64, seed: int = 7) -> list[int]:
    """Write ``count`` synthetic tiles of ``size x size`` pixels into ``out_dir``; returns the tile ids.

    Both encodings are written (``img_tiff/``, ``mask_tiff/``, ``img/``, ``mask/``). The same arguments give
    the same bytes.
    """
    if count < 1 or size < 8:
        raise ValueError(f"synthetic tiles: count must be >= 1 and size >= 8 (got count={count}, size={size})")
    out = Path(out_dir)
    for sub in ("img_tiff", "mask_tiff", "img", "mask"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    ids = list(range(count))
    for tile_id in ids:
        bands, mask = make_tile(seed, tile_id, size)
        transform = tile_transform(seed, tile_id, size)
        write_geotiff(out / "img_tiff" / f"img_{tile_id}.tif", bands, transform, descriptions=("B2", "B3", "B4"))
        write_geotiff(out / "mask_tiff" / f"mask_{tile_id}.tif", mask[None], transform)
        write_jpeg(out / "img" / f"img_{tile_id}.jpeg", display_rgb(bands))
        write_jpeg(out / "mask" / f"mask_{tile_id}.jpeg", mask * np.uint8(255))
    return ids
