"""``tailings-parity regress RUN_A RUN_B`` (formerly ``compare``): what changed from run A (the baseline) to run B.

Reads the two runs' ``results.json`` (rebuilding it with ``tailings-parity report`` logic when absent) and
flags regressions: a final metric that got worse beyond ``--metric-tol``, a phase whose median time grew by
more than ``--time-tol`` (relative, and at least ``--time-min-s`` seconds), and parity lost. It warns when the
machines, library versions or configs differ, since then a difference may not be the code's.
"""

from __future__ import annotations

import json
from pathlib import Path

from parity.errors import ReportError

# Direction of "better" for each final-epoch metric.
HIGHER_IS_BETTER = {"loss": False, "accuracy": True, "iou": True, "f1": True, "precision": True, "recall": True}
ENV_KEYS = ("r_version", "reticulate_version", "rpy2_version", "python_version", "tensorflow_version",
            "keras_version", "numpy_version", "threads_intra", "threads_inter", "op_determinism", "devices", "cpu",
            "cpu_count", "platform")


def load_results(run: str | Path) -> dict:
    """results.json of a run folder or run id; rebuilt from the folder when absent."""
    from parity.report import build as report

    run_dir = report.resolve_run(str(run))
    path = run_dir / "results.json"
    if not path.is_file():
        report.build_report(run_dir)
    results = json.loads(path.read_text())
    if results.get("schema") != report.RESULTS_SCHEMA:
        raise ReportError(f"{path}: schema {results.get('schema')!r}, expected {report.RESULTS_SCHEMA!r}")
    if results.get("version") != report.RESULTS_VERSION:
        raise ReportError(f"{path}: results version {results.get('version')}, this harness reads "
                          f"{report.RESULTS_VERSION}; rebuild it with tailings-parity report {run_dir}")
    return results


def final_metrics(results: dict) -> dict:
    """impl -> {"train_loss": .., "val_iou": ..}: the final metrics (train counted at the end), else the last epoch."""
    out = {}
    finals = results.get("final_metrics") or {}
    for impl, epochs in (results.get("metrics") or {}).items():
        if not epochs:
            continue
        last = finals.get(impl) or epochs[-1]
        out[impl] = {f"{split}_{k}": last.get(split, {}).get(k) for split in ("train", "val") for k in HIGHER_IS_BETTER}
    return out


def compare_results(a: dict, b: dict, metric_tol: float = 1e-6, time_tol: float = 0.25,
                    time_min_s: float = 0.5) -> dict:
    """Regressions, improvements and warnings of run ``b`` against baseline ``a``."""
    regressions, improvements, warnings, rows = [], [], [], []
    if a.get("ok") and not b.get("ok"):
        regressions.append({"what": "parity", "detail": f"parity lost: {b.get('verdict')}"})
    elif not a.get("ok") and b.get("ok"):
        improvements.append({"what": "parity", "detail": f"parity regained: {b.get('verdict')}"})
    ma, mb = final_metrics(a), final_metrics(b)
    for impl in sorted(set(ma) & set(mb)):
        for key, va in ma[impl].items():
            vb = mb[impl].get(key)
            if va is None and vb is None:
                continue
            if va is None or vb is None:
                # A metric that became undefined (precision with no pixel predicted as tailings) got worse.
                lost = vb is None
                rows.append({"kind": "metric", "impl": impl, "what": key, "a": va, "b": vb, "delta": None,
                             "flag": "REGRESSION" if lost else "improved"})
                (regressions if lost else improvements).append(
                    {"what": f"{impl} {key}", "detail": f"{va} -> {vb} ({'became' if lost else 'no longer'} undefined)"})
                continue
            delta = vb - va
            better_up = HIGHER_IS_BETTER[key.split("_", 1)[1]]
            worse = (delta < -metric_tol) if better_up else (delta > metric_tol)
            better = (delta > metric_tol) if better_up else (delta < -metric_tol)
            row = {"kind": "metric", "impl": impl, "what": key, "a": va, "b": vb, "delta": delta,
                   "flag": "REGRESSION" if worse else ("improved" if better else "")}
            rows.append(row)
            if worse:
                regressions.append({"what": f"{impl} {key}", "detail": f"{va:.6g} -> {vb:.6g} ({delta:+.3g})"})
            elif better:
                improvements.append({"what": f"{impl} {key}", "detail": f"{va:.6g} -> {vb:.6g} ({delta:+.3g})"})
    ta = (a.get("timing") or {}).get("per_impl") or {}
    tb = (b.get("timing") or {}).get("per_impl") or {}
    for impl in sorted(set(ta) & set(tb)):
        for phase, sa in ta[impl].items():
            sb = tb[impl].get(phase) or {}
            xa, xb = sa.get("median"), sb.get("median")
            if xa is None or xb is None:
                continue
            ratio = xb / xa if xa > 0 else None
            slower = ratio is not None and ratio > 1 + time_tol and xb - xa > time_min_s
            row = {"kind": "time", "impl": impl, "what": phase, "a": xa, "b": xb, "ratio": ratio,
                   "flag": "REGRESSION" if slower else ""}
            rows.append(row)
            if slower:
                regressions.append({"what": f"{impl} time {phase}",
                                    "detail": f"{xa:.2f}s -> {xb:.2f}s (x{ratio:.2f}, n = {sa.get('n')} / {sb.get('n')})"})
    ea, eb = a.get("environment") or {}, b.get("environment") or {}
    for impl in sorted(set(ea) & set(eb)):
        for key in ENV_KEYS:
            va, vb = (ea[impl] or {}).get(key), (eb[impl] or {}).get(key)
            if va != vb:
                warnings.append(f"{impl}: {key} differs: {va} vs {vb} (a difference may be the machine's, not the code's)")
    only = sorted(set(ea) ^ set(eb))
    if only:
        warnings.append(f"workers present in one run only: {', '.join(only)}")
    ca, cb = a.get("config") or {}, b.get("config") or {}
    changed = {k: (ca.get(k), cb.get(k)) for k in sorted(set(ca) | set(cb)) if ca.get(k) != cb.get(k)}
    if changed:
        warnings.append("config differs: " + ", ".join(f"{k} {va} -> {vb}" for k, (va, vb) in changed.items()))
    return {"run_a": a.get("run_id"), "run_b": b.get("run_id"), "regressions": regressions,
            "improvements": improvements, "warnings": warnings, "config_changes": changed, "rows": rows,
            "thresholds": {"metric_tol": metric_tol, "time_tol": time_tol, "time_min_s": time_min_s},
            "ok": not regressions}


def format_comparison(doc: dict) -> str:
    """The comparison as text for the terminal."""
    lines = [f"A (baseline): {doc['run_a']}", f"B:            {doc['run_b']}", ""]
    for w in doc["warnings"]:
        lines.append(f"warning: {w}")
    if doc["warnings"]:
        lines.append("")
    lines.append(f"{'worker':<10} {'metric / phase':<22} {'A':>12} {'B':>12} {'change':>10}  flag")
    for r in doc["rows"]:
        if r["kind"] == "metric":
            change = "undefined" if r["delta"] is None else f"{r['delta']:+.3g}"
        else:
            change = f"x{r['ratio']:.2f}" if r.get("ratio") else "-"
        name = r["what"] if r["kind"] == "metric" else f"time {r['what']}"
        va, vb = ("n/a" if v is None else f"{v:.6g}" for v in (r["a"], r["b"]))
        lines.append(f"{r['impl']:<10} {name:<22} {va:>12} {vb:>12} {change:>10}  {r['flag']}")
    lines.append("")
    if doc["regressions"]:
        lines.append(f"REGRESSIONS ({len(doc['regressions'])}):")
        lines += [f"  {r['what']}: {r['detail']}" for r in doc["regressions"]]
    else:
        lines.append("no regressions")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    """Options of ``tailings-parity compare``."""
    parser.add_argument("run_a", help="baseline run folder or run id")
    parser.add_argument("run_b", help="run folder or run id to check against the baseline")
    parser.add_argument("--metric-tol", type=float, default=1e-6,
                        help="a final metric worse by more than this is a regression (default 1e-6: runs are "
                             "deterministic on the CPU)")
    parser.add_argument("--time-tol", type=float, default=0.25,
                        help="a phase slower by more than this share is a regression (default 0.25)")
    parser.add_argument("--time-min-s", type=float, default=0.5,
                        help="...and by more than this many seconds (default 0.5)")
    parser.add_argument("--json", default=None, help="also write the comparison to this JSON file")


def main(args) -> int:
    """``tailings-parity compare A B``: exit 0 without regressions, 1 with, 2 for bad input."""
    a = load_results(args.run_a)  # a folder that is no finished run: exit 2
    b = load_results(args.run_b)
    doc = compare_results(a, b, args.metric_tol, args.time_tol, args.time_min_s)
    print(format_comparison(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    return 0 if doc["ok"] else 1
