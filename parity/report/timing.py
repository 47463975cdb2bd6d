"""Where the time goes: per worker and phase, medians and spread over repeats, R/Python ratios, peak memory,
and the harness's own overhead. Reads ``timings.json``, ``memory.json`` and ``harness.json`` of a run folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from parity.artifacts.folder import read_json

TIMING_PHASES = ("start_to_ready", "data", "handover", "build", "epochs", "epoch_metrics", "evaluation", "save",
                 "total")

def spread(values: list[float]) -> dict:
    """Median, min, max, interquartile range and count of a list of seconds (None-safe)."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"n": 0, "median": None, "min": None, "max": None, "iqr": None}
    q1, med, q3 = np.percentile(vals, [25, 50, 75])
    return {"n": len(vals), "median": float(med), "min": min(vals), "max": max(vals), "iqr": float(q3 - q1)}


def timing_summary(run_dir: Path, recs: list[dict]) -> dict:
    """Per impl and phase: median and spread over repeats; R/Python ratios of the medians; peak memory;
    the harness's own overhead (spawning, preparing, cross-loading, comparing)."""
    harness = read_json(run_dir / "harness.json", {})
    seed0 = recs[0].get("seed") if recs else None
    per_impl: dict[str, dict[str, list]] = {}
    mem: dict[str, list] = {}
    spawn_overhead: dict[str, list] = {}
    for r in recs:
        if r.get("seed") != seed0:
            continue
        wdir = run_dir / "workers" / r["key"]
        t = read_json(wdir / "timings.json", {})
        phases = per_impl.setdefault(r["impl"], {p: [] for p in TIMING_PHASES + ("spawn_wall",)})
        for p in TIMING_PHASES:
            v = t.get(p)
            phases[p].append(sum(v) if isinstance(v, list) else v)
        phases["spawn_wall"].append(r.get("wall_s"))
        if r.get("wall_s") is not None and t.get("total") is not None:
            spawn_overhead.setdefault(r["impl"], []).append(r["wall_s"] - t["total"])
        m = read_json(wdir / "memory.json", {})
        mem.setdefault(r["impl"], []).append(m.get("peak_rss_mb"))
    stats = {impl: {p: spread(v) for p, v in phases.items()} for impl, phases in per_impl.items()}
    ratios = {}
    ref = stats.get("python")
    for impl, ph in stats.items():
        if impl == "python" or ref is None:
            continue
        ratios[impl] = {p: (ph[p]["median"] / ref[p]["median"]
                            if ph[p]["median"] is not None and ref[p]["median"] else None) for p in ph}
    worker_wall = sum(r.get("wall_s") or 0.0 for r in recs)
    phases = harness.get("phases", {})
    total = phases.get("total")
    return {
        "phases": list(TIMING_PHASES) + ["spawn_wall"], "per_impl": stats, "ratios_vs_python": ratios,
        "peak_rss_mb": {impl: spread(v) for impl, v in mem.items()},
        "harness": {"phases": phases, "worker_wall_total": worker_wall,
                    "overhead_total": (total - worker_wall) if total is not None else None,
                    "spawn_overhead": {impl: spread(v) for impl, v in spawn_overhead.items()}},
    }




def speed_ratios(timing: dict) -> dict:
    """The run's own speed ratios from the medians: R over Python (training, data) and per-epoch metrics over
    training, per worker. ``tailings-parity bench`` adds the plain-fit ratio and the utilisation."""
    per = timing["per_impl"]
    med = lambda impl, phase: (per.get(impl, {}).get(phase) or {}).get("median")  # noqa: E731
    out = {"r_over_python_training": {}, "r_over_python_data": {}, "metrics_over_training": {}}
    for impl in per:
        if med(impl, "epochs") and med(impl, "epoch_metrics") is not None:
            out["metrics_over_training"][impl] = med(impl, "epoch_metrics") / med(impl, "epochs")
        if impl == "python":
            continue
        for key, phase in (("r_over_python_training", "epochs"), ("r_over_python_data", "data")):
            if med(impl, phase) is not None and med("python", phase):
                out[key][impl] = med(impl, phase) / med("python", phase)
    return out
