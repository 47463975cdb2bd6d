"""The split manifest: one JSON per run, written here, read by both languages (``parity/FORMATS.md``).

It fixes, once for both languages, the train/val/test tile ids, the batch order of every epoch, the
per-sample augmentation seeds and the fixed forward-pass batch, and records the sha256 of every file read.
All random numbers come from one ``numpy.random.Generator(PCG64(seed))``, drawn in this order: the split
permutation, then for each epoch the train permutation, its (n_train, 2) int32 augmentation seeds and, when
``crop_size`` > 0, its (n_train, 2) crop offsets (row, column of the crop's top-left pixel, uniform in
0..tile_size - crop_size), so adding epochs never changes the split or the earlier epochs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from python_impl.config import config_rules, split_sizes  # noqa: F401  (split_sizes: the twins' rounding)
# The reading side is the twins' (python_impl/manifest.py, r_impl/R/manifest.R); re-exported for the harness.
from python_impl.manifest import (SCHEMA, VERSION, ManifestError, check_files, file_sha256,  # noqa: F401
                                  read_manifest, verify_files, verify_text)


def make_manifest(config: dict, data_dir: Path | str, tile_ids, excluded: dict | None = None) -> dict:
    """Build the manifest for ``tile_ids`` (the good tiles) of ``data_dir``.

    ``excluded`` maps tile id -> reason for the tiles left out (from ``parity/data/check.py``). Config keys used:
    seed, encoding, split_train, split_val, epochs, batch_size.
    """
    from python_impl.data import tile_paths

    seed = int(config["seed"])
    ids = sorted(int(t) for t in tile_ids)
    rng = np.random.Generator(np.random.PCG64(seed))
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_train, n_val, _ = split_sizes(len(ids), float(config["split_train"]), float(config["split_val"]))
    train, val, test = sorted(order[:n_train]), sorted(order[n_train:n_train + n_val]), sorted(order[n_train + n_val:])
    batch_size = int(config["batch_size"])
    crop_size, tile_size = int(config.get("crop_size") or 0), int(config.get("tile_size") or 0)
    batches, augment_seeds, crops = [], [], []
    for _ in range(int(config["epochs"])):
        perm = rng.permutation(n_train)
        batches.append([[int(p) for p in perm[i:i + batch_size]] for i in range(0, n_train, batch_size)])
        seeds = rng.integers(0, np.iinfo(np.int32).max, size=(n_train, 2), dtype=np.int32, endpoint=True)
        augment_seeds.append(seeds.tolist())
        if crop_size:
            crops.append(rng.integers(0, tile_size - crop_size, size=(n_train, 2), endpoint=True).tolist())
    root = Path(data_dir).resolve()
    files = {}
    for tile_id in sorted(train + val + test):
        for path in tile_paths(root, tile_id, config["encoding"]):
            files[path.relative_to(root).as_posix()] = file_sha256(path)
    return {
        "schema": SCHEMA, "version": VERSION, "seed": seed, "data_dir": str(root), "encoding": config["encoding"],
        "epochs": int(config["epochs"]), "batch_size": batch_size,
        "train": train, "val": val, "test": test,
        "excluded": {str(k): str(v) for k, v in sorted((excluded or {}).items(), key=lambda kv: int(kv[0]))},
        "batches": batches, "augment_seeds": augment_seeds, "crop_size": crop_size, "crops": crops,
        "fixed_batch": list(range(min(int(config_rules(config)["fixed_batch_size"]), len(val)))),
        "files": files, "manifest_sha256": "",
    }


def _dumps(manifest: dict) -> str:
    # One top-level key per line: readable, and small even with many epochs of batches.
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_manifest(manifest: dict, path: Path | str) -> str:
    """Write ``manifest`` to ``path`` with its ``manifest_sha256``; returns that hash.

    The hash is of the file's text with the field's value empty (``"manifest_sha256": ""``), so any reader
    (R too) can verify it by blanking the value again and hashing the bytes.
    """
    blank = dict(manifest, manifest_sha256="")
    text = _dumps(blank)
    digest = hashlib.sha256(text.encode()).hexdigest()
    text = text.replace('"manifest_sha256": ""', f'"manifest_sha256": "{digest}"')
    Path(path).write_text(text)
    return digest
