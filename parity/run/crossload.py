"""Each saved model loaded by each language: the harness side of ``python_impl/crossload.py`` and
``r_impl/R/crossload.R``.

Reads every finished worker's ``model.keras``, ``inputs_val.npz`` and ``predictions_val.npy`` and the run's
``config.json`` and ``manifest.json``; writes per worker folder ``crossload.json`` (``{"self" | "python" | "r":
{"ok", "error", "file"}}``) and ``crossload_<loader>.npy`` (the fixed batch predicted by the loaded model;
``self``: the worker's own prediction of those tiles). The saved_models stage compares them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from parity.env import R_IMPL_DIR, compute_environment, r_environment
from parity.process import run_child

LOADERS = ("python", "r")


def loader_command(loader: str, spec: Path) -> tuple[list[str], dict]:
    """Command line and environment of one language's loader (a fresh process, like the workers)."""
    if loader == "python":
        return [sys.executable, "-m", "python_impl.crossload", str(spec)], compute_environment()
    return ["Rscript", "--vanilla", str(R_IMPL_DIR / "crossload.R"), str(spec)], r_environment(python=sys.executable)


def crossload(run_dir: Path, keys: list[str], config: dict, *, printer=None, timeout_s: float = 600) -> dict:
    """Load every listed worker's model.keras in Python and in R, predict the fixed batch, write crossload.json.

    Returns ``{worker key: record}``; never raises for a model that does not load (its record says why).
    """
    printer = printer or (lambda text: None)
    fixed = json.loads((run_dir / "manifest.json").read_text())["fixed_batch"]
    records: dict[str, dict] = {}
    jobs: dict[str, list] = {loader: [] for loader in LOADERS}
    for key in keys:
        wdir = run_dir / "workers" / key
        rec = records[key] = {}
        pred = wdir / "predictions_val.npy"
        if pred.is_file():
            np.save(wdir / "crossload_self.npy", np.load(pred)[np.asarray(fixed, dtype=np.int64)])
            rec["self"] = {"ok": True, "error": None, "file": "crossload_self.npy"}
        else:
            rec["self"] = {"ok": False, "error": "predictions_val.npy missing", "file": None}
        if not (wdir / "model.keras").is_file() or not (wdir / "inputs_val.npz").is_file():
            for loader in LOADERS:
                rec[loader] = {"ok": False, "error": "model.keras or inputs_val.npz missing", "file": None}
            continue
        for loader in LOADERS:
            jobs[loader].append({"key": key, "model": str(wdir / "model.keras"), "inputs": str(wdir / "inputs_val.npz"),
                                 "fixed": fixed, "out": str(wdir / f"crossload_{loader}.npy"),
                                 "out_name": f"crossload_{loader}.npy"})
    scratch = run_dir / "workers" / ".crossload"
    scratch.mkdir(exist_ok=True)

    def load_all(loader: str, joblist: list) -> tuple[str, str, float]:
        spec = scratch / f"{loader}.json"
        spec.write_text(json.dumps({"config": str(run_dir / "config.json"), "jobs": joblist}))
        cmd, env = loader_command(loader, spec)
        t = time.time()
        try:
            child = run_child(cmd, env, timeout_s)
            return (child.stdout, child.stderr + (f"\ntimed out after {timeout_s} s" if child.timed_out else ""),
                    time.time() - t)
        except FileNotFoundError as exc:
            return "", str(exc), time.time() - t

    # The two languages' loaders run side by side: most of their time is starting TensorFlow (and R), which
    # the cores can do at once; the predictions do not depend on it.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(LOADERS)) as pool:
        futures = {loader: pool.submit(load_all, loader, joblist) for loader, joblist in jobs.items() if joblist}
    for loader, future in futures.items():
        joblist = jobs[loader]
        out, err, seconds = future.result()
        done = {}
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    item = json.loads(line)
                    done[item["key"]] = item["rec"]
                except (json.JSONDecodeError, KeyError):
                    pass
        tail = " ".join(err.strip().splitlines()[-3:])[-300:]
        for job in joblist:
            records[job["key"]][loader] = done.get(job["key"]) or {
                "ok": False, "file": None, "error": f"the {loader} loader stopped before this model: {tail}"}
        printer(f"  [crossload] {loader}: {sum(1 for j in joblist if records[j['key']][loader]['ok'])}"
                f"/{len(joblist)} models loaded in {seconds:.1f}s")
    for key, rec in records.items():
        (run_dir / "workers" / key / "crossload.json").write_text(json.dumps(rec, indent=1) + "\n")
    return records
