"""Broken-file fixtures: each gives its own message and exit 1 with --strict, and is left out with a recorded
reason without it; the real tiles: tile 23 is named, the other 99 pass."""

from __future__ import annotations

import json

import pytest

from parity.cli import main as cli_main
from parity.data.check import StrictDataError, check_dataset, dataset_card, select_tiles
from parity.env import default_data_dir
from parity.data.fixtures import BAD_TILE, FIXTURES, make_fixture
from python_impl.data import DataError

BROKEN = [k for k in FIXTURES if k != "empty"]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixtures")
    return {kind: make_fixture(kind, root / kind) for kind in FIXTURES}


@pytest.mark.parametrize("kind", BROKEN)
def test_strict_check_exits_1_naming_the_tile_and_problem(fixtures, kind, capsys):
    encoding, fragment, _ = FIXTURES[kind]
    assert cli_main(["data", "check", str(fixtures[kind]), "--encoding", encoding, "--strict"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: tile {BAD_TILE} ") and fragment in err and "Traceback" not in err
    with pytest.raises(StrictDataError, match=f"tile {BAD_TILE} .*{fragment}"):
        select_tiles(fixtures[kind], encoding, strict=True)


@pytest.mark.parametrize("kind", BROKEN)
def test_without_strict_the_bad_tile_is_left_out_with_its_reason(fixtures, kind, capsys):
    encoding, fragment, _ = FIXTURES[kind]
    assert cli_main(["data", "check", str(fixtures[kind]), "--encoding", encoding]) == 0
    out = capsys.readouterr().out
    assert f"tile    {BAD_TILE} {encoding:<7} BAD" in out and fragment in out
    good, excluded, results = select_tiles(fixtures[kind], encoding)
    assert good == [t for t in range(4) if t != BAD_TILE]
    assert list(excluded) == [BAD_TILE] and fragment in excluded[BAD_TILE]
    card = dataset_card(results)
    assert fragment in card["excluded"][str(BAD_TILE)] and card["tiles_ok"] == 3
    assert 0 < card["class_balance"]["all_ok_tiles"]["tailings_share"] < 1


def test_empty_folder_is_a_clear_error(fixtures, capsys):
    assert cli_main(["data", "check", str(fixtures["empty"])]) == 1
    err = capsys.readouterr().err
    assert "no tiles found" in err and "Traceback" not in err
    with pytest.raises(DataError, match="no tiles found"):
        check_dataset(fixtures["empty"])


def test_check_json_lists_every_tile(fixtures, capsys):
    assert cli_main(["data", "check", str(fixtures["nan_geotiff"]), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert {(r["tile"], r["encoding"]) for r in results} == {(t, e) for t in range(4) for e in ("geotiff", "jpeg")}
    assert [r["tile"] for r in results if not r["ok"]] == [BAD_TILE]


def test_jpeg_masks_record_non_binary_pixels_before_thresholding(fixtures):
    results = check_dataset(fixtures["nan_geotiff"], "jpeg")
    assert all(r["mask_non_binary_pixels"] is not None for r in results)
    assert all(r["mask_non_binary_pixels"] > 0 for r in results)  # lossy JPEG masks: values near 0/255


REAL = default_data_dir()


@pytest.mark.slow  # 200 real tiles checked: about 11 s
@pytest.mark.skipif(REAL is None, reason="real tiles not found: set TAILINGS_DATA or put them in "
                                         "../shared/data/tailings")
def test_real_data_check_names_tile_23_and_passes_the_rest(capsys):
    assert cli_main(["data", "check", str(REAL)]) == 0
    out = capsys.readouterr().out
    assert "200 tile checks, 198 ok, 2 bad: 23 (geotiff), 23 (jpeg)" in out
    line23 = [line for line in out.splitlines() if line.startswith("tile   23 geotiff")][0]
    assert "image 448 x 48, mask 448 x 448" in line23
    assert "not the same picture" in [line for line in out.splitlines() if line.startswith("tile   23 jpeg")][0]
    assert cli_main(["data", "check", str(REAL), "--encoding", "geotiff", "--strict"]) == 1
    assert "tile 23" in capsys.readouterr().err
