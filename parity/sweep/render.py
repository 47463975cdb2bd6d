"""sweep.md, sweep.html and the heatmaps of a sweep folder, from its sweep.json document.

Heatmaps (matplotlib's Agg backend, ``plots/heatmap_<metric>.png``): rows are the combinations of every grid
key but the last, columns the last key's values; one panel per language (validation IoU and loss, mean over
seeds) or per R language (time over Python's). A cell that is not PARITY says so in its square; the best cell
is framed in magenta. The HTML embeds them as base64 PNG (one self-contained file, as ``parity/report/build.py`` does).
"""

from __future__ import annotations

import base64
import html
import itertools
import math
from pathlib import Path

METRICS = (("val_iou", "validation IoU (mean over seeds)", "viridis"),
           ("val_loss", "validation loss (mean over seeds)", "viridis_r"),
           ("time_ratio_vs_python", "worker time / Python's (mean over seeds)", "coolwarm"))


def grid_layout(grid: dict[str, list]) -> tuple[list[str], list[str], str, str]:
    """(row labels, column labels, row axis name, column axis name) of the cells in itertools.product order."""
    keys = list(grid)
    cols = [str(v) for v in grid[keys[-1]]]
    if len(keys) == 1:
        return [""], cols, "", keys[0]
    rows = [", ".join(f"{k}={v}" if len(keys) > 2 else str(v) for k, v in zip(keys[:-1], combo))
            for combo in itertools.product(*[grid[k] for k in keys[:-1]])]
    return rows, cols, " x ".join(keys[:-1]), keys[-1]


def _fmt(x, digits: int = 4) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}g}"


def _ms(s: dict | None, digits: int = 4) -> str:
    """``0.4321 ± 0.0123 (n 3)`` or ``0.4321`` for one seed."""
    if not s:
        return "-"
    return _fmt(s["mean"], digits) + (f" ± {_fmt(s['std'], 2)} (n {s['n']})" if s["n"] > 1 else "")


def plot_heatmaps(doc: dict, plots_dir: Path) -> dict[str, Path]:
    """One PNG per metric of METRICS; returns {metric: path}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, cols, row_name, col_name = grid_layout(doc["grid"])
    cells = doc["cells"]
    best = (doc.get("best") or {}).get("id")
    plots_dir.mkdir(parents=True, exist_ok=True)
    out = {}
    for metric, title, cmap in METRICS:
        panels = [i for i in doc["impls"] if metric != "time_ratio_vs_python" or i != "python"]
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(1.2 + 1.3 * len(cols) * len(panels) + 1.2 * len(panels),
                                                          1.4 + 0.75 * len(rows)), squeeze=False)
        for ax, impl in zip(axes[0], panels):
            values = np.full((len(rows), len(cols)), np.nan)
            for k, c in enumerate(cells):
                s = (c.get(metric) or {}).get(impl)
                if s:
                    values[k // len(cols), k % len(cols)] = s["mean"]
            im = ax.imshow(values, cmap=cmap, aspect="auto")
            for k, c in enumerate(cells):
                r, q = divmod(k, len(cols))
                text = _fmt(values[r, q], 3) if math.isfinite(values[r, q]) else "-"
                if c["verdict"] != "PARITY":
                    text += "\n" + c["verdict"]
                dark = False
                if math.isfinite(values[r, q]):
                    red, green, blue, _ = im.cmap(im.norm(values[r, q]))
                    dark = 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.45  # Rec. 709 luminance
                ax.text(q, r, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
                if c["id"] == best:
                    ax.add_patch(plt.Rectangle((q - 0.46, r - 0.46), 0.92, 0.92, fill=False, lw=3, ec="magenta"))
            ax.set_xticks(range(len(cols)), cols)
            ax.set_yticks(range(len(rows)), rows)
            ax.set_xlabel(col_name)
            ax.set_ylabel(row_name)
            ax.set_title(impl, fontsize=10)
            fig.colorbar(im, ax=ax, shrink=0.75)
        fig.suptitle(title + ("; magenta frame: the best cell" if best else ""), fontsize=10)
        fig.tight_layout()
        path = plots_dir / f"heatmap_{metric}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        out[metric] = path
    return out


def summary_line(doc: dict) -> str:
    """``PARITY in 4/4 cells across python, r-rscript; best cell c03__... (val IoU 0.41)``."""
    n = len(doc["cells"])
    k = doc["verdicts"].get("PARITY", 0)
    line = (f"{'PARITY' if k == n else 'NOT ALL PARITY'} in {k}/{n} cells across {', '.join(doc['impls'])}, "
            f"{len(doc['seeds'])} seed(s) each")
    if not doc["complete"]:
        line += " (INCOMPLETE: resume with tailings-parity sweep --resume)"
    b = doc.get("best")
    if b:
        line += f"; best cell {b['id']} (val IoU {_fmt(b['val_iou_mean'])}, {b['verdict']})"
    return line


def cell_rows(doc: dict) -> tuple[list[str], list[list[str]]]:
    """The cell table: parameters, verdict, metrics per language, time ratio, job notes, report link."""
    impls = doc["impls"]
    keys = list(doc["grid"])
    header = ["cell", *keys, "verdict"] + [f"val IoU {i}" for i in impls] + [f"val loss {i}" for i in impls] \
        + [f"time {i}/python" for i in impls if i != "python"] + ["notes", "report"]
    rows = []
    for c in doc["cells"]:
        notes = []
        if c["resubmitted"]:
            notes.append("resubmitted: " + ", ".join(f"{r['impl']} s{r['seed']} (attempt {r['attempts']})"
                                                      for r in c["resubmitted"]))
        if c["failures"]:
            notes.append("failed: " + ", ".join(f"{f['impl']} s{f['seed']}" for f in c["failures"]))
        if c.get("trivial_answers"):
            notes.append("predicts one class: " + ", ".join(c["trivial_answers"]))
        if c["shared_machine"]:
            notes.append("timings on a shared machine")
        reports = [s["run"] + "/report.html" for s in c["seeds"] if s["run"]]
        rows.append([c["id"].split("__")[0], *[str(c["params"][k]) for k in keys], c["verdict"]]
                    + [_ms(c["val_iou"].get(i)) for i in impls] + [_ms(c["val_loss"].get(i)) for i in impls]
                    + [_ms(c["time_ratio_vs_python"].get(i), 3) for i in impls if i != "python"]
                    + ["; ".join(notes) or "ok", " ".join(reports)])
    return header, rows


def session_rows(doc: dict) -> list[list[str]]:
    """One row per session (the first, then each --resume): executor, jobs, wall time."""
    rows = []
    for k, s in enumerate(doc["sessions"], start=1):
        e = s.get("executor") or {}
        where = {"sequential": "one job after another", "dask-localcluster": "Dask LocalCluster",
                 "dask-scheduler": f"Dask scheduler {e.get('scheduler')}"}.get(e.get("kind"), str(e.get("kind")))
        if e.get("kind", "").startswith("dask"):
            where += f", {e.get('workers')} worker(s) on {', '.join(map(str, e.get('hosts') or []))}"
        rows.append([str(k), s["started"], where, str(e.get("threads_per_job") or "config"), str(s["jobs"]),
                     str(s.get("runs_kept", 0)), _fmt(s.get("wall_s"), 4) + ("" if s.get("finished") else " (stopped)")])
    return rows


SESSION_HEADER = ["session", "started", "executor", "threads per job", "jobs run", "runs kept", "wall time (s)"]


def render_markdown(doc: dict, plots: dict[str, Path]) -> str:
    """sweep.md."""
    lines = [f"# tailings-parity sweep: {doc['sweep_id']}", "", f"**{summary_line(doc)}**", "",
             f"Preset `{doc['preset']}`, grid " + ", ".join(f"`{k}` = {', '.join(map(str, v))}" for k, v in doc['grid'].items())
             + (f", `--set` {' '.join(doc['overrides'])}" if doc["overrides"] else "")
             + f"; seeds {', '.join(map(str, doc['seeds']))}. Best cell by {doc['best']['by'] if doc.get('best') else '-'}.",
             ""]

    def table(header, rows):
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
        return out + [""]

    header, rows = cell_rows(doc)
    for r in rows:  # the report column: links
        r[-1] = " ".join(f"[{x.split('/')[-2]}]({x})" for x in r[-1].split())
    lines += ["## Cells", ""] + table(header, rows)
    lines += ["## Heatmaps", ""] + [f"![{m}](plots/{p.name})" for m, p in plots.items()] + [""]
    failures = [(c["id"], f) for c in doc["cells"] for f in c["failures"]]
    if failures:
        lines += ["## Failed jobs", ""]
        for cid, f in failures:
            lines += [f"- {cid} seed {f['seed']} {f['impl']}: {f['error']}", "", "```", f["stderr_tail"] or "", "```", ""]
    resub = [(c["id"], r) for c in doc["cells"] for r in c["resubmitted"]]
    if resub:
        lines += ["## Resubmitted jobs", "",
                  "A job whose Dask worker was lost (its process died, or its host dropped off the network) runs once "
                  "more; these did:", ""]
        lines += [f"- {cid} seed {r['seed']} {r['impl']}: attempt {r['attempts']}, lost worker(s) "
                  f"{', '.join(str(w) for w in r['lost_workers'] or [])}" for cid, r in resub] + [""]
    lines += ["## Sessions", ""] + table(SESSION_HEADER, session_rows(doc))
    return "\n".join(lines) + "\n"


def render_html(doc: dict, plots: dict[str, Path]) -> str:
    """sweep.html: one self-contained page."""
    from parity.report.build import CSS

    e = html.escape
    ok = doc["verdicts"].get("PARITY", 0) == len(doc["cells"]) and doc["complete"]
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
             f"<title>tailings-parity sweep {e(doc['sweep_id'])}</title><style>{CSS}</style></head><body>",
             f"<h1>tailings-parity sweep</h1><p>sweep <code>{e(doc['sweep_id'])}</code>, preset "
             f"<code>{e(doc['preset'])}</code>, seeds {e(', '.join(map(str, doc['seeds'])))}"
             + (f", <code>--set {e(' '.join(doc['overrides']))}</code>" if doc["overrides"] else "") + "</p>",
             f"<p class='verdict {'ok' if ok else 'bad'}'>{e(summary_line(doc))}</p>"]

    def table(header, rows, link_col=None, verdict_col=None):
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        for r in rows:
            cls = ""
            if verdict_col is not None:
                cls = " class='ok'" if r[verdict_col] == "PARITY" else " class='bad'"
            cells = []
            for k, c in enumerate(r):
                if k == link_col and c:
                    cells.append("<td>" + " ".join(f"<a href='{e(x)}'>{e(x.split('/')[-2])}</a>" for x in c.split()) + "</td>")
                else:
                    cells.append(f"<td>{e(str(c))}</td>")
            parts.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
        parts.append("</table>")

    header, rows = cell_rows(doc)
    parts.append("<h2>Cells</h2>")
    table(header, rows, link_col=len(header) - 1, verdict_col=len(doc["grid"]) + 1)
    if doc.get("best"):
        parts.append(f"<p>Best cell by {e(doc['best']['by'])}: <b>{e(doc['best']['id'])}</b>.</p>")
    parts.append("<h2>Heatmaps</h2>")
    for metric, path in plots.items():
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<p><img alt='{e(metric)}' src='data:image/png;base64,{data}'></p>")
    failures = [(c["id"], f) for c in doc["cells"] for f in c["failures"]]
    if failures:
        parts.append("<h2>Failed jobs</h2>")
        for cid, f in failures:
            parts.append(f"<p>{e(cid)} seed {f['seed']} {e(f['impl'])}: {e(str(f['error']))}</p>"
                         f"<pre>{e(f['stderr_tail'] or '')}</pre>")
    resub = [(c["id"], r) for c in doc["cells"] for r in c["resubmitted"]]
    if resub:
        parts.append("<h2>Resubmitted jobs</h2><p>A job whose Dask worker was lost (its process died, or its host "
                     "dropped off the network) runs once more; these did:</p><ul>")
        parts += [f"<li>{e(cid)} seed {r['seed']} {e(r['impl'])}: attempt {r['attempts']}, lost worker(s) "
                  f"{e(', '.join(str(w) for w in r['lost_workers'] or []))}</li>" for cid, r in resub]
        parts.append("</ul>")
    parts.append("<h2>Sessions</h2>")
    table(SESSION_HEADER, session_rows(doc))
    parts.append(f"<p><small>sweep.json schema {e(doc['schema'])} version {doc['version']}; generated "
                 f"{e(doc['generated'])}</small></p></body></html>")
    return "\n".join(parts) + "\n"


def render_sweep(sweep_dir: Path, doc: dict) -> dict[str, Path]:
    """Write plots/heatmap_*.png, sweep.md and sweep.html; returns the plots. Plots are named in ``doc``."""
    plots = plot_heatmaps(doc, sweep_dir / "plots")
    doc["plots"] = {m: f"plots/{p.name}" for m, p in plots.items()}
    (sweep_dir / "sweep.md").write_text(render_markdown(doc, plots))
    (sweep_dir / "sweep.html").write_text(render_html(doc, plots))
    return plots
