"""The report's figures, one per question a reader asks; matplotlib's Agg backend, PNG files under plots/.

Each ``plot_*`` reads the results document (``results.json``) and, for the tiles, the run folder's worker files;
returns False when there is nothing to draw. ``make_plots`` writes them all and returns name -> path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from parity.report.timing import TIMING_PHASES

# Line styles that keep identical curves visible on top of each other.
STYLES = {"python": dict(color="#1f77b4", lw=3.0, ls="-", alpha=0.6),
          "r-rpy2": dict(color="#d62728", lw=1.6, ls="--"),
          "r-rscript": dict(color="#2ca02c", lw=1.2, ls=":")}


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
    """Per epoch, every worker overlaid: loss (train = the epoch's mean batch loss, and val), val accuracy beside
    the all-background model, val IoU."""
    metrics = {k: v for k, v in results["metrics"].items() if v}
    if not metrics:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [(("train", "loss"), ("val", "loss")), (("val", "accuracy"),), (("val", "iou"),)]
    for ax, lines in zip(axes, panels):
        for split, key in lines:
            for impl, epochs in metrics.items():
                xs = [e["epoch"] for e in epochs]
                ys = [np.nan if e.get(split, {}).get(key) is None else e[split][key] for e in epochs]
                style = dict(STYLES.get(impl, {}))
                if split == "train" and len(lines) > 1:
                    style.update(alpha=0.35)
                ax.plot(xs, ys, marker="o" if split == "val" else ".", label=f"{impl} {split}", **style)
        if lines[0][1] == "accuracy":
            first = next(iter(metrics.values()))
            base = [np.nan if e.get("val", {}).get("baseline_accuracy") is None else e["val"]["baseline_accuracy"]
                    for e in first]
            ax.plot([e["epoch"] for e in first], base, color="grey", lw=1, ls="-.", label="all-background")
        ax.set_title(" and ".join(f"{s} {k}" for s, k in lines))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
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
    threshold = results["config"]["rules"]["class_threshold"]
    ref_cls = preds.get(ref, next(iter(preds.values()))) > threshold
    for impl, p in preds.items():
        if p.shape == ref_cls.shape:
            score += ((p > threshold) != ref_cls).reshape(len(p), -1).mean(axis=1) * 1e3
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
                disagree |= (p[k] > threshold) != ref_cls[k]
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


PLOTS = [("curves", "Loss per epoch (train: mean of the batch losses; val), val accuracy and val IoU"),
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

