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
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from parity.artifacts.folder import RunFolder, read_json
from parity.compare.run import compare_run
from parity.errors import ReportError, RunError
from parity.report.plots import PLOTS, make_plots
from parity.report.timing import speed_ratios, timing_summary

RESULTS_SCHEMA = "tailings-parity/results"
RESULTS_VERSION = 1
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
    run = RunFolder(run_dir)
    recs = run.worker_records()
    config, manifest, harness = run.config, run.manifest, run.harness
    main_keys = comparison.get("worker_keys") or {r["impl"]: r["key"] for r in recs if r.get("repeat", 1) == 1}
    workers = {impl: run.worker(key, impl) for impl, key in main_keys.items()}
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
        "harness": {k: harness.get(k) for k in ("command", "impls", "repeats", "seeds", "r_dir", "started", "finished",
                                                "executor")},
        # worker key -> how many other jobs ran on its machine meanwhile (run --parallel / --scheduler, sweep)
        "shared_machine": {r["key"]: r.get("overlapping_jobs") for r in recs if r.get("shared_machine")},
        # worker key -> Dask workers lost while it ran (the job ran again once; parity/run/executor.py)
        "resubmitted": {r["key"]: r.get("lost_workers") for r in recs if (r.get("attempts") or 1) > 1},
        "environment": {impl: w.json("environment.json") for impl, w in workers.items()},
        "dataset": {"card": read_json(run_dir / "dataset_card.json", {}), "data_dir": manifest.get("data_dir"),
                    "encoding": manifest.get("encoding"), "manifest_sha256": manifest.get("manifest_sha256"),
                    "train": manifest.get("train"), "val": manifest.get("val"), "test": manifest.get("test"),
                    "excluded": manifest.get("excluded")},
        "metrics": {impl: (w.json("metrics.json") or {}).get("epochs") for impl, w in workers.items()},
        "final_metrics": {impl: (w.json("metrics.json") or {}).get("final") for impl, w in workers.items()},
        "batch_losses": {impl: (w.npy("batch_losses.npy").tolist() if w.has("batch_losses.npy") else None)
                         for impl, w in workers.items()},
        "weights": weights, "predictions": predictions,
        "timing": timing_summary(run_dir, recs),
        "bench": read_json(run_dir / "bench.json"),
        "comparison": comparison,
    })


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


QUALITY_KEYS = ("loss", "iou", "f1", "precision", "recall", "accuracy", "baseline_accuracy")


def tailings_share(results: dict) -> float | None:
    """The share of tailings pixels in the validation tiles, from the first worker's final confusion counts."""
    for final in (results.get("final_metrics") or {}).values():
        m = (final or {}).get("val") or {}
        if all(isinstance(m.get(k), int) for k in ("tp", "fp", "fn", "tn")):
            total = m["tp"] + m["fp"] + m["fn"] + m["tn"]
            return (m["tp"] + m["fn"]) / total if total else None
    return None


def final_metrics_section(results: dict) -> tuple:
    """What the model is worth, first: final train and val metrics per worker beside the all-background model."""
    rows = []
    for impl, final in (results.get("final_metrics") or {}).items():
        for split in ("train", "val"):
            m = (final or {}).get(split) or {}
            rows.append([impl, split] + [_n(m.get(k)) for k in QUALITY_KEYS])
    # The student project's published validation figures (its README): accuracy about 0.9, loss about 0.05,
    # no IoU or F1. Shown for scale: 0.9 is what the all-background model scores on these tiles.
    rows.append(["original project (published)", "val", "about 0.05", "-", "-", "-", "-", "about 0.9", "-"])
    # Why accuracy alone misleads, in the title the reader sees first: from this run's own validation tiles.
    title = "Quality after the last epoch: judge by IoU and F1, not accuracy"
    share = tailings_share(results)
    if share is not None:
        title += (f" ({share:.1%} of the validation pixels are tailings, so the all-background model, last column, "
                  f"scores {1 - share:.3f} accuracy with IoU 0)")
    return (title, ["worker", "split", *QUALITY_KEYS], rows, "tiles")


def speed_section(results: dict) -> tuple:
    """Speed as ratios: the run's own (R over Python, epoch metrics over training) and, after
    ``tailings-parity bench``, training over a plain model.fit and the utilisation of the matmul peak."""
    ratios = speed_ratios(results["timing"])
    bench = results.get("bench") or {}
    for key, per in (bench.get("ratios") or {}).items():
        ratios.setdefault(key, {}).update(per)
    rows = [[key, impl, _n(v, 3)] for key, per in ratios.items() for impl, v in per.items()]
    for impl, v in (bench.get("utilisation") or {}).items():
        rows.append(["utilisation of the matmul peak", impl, f"{v:.1%}"])
    if not bench:
        rows.append(["training_over_plain_fit, utilisation", "-", "run `tailings-parity bench` for these"])
    else:
        rows.append(["matmul probe (GFLOP/s)", "-", _n(bench["probe"]["flops_per_s"] / 1e9, 3)])
    return ("Speed ratios (medians; targets: training <= 1.10 x plain fit, R/Python training <= 1.02, R/Python "
            "data <= 1.5, epoch metrics <= 0.15 x training)", ["ratio", "worker", "value"], rows, None)


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
    out.append(final_metrics_section(results))
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
    out.append(("Predictions (the tiles are shown under Quality)", ["candidate", "max abs diff of probabilities",
                                                                   "pixels whose class differs"], prow, None))
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
    shared = results.get("shared_machine") or {}
    title = "Timing (seconds) and memory" + (
        " [SHARED MACHINE: other jobs ran on the same machine meanwhile: "
        + ", ".join(f"{k} beside {n}" for k, n in shared.items()) + "; compare with runs alone only with care]"
        if shared else "")
    out.append((title, ["worker", "phase", "median", "min - max", "IQR", "n", "ratio to python"], trows, "timing"))
    out.append(speed_section(results))
    h = tm["harness"]
    hrows = [[k, _n(v)] for k, v in (h.get("phases") or {}).items()]
    hrows.append(["all worker wall time", _n(h.get("worker_wall_total"))])
    hrows.append(["harness overhead (total - workers)", _n(h.get("overhead_total"))])
    for key, lost in (results.get("resubmitted") or {}).items():
        hrows.append([f"{key} resubmitted", f"its Dask worker {', '.join(map(str, lost or []))} was lost; the job "
                                            "ran again (timings are of the second attempt)"])
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
                if len(r) > 1 and r[1] in ("identical", "within_tolerance"):
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
    run_dir = RunFolder(run_dir).path
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
    run_dir = resolve_run(args.run)  # ReportError: exit 2
    doc = compare_run(run_dir, mode=args.mode)
    build_report(run_dir, comparison=doc)
    incomplete = (run_dir / "INCOMPLETE").exists()
    # A stopped run's stages are no verdict between languages: say what the line is.
    print(("INCOMPLETE run, no verdict; what its files show: " if incomplete else "") + doc["verdict"])
    print(f"report: {run_dir / 'report.html'}")
    if incomplete:
        # A report of half a run is no verdict: say so, and fail.
        raise RunError(f"{run_dir} is marked INCOMPLETE ({(run_dir / 'INCOMPLETE').read_text().strip()}): the "
                       "report covers what was written before the run stopped", fix="run it again")
    return 0 if doc["ok"] else 1
