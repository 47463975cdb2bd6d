"""``tailings-parity data check`` (parity/data/check.py): every file of the tile folders is a tile or is named (a
stray file is a warning, an error with ``--strict``; two files of one tile id an error naming both, before a run
writes anything), and its messages quote the rules, never a typed copy."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from parity.data import check
from parity.data.synthetic import make_synthetic

from parity.testing import cli_run as _cli
from parity.testing import error_lines as _error_lines
from parity.testing import make_tiles as _tiles


def test_data_check_names_a_stray_file_and_strict_makes_it_an_error(tmp_path, capsys):
    data = _tiles(tmp_path / "tiles", count=4)
    shutil.copy(data / "img" / "img_1.jpeg", data / "img" / "img_a.jpeg")
    rc, out, err = _cli(["data", "check", str(data)], capsys)
    assert rc == 0
    assert "file img/img_a.jpeg" in out and "STRAY not a tile file: tile files in img/ are named img_N.jpeg" in out
    assert _error_lines(err) == [f"warning: 1 stray file(s) in {data}, not read by any run: img/img_a.jpeg "
                                 "(--strict makes this an error)"]
    rc, _, err = _cli(["data", "check", str(data), "--strict"], capsys)
    assert rc == 1 and _error_lines(err) == [
        f"error: stray file img/img_a.jpeg in {data}: not a tile file: tile files in img/ are named img_N.jpeg (N "
        "the tile id); the readers skip it; fix: rename it as a tile, move it out of the tile folders, or run "
        "without --strict"]


def test_two_files_of_one_tile_id_are_an_error_naming_both(tmp_path, capsys):
    data = _tiles(tmp_path / "tiles", count=6)
    shutil.copy(data / "img" / "img_5.jpeg", data / "img" / "img_05.jpeg")
    for argv in (["data", "check", str(data)], ["data", "check", str(data), "--json"]):
        rc, _, err = _cli(argv, capsys)
        assert rc == 1 and (
            f"error: duplicate tile 5 in {data}: img/img_05.jpeg and img/img_5.jpeg both map to tile 5: the readers "
            "open img/img_5.jpeg; fix: keep one, remove or rename the other(s)") in _error_lines(err)
    # A run refuses the folder before it writes anything (the GeoTIFFs are fine: only the JPEG run is refused).
    rc, _, err = _cli(["run", "--data", str(data), "--set", "encoding=jpeg", "--set", "tile_size=32",
                       "--reports-dir", str(tmp_path / "reports")], capsys)
    assert rc == 1 and "duplicate tile 5: img/img_05.jpeg and img/img_5.jpeg" in err and "nothing was written" in err
    assert not (tmp_path / "reports").exists()


def test_a_lone_file_with_a_leading_zero_is_named(tmp_path):
    from parity.data.check import account_files

    data = _tiles(tmp_path / "tiles", count=4)
    (data / "mask_tiff" / "mask_2.tif").rename(data / "mask_tiff" / "mask_02.tif")
    assert account_files(data, "geotiff")["stray"] == [
        {"file": "mask_tiff/mask_02.tif", "reason": "maps to tile 2, but the readers open mask_tiff/mask_2.tif: "
                                                    "rename it"}]


def test_a_jpeg_mask_that_differs_names_the_rules_threshold(tmp_path, monkeypatch):
    make_synthetic(tmp_path, count=2, size=32, seed=3)
    path = tmp_path / "mask" / "mask_0.jpeg"
    mask = np.asarray(Image.open(path)).copy()
    mask[:8, :8] = 255 - mask[:8, :8]  # a block of the JPEG mask no longer matches the GeoTIFF mask
    Image.fromarray(mask).save(path, format="JPEG", quality=100)
    rules = dict(check.load_rules(), jpeg_mask_threshold=101)
    # Only the message's copy of the rules: the readers keep theirs, so the same pixels differ.
    monkeypatch.setattr(check, "load_rules", lambda: rules)
    results = check.check_dataset(tmp_path, "both")
    notes = [n for r in results if r["tile"] == 0 and r["encoding"] == "jpeg" for n in r["notes"]]
    assert any(n.startswith("JPEG mask thresholded at 101 differs from the GeoTIFF mask on ") for n in notes), notes
