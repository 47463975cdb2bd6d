"""Predict tiles with a saved model and write GeoTIFFs of probabilities and classes; twin of
``r_impl/R/predict.R``.

For every tile image of ``data_dir`` (masks are not needed): read it by the reading rules of the run's config
(``data.py``: the same resizing, scaling and channels as in training), predict in batches of the config's
``batch_size`` with the saved ``model.keras``, and write ``prob_<id>.tif`` (float32 probability of tailings) and
``class_<id>.tif`` (uint8, 1 where the probability is above the rules' ``class_threshold``). A GeoTIFF input
gives its CRS and its extent to both outputs (the pixel size scaled by the resizing); a JPEG has no georeference,
so its outputs have none and ``predictions.json`` says so. Run as ``python -m python_impl.predict SPEC.json``
(``parity/run/predict.py`` writes the spec: model, data_dir, config, out_dir).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from python_impl import data
from python_impl.config import config_rules, read_config


def read_image(data_dir, tile_id: int, config: dict):
    """Image (H, W, C) float32 of tile ``tile_id`` by the config's reading rules, and its georeference
    (``{"crs", "transform"}`` of the output grid, or None for a JPEG)."""
    path, _ = data.tile_paths(data_dir, tile_id, config["encoding"])
    raw, meta = data.read_file(path)
    size = int(config.get("tile_size") or 0)
    rules = config_rules(config)
    image = data.to_channels(data.image_values(raw, meta, path, size, rules), int(config["input_channels"]), rules)
    geo = None
    if "transform" in meta:
        a, b, c, d, e, f = meta["transform"]
        out_h, out_w = (size, size) if size else (meta["height"], meta["width"])
        # The same extent on the resized grid: the pixel size grows by in / out.
        geo = {"crs": meta["crs"], "transform": [a * meta["width"] / out_w, b, c, d, e * meta["height"] / out_h, f]}
    return image.astype(np.float32), geo


def write_outputs(probabilities, geo, out_dir, tile_id: int, threshold: float) -> list[str]:
    """Write ``prob_<id>.tif`` (float32) and ``class_<id>.tif`` (uint8) of one tile; returns their names."""
    import rasterio
    from rasterio.transform import Affine

    out_dir = Path(out_dir)
    prob = np.asarray(probabilities, dtype=np.float32)
    classes = (prob > threshold).astype(np.uint8)
    names = []
    for name, array, dtype in ((f"prob_{tile_id}.tif", prob, "float32"), (f"class_{tile_id}.tif", classes, "uint8")):
        profile = {"driver": "GTiff", "height": array.shape[0], "width": array.shape[1], "count": 1, "dtype": dtype,
                   "compress": "lzw"}
        if geo is not None:
            profile.update(crs=geo["crs"], transform=Affine(*geo["transform"]))
        with rasterio.open(out_dir / name, "w", **profile) as dst:
            dst.write(array, 1)
        names.append(name)
    return names


def predict_tiles(model_path, data_dir, config: dict, out_dir) -> dict:
    """Predict every tile image of ``data_dir``; write the GeoTIFFs and ``predictions.json``; return that record."""
    from python_impl.pair import load_saved

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = load_saved(model_path, config)
    ids, images, geos, skipped = [], [], [], {}
    for tile_id in data.list_tiles(data_dir, config["encoding"]):
        try:
            image, geo = read_image(data_dir, tile_id, config)
        except data.DataError as exc:
            skipped[str(tile_id)] = str(exc)
            continue
        ids.append(tile_id)
        images.append(image)
        geos.append(geo)
    threshold = config_rules(config)["class_threshold"]
    record = {"model": str(model_path), "data_dir": str(data_dir), "encoding": config["encoding"], "tiles": {},
              "skipped": skipped, "georeferenced": config["encoding"] == "geotiff"}
    if images:
        probabilities = model.predict(np.stack(images), batch_size=int(config["batch_size"]), verbose=0)[..., 0]
        for k, tile_id in enumerate(ids):
            record["tiles"][str(tile_id)] = write_outputs(probabilities[k], geos[k], out_dir, tile_id, threshold)
    if not record["georeferenced"]:
        record["notice"] = "JPEG input has no georeference: the GeoTIFFs have no CRS and no transform"
    (out_dir / "predictions.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def run_predict(spec_path) -> dict:
    """Predict as ``spec_path`` says (model, data_dir, config, out_dir), threads and determinism set first."""
    from python_impl.train import set_determinism

    spec = json.loads(Path(spec_path).read_text())
    config = read_config(spec["config"])
    config["encoding"] = spec.get("encoding") or config["encoding"]
    data.prepare_readers(set_determinism(config)["threads_intra"], config["encoding"])
    return predict_tiles(spec["model"], spec["data_dir"], config, spec["out_dir"])


if __name__ == "__main__":
    result = run_predict(sys.argv[1])
    print(json.dumps({"tiles": len(result["tiles"]), "skipped": len(result["skipped"]),
                      "notice": result.get("notice")}), flush=True)
