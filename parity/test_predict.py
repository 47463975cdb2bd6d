"""`tailings-parity predict`: the same GeoTIFFs, bit for bit, from Python and from R, georeferenced like the input."""

from __future__ import annotations

import numpy as np
import pytest


def _read(path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1), src.crs, src.transform


@pytest.fixture(scope="module")
def predictions(smoke_run, tmp_path_factory):
    from parity.run.predict import run_prediction

    out = tmp_path_factory.mktemp("predict")
    return {impl: run_prediction(smoke_run, impl, smoke_run / "data", out / impl) | {"dir": out / impl}
            for impl in ("python", "r-rscript")}


def test_r_and_python_write_the_same_bits_and_georeference(smoke_run, predictions):
    py, r = predictions["python"], predictions["r-rscript"]
    assert py["tiles"] and set(py["tiles"]) == set(r["tiles"]) and not py["skipped"]
    for tile in py["tiles"]:
        for kind in ("prob", "class"):
            a, crs_a, tr_a = _read(py["dir"] / f"{kind}_{tile}.tif")
            b, crs_b, tr_b = _read(r["dir"] / f"{kind}_{tile}.tif")
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f"tile {tile} {kind}"
            assert crs_a == crs_b and tr_a.almost_equals(tr_b, precision=1e-12)
        # Georeferenced like the input: same CRS and extent (the smoke tiles are not resized).
        _, crs_in, tr_in = _read(smoke_run / "data" / "img_tiff" / f"img_{tile}.tif")
        assert crs_a == crs_in and tr_a.almost_equals(tr_in, precision=1e-12)
        prob, _, _ = _read(py["dir"] / f"prob_{tile}.tif")
        classes, _, _ = _read(py["dir"] / f"class_{tile}.tif")
        assert prob.dtype == np.float32 and np.array_equal(classes, (prob > 0.5).astype(np.uint8))


def test_predictions_equal_the_workers_own(smoke_run, predictions):
    """The val tiles predicted here are the worker's own final predictions (the same model, the same inputs)."""
    import json

    manifest = json.loads((smoke_run / "manifest.json").read_text())
    own = np.load(smoke_run / "workers" / "python" / "predictions_val.npy")
    for k, tile in enumerate(manifest["val"]):
        prob, _, _ = _read(predictions["python"]["dir"] / f"prob_{tile}.tif")
        assert prob.tobytes() == own[k].tobytes(), f"val tile {tile}"


@pytest.mark.slow
def test_jpeg_input_has_no_georeference_and_says_so(smoke_run, tmp_path, capsys):
    from parity import cli

    rc = cli.main(["predict", "--run", str(smoke_run), "--impl", "r-rscript", "--data", str(smoke_run / "data"),
                   "--out", str(tmp_path), "--encoding", "jpeg"])
    out = capsys.readouterr().out
    assert rc == 0 and "notice: JPEG input has no georeference" in out
    _, crs, _ = _read(next(tmp_path.glob("prob_*.tif")))
    assert crs is None
