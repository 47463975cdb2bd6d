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


def _profile(path):
    """Everything a GeoTIFF says of itself: rasterio's profile, the dataset's and the band's tags, and the
    six numbers of its transform."""
    import rasterio

    with rasterio.open(path) as src:
        return {**src.profile, "transform": tuple(src.transform)[:6], "tags": src.tags(), "band_tags": src.tags(1),
                "crs": src.crs.to_wkt() if src.crs else None}


def test_r_and_python_write_the_same_files_georeferenced_like_the_input(smoke_run, predictions):
    import hashlib

    py, r = predictions["python"], predictions["r-rscript"]
    assert py["tiles"] and set(py["tiles"]) == set(r["tiles"]) and not py["skipped"]
    for tile in py["tiles"]:
        for kind in ("prob", "class"):
            a, b = py["dir"] / f"{kind}_{tile}.tif", r["dir"] / f"{kind}_{tile}.tif"
            assert _profile(a) == _profile(b), f"tile {tile} {kind}: metadata differ"
            assert _read(a)[0].tobytes() == _read(b)[0].tobytes(), f"tile {tile} {kind}: pixels differ"
            assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
        # Georeferenced like the input, to the last digit: same CRS and transform (smoke tiles are not resized).
        source = _profile(smoke_run / "data" / "img_tiff" / f"img_{tile}.tif")
        prob, classes = _profile(py["dir"] / f"prob_{tile}.tif"), _profile(py["dir"] / f"class_{tile}.tif")
        assert prob["crs"] == source["crs"] and prob["transform"] == source["transform"]
        assert (prob["dtype"], classes["dtype"], prob["nodata"], classes["nodata"]) == ("float32", "uint8", None, None)
        assert prob["compress"] == classes["compress"] == "lzw"
        values, _, _ = _read(py["dir"] / f"prob_{tile}.tif")
        assert np.array_equal(_read(py["dir"] / f"class_{tile}.tif")[0], (values > 0.5).astype(np.uint8))


def test_predictions_equal_the_workers_own(smoke_run, tmp_path):
    """The val tiles predicted here are the worker's own final predictions (the same model, the same inputs, in
    the same batches: on some CPUs a row's low bits depend on the batch it falls in)."""
    import json

    from parity.run.predict import run_prediction

    manifest = json.loads((smoke_run / "manifest.json").read_text())
    assert manifest["val"] == sorted(manifest["val"])  # predict reads a folder's tiles in id order
    (tmp_path / "val" / "img_tiff").mkdir(parents=True)
    for tile in manifest["val"]:
        (tmp_path / "val" / "img_tiff" / f"img_{tile}.tif").symlink_to(smoke_run / "data" / "img_tiff" / f"img_{tile}.tif")
    run_prediction(smoke_run, "python", tmp_path / "val", tmp_path / "out")
    own = np.load(smoke_run / "workers" / "python" / "predictions_val.npy")
    for k, tile in enumerate(manifest["val"]):
        prob, _, _ = _read(tmp_path / "out" / f"prob_{tile}.tif")
        assert prob.tobytes() == own[k].tobytes(), f"val tile {tile}"


def test_a_folder_without_tiles_is_an_error_and_writes_nothing(smoke_run, tmp_path, capsys):
    from parity import cli

    (tmp_path / "empty" / "img").mkdir(parents=True)  # JPEG tiles would be there, but the run reads GeoTIFF
    rc = cli.main(["predict", "--run", str(smoke_run), "--impl", "python", "--data", str(tmp_path / "empty"),
                   "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"error: --data {tmp_path / 'empty'}: no geotiff tile images (img_tiff/img_<id>.tif)")
    assert not (tmp_path / "out").exists()


def test_relative_paths_with_spaces(smoke_run, tmp_path, monkeypatch, capsys):
    import shutil

    from parity import cli

    shutil.copytree(smoke_run / "data" / "img_tiff", tmp_path / "my tiles" / "img_tiff")
    monkeypatch.chdir(tmp_path)
    rc = cli.main(["predict", "--run", str(smoke_run), "--impl", "python", "--data", "my tiles",
                   "--out", "my predictions"])
    assert rc == 0, capsys.readouterr().err
    assert "24 tiles predicted, 0 skipped" in capsys.readouterr().out
    assert len(list((tmp_path / "my predictions").glob("prob_*.tif"))) == 24


@pytest.mark.slow
def test_jpeg_input_has_no_georeference_and_says_so(smoke_run, tmp_path, capsys):
    from parity import cli

    rc = cli.main(["predict", "--run", str(smoke_run), "--impl", "r-rscript", "--data", str(smoke_run / "data"),
                   "--out", str(tmp_path), "--encoding", "jpeg"])
    out = capsys.readouterr().out
    assert rc == 0 and "notice: JPEG input has no georeference" in out
    _, crs, _ = _read(next(tmp_path.glob("prob_*.tif")))
    assert crs is None
