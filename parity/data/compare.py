"""Data parity: read every tile in Python and in R and compare the float32 numbers bit for bit.

The R reader (``r_impl/R/data.R``) runs in a child process (``Rscript r_impl/dump_tiles.R`` with ``parity.env.r_environment()``)
and writes what it read to a temporary ``.npz`` through numpy (``dump_tiles``); the comparison happens here.
Per tile the verdict is ``equal`` (same bits), ``differ`` (first differing pixel: tile, row, column, band,
both values, and the largest absolute difference), or the error each language gave for a tile it could not
read (``both_failed`` when both refused it, which is agreement too).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from parity.artifacts.diffs import first_difference
from parity.env import R_IMPL_DIR, run_rscript
from parity.errors import CompareError

def read_in_r(data_dir: Path | str, tile_ids: list[int], config: dict, timeout_s: float = 600) -> dict:
    """Read ``tile_ids`` with the R reader in an Rscript child; returns arrays, errors and timings."""
    with tempfile.TemporaryDirectory(prefix="tp-datacompare-") as tmp:
        cfg_path = Path(tmp) / "config.json"
        cfg_path.write_text(json.dumps(config))
        out = Path(tmp) / "r_tiles.npz"
        started = time.perf_counter()
        proc = run_rscript(R_IMPL_DIR / "dump_tiles.R", [Path(data_dir).resolve(), cfg_path,
                                                         ",".join(str(t) for t in tile_ids), out], timeout_s)
        wall = time.perf_counter() - started
        if proc.returncode != 0 or not out.is_file():
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            raise CompareError(f"the R reader failed (exit status {proc.returncode}):\n{tail}",
                               fix="run `tailings-parity doctor`; the R reader is r_impl/R/data.R")
        side = json.loads(Path(str(out) + ".json").read_text())
        with np.load(out) as npz:
            arrays = {k: npz[k] for k in npz.files}
    # The sum of the per-tile load_tiles times, comparable with Python's loop (both pay the set-up of load_tiles
    # for each tile, which the workers pay once a split); the R process time adds start-up, package loading and
    # writing the .npz.
    read_seconds = round(sum(float(v) for v in dict(side.get("seconds") or {}).values()), 3)
    # jsonlite writes an empty named list as [], not {}.
    errors = side.get("errors") or {}
    return {"arrays": arrays, "errors": {int(k): v for k, v in dict(errors).items()},
            "read_seconds": read_seconds, "wall_seconds": wall}


def compare_encoding(data_dir: Path | str, encoding: str, tile_size: int = 0, input_channels: int = 3,
                     tile_ids: list[int] | None = None) -> dict:
    """Read every tile of ``data_dir`` in ``encoding`` (or only ``tile_ids``) in both languages and compare them
    tile by tile."""
    from python_impl.data import DataError, list_tiles, load_tiles

    config = {"encoding": encoding, "tile_size": int(tile_size), "input_channels": int(input_channels)}
    ids = list_tiles(data_dir, encoding) if tile_ids is None else [int(t) for t in tile_ids]
    python, py_errors = {}, {}
    started = time.perf_counter()
    for tile_id in ids:  # one tile at a time, each as the workers read them (load_tiles), as in R
        try:
            images, masks = load_tiles(data_dir, [tile_id], config)
            python[tile_id] = images[0], masks[0, :, :, 0]
        except DataError as exc:
            py_errors[tile_id] = str(exc)
    py_seconds = time.perf_counter() - started
    r = read_in_r(data_dir, ids, config)
    tiles = []
    for tile_id in ids:
        row = {"tile": tile_id}
        if tile_id in py_errors or tile_id in r["errors"]:
            row["python_error"] = py_errors.get(tile_id)
            row["r_error"] = r["errors"].get(tile_id)
            row["status"] = ("both_failed" if tile_id in py_errors and tile_id in r["errors"]
                             else "python_failed" if tile_id in py_errors else "r_failed")
            tiles.append(row)
            continue
        image, mask = python[tile_id]
        r_image, r_mask = r["arrays"][f"image_{tile_id}"], r["arrays"][f"mask_{tile_id}"]
        diff_image, diff_mask = _named(first_difference(image, r_image)), _named(first_difference(mask, r_mask))
        row["status"] = "equal" if diff_image is None and diff_mask is None else "differ"
        if diff_image:
            d = dict(diff_image)
            if "index" in d:
                d["row"], d["col"], d["band"] = d.pop("index")
            row["image"] = d
        if diff_mask:
            d = dict(diff_mask)
            if "index" in d:
                d["row"], d["col"] = d.pop("index")
            row["mask"] = d
        tiles.append(row)
    counts = {}
    for row in tiles:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {"encoding": encoding, "data_dir": str(Path(data_dir).resolve()), "config": config, "tiles": tiles,
            "counts": counts, "python_read_seconds": round(py_seconds, 3),
            "r_read_seconds": r["read_seconds"], "r_process_seconds": round(r["wall_seconds"], 3)}


def _named(diff: dict | None) -> dict | None:
    """A first_difference record with its a/b sides named python/r (a = Python's array, b = R's)."""
    if diff is None:
        return None
    names = {"a": "python", "b": "r", "shape_a": "shape_python", "shape_b": "shape_r", "n_differ": "pixels_differing"}
    return {names.get(k, k): v for k, v in diff.items()}


def compare_dataset(data_dir: Path | str, encoding: str = "both", tile_size: int = 0,
                    input_channels: int = 3) -> list[dict]:
    """compare_encoding for ``encoding`` or, with "both", for every encoding present in ``data_dir``."""
    from python_impl.data import ENCODINGS, list_tiles

    encodings = [e for e in ENCODINGS if list_tiles(data_dir, e)] if encoding == "both" else [encoding]
    return [compare_encoding(data_dir, e, tile_size, input_channels) for e in encodings]


def parity_ok(report: list[dict]) -> bool:
    """True when every tile is bit-identical, or refused by both languages."""
    return all(row["status"] in ("equal", "both_failed") for enc in report for row in enc["tiles"])


def format_report(report: list[dict]) -> str:
    """Human-readable lines: one per tile that is not equal, and a summary per encoding."""
    lines = []
    for enc in report:
        for row in enc["tiles"]:
            status = row["status"]
            if status == "equal":
                lines.append(f"{enc['encoding']:<7} tile {row['tile']:>4} equal (bit for bit)")
            elif status == "differ":
                for what in ("image", "mask"):
                    d = row.get(what)
                    if not d:
                        continue
                    if "shape_python" in d:
                        lines.append(f"{enc['encoding']:<7} tile {row['tile']:>4} DIFFER {what}: shape "
                                     f"{d['shape_python']} in Python, {d['shape_r']} in R")
                    else:
                        where = f"row {d['row']}, col {d['col']}" + (f", band {d['band']}" if "band" in d else "")
                        lines.append(f"{enc['encoding']:<7} tile {row['tile']:>4} DIFFER {what} first at {where}: "
                                     f"Python {d['python']!r}, R {d['r']!r}; max |diff| {d['max_abs_diff']:.3g} "
                                     f"over {d['pixels_differing']} values")
            else:
                lines.append(f"{enc['encoding']:<7} tile {row['tile']:>4} {status.upper()}: Python: "
                             f"{row['python_error']} | R: {row['r_error']}")
        counts = ", ".join(f"{v} {k}" for k, v in sorted(enc["counts"].items()))
        lines.append(f"{enc['encoding']}: {len(enc['tiles'])} tiles: {counts}; read time Python "
                     f"{enc['python_read_seconds']:.2f} s, R {enc['r_read_seconds'] or float('nan'):.2f} s "
                     f"(R process {enc['r_process_seconds']:.2f} s)")
    return "\n".join(lines)
