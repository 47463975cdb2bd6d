"""Read the tailings tiles into the numbers the network sees; twin of ``r_impl/R/data.R``.

Reading rules (``data/README.md``, ``parity/FORMATS.md``; their numbers in ``[rules]`` of ``parity/presets.toml``), chosen so that R and Python give the same float32
bits: every value is computed in float64 and rounded to float32 once, at the end.

- GeoTIFF (rasterio): bands B2, B3, B4 -> RGB = (B4, B3, B2), value = clip(reflectance * geotiff_factor, 0, 1).
- JPEG (Pillow; its bundled libjpeg-turbo decodes the real tiles to the same bytes as R's jpeg package):
  value = uint8 / jpeg_scale.
- Greyscale (``input_channels = 1``): luma[0] * R + luma[1] * G + luma[2] * B from the unrounded float64 RGB.
- Masks: GeoTIFF ``value > geotiff_mask_threshold``, JPEG ``value > jpeg_mask_threshold``; float32 exactly 0 or 1.
- Resizing to ``tile_size``: nearest neighbour, source index ``floor((2 * i + 1) * in / (2 * out))``;
  ``tile_size = 0`` keeps the tiles' own size.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from python_impl.config import config_rules, load_rules

# encoding -> (image folder, image pattern, mask folder, mask pattern)
ENCODINGS = {
    "geotiff": ("img_tiff", "img_{}.tif", "mask_tiff", "mask_{}.tif"),
    "jpeg": ("img", "img_{}.jpeg", "mask", "mask_{}.jpeg"),
}


class DataError(ValueError):
    """A tile that cannot be read into valid numbers; the message names the tile, the file and the fix."""


def prepare_readers(threads: int, encoding: str) -> dict:
    """Load the decoder of ``encoding`` (rasterio for GeoTIFF, Pillow for JPEG) and let GDAL decode a GeoTIFF's
    blocks on ``threads`` threads.

    Run at start-up, as the R twin loads terra or jpeg there: the data phase then times reading, not library
    loading. GDAL's threads change only how blocks are decompressed, never the values.
    """
    import os

    os.environ["GDAL_NUM_THREADS"] = str(int(threads))  # GDAL reads its config options from the environment
    if check_encoding(encoding) == "geotiff":
        import rasterio  # noqa: F401
    else:
        from PIL import Image  # noqa: F401

    return {"gdal_num_threads": int(threads)}


def check_encoding(encoding: str) -> str:
    """Return ``encoding`` if it is "geotiff" or "jpeg", else raise a DataError saying what is allowed."""
    if encoding not in ENCODINGS:
        raise DataError(f"unknown encoding {encoding!r}: use 'geotiff' (img_tiff/, mask_tiff/) or 'jpeg' (img/, mask/)")
    return encoding


def tile_paths(data_dir: Path | str, tile_id: int, encoding: str) -> tuple[Path, Path]:
    """Paths of the image and the mask file of tile ``tile_id`` in ``encoding`` (whether they exist or not)."""
    img_dir, img_pat, mask_dir, mask_pat = ENCODINGS[check_encoding(encoding)]
    root = Path(data_dir)
    return root / img_dir / img_pat.format(tile_id), root / mask_dir / mask_pat.format(tile_id)


def list_tiles(data_dir: Path | str, encoding: str, kind: str = "image") -> list[int]:
    """Sorted ids of the tiles that have an image file (``kind = "mask"``: a mask file) in ``encoding``
    (``img_N.tif``, ``img_N.jpeg``, ``mask_N.tif``, ``mask_N.jpeg``)."""
    img_dir, img_pat, mask_dir, mask_pat = ENCODINGS[check_encoding(encoding)]
    folder, pat = (Path(data_dir) / img_dir, img_pat) if kind == "image" else (Path(data_dir) / mask_dir, mask_pat)
    if not folder.is_dir():
        return []
    pattern = re.compile("^" + re.escape(pat).replace(r"\{\}", "([0-9]+)") + "$")
    ids = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return sorted(ids)


def read_file(path: Path | str) -> tuple[np.ndarray, dict]:
    """Decode an image or mask file as stored: (H, W, bands) array in the file's dtype and band order, and
    metadata: ``dtype``, ``bands``, ``height``, ``width``, and for GeoTIFF ``crs``, ``transform``, ``nodata``,
    ``descriptions``. Raises DataError for a missing or undecodable file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file missing; every image needs its mask and vice versa (see data/README.md)")
    if path.suffix == ".tif":
        import rasterio
        from rasterio.errors import RasterioError

        try:
            with rasterio.open(path) as src:
                array = src.read()
                meta = {"crs": src.crs.to_string() if src.crs else None, "transform": tuple(src.transform)[:6],
                        "nodata": src.nodata, "descriptions": list(src.descriptions)}
        except (RasterioError, OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable GeoTIFF ({exc}); re-export or remove the tile") from None
        array = array.transpose(1, 2, 0)
    else:
        from PIL import Image

        try:
            with Image.open(path) as img:
                img.load()
                mode = img.mode
                array = np.asarray(img)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{path}: not a readable JPEG ({exc}); re-export or remove the tile") from None
        if array.ndim == 2:
            array = array[:, :, None]
        meta = {"mode": mode}
    meta.update(dtype=array.dtype.name, height=array.shape[0], width=array.shape[1], bands=array.shape[2])
    return array, meta


def image_values(raw: np.ndarray, meta: dict, path: Path | str, tile_size: int = 0,
                 rules: dict | None = None) -> np.ndarray:
    """Decoded image -> float64 (H, W, 3) RGB in [0, 1] by the reading rules, resized to ``tile_size`` (0 = keep).

    The checks run on the full tile; resizing then selects from the raw values (nearest neighbour only picks
    values, so scaling fewer of them gives the same numbers). DataError if the tile does not fit the rules.
    ``rules``: the config's rules (default: those of the presets file).
    """
    rules = rules or load_rules()
    if meta["bands"] != 3:
        raise DataError(f"{path}: {meta['bands']} band(s), expected 3 (GeoTIFF B2, B3, B4 or JPEG RGB)")
    if "transform" in meta:  # GeoTIFF: reflectance, bands B2, B3, B4
        if raw.dtype.kind != "f":
            raise DataError(f"{path}: dtype {raw.dtype.name}, expected float32 reflectance")
        values = raw.astype(np.float64)
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise DataError(f"{path}: {bad} NaN/infinite value(s); fill or remove the tile")
        if meta.get("nodata") is not None and not np.isnan(meta["nodata"]):
            hits = int(np.count_nonzero(values == meta["nodata"]))
            if hits:
                raise DataError(f"{path}: {hits} nodata pixel(s) (nodata = {meta['nodata']}); fill or remove the tile")
        values = resize_nearest(values, tile_size)
        rgb = values[:, :, ::-1] * rules["geotiff_factor"]
        return np.clip(rgb, 0.0, 1.0)
    if raw.dtype != np.uint8:
        raise DataError(f"{path}: dtype {raw.dtype.name}, expected 8-bit RGB JPEG")
    return resize_nearest(raw, tile_size).astype(np.float64) / rules["jpeg_scale"]


def mask_values(raw: np.ndarray, meta: dict, path: Path | str, tile_size: int = 0,
                rules: dict | None = None) -> np.ndarray:
    """Decoded mask -> bool (H, W), True = tailings (``> geotiff_mask_threshold`` or ``> jpeg_mask_threshold``),
    resized to ``tile_size``; read_tile casts it to float32 1/0."""
    rules = rules or load_rules()
    if meta["bands"] != 1:
        raise DataError(f"{path}: {meta['bands']} band(s), expected a 1-band mask")
    if "transform" in meta:
        nodata = meta.get("nodata")
        bad = raw.dtype.kind == "f" and not np.all(np.isfinite(raw))
        # A declared nodata value marks pixels with no label: refused, as the R twin (terra reads them as NA).
        if bad or (nodata is not None and not np.isnan(nodata) and np.any(raw == nodata)):
            raise DataError(f"{path}: NaN/infinite/nodata values in the mask; fill or remove the tile")
        values = resize_nearest(raw[:, :, 0], tile_size)
        return values > rules["geotiff_mask_threshold"]
    values = resize_nearest(raw[:, :, 0], tile_size)
    return values > rules["jpeg_mask_threshold"]


def resize_index(size_in: int, size_out: int) -> np.ndarray:
    """0-based nearest-neighbour source indices: ``floor((2 * i + 1) * size_in / (2 * size_out))``."""
    i = np.arange(size_out, dtype=np.int64)
    return ((2 * i + 1) * size_in) // (2 * size_out)


def resize_nearest(array: np.ndarray, tile_size: int) -> np.ndarray:
    """Resize the first two axes of ``array`` to ``tile_size`` by index selection; no-op when they fit or 0."""
    if not tile_size or array.shape[:2] == (tile_size, tile_size):
        return array
    rows = resize_index(array.shape[0], tile_size)
    cols = resize_index(array.shape[1], tile_size)
    return array[rows][:, cols]


def to_channels(rgb: np.ndarray, input_channels: int, rules: dict | None = None) -> np.ndarray:
    """float64 RGB (H, W, 3) -> (H, W, input_channels); 1 = luma (rules ``luma``), summed left to right."""
    if input_channels == 3:
        return rgb
    if input_channels == 1:
        luma = (rules or load_rules())["luma"]
        grey = luma[0] * rgb[:, :, 0] + luma[1] * rgb[:, :, 1] + luma[2] * rgb[:, :, 2]
        return grey[:, :, None]
    raise DataError(f"input_channels = {input_channels}: use 3 (RGB) or 1 (greyscale)")


def read_tile(data_dir: Path | str, tile_id: int, config: dict) -> tuple[np.ndarray, np.ndarray]:
    """Read tile ``tile_id``: image (H, W, C) float32 in [0, 1] and mask (H, W) float32 of 0/1.

    Uses ``config`` keys ``encoding``, ``tile_size`` (0 = keep the tile's size) and ``input_channels``.
    Raises DataError naming the tile and the file when the tile breaks a reading rule.
    """
    encoding = check_encoding(config["encoding"])
    img_path, mask_path = tile_paths(data_dir, tile_id, encoding)
    size = int(config.get("tile_size") or 0)
    rules = config_rules(config)
    try:
        raw, meta = read_file(img_path)
        image = image_values(raw, meta, img_path, size, rules)
        raw_mask, mask_meta = read_file(mask_path)
        mask = mask_values(raw_mask, mask_meta, mask_path, size, rules)
    except DataError as exc:
        raise DataError(f"tile {tile_id}: {exc}") from None
    # The sizes as read, before resizing.
    if (meta["height"], meta["width"]) != (mask_meta["height"], mask_meta["width"]):
        raise DataError(f"tile {tile_id}: image {meta['height']} x {meta['width']} ({img_path}) but mask "
                        f"{mask_meta['height']} x {mask_meta['width']} ({mask_path}); re-export the tile or leave it out")
    image = to_channels(image, int(config.get("input_channels", 3)), rules)
    # The one rounding to float32 (round to nearest even), the same as R's doubles handed to numpy.
    return image.astype(np.float32), mask.astype(np.float32)


def load_tiles(data_dir: Path | str, tile_ids, config: dict) -> tuple[np.ndarray, np.ndarray]:
    """Read ``tile_ids`` in the given order: images (N, H, W, C) float32 and masks (N, H, W, 1) float32.

    The arrays are allocated once, at the first tile's size, and each tile is written into them as read (as the
    R twin does): half the memory of a list of tiles stacked at the end.
    """
    tile_ids = [int(tile_id) for tile_id in tile_ids]
    if not tile_ids:
        channels = int(config.get("input_channels", 3))
        size = int(config.get("tile_size") or 0)
        return (np.zeros((0, size, size, channels), np.float32), np.zeros((0, size, size, 1), np.float32))
    images = masks = None
    for k, tile_id in enumerate(tile_ids):
        image, mask = read_tile(data_dir, tile_id, config)
        if images is None:
            images = np.empty((len(tile_ids), *image.shape), np.float32)
            masks = np.empty((len(tile_ids), *mask.shape), np.float32)
        elif image.shape != images.shape[1:]:
            raise DataError(f"tile {tile_id}: size {image.shape[0]} x {image.shape[1]} differs from tile "
                            f"{tile_ids[0]} ({images.shape[1]} x {images.shape[2]}); set tile_size to resize all tiles")
        images[k] = image
        masks[k] = mask
    return images, masks[..., None]
