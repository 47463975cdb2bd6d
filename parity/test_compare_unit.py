"""The comparison's own arithmetic and modes, on copies of a real worker folder changed in one known way."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from parity.artifacts import diffs
from parity.compare import stages as compare


def test_ulp_distance_counts_adjacent_floats():
    """One step of nextafter is 1 ULP, across zero too; equal values are 0."""
    x = np.float32([1.0, -2.5, 0.0, 3e-38])
    up = np.nextafter(x, np.float32(np.inf))
    assert diffs.max_ulp_diff(x, up) == 1
    assert diffs.max_ulp_diff(x, x) == 0
    assert diffs.max_ulp_diff(np.float32([-0.0]), np.float32([0.0])) == 0
    tiny = np.float32([np.nextafter(np.float32(0), np.float32(1))])
    assert diffs.max_ulp_diff(-tiny, tiny) == 2
    assert not diffs.bits_equal(np.float32([-0.0]), np.float32([0.0]))  # equal numbers, different bits
    d = diffs.array_diff(x, up)
    assert not d["identical"] and d["n_differ"] == 4 and d["max_ulp_diff"] == 1


def _copy_worker(src, dest):
    shutil.copytree(src, dest)
    return compare.WorkerFolder(dest, "python")


def test_one_ulp_in_one_weight(smoke_run, tmp_path):
    """Strict names the variable and 1 ULP; tolerance mode accepts it; 1 % is beyond tolerance."""
    ref = compare.WorkerFolder(smoke_run / "workers" / "python", "python")
    cand_dir = tmp_path / "cand"
    shutil.copytree(ref.path, cand_dir)
    w = dict(np.load(cand_dir / "weights_final.npz"))
    key = list(w)[6]
    w[key] = w[key].copy()
    w[key].flat[0] = np.nextafter(w[key].flat[0], np.float32(np.inf))
    np.savez(cand_dir / "weights_final.npz", **w)
    cand = compare.WorkerFolder(cand_dir, "r-test")
    strict = compare.compare_pair(ref, cand, "strict")
    assert strict["first_divergence"]["stage"] == "final_weights"
    assert strict["first_divergence"]["location"] == key
    assert "max ulp 1" in strict["first_divergence"]["summary"]
    tol = compare.compare_pair(ref, cand, "tolerance")
    assert tol["ok"], tol["first_divergence"]
    w[key].flat[0] *= np.float32(1.01)
    w[key].flat[0] += np.float32(0.01)
    np.savez(cand_dir / "weights_final.npz", **w)
    far = compare.compare_pair(ref, compare.WorkerFolder(cand_dir, "r-test"), "tolerance")
    assert far["first_divergence"]["stage"] == "final_weights"


def test_failed_worker_is_named_at_its_stage(smoke_run, tmp_path):
    """A worker that died while building is reported at the architecture stage with its error."""
    ref = compare.WorkerFolder(smoke_run / "workers" / "python", "python")
    dead = tmp_path / "dead"
    shutil.copytree(ref.path, dead)
    # What a worker that died in its build phase leaves: the data stage's files and nothing later.
    for f in dead.iterdir():
        if f.name not in ("input_hashes.json", "inputs_val.npz", "progress.log"):
            f.unlink()
    (dead / "status.json").write_text(json.dumps({"impl": "r-rscript", "ok": False, "phase": "build",
                                                  "error": "ValueError: Cannot convert '(3, 3, 3, 8.0)' to a shape"}))
    pair = compare.compare_pair(ref, compare.WorkerFolder(dead, "r-rscript"), "strict")
    assert pair["first_divergence"]["stage"] == "architecture"
    assert "8.0" in pair["first_divergence"]["summary"]
    # The run's line says FAILED, not DIVERGED: a worker that died is no divergence between the languages.
    doc = {"workers": ["python", "r-rscript"], "mode": "strict", "pairs": [pair]}
    verdict = compare.verdict_of(doc)
    assert not verdict["ok"] and verdict["verdict"].startswith("FAILED: worker r-rscript failed in phase build: ")
    assert "DIVERGED" not in verdict["verdict"] and "worker_output.log" in verdict["verdict"]


def _with_val(src, dest, iou, loss):
    shutil.copytree(src, dest)
    m = json.loads((dest / "metrics.json").read_text())
    m["epochs"][-1]["val"].update(iou=iou, loss=loss)
    (dest / "metrics.json").write_text(json.dumps(m))
    return compare.WorkerFolder(dest, dest.name)


@pytest.mark.parametrize("shift, expect_ok", [(0.0, True), (0.3, False)])
def test_statistical_mode(smoke_run, tmp_path, shift, expect_ok):
    """Welch's test at alpha 0.05: overlapping seeds pass, a clear shift in val IoU and loss fails."""
    src = smoke_run / "workers" / "python"
    ious = [0.50, 0.52, 0.49, 0.51]
    groups = {"python": [_with_val(src, tmp_path / f"p{k}", v, 0.30 + v / 10) for k, v in enumerate(ious)],
              "r-rscript": [_with_val(src, tmp_path / f"r{k}", v + shift + 0.005 * (k % 2), 0.30 + v / 10 + shift)
                            for k, v in enumerate(ious)]}
    doc = compare.compare_statistical(groups, "python")
    assert doc["ok"] is expect_ok, doc["tests"]
    assert {t["metric"] for t in doc["tests"]} == {"val_iou", "val_loss"}
