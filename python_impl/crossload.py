"""Load saved models and predict the manifest's fixed batch; twin of ``r_impl/R/crossload.R``.

The harness (``parity/run/crossload.py``) runs this as ``python -m python_impl.crossload JOBS.json`` after the
workers: every worker's ``model.keras`` is loaded here and in R, the way a user of each language would load
it, and must predict the fixed batch as the saving worker did (in its batches). ``JOBS.json``:
``{"config": path of config.json, "jobs": [{"key", "model", "inputs", "fixed", "out", "out_name"}]}``.
Prints one JSON line ``{"key", "rec": {"ok", "error", "file"}}`` per job, so a crash leaves the jobs before it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np


def predict_saved(model_path, inputs_path, fixed, out_path, config: dict) -> None:
    """Load ``model_path``, predict the ``images`` of ``inputs_path`` ``batch_size`` at a time, as the worker
    did, and save rows ``fixed`` (0-based) as (N, H, W). The same batches: on some CPUs a row's low bits depend
    on the batch it falls in."""
    from python_impl.pair import load_saved

    model = load_saved(model_path, config)
    with np.load(inputs_path) as z:
        x = z["images"]
    y = np.asarray(model.predict(x, batch_size=int(config["batch_size"]), verbose=0), dtype=np.float32)[..., 0]
    np.save(out_path, np.ascontiguousarray(y[np.asarray(fixed, dtype=np.int64)]))


def run_crossload(jobs_path) -> int:
    """Run every job of ``jobs_path`` with the run's threads and determinism; returns how many loaded."""
    from python_impl.config import read_config
    from python_impl.train import set_determinism

    spec = json.loads(Path(jobs_path).read_text())
    config = read_config(spec["config"])
    set_determinism(config)  # before any TensorFlow op, as in the workers
    done = 0
    for job in spec["jobs"]:
        rec = {"ok": False, "error": None, "file": job["out_name"]}
        try:
            predict_saved(job["model"], job["inputs"], job["fixed"], job["out"], config)
            rec["ok"] = True
            done += 1
        except Exception as exc:  # one model that does not load must not hide the others
            rec["error"] = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"key": job["key"], "rec": rec}), flush=True)
    return done


if __name__ == "__main__":
    run_crossload(sys.argv[1])
    # Every result is printed and flushed: skip TensorFlow's teardown at exit (about 1 s).
    sys.stdout.flush()
    os._exit(0)
