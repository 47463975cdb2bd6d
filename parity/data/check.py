"""Validation of a tailings dataset, tile by tile, and the dataset card of a run.

``check_dataset`` reads every tile with the Python reader's decoders (``python_impl/data.py``) and records,
per tile and encoding: image and mask present; decodable; band count and dtype; NaN/infinite/nodata pixels;
mask values (how many pixels were not 0/1 before thresholding); image and mask of equal size and of the
expected size; for GeoTIFF, image and mask on the same grid (CRS and transform); and, where a tile has both
encodings, whether the JPEG is the same picture as the GeoTIFF. A tile with a problem is left out of a run
(``select_tiles``), or, in strict mode, stops it with a StrictDataError naming the tile and the problem.
Nothing here raises on a bad file: every failure becomes a problem string.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from python_impl.config import load_rules
from python_impl.data import ENCODINGS, DataError, image_values, list_tiles, mask_values, read_file, tile_paths

# JPEG masks are lossy: values near 0 and 255 are compression noise, values in this band are a grey mask.
JPEG_MASK_AMBIGUOUS = (32, 223)
# The JPEG of a tile must correlate with its GeoTIFF at least this much (real tiles: 0.968 to 0.99, on the
# pixels that do not saturate; tile 23's JPEG is a different picture).
SAME_PICTURE_MIN_CORRELATION = 0.9


class StrictDataError(DataError):
    """Raised in strict mode by the first bad tile; the message names the tile, the encoding and the problem."""


def _encodings_present(data_dir: Path) -> list[str]:
    return [enc for enc, (img_dir, _, mask_dir, _) in ENCODINGS.items()
            if (data_dir / img_dir).is_dir() or (data_dir / mask_dir).is_dir()]


def _inspect(data_dir: Path, tile_id: int, encoding: str) -> tuple[dict, dict]:
    """Check one tile in one encoding; returns (result, arrays kept for the cross-encoding check)."""
    img_path, mask_path = tile_paths(data_dir, tile_id, encoding)
    rel = lambda p: p.relative_to(data_dir).as_posix()  # noqa: E731
    result = {"tile": tile_id, "encoding": encoding, "ok": True, "problems": [], "notes": [],
              "image_file": rel(img_path), "mask_file": rel(mask_path), "image_size": None, "mask_size": None,
              "mask_non_binary_pixels": None, "mask_positive_pixels": None, "mask_pixels": None}
    problems = result["problems"]
    kept = {}
    image_raw = mask_raw = None
    for path, kind in ((img_path, "image"), (mask_path, "mask")):
        if not path.is_file():
            other = "mask" if kind == "image" else "image"
            problems.append(f"{kind} missing ({rel(path)}): every {other} needs its {kind}")
            continue
        try:
            raw, meta = read_file(path)
        except DataError as exc:
            problems.append(f"{kind} unreadable: {exc}")
            continue
        if kind == "image":
            image_raw, image_meta = raw, meta
        else:
            mask_raw, mask_meta = raw, meta
    if image_raw is not None:
        result["image_size"] = [image_meta["height"], image_meta["width"]]
        result["image_dtype"], result["image_bands"] = image_meta["dtype"], image_meta["bands"]
        want_dtype = "float32" if encoding == "geotiff" else "uint8"
        if image_meta["bands"] != 3:
            problems.append(f"image has {image_meta['bands']} band(s), expected 3 ({rel(img_path)})")
        if image_meta["dtype"] != want_dtype:
            problems.append(f"image dtype {image_meta['dtype']}, expected {want_dtype} ({rel(img_path)})")
        if image_raw.dtype.kind == "f":
            bad = int(np.count_nonzero(~np.isfinite(image_raw)))
            result["image_nan_pixels"] = bad
            if bad:
                problems.append(f"image has {bad} NaN/infinite value(s) ({rel(img_path)})")
        nodata = image_meta.get("nodata")
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            hits = int(np.count_nonzero(image_raw == nodata))
            if hits:
                problems.append(f"image has {hits} nodata value(s) (nodata = {nodata}) ({rel(img_path)})")
        if not problems:
            try:  # the reader's own rules (the same as the R twin's) have the last word
                kept["image"] = image_values(image_raw, image_meta, img_path)
            except DataError as exc:
                problems.append(f"{exc}")
    if mask_raw is not None:
        result["mask_size"] = [mask_meta["height"], mask_meta["width"]]
        result["mask_dtype"] = mask_meta["dtype"]
        if mask_meta["bands"] != 1:
            problems.append(f"mask has {mask_meta['bands']} band(s), expected 1 ({rel(mask_path)})")
        elif mask_meta["dtype"] != "uint8":
            problems.append(f"mask dtype {mask_meta['dtype']}, expected uint8 ({rel(mask_path)})")
        else:
            values = mask_raw[:, :, 0]
            if encoding == "geotiff":
                non_binary = int(np.count_nonzero((values != 0) & (values != 1)))
                if non_binary:
                    problems.append(f"mask has {non_binary} pixel(s) not 0 or 1 (values up to {int(values.max())}) "
                                    f"({rel(mask_path)})")
            else:
                non_binary = int(np.count_nonzero((values != 0) & (values != 255)))
                lo, hi = JPEG_MASK_AMBIGUOUS
                grey = int(np.count_nonzero((values >= lo) & (values <= hi)))
                if grey:
                    problems.append(f"mask has {grey} pixel(s) between {lo} and {hi}: not a two-class mask "
                                    f"({rel(mask_path)})")
            result["mask_non_binary_pixels"] = non_binary
            try:
                mask = mask_values(mask_raw, mask_meta, mask_path)
            except DataError as exc:  # e.g. declared nodata pixels: no label there
                problems.append(f"{exc}")
            else:
                result["mask_positive_pixels"] = int(mask.sum())
                result["mask_pixels"] = int(mask.size)
                kept["mask"] = mask
    if result["image_size"] and result["mask_size"] and result["image_size"] != result["mask_size"]:
        h, w = result["image_size"]
        mh, mw = result["mask_size"]
        problems.append(f"image {h} x {w}, mask {mh} x {mw}: sizes differ")
    if encoding == "geotiff" and image_raw is not None and mask_raw is not None:
        if image_meta["crs"] != mask_meta["crs"]:
            problems.append(f"image CRS {image_meta['crs']} but mask CRS {mask_meta['crs']}: not on the same grid")
        elif not np.allclose(image_meta["transform"], mask_meta["transform"], rtol=1e-9, atol=0):
            problems.append(f"image transform {_fmt(image_meta['transform'])} but mask transform "
                            f"{_fmt(mask_meta['transform'])}: not on the same grid")
    return result, kept


def _fmt(transform) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in transform) + ")"


def _cross_check(geo: dict, jpg: dict, geo_kept: dict, jpg_kept: dict) -> None:
    """Is the JPEG the same picture as the GeoTIFF? A mismatch is a problem of the JPEG (made from the GeoTIFF)."""
    if geo["image_size"] and jpg["image_size"] and geo["image_size"] != jpg["image_size"]:
        msg = (f"JPEG image {jpg['image_size'][0]} x {jpg['image_size'][1]} but GeoTIFF image "
               f"{geo['image_size'][0]} x {geo['image_size'][1]}: not the same picture")
        jpg["problems"].append(msg)
        geo["notes"].append(msg)
        return
    if "image" in geo_kept and "image" in jpg_kept:
        x, y = geo_kept["image"], jpg_kept["image"]
        # Pixels that saturate in the GeoTIFF (reflectance x 3 > 1) are left out: the original JPEGs wrap
        # them around (uint8 overflow) instead of clipping.
        saturated = (x >= 1.0).any(axis=2)
        share = float(saturated.mean())
        if share > 0.01:
            jpg["notes"].append(f"{100 * share:.1f}% of pixels saturate in the GeoTIFF (reflectance x 3 > 1); "
                                "the JPEG may show them wrapped around")
        keep = ~saturated
        if keep.sum() > 16 and x[keep].std() > 0 and y[keep].std() > 0:
            corr = float(np.corrcoef(x[keep].ravel(), y[keep].ravel())[0, 1])
            jpg["jpeg_geotiff_correlation"] = round(corr, 4)
            if corr < SAME_PICTURE_MIN_CORRELATION:
                jpg["problems"].append(f"JPEG image correlates {corr:.2f} with the GeoTIFF image (expected >= "
                                       f"{SAME_PICTURE_MIN_CORRELATION}): not the same picture")
                geo["notes"].append(f"the JPEG of this tile is not the same picture (correlation {corr:.2f})")
    if "mask" in geo_kept and "mask" in jpg_kept and geo_kept["mask"].shape == jpg_kept["mask"].shape:
        differ = int(np.count_nonzero(geo_kept["mask"] != jpg_kept["mask"]))
        if differ:
            threshold = load_rules()["jpeg_mask_threshold"]
            jpg["notes"].append(f"JPEG mask thresholded at {threshold} differs from the GeoTIFF mask on {differ} "
                                "pixel(s)")


def check_dataset(data_dir: Path | str, encoding: str = "both", expected_size: int | None = None) -> list[dict]:
    """Check every tile of ``data_dir`` in ``encoding`` ("geotiff", "jpeg" or "both" = every encoding present).

    Returns one result per tile and encoding, sorted by tile: ``{tile, encoding, ok, problems, notes,
    image_size, mask_size, mask_non_binary_pixels, mask_positive_pixels, mask_pixels, ...}``.
    ``expected_size`` (side in pixels) defaults to the most common image size of the dataset.
    Raises DataError only when the folder holds no tiles at all.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; pass --data PATH to a folder with img/ + mask/ or "
                        "img_tiff/ + mask_tiff/ (see data/README.md)")
    present = _encodings_present(root)
    if encoding == "both":
        encodings = present
    elif encoding in ENCODINGS:
        encodings = [encoding]
    else:
        raise DataError(f"unknown encoding {encoding!r}: use geotiff, jpeg or both")
    ids = {enc: sorted(set(list_tiles(root, enc)) | set(list_tiles(root, enc, "mask"))) for enc in encodings}
    if not any(ids.values()):
        raise DataError(f"{root}: no tiles found (expected img/img_N.jpeg + mask/mask_N.jpeg or "
                        "img_tiff/img_N.tif + mask_tiff/mask_N.tif, see data/README.md)")
    # The cross-encoding check runs whenever the other encoding is present, also for a single-encoding check.
    results, kept = {}, {}
    for enc in ENCODINGS:
        if enc not in encodings and not (enc in present and len(encodings) == 1):
            continue
        for tile_id in ids.get(enc) or list_tiles(root, enc):
            results[(tile_id, enc)], kept[(tile_id, enc)] = _inspect(root, tile_id, enc)
    for (tile_id, enc), result in results.items():
        if enc == "geotiff" and (tile_id, "jpeg") in results:
            _cross_check(result, results[(tile_id, "jpeg")], kept[(tile_id, enc)], kept[(tile_id, "jpeg")])
    kept.clear()
    chosen = [r for (t, enc), r in sorted(results.items()) if enc in encodings]
    for enc in encodings:
        sizes = Counter(tuple(r["image_size"]) for r in chosen if r["encoding"] == enc and r["image_size"])
        want = (expected_size, expected_size) if expected_size else (sizes.most_common(1)[0][0] if sizes else None)
        for r in chosen:
            if r["encoding"] != enc:
                continue
            r["expected_size"] = list(want) if want else None
            for key in ("image_size", "mask_size"):
                if want and r[key] and tuple(r[key]) != want:
                    what = key.split("_")[0]
                    r["problems"].append(f"{what} {r[key][0]} x {r[key][1]}, expected {want[0]} x {want[1]}")
    for r in chosen:
        r["ok"] = not r["problems"]
    return chosen


def account_files(data_dir: Path | str, encoding: str = "both") -> dict:
    """Every entry of the tile folders (img/, mask/ for JPEG; img_tiff/, mask_tiff/ for GeoTIFF) accounted for.

    A file named as the readers name a tile (``img_N.tif``, ``mask_N.jpeg``, ...) is a tile file. Anything else
    there is a stray (``img_a.jpeg``, ``notes.txt``, a folder, ``img_05.tif`` where the readers open
    ``img_5.tif``): the readers skip it, so it is named here. Two or more files that the readers' pattern maps
    to one tile id (``img_05.jpeg`` beside ``img_5.jpeg``) are a duplicate. ``encoding``: "geotiff", "jpeg" or
    "both" (every encoding present). Returns ``{"tile_files": n, "stray": [{"file", "reason"}],
    "duplicates": [{"tile", "files", "reason"}]}``, paths relative to ``data_dir``.
    """
    root = Path(data_dir)
    encodings = _encodings_present(root) if encoding == "both" else [encoding]
    out = {"tile_files": 0, "stray": [], "duplicates": []}
    for enc in encodings:
        img_dir, img_pat, mask_dir, mask_pat = ENCODINGS[enc]
        for folder, pattern in ((img_dir, img_pat), (mask_dir, mask_pat)):
            path = root / folder
            if not path.is_dir():
                continue
            # The readers' own pattern (python_impl/data.py list_tiles): ^img_([0-9]+)\.tif$
            regex = re.compile("^" + re.escape(pattern).replace(r"\{\}", "([0-9]+)") + "$")
            example = pattern.format("N")
            by_id: dict[int, list[str]] = {}
            for entry in sorted(path.iterdir(), key=lambda p: p.name):
                rel = f"{folder}/{entry.name}"
                match = regex.match(entry.name)
                if entry.is_dir():
                    out["stray"].append({"file": rel + "/", "reason": f"a folder inside {folder}/, not a tile file"})
                elif match is None:
                    out["stray"].append({"file": rel, "reason": f"not a tile file: tile files in {folder}/ are "
                                                                f"named {example} (N the tile id); the readers skip it"})
                else:
                    by_id.setdefault(int(match.group(1)), []).append(entry.name)
            for tile_id, names in sorted(by_id.items()):
                canonical = pattern.format(tile_id)
                if len(names) > 1:
                    files = [f"{folder}/{n}" for n in names]
                    opened = (f"the readers open {folder}/{canonical}" if canonical in names else
                              f"the readers open {folder}/{canonical}, which is none of them")
                    out["duplicates"].append({"tile": tile_id, "files": files,
                                              "reason": f"{' and '.join(files)} both map to tile {tile_id}: "
                                                        f"{opened}"})
                    out["tile_files"] += 1
                elif names[0] != canonical:
                    out["stray"].append({"file": f"{folder}/{names[0]}",
                                         "reason": f"maps to tile {tile_id}, but the readers open "
                                                   f"{folder}/{canonical}: rename it"})
                else:
                    out["tile_files"] += 1
    return out


def format_files(files: dict) -> list[str]:
    """One line per stray or duplicate file of ``account_files`` (``file img/img_a.jpeg STRAY ...``)."""
    lines = [f"file {d['files'][0]:<24} DUPLICATE {d['reason']}" for d in files["duplicates"]]
    lines += [f"file {s['file']:<24} STRAY {s['reason']}" for s in files["stray"]]
    return lines


def format_left_out(excluded: dict, results: list[dict]) -> list[str]:
    """One line per tile a run leaves out, with its file and the reason (``left out: tile 23 (img_tiff/...)``)."""
    files = {r["tile"]: r["image_file"] for r in results if not r["ok"]}
    return [f"left out: tile {tile} ({files.get(int(tile), '?')}): {reason}"
            for tile, reason in sorted(excluded.items(), key=lambda kv: int(kv[0]))]


@dataclass
class FolderCheck:
    """One pass over a dataset folder: every tile checked (``results``, one per tile and encoding: check_dataset)
    and every file of its tile folders accounted for (``files``: stray files and duplicates, account_files)."""

    data_dir: Path
    encoding: str
    results: list[dict]
    files: dict

    @property
    def good(self) -> list[int]:
        """The ids of the tiles a run uses."""
        return [r["tile"] for r in self.results if r["ok"]]

    @property
    def excluded(self) -> dict:
        """{tile id: reason} of the tiles a run leaves out."""
        return {r["tile"]: "; ".join(r["problems"]) for r in self.results if not r["ok"]}


def check_folder(data_dir: Path | str, encoding: str, expected_size: int | None = None) -> FolderCheck:
    """Check every tile of ``data_dir`` in ``encoding`` and account for every file, in one pass."""
    return FolderCheck(Path(data_dir), encoding, check_dataset(data_dir, encoding, expected_size),
                       account_files(data_dir, encoding))


def select_tiles(data_dir: Path | str, encoding: str, strict: bool = False,
                 expected_size: int | None = None) -> tuple[list[int], dict, list[dict]]:
    """(good tile ids, {tile id: reason} of the tiles left out, all results) of ``check_dataset``.

    With ``strict`` the first bad tile raises StrictDataError naming the tile and its problem.
    """
    results = check_dataset(data_dir, encoding, expected_size)
    good, excluded = [], {}
    for r in results:
        if r["ok"]:
            good.append(r["tile"])
            continue
        reason = "; ".join(r["problems"])
        if strict:
            raise StrictDataError(f"tile {r['tile']} ({r['encoding']}, {r['image_file']}): {reason}. "
                                  "Fix or remove the tile, or run without --strict to leave it out.")
        excluded[r["tile"]] = reason
    return good, excluded, results


def dataset_card(results: list[dict], manifest: dict | None = None, data_dir: Path | str | None = None,
                 files: dict | None = None) -> dict:
    """The run folder's ``dataset_card.json``: tiles used and left out (with reasons), class balance and the
    all-background baseline accuracy, overall and per split of ``manifest`` when given, and ``files`` (stray
    files: account_files) when given."""
    by_tile = {r["tile"]: r for r in results}

    def balance(tile_ids) -> dict:
        rows = [by_tile[t] for t in tile_ids if t in by_tile and by_tile[t]["mask_pixels"]]
        positive = sum(r["mask_positive_pixels"] for r in rows)
        total = sum(r["mask_pixels"] for r in rows)
        share = positive / total if total else None
        return {"tiles": len(rows), "pixels": total, "tailings_pixels": positive,
                "tailings_share": share, "baseline_accuracy": (1 - share) if share is not None else None}

    used = [r["tile"] for r in results if r["ok"]]
    card = {
        "schema": "tailings-parity/dataset-card", "version": 1,
        "data_dir": str(Path(data_dir).resolve()) if data_dir else (manifest or {}).get("data_dir"),
        "encodings": sorted({r["encoding"] for r in results}),
        "tiles_checked": len(results), "tiles_ok": len(used),
        "excluded": {str(r["tile"]): "; ".join(r["problems"]) for r in results if not r["ok"]},
        "notes": {str(r["tile"]): r["notes"] for r in results if r["notes"]},
        "class_balance": {"all_ok_tiles": balance(used)},
        "tiles": [{"tile": r["tile"], "encoding": r["encoding"], "ok": r["ok"], "problems": r["problems"],
                   "mask_non_binary_pixels": r["mask_non_binary_pixels"],
                   "tailings_share": (r["mask_positive_pixels"] / r["mask_pixels"]) if r["mask_pixels"] else None}
                  for r in results],
    }
    if files is not None:  # every file of the tile folders accounted for: stray files (a run refuses duplicates)
        card["files"] = files
    if manifest:
        card["split"] = {k: len(manifest[k]) for k in ("train", "val", "test")}
        for split in ("train", "val", "test"):
            card["class_balance"][split] = balance(manifest[split])
    return card


def format_results(results: list[dict]) -> str:
    """One line per tile and encoding (``tile 23 geotiff BAD: ...``) and a summary line."""
    lines = []
    for r in results:
        status = "ok " if r["ok"] else "BAD"
        detail = "; ".join(r["problems"]) if r["problems"] else (
            f"mask non-0/1 before threshold: {r['mask_non_binary_pixels']}")
        if r["notes"]:
            detail += " | note: " + "; ".join(r["notes"])
        lines.append(f"tile {r['tile']:>4} {r['encoding']:<7} {status} {detail}")
    bad = [r for r in results if not r["ok"]]
    lines.append(f"{len(results)} tile checks, {len(results) - len(bad)} ok, {len(bad)} bad"
                 + (": " + ", ".join(f"{r['tile']} ({r['encoding']})" for r in bad) if bad else ""))
    return "\n".join(lines)
