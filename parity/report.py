"""``tailings-parity report RUN``: the comparison and the report of a run folder, rebuilt without training.

Writes ``comparison.json``, ``results.json`` (schema ``tailings-parity/results`` version 1: every number of the
report), ``report.md``, ``report.html`` (one self-contained file, plots embedded as base64 PNG, opens offline)
and ``plots/*.png``. Reads only the run folder (FORMATS.md); plots with matplotlib's Agg backend.
"""

from __future__ import annotations

import base64
import html
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

RESULTS_SCHEMA = "tailings-parity/results"
RESULTS_VERSION = 1
TIMING_PHASES = ("start_to_ready", "data", "handover", "build", "epochs", "epoch_metrics", "evaluation", "save",
                 "total")
# Line styles that keep identical curves visible on top of each other.
STYLES = {"python": dict(color="#1f77b4", lw=3.0, ls="-", alpha=0.6),
          "r-rpy2": dict(color="#d62728", lw=1.6, ls="--"),
          "r-rscript": dict(color="#2ca02c", lw=1.2, ls=":")}


class ReportError(ValueError):
    """A run folder that cannot be reported on; the message says what is missing and what to do."""


# ---------------------------------------------------------------------------------------------- reading

def read_json(path: Path, default=None):
    """Parsed JSON of ``path`` or ``default`` when absent."""
    return json.loads(path.read_text()) if path.is_file() else default


def check_run_dir(run_dir: Path | str) -> Path:
    """A run folder with at least config.json, manifest.json and workers/; else ReportError naming the gap."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such run folder; run folders are under reports/ (tailings-parity run)")
    for name in ("config.json", "manifest.json", "workers"):
        if not (run_dir / name).exists():
            raise ReportError(f"{run_dir}: {name} missing: this is not a tailings-parity run folder, or the run "
                              "stopped before its workers (see its INCOMPLETE file)")
    return run_dir


def worker_records(run_dir: Path) -> list[dict]:
    """The worker runs of a run folder, from harness.json, else from the folder names under workers/."""
    harness = read_json(run_dir / "harness.json")
    if harness and harness.get("workers"):
        return harness["workers"]
    recs = []
    for d in sorted(p for p in (run_dir / "workers").iterdir() if p.is_dir() and not p.name.startswith(".")):
        parts = d.name.split("-")
        tagged = {p[0]: int(p[1:]) for p in parts[1:] if p[:1] in "rs" and p[1:].isdigit()}
        impl = "-".join(p for p in parts if not (p[:1] in "rs" and p[1:].isdigit()))
        recs.append({"key": d.name, "impl": impl, "seed": tagged.get("s"), "repeat": tagged.get("r", 1)})
    order = {"python": 0, "r-rpy2": 1, "r-rscript": 2}
    return sorted(recs, key=lambda r: (r["seed"] or 0, r["repeat"], order.get(r["impl"], 9)))


def compare_run(run_dir: Path | str, mode: str | None = None) -> dict:
    """Compare the workers of a run folder (parity/compare.py) and write ``comparison.json``; returns it."""
    from parity import compare

    run_dir = check_run_dir(run_dir)
    config = read_json(run_dir / "config.json")
    harness = read_json(run_dir / "harness.json", {})
    manifest = read_json(run_dir / "manifest.json")
    mode = mode or harness.get("mode") or config.get("mode", "strict")
    tolerances = {k: tuple(v) for k, v in (harness.get("tolerances") or {}).items()}
    recs = worker_records(run_dir)
    if not recs:
        raise ReportError(f"{run_dir}/workers: no worker folders")
    seed0 = recs[0].get("seed")
    folder = lambda r: compare.WorkerFolder(run_dir / "workers" / r["key"], r["impl"])  # noqa: E731
    main = [folder(r) for r in recs if r.get("seed") == seed0 and r.get("repeat", 1) == 1]
    repeats = {}
    for r in recs:
        if r.get("seed") == seed0:
            repeats.setdefault(r["impl"], []).append(compare.WorkerFolder(run_dir / "workers" / r["key"], r["key"]))
    groups = None
    if mode == "statistical":
        groups = {}
        for r in recs:
            if r.get("repeat", 1) == 1:
                groups.setdefault(r["impl"], []).append(folder(r))
    doc = compare.compare_workers(main, mode, tolerances, manifest,
                                  repeats={k: v for k, v in repeats.items() if len(v) > 1},
                                  statistical_groups=groups)
    doc["worker_keys"] = {w.name: str(w.path.name) for w in main}
    compare.write_comparison(doc, run_dir / "comparison.json")
    return doc


# ---------------------------------------------------------------------------------------------- numbers

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


def _clean(o):
    """JSON-safe copy: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating, float)):
        f = float(o)
        return f if math.isfinite(f) else None
    if isinstance(o, np.ndarray):
        return _clean(o.tolist())
    return o


def collect_results(run_dir: Path, comparison: dict, complete: bool | None = None) -> dict:
    """Every number the report shows, as the results.json document."""
    from parity.compare import WorkerFolder

    recs = worker_records(run_dir)
    config = read_json(run_dir / "config.json")
    manifest = read_json(run_dir / "manifest.json")
    harness = read_json(run_dir / "harness.json", {})
    main_keys = comparison.get("worker_keys") or {r["impl"]: r["key"] for r in recs if r.get("repeat", 1) == 1}
    workers = {impl: WorkerFolder(run_dir / "workers" / key, impl) for impl, key in main_keys.items()}
    weights = []
    for pair in comparison["pairs"]:
        for s in pair["stages"]:
            if s["stage"] in ("initial_weights", "final_weights") and s["details"].get("variables"):
                for v in s["details"]["variables"]:
                    weights.append({"reference": pair["reference"], "candidate": pair["candidate"],
                                    "stage": s["stage"], **{k: v.get(k) for k in (
                                        "variable", "identical", "max_abs_diff", "max_ulp_diff", "rel_l2",
                                        "n_differ", "size", "verdict")}})
    predictions = []
    for pair in comparison["pairs"]:
        s = next((s for s in pair["stages"] if s["stage"] == "predictions"), None)
        if s:
            predictions.append({"reference": pair["reference"], "candidate": pair["candidate"],
                                "class_differ_share": s["details"].get("class_differ_share"),
                                "max_abs_diff": s["details"].get("max_abs_diff")})
    return _clean({
        "schema": RESULTS_SCHEMA, "version": RESULTS_VERSION, "run_id": run_dir.name,
        "generated": datetime.now(timezone.utc).isoformat(), "complete": (not (run_dir / "INCOMPLETE").exists()) if complete is None else complete,
        "preset": config.get("preset"), "mode": comparison["mode"], "config": config,
        "verdict": comparison["verdict"], "ok": comparison["ok"], "first_divergence": comparison["first_divergence"],
        "workers": {impl: {"key": w.path.name, "status": w.status} for impl, w in workers.items()},
        "harness": {k: harness.get(k) for k in ("command", "impls", "repeats", "seeds", "r_dir", "started", "finished")},
        "environment": {impl: w.json("environment.json") for impl, w in workers.items()},
        "dataset": {"card": read_json(run_dir / "dataset_card.json", {}), "data_dir": manifest.get("data_dir"),
                    "encoding": manifest.get("encoding"), "manifest_sha256": manifest.get("manifest_sha256"),
                    "train": manifest.get("train"), "val": manifest.get("val"), "test": manifest.get("test"),
                    "excluded": manifest.get("excluded")},
        "metrics": {impl: (w.json("metrics.json") or {}).get("epochs") for impl, w in workers.items()},
        "batch_losses": {impl: (w.npy("batch_losses.npy").tolist() if w.has("batch_losses.npy") else None)
                         for impl, w in workers.items()},
        "weights": weights, "predictions": predictions,
        "timing": timing_summary(run_dir, recs),
        "comparison": comparison,
    })


# ---------------------------------------------------------------------------------------------- plots

def _save(fig, path: Path) -> bool:
    """Lay out, write and close a figure; True (the plot exists) for the callers' return."""
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    _plt().close(fig)
    return True


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(results: dict, path: Path) -> bool:
    """Loss, accuracy and IoU per epoch, train and validation, every worker overlaid."""
    metrics = {k: v for k, v in results["metrics"].items() if v}
    if not metrics:
        return False
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
    for row, split in enumerate(("train", "val")):
        for col, key in enumerate(("loss", "accuracy", "iou")):
            ax = axes[row][col]
            for impl, epochs in metrics.items():
                xs = [e["epoch"] for e in epochs]
                ys = [e.get(split, {}).get(key) for e in epochs]
                ys = [np.nan if y is None else y for y in ys]
                ax.plot(xs, ys, marker="o", label=impl, **STYLES.get(impl, {}))
            if key == "accuracy":
                base = [e.get(split, {}).get("baseline_accuracy") for e in next(iter(metrics.values()))]
                if any(b is not None for b in base):
                    ax.plot(xs, [np.nan if b is None else b for b in base], color="grey", lw=1, ls="-.",
                            label="all-background")
            ax.set_title(f"{split} {key}")
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def plot_batch_losses(results: dict, path: Path) -> bool:
    """Loss of every batch, every worker overlaid, and each candidate's absolute difference to the reference."""
    losses = {k: np.asarray(v, dtype=np.float64) for k, v in results["batch_losses"].items() if v is not None}
    if not losses:
        return False
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 3.6))
    ref_name = results["comparison"]["reference"]
    ref = losses.get(ref_name)
    for impl, arr in losses.items():
        ax1.plot(arr.ravel(), label=impl, **STYLES.get(impl, {}))
        if ref is not None and impl != ref_name and arr.shape == ref.shape:
            diff = np.abs(arr - ref).ravel()
            ax2.semilogy(np.where(diff > 0, diff, np.nan), marker=".", label=f"|{impl} - {ref_name}|",
                         **{k: v for k, v in STYLES.get(impl, {}).items() if k != "lw"})
    ax1.set_title("loss of every batch (epochs one after the other)")
    ax1.set_xlabel("batch")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.set_title("absolute difference to the reference (log; empty = 0)")
    ax2.set_xlabel("batch")
    ax2.set_xlim(ax1.get_xlim())
    if ax2.lines and ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    return _save(fig, path)


def plot_weights(results: dict, path: Path) -> bool:
    """Final weights: max ULP difference per variable for each candidate (log scale; 0 = bit-identical)."""
    rows = [w for w in results["weights"] if w["stage"] == "final_weights"]
    if not rows:
        return False
    plt = _plt()
    cands = list(dict.fromkeys(r["candidate"] for r in rows))
    names = list(dict.fromkeys(r["variable"] for r in rows))
    fig, ax = plt.subplots(figsize=(13, 3.8))
    width = 0.8 / len(cands)
    for k, cand in enumerate(cands):
        vals = {r["variable"]: r["max_ulp_diff"] for r in rows if r["candidate"] == cand}
        ys = [(vals.get(n) or 0) + 1 for n in names]
        ax.bar(np.arange(len(names)) + k * width, ys, width, label=f"{cand} vs {rows[0]['reference']}",
               color=STYLES.get(cand, {}).get("color"))
    ax.set_yscale("log")
    ax.set_ylabel("max ULP difference + 1")
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    ax.set_xticklabels(names, rotation=75, fontsize=7)
    ax.set_title("final weights per variable (1 = bit-identical)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def plot_timing(results: dict, path: Path) -> bool:
    """Median seconds per phase per worker, with min-max whiskers over repeats."""
    per = results["timing"]["per_impl"]
    if not per:
        return False
    plt = _plt()
    phases = [p for p in TIMING_PHASES + ("spawn_wall",) if any(per[i][p]["median"] is not None for i in per)]
    fig, ax = plt.subplots(figsize=(13, 3.8))
    width = 0.8 / len(per)
    for k, (impl, ph) in enumerate(per.items()):
        med = np.array([ph[p]["median"] or 0 for p in phases])
        lo = med - np.array([ph[p]["min"] or 0 for p in phases])
        hi = np.array([ph[p]["max"] or 0 for p in phases]) - med
        ax.bar(np.arange(len(phases)) + k * width, med, width, yerr=[lo, hi], capsize=3, label=impl,
               color=STYLES.get(impl, {}).get("color"))
    ax.set_xticks(np.arange(len(phases)) + 0.4 - width / 2)
    ax.set_xticklabels(phases, fontsize=8)
    ax.set_ylabel("seconds (median, min-max)")
    ax.set_title("wall time per phase")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def plot_tiles(run_dir: Path, results: dict, path: Path, n_tiles: int = 3) -> bool:
    """Validation tiles: image, ground truth, the prediction of every worker, and where they disagree."""
    keys = {impl: rec["key"] for impl, rec in results["workers"].items()}
    ref = results["comparison"]["reference"]
    ref_dir = run_dir / "workers" / keys.get(ref, "")
    if not (ref_dir / "inputs_val.npz").is_file():
        return False
    with np.load(ref_dir / "inputs_val.npz") as z:
        images, masks = z["images"], z["masks"]
    preds = {}
    for impl, key in keys.items():
        p = run_dir / "workers" / key / "predictions_val.npy"
        if p.is_file():
            preds[impl] = np.load(p)
    if not preds or len(images) == 0:
        return False
    val_ids = results["dataset"].get("val") or list(range(len(images)))
    # Show the tiles with the most disagreement first, then the ones with most tailings.
    score = np.zeros(len(images))
    ref_cls = preds.get(ref, next(iter(preds.values()))) > 0.5
    for impl, p in preds.items():
        if p.shape == ref_cls.shape:
            score += ((p > 0.5) != ref_cls).reshape(len(p), -1).mean(axis=1) * 1e3
    score += masks.reshape(len(masks), -1).mean(axis=1)
    order = list(np.argsort(-score, kind="stable")[:max(n_tiles, 3)])
    cols = 3 + len(preds)
    plt = _plt()
    fig, axes = plt.subplots(len(order), cols, figsize=(2.3 * cols, 2.4 * len(order)), squeeze=False)
    for row, k in enumerate(order):
        img = images[k]
        img = img[..., 0] if img.shape[-1] == 1 else img
        panels = [(img, f"tile {val_ids[k]}: image", "gray" if img.ndim == 2 else None),
                  (masks[k], "ground truth", "gray")]
        disagree = np.zeros(masks[k].shape, dtype=bool)
        for impl, p in preds.items():
            panels.append((p[k], f"{impl}: p(tailings)", "gray"))
            if p.shape == ref_cls.shape:
                disagree |= (p[k] > 0.5) != ref_cls[k]
        panels.append((disagree, f"disagree: {int(disagree.sum())} px", "Reds"))
        for col, (arr, title, cmap) in enumerate(panels):
            ax = axes[row][col]
            ax.imshow(np.clip(arr, 0, 1) if arr.dtype != bool else arr, cmap=cmap, vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    return _save(fig, path)


def plot_statistical(results: dict, path: Path) -> bool:
    """Statistical mode: final val IoU and loss of every seed, per language."""
    st = results["comparison"].get("statistical")
    if not st or not st.get("tests"):
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, metric in zip(axes, ("val_iou", "val_loss")):
        tests = [t for t in st["tests"] if t["metric"] == metric]
        groups = {st["reference"]: tests[0]["reference_values"]} if tests else {}
        for t in tests:
            groups[t["candidate"]] = t["candidate_values"]
        for k, (impl, vals) in enumerate(groups.items()):
            ax.scatter([k] * len(vals), vals, color=STYLES.get(impl, {}).get("color"), s=40)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(list(groups))
        ax.set_title(f"final {metric} per seed")
        ax.grid(alpha=0.3)
    return _save(fig, path)


PLOTS = [("curves", "Loss, accuracy and IoU per epoch (train and validation)"),
         ("batch_losses", "Loss of every batch"),
         ("weights", "Final weights: difference per variable"),
         ("timing", "Wall time per phase"),
         ("tiles", "Validation tiles: image, ground truth, predictions, disagreement"),
         ("statistical", "Seeds: final validation IoU and loss")]


def make_plots(run_dir: Path, results: dict) -> dict[str, Path]:
    """Write plots/*.png; returns name -> path of those that had data."""
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    makers = {"curves": lambda p: plot_curves(results, p), "batch_losses": lambda p: plot_batch_losses(results, p),
              "weights": lambda p: plot_weights(results, p), "timing": lambda p: plot_timing(results, p),
              "tiles": lambda p: plot_tiles(run_dir, results, p), "statistical": lambda p: plot_statistical(results, p)}
    made = {}
    for name, fn in makers.items():
        path = out / f"{name}.png"
        if fn(path):
            made[name] = path
        elif path.exists():
            path.unlink()
    return made


# ---------------------------------------------------------------------------------------------- text

def _n(x, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def sections(results: dict) -> list[tuple[str, list[str], list[list[str]], str | None]]:
    """The report as (title, table header, table rows, plot name) sections, shared by Markdown and HTML."""
    comp = results["comparison"]
    out = []
    fd = results["first_divergence"]
    rows = [["verdict", results["verdict"]], ["mode", results["mode"]], ["preset", results["preset"]],
            ["first divergence", "none" if not fd else
             f"stage {fd['stage']}" + (f", {fd['location']}" if fd.get("location") else "") +
             f" ({fd.get('candidate')} vs {fd.get('reference')}): {fd['summary']}"],
            ["run", results["run_id"]], ["complete", str(results["complete"])]]
    out.append(("Verdict", ["", ""], rows, None))
    for pair in comp["pairs"]:
        rows = [[s["title"], s["verdict"], s.get("location") or "", s["summary"]] for s in pair["stages"]]
        out.append((f"Stages: {pair['candidate']} vs {pair['reference']}", ["stage", "verdict", "where", "detail"],
                    rows, None))
    for pair in comp.get("repeats") or []:
        fdr = pair.get("first_divergence")
        out.append((f"Repeat: {pair['candidate']} vs {pair['reference']}", ["", ""],
                    [["run-to-run", "bit-identical" if not fdr else f"differs at {fdr['stage']}: {fdr['summary']}"]],
                    None))
    if comp.get("statistical"):
        st = comp["statistical"]
        rows = [[t["candidate"], t["metric"], _n(t.get("mean_reference")), _n(t.get("mean_candidate")),
                 _n(t.get("p_value")), "ok" if t["ok"] else "DIFFERS"] for t in st["tests"]]
        out.append((f"Statistical: {st['test']}, alpha {st['alpha']}",
                    ["candidate", "metric", "mean ref", "mean cand", "p", ""], rows, "statistical"))
    env = results["environment"]
    keys = ["language", "r_version", "reticulate_version", "rpy2_version", "python_version", "tensorflow_version",
            "keras_version", "numpy_version", "threads_intra", "threads_inter", "op_determinism", "seed", "devices",
            "cpu", "cpu_count", "platform"]
    impls = list(env)
    seen = set().union(*[set(e or {}) for e in env.values()]) if env else set()
    keys += sorted(k for k in seen if k not in keys and k not in ("impl", "env"))
    rows = [[k] + [_short((env[i] or {}).get(k)) for i in impls] for k in keys if k in seen]
    out.append(("Environment (as each worker saw it)", ["key"] + impls, rows, None))
    out.append(("Dataset card", ["", ""], dataset_rows(results["dataset"]), None))
    out.append(("Training curves", [], [], "curves"))
    out.append(("Batch losses", [], [], "batch_losses"))
    final = [w for w in results["weights"] if w["stage"] == "final_weights"]
    cands = list(dict.fromkeys(w["candidate"] for w in final))
    by = {(w["candidate"], w["variable"]): w for w in final}
    wrows = []
    for var in dict.fromkeys(w["variable"] for w in final):
        row = [var]
        for c in cands:
            w = by.get((c, var)) or {}
            row += [_n(w.get("max_abs_diff")), _n(w.get("max_ulp_diff")), _n(w.get("rel_l2"))]
        wrows.append(row)
    header = ["variable"] + [f"{c} {m}" for c in cands for m in ("max abs diff", "max ulp", "rel L2")]
    out.append(("Final weights per variable", header, wrows, "weights"))
    prow = [[p["candidate"], _n(p["max_abs_diff"]), f"{p['class_differ_share']:.4%}"
             if p["class_differ_share"] is not None else "-"] for p in results["predictions"]]
    out.append(("Predictions", ["candidate", "max abs diff of probabilities", "pixels whose class differs"],
                prow, "tiles"))
    tm = results["timing"]
    trows = []
    for impl, ph in tm["per_impl"].items():
        for p in tm["phases"]:
            s = ph.get(p, {})
            if s.get("median") is None:
                continue
            ratio = (tm["ratios_vs_python"].get(impl) or {}).get(p)
            trows.append([impl, p, _n(s["median"]), f"{_n(s['min'])} - {_n(s['max'])}", _n(s["iqr"]), str(s["n"]),
                          _n(ratio, 3) if ratio is not None else ("1" if impl == "python" else "-")])
    for impl, s in tm["peak_rss_mb"].items():
        trows.append([impl, "peak RSS (MiB)", _n(s["median"]), f"{_n(s['min'])} - {_n(s['max'])}", _n(s["iqr"]),
                      str(s["n"]), ""])
    out.append(("Timing (seconds) and memory", ["worker", "phase", "median", "min - max", "IQR", "n",
                                                "ratio to python"], trows, "timing"))
    h = tm["harness"]
    hrows = [[k, _n(v)] for k, v in (h.get("phases") or {}).items()]
    hrows.append(["all worker wall time", _n(h.get("worker_wall_total"))])
    hrows.append(["harness overhead (total - workers)", _n(h.get("overhead_total"))])
    for impl, s in (h.get("spawn_overhead") or {}).items():
        hrows.append([f"spawn overhead {impl} (wall - worker total)", _n(s.get("median"))])
    out.append(("Harness overhead (seconds)", ["", ""], hrows, None))
    return out


def _short(v) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    s = "-" if v is None else str(v)
    return s.splitlines()[0][:80] if s else s


def dataset_rows(ds: dict) -> list[list[str]]:
    """Rows of the dataset card: split sizes, tiles left out and why, and whatever the card measured."""
    rows = [["data folder", str(ds.get("data_dir"))], ["encoding", str(ds.get("encoding"))],
            ["tiles used", f"{len(ds.get('train') or [])} train, {len(ds.get('val') or [])} val, "
                           f"{len(ds.get('test') or [])} test"],
            ["val tiles", ", ".join(str(t) for t in ds.get("val") or [])],
            ["left out", "; ".join(f"tile {k}: {v}" for k, v in (ds.get("excluded") or {}).items()) or "none"],
            ["manifest sha256", str(ds.get("manifest_sha256"))]]
    card = ds.get("card") or {}
    for split, b in (card.get("class_balance") or {}).items():
        if not isinstance(b, dict) or b.get("tailings_share") is None:
            continue
        rows.append([f"class balance: {split.replace('_', ' ')}",
                     f"{b['tailings_share']:.2%} tailings over {b.get('tiles')} tiles ({b.get('pixels')} px); "
                     f"all-background baseline accuracy {b['baseline_accuracy']:.4f}"])
    for k, v in card.items():
        if k in ("excluded", "tiles", "per_tile", "class_balance", "schema", "version", "data_dir"):
            continue
        rows.append([k.replace("_", " "), _short(v) if not isinstance(v, dict) else
                     ", ".join(f"{a}: {_n(b) if isinstance(b, (int, float)) else b}" for a, b in v.items())[:300]])
    return rows


def render_markdown(results: dict, plots: dict[str, Path]) -> str:
    """report.md: the sections as Markdown tables, plots linked from plots/."""
    lines = [f"# tailings-parity report: {results['run_id']}", "", f"**{results['verdict']}**", ""]
    for title, header, rows, plot in sections(results):
        lines += [f"## {title}", ""]
        if rows:
            header = header if any(header) else [""] * len(rows[0])
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            for r in rows:
                lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |")
            lines.append("")
        if plot and plot in plots:
            lines += [f"![{plot}](plots/{plots[plot].name})", ""]
    return "\n".join(lines) + "\n"


CSS = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1250px;color:#222}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f2f2f2}.ok{background:#e6f4e6}.bad{background:#fbe3e3}
.verdict{font-size:18px;padding:10px;border-radius:4px}img{max-width:100%;border:1px solid #ddd}
h2{border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:28px}"""


def render_html(results: dict, plots: dict[str, Path]) -> str:
    """report.html: one self-contained page, plots embedded as base64 PNG."""
    e = html.escape
    ok = results["ok"]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>tailings-parity {e(results['run_id'])}</title><style>{CSS}</style></head><body>",
             f"<h1>tailings-parity report</h1><p>run <code>{e(results['run_id'])}</code></p>",
             f"<p class='verdict {'ok' if ok else 'bad'}'>{e(results['verdict'])}</p>"]
    for title, header, rows, plot in sections(results):
        parts.append(f"<h2>{e(title)}</h2>")
        if rows:
            parts.append("<table>")
            if any(header):
                parts.append("<tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            for r in rows:
                cls = ""
                if len(r) > 1 and r[1] in ("identical", "within_tolerance", "not_recorded"):
                    cls = " class='ok'"
                elif len(r) > 1 and r[1] in ("differs", "failed", "missing", "error"):
                    cls = " class='bad'"
                parts.append(f"<tr{cls}>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>")
            parts.append("</table>")
        if plot and plot in plots:
            data = base64.b64encode(plots[plot].read_bytes()).decode()
            parts.append(f"<p><img alt='{e(plot)}' src='data:image/png;base64,{data}'></p>")
    parts.append(f"<p><small>results.json schema {RESULTS_SCHEMA} version {RESULTS_VERSION}; "
                 f"generated {e(results['generated'])}</small></p></body></html>")
    return "\n".join(parts) + "\n"


def build_report(run_dir: Path | str, comparison: dict | None = None, complete: bool | None = None) -> dict:
    """Write results.json, report.md, report.html and plots/ of a run folder; returns the results.

    ``complete``: whether the run finished (the runner says True just before it removes INCOMPLETE);
    by default, whether the folder has no INCOMPLETE marker.
    """
    run_dir = check_run_dir(run_dir)
    comparison = comparison or compare_run(run_dir)
    results = collect_results(run_dir, comparison, complete)
    plots = make_plots(run_dir, results)
    results["plots"] = {k: f"plots/{p.name}" for k, p in plots.items()}
    (run_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (run_dir / "report.md").write_text(render_markdown(results, plots))
    (run_dir / "report.html").write_text(render_html(results, plots))
    return results


# ---------------------------------------------------------------------------------------------- CLI

def add_arguments(parser) -> None:
    """Options of ``tailings-parity report``."""
    parser.add_argument("run", help="run folder (reports/<run-id>) or a run id")
    parser.add_argument("--mode", choices=("strict", "tolerance", "statistical"), default=None,
                        help="compare again in another mode (default: the run's mode)")


def resolve_run(text: str) -> Path:
    """A run folder path, or a run id under reports/."""
    from parity.env import REPORTS_DIR

    p = Path(text)
    if p.is_dir():
        return p
    if (REPORTS_DIR / text).is_dir():
        return REPORTS_DIR / text
    raise ReportError(f"{text}: no such run folder (nor reports/{text}); list them with ls reports/")


def main(args) -> int:
    """``tailings-parity report RUN``: exit 0 when the run shows parity, 1 otherwise, 2 on bad input."""
    try:
        run_dir = resolve_run(args.run)
        doc = compare_run(run_dir, mode=args.mode)
        build_report(run_dir, comparison=doc)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if (run_dir / "INCOMPLETE").exists():
        print(f"warning: {run_dir} is marked INCOMPLETE: {(run_dir / 'INCOMPLETE').read_text().strip()}",
              file=sys.stderr)
    print(doc["verdict"])
    print(f"report: {run_dir / 'report.html'}")
    return 0 if doc["ok"] else 1
