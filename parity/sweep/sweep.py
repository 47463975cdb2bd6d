"""The ``sweep`` command: plan the cells, run every cell x seed x language as jobs, finish each run, summarise.

A cell is one combination of ``--grid`` values on top of ``--preset`` and ``--set``; each (cell, seed) is an
ordinary run folder made by the runner's own steps (``prepare_run``, ``finish_run`` of parity/run/runner.py), so
its report is the one ``tailings-parity run`` writes. All jobs of all cells go to one executor at once; a run is
cross-loaded, compared and reported as soon as its own jobs are done, while the others still run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import shutil
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from parity.errors import ConfigError, RunError, UsageError

PLAN_SCHEMA = "tailings-parity/sweep-plan"
SWEEP_SCHEMA = "tailings-parity/sweep"
VERSION = 1
DEFAULT_IMPLS = "python,r-rpy2,r-rscript"
BEST_BY = "mean final validation IoU over languages and seeds (ties: lower validation loss); cells whose workers all finished"


# ---------------------------------------------------------------------------------------------- arguments

def add_arguments(parser) -> None:
    """Options of ``tailings-parity sweep``."""
    parser.add_argument("--preset", default=None, help="preset of parity/presets.toml (default: smoke)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="a config key and its values (repeatable); the cells are every combination")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key in every cell, e.g. --set epochs=1 (repeatable)")
    parser.add_argument("--seeds", default=None,
                        help="seeds per cell: a count N (seed..seed+N-1) or a list such as 1,2,3 (default: the config's)")
    parser.add_argument("--impls", default=None, help=f"workers per cell, the first is the reference (default: {DEFAULT_IMPLS})")
    parser.add_argument("--data", default=None, help="dataset folder (overrides the preset's data)")
    parser.add_argument("--model", default=None, metavar="PAIR",
                        help="model pair: a folder with model.py and model.R, or a shipped pair (default: unet); "
                             "--grid model=unet,resunet compares pairs")
    parser.add_argument("--parallel", type=int, default=None, metavar="N",
                        help="N jobs at once on a LocalCluster here, each with cores/N threads; 1 = one after another "
                             "without Dask (default: as many as the cores allow at the config's threads)")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="run the jobs on this running Dask scheduler (README: starting a cluster)")
    parser.add_argument("--dashboard", action="store_true", help="serve the LocalCluster's Dask dashboard (needs bokeh)")
    parser.add_argument("--reports-dir", default=None, help="where the sweep folder goes (default: <project>/reports)")
    parser.add_argument("--resume", default=None, metavar="SWEEP_DIR",
                        help="continue a stopped sweep: run only the cells and seeds without a finished run folder")


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``--grid key=v1,v2`` items -> {key: [value texts]}, in the order given."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key or not vals:
            raise UsageError(f"--grid {item!r}: expected KEY=V1,V2,... such as learning_rate=1e-4,3e-4,1e-3")
        if key in grid:
            raise UsageError(f"--grid {key}: given twice; list all its values in one --grid")
        if key == "seed":
            raise UsageError("--grid seed=...: seeds are not a cell setting; use --seeds 3 (or --seeds 1,2,3)")
        if len(set(vals)) != len(vals):
            raise UsageError(f"--grid {item!r}: a value is listed twice")
        grid[key] = vals
    return grid


def cell_id(index: int, params: dict[str, str]) -> str:
    """Folder name of a cell: ``c01__learning_rate=1e-3__batch_size=4`` (values as given, made path-safe)."""
    parts = [f"{k}={re.sub(r'[^A-Za-z0-9.+-]', '_', v)}" for k, v in params.items()]
    return f"c{index:02d}__" + "__".join(parts)


def plan_cells(preset: str, overrides: list[str], grid: dict[str, list[str]], data: str | None,
               threads_per_job: int | None) -> list[dict]:
    """Every combination of the grid as ``{"id", "params", "config"}``; a value that does not fit its key is a
    UsageError naming it."""
    from parity.run.executor import job_threads
    from python_impl.config import load_config

    base = load_config(preset, overrides)
    for key in grid:
        if key not in base or key in ("rules", "preset"):
            raise UsageError(f"--grid {key}: unknown config key; keys: {', '.join(sorted(k for k in base if k != 'rules'))}")
        if any(o.split("=", 1)[0].strip() == key for o in overrides):
            raise UsageError(f"--grid {key} and --set {key}: give the key in one of them")
    cells = []
    for index, combo in enumerate(itertools.product(*grid.values()), start=1):
        texts = dict(zip(grid, combo))
        try:
            config = load_config(preset, overrides + [f"{k}={v}" for k, v in texts.items()])
        except ConfigError as exc:
            raise UsageError(f"--grid: {exc}") from None
        if data is not None:
            config["data"] = str(Path(data).resolve())
        if config["mode"] == "statistical":
            raise UsageError("mode statistical: a sweep compares each seed's run on its own (strict or tolerance); "
                             "for a t-test over seeds use tailings-parity run --mode statistical")
        cells.append({"id": cell_id(index, texts), "params": {k: config[k] for k in grid},
                      "config": job_threads(config, threads_per_job)})
    return cells


DATA_KEYS = ("data", "encoding", "synthetic_count", "synthetic_size", "synthetic_seed")


def check_cells(cells: list[dict], seeds: list[int]) -> dict[str, object]:
    """Every cell's config and its data checked before anything is written, as ``run`` checks its own
    (``check_run_inputs`` of parity/run/runner.py: ConfigError, exit 2; RunError for unusable data). The tiles
    are checked once per distinct data setting; returns {cell id: FolderCheck, or None for synthetic tiles},
    handed to each run folder."""
    from parity.run.runner import check_run_inputs
    from python_impl.config import check_config

    checked: dict[str, object] = {}
    out = {}
    for cell in cells:
        config = cell["config"]
        key = json.dumps({k: config.get(k) for k in DATA_KEYS}, sort_keys=True)
        if key not in checked:
            checked[key] = check_run_inputs(config, seeds)
        else:  # the same tiles: only the rules that name their number (check_run_inputs' last step)
            n_good = int(config["synthetic_count"]) if checked[key] is None else len(checked[key].good)
            for seed in seeds:
                check_config(dict(config, seed=seed), n_good)
        out[cell["id"]] = checked[key]
    return out


# ---------------------------------------------------------------------------------------------- folders

def create_sweep_dir(reports_dir: Path, preset: str, plan: dict) -> Path:
    """``<reports>/sweep-<UTC>-<preset>-<hash>``, made exclusively, with an INCOMPLETE marker."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(json.dumps(plan["cells"], sort_keys=True).encode()).hexdigest()[:8]
    for k in range(1, 1000):
        path = reports_dir / (f"sweep-{stamp}-{preset}-{digest}" + ("" if k == 1 else f"-{k}"))
        try:
            path.mkdir()
        except FileExistsError:
            continue
        (path / "INCOMPLETE").write_text("sweep running since " + datetime.now(timezone.utc).isoformat() + "\n")
        return path
    raise RunError(f"could not create a new sweep folder under {reports_dir}")


def read_plan(sweep_dir: Path) -> dict:
    """The sweep_plan.json of a sweep folder; UsageError when it is none."""
    path = sweep_dir / "sweep_plan.json"
    if not path.is_file():
        raise UsageError("not a sweep folder (no sweep_plan.json)", where=f"--resume {sweep_dir}",
                         fix="give the folder that `tailings-parity sweep` printed (reports/sweep-...)")
    plan = json.loads(path.read_text())
    if plan.get("schema") != PLAN_SCHEMA or plan.get("version") != VERSION:
        raise UsageError(f"sweep_plan.json of schema {plan.get('schema')} version {plan.get('version')}",
                         where=str(path), fix="resume it with the version of tailings-parity that started it")
    return plan


def finished_runs(sweep_dir: Path, cell: dict) -> dict[int, Path]:
    """{seed: run folder} of the cell's finished runs (no INCOMPLETE marker, comparison written)."""
    out: dict[int, Path] = {}
    for run in sorted((sweep_dir / "cells" / cell["id"]).glob("*/config.json")):
        folder = run.parent
        if (folder / "INCOMPLETE").exists() or not (folder / "comparison.json").is_file():
            continue
        out[int(json.loads(run.read_text())["seed"])] = folder
    return out


def unfinished_runs(sweep_dir: Path, cell: dict) -> list[Path]:
    """Run folders of the cell that a stopped sweep left INCOMPLETE."""
    return sorted(p.parent for p in (sweep_dir / "cells" / cell["id"]).glob("*/INCOMPLETE"))


# ---------------------------------------------------------------------------------------------- summary

def _spread(values: list[float]) -> dict | None:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return None
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return {"mean": mean, "std": std, "min": min(vals), "max": max(vals), "n": len(vals)}


def final_val(metrics: dict | None) -> dict:
    """The validation metrics after the last epoch of a worker's metrics.json."""
    if not metrics:
        return {}
    final = (metrics.get("final") or {}).get("val")
    if final:
        return final
    epochs = metrics.get("epochs") or []
    return (epochs[-1].get("val") or {}) if epochs else {}


def trivial_answer(val: dict) -> str | None:
    """``"tailings everywhere"`` or ``"no tailings anywhere"`` when a model's validation predictions are (nearly,
    all but 0.1% of the pixels) one class: its IoU is then the tailings share or 0, not something learned."""
    counts = [val.get(k) for k in ("tp", "fp", "fn", "tn")]
    if any(c is None for c in counts) or not sum(counts):
        return None
    tp, fp, fn, tn = counts
    if tn + fn <= sum(counts) / 1000:
        return "tailings everywhere"
    if tp + fp <= sum(counts) / 1000:
        return "no tailings anywhere"
    return None


def cell_summary(sweep_dir: Path, cell: dict, seeds: list[int], impls: list[str]) -> dict:
    """One cell of sweep.json, read from its run folders: verdict, metrics and times over seeds, jobs."""
    from parity.artifacts.folder import read_json

    runs = finished_runs(sweep_dir, cell)
    per_seed, iou, loss, total, ratios = [], {}, {}, {}, {}
    resubmitted, failures, shared, trivial = [], [], False, []
    for seed in seeds:
        folder = runs.get(seed)
        if folder is None:
            per_seed.append({"seed": seed, "run": None, "verdict": "INCOMPLETE", "ok": False})
            continue
        comp = read_json(folder / "comparison.json", {})
        harness = read_json(folder / "harness.json", {})
        per_seed.append({"seed": seed, "run": folder.relative_to(sweep_dir).as_posix(),
                         "verdict": comp.get("verdict"), "ok": bool(comp.get("ok"))})
        times = {}
        for rec in harness.get("workers") or []:
            wdir = folder / "workers" / rec["key"]
            if rec.get("attempts", 1) > 1:
                resubmitted.append({"seed": seed, "impl": rec["impl"], "attempts": rec["attempts"],
                                    "lost_workers": rec.get("lost_workers")})
            shared = shared or bool(rec.get("shared_machine"))
            if not rec.get("ok"):
                status = read_json(wdir / "status.json", {})
                failures.append({"seed": seed, "impl": rec["impl"], "error": rec.get("error"),
                                 "stderr_tail": "\n".join((status.get("stderr_tail") or "").splitlines()[-15:])})
                continue
            val = final_val(read_json(wdir / "metrics.json"))
            if trivial_answer(val):
                trivial.append(f"{rec['impl']} s{seed}: {trivial_answer(val)}")
            iou.setdefault(rec["impl"], []).append(val.get("iou"))
            loss.setdefault(rec["impl"], []).append(val.get("loss"))
            times[rec["impl"]] = (read_json(wdir / "timings.json", {}) or {}).get("total")
            total.setdefault(rec["impl"], []).append(times[rec["impl"]])
        for impl, t in times.items():
            if impl != "python" and t and times.get("python"):
                ratios.setdefault(impl, []).append(t / times["python"])
    if any(s["run"] is None for s in per_seed):
        verdict = "INCOMPLETE"
    elif failures:
        verdict = "FAILED"
    elif all(s["ok"] for s in per_seed) and all(str(s["verdict"]).startswith("PARITY") for s in per_seed):
        verdict = "PARITY"
    else:
        bad = next(s for s in per_seed if not (s["ok"] and str(s["verdict"]).startswith("PARITY")))
        verdict = str(bad["verdict"]).split(":")[0]
    return {"id": cell["id"], "params": cell["params"], "verdict": verdict, "seeds": per_seed,
            "val_iou": {i: _spread(iou.get(i, [])) for i in impls},
            "val_loss": {i: _spread(loss.get(i, [])) for i in impls},
            "worker_total_s": {i: _spread(total.get(i, [])) for i in impls},
            "time_ratio_vs_python": {i: _spread(ratios.get(i, [])) for i in impls if i != "python"},
            "threads": [cell["config"].get("threads_intra"), cell["config"].get("threads_inter")],
            "resubmitted": resubmitted, "failures": failures, "shared_machine": shared, "trivial_answers": trivial}


def best_cell(cells: list[dict]) -> dict | None:
    """The cell with the highest mean validation IoU over languages and seeds (``BEST_BY``)."""
    scored = []
    for c in cells:
        if c["verdict"] in ("INCOMPLETE", "FAILED"):
            continue
        ious = [s["mean"] for s in c["val_iou"].values() if s]
        losses = [s["mean"] for s in c["val_loss"].values() if s]
        if ious:
            scored.append((sum(ious) / len(ious), -(sum(losses) / len(losses)) if losses else 0.0, c))
    if not scored:
        return None
    iou, neg_loss, c = max(scored, key=lambda t: (t[0], t[1]))
    return {"id": c["id"], "params": c["params"], "val_iou_mean": iou, "val_loss_mean": -neg_loss,
            "verdict": c["verdict"], "by": BEST_BY}


def sweep_document(sweep_dir: Path, plan: dict, sessions: list[dict], complete: bool) -> dict:
    """sweep.json: the plan's settings, every cell's summary, the best cell, the sessions that ran it."""
    cells = [cell_summary(sweep_dir, c, plan["seeds"], plan["impls"]) for c in plan["cells"]]
    counts: dict[str, int] = {}
    for c in cells:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    return {"schema": SWEEP_SCHEMA, "version": VERSION, "sweep_id": sweep_dir.name, "preset": plan["preset"],
            "grid": plan["grid"], "overrides": plan["overrides"], "seeds": plan["seeds"], "impls": plan["impls"],
            "complete": complete, "verdicts": counts, "cells": cells, "best": best_cell(cells),
            "sessions": sessions, "generated": datetime.now(timezone.utc).isoformat()}


def write_sweep(sweep_dir: Path, plan: dict, sessions: list[dict], complete: bool, render: bool) -> dict:
    """Write sweep.json (and, with ``render``, sweep.md, sweep.html and plots/); returns the document."""
    doc = sweep_document(sweep_dir, plan, sessions, complete)
    if render:
        from parity.sweep.render import render_sweep

        render_sweep(sweep_dir, doc)
    write_atomic(sweep_dir / "sweep.json", json.dumps(doc, indent=1) + "\n")
    return doc


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a sweep killed meanwhile leaves the old
    file or the new one, never half of one (``--resume`` reads it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def previous_sessions(sweep_dir: Path) -> list[dict]:
    """The sessions recorded in sweep.json by the earlier runs of this sweep (none when it is unreadable)."""
    try:
        return json.loads((sweep_dir / "sweep.json").read_text()).get("sessions", [])
    except (OSError, ValueError):
        return []


# ---------------------------------------------------------------------------------------------- running

class CellRun:
    """One (cell, seed) run folder in flight: its harness record, its jobs and their outcomes."""

    def __init__(self, cell: dict, seed: int, run_dir: Path, harness: dict, jobs: list, config: dict):
        self.cell, self.seed, self.run_dir, self.harness, self.jobs, self.config = cell, seed, run_dir, harness, jobs, config
        self.outcomes: dict[int, object] = {}
        self.t_run = time.time()


def run_sweep(sweep_dir: Path, plan: dict, executor, printer=print, command: list[str] | None = None,
              datasets: dict | None = None) -> dict:
    """Run every unfinished (cell, seed) of ``plan`` on ``executor``; write sweep.json, .md, .html; return sweep.json.

    Finished run folders are kept (``--resume``); run folders a stopped sweep left INCOMPLETE are removed and run
    again. Interrupted (Ctrl-C), the runs in flight are marked INCOMPLETE and the sweep can be resumed.
    ``datasets``: ``check_cells`` of the plan (made here when not given).
    """
    from parity.run.executor import JobBoard, mark_shared
    from parity.run.runner import Printer, create_run_dir, finish_run, mark_incomplete, prepare_run, worker_jobs

    t0 = time.time()
    quiet = Printer(quiet=True)
    datasets = datasets if datasets is not None else check_cells(plan["cells"], plan["seeds"])
    previous = previous_sessions(sweep_dir)
    session = {"started": datetime.now(timezone.utc).isoformat(), "finished": None, "wall_s": None,
               "executor": executor.describe(), "command": command, "jobs": 0, "runs_kept": 0, "runs_done": 0}
    sessions = previous + [session]
    seeds, impls = plan["seeds"], plan["impls"]

    todo = []
    for cell in plan["cells"]:
        done = finished_runs(sweep_dir, cell)
        for stale in unfinished_runs(sweep_dir, cell):
            printer(f"{cell['id']}: removing the unfinished run folder {stale.name} (run again below)")
            shutil.rmtree(stale)
        session["runs_kept"] += sum(1 for seed in seeds if seed in done)
        todo += [(cell, seed) for seed in seeds if seed not in done]
    if session["runs_kept"]:
        printer(f"resuming: {session['runs_kept']} run(s) finished before are kept; {len(todo)} to run")
    session["jobs"] = len(todo) * len(impls)
    write_sweep(sweep_dir, plan, sessions, complete=False, render=False)

    board = JobBoard([], executor.slots, total=session["jobs"])
    board.unseen = [impl for _ in todo for impl in impls]
    runs: dict[Path, CellRun] = {}
    running: dict[int, tuple[str, float, str]] = {}
    finished_spans: list[tuple[str, float, float, str]] = []
    client_host = socket.gethostname()

    def job_stream():
        """Prepare each run folder (config, tiles, manifest) and hand its jobs over at once: the executor starts
        them while the next run folder is prepared."""
        for cell, seed in todo:
            config = dict(cell["config"], seed=seed)
            run_dir = create_run_dir(sweep_dir / "cells" / cell["id"], config["preset"], config)
            try:
                harness, setups = prepare_run(run_dir, config, impls, 1, None, None, None, quiet, command,
                                              datasets[cell["id"]])
            except BaseException as exc:
                mark_incomplete(run_dir, f"{type(exc).__name__}: {exc}")
                raise
            jobs = worker_jobs(run_dir, harness, setups, config)
            runs[run_dir] = CellRun(cell, seed, run_dir, harness, jobs, config)
            for job in jobs:
                job.label = f"{cell['id'].split('__')[0]} s{seed} {job.impl}"
                board.add(job)
                yield job

    def on_event(kind, job, info):
        if kind in ("start", "resubmitted"):
            board.started(job)
            running[id(job)] = (info.get("host") or "?", info.get("time") or time.time(), job.name)
            if kind == "resubmitted":
                board.resubmitted += 1
                printer(f"  {job.name}: its Dask worker {info.get('lost_worker')} was lost; the job runs again on "
                        f"{info.get('dask_worker')} (once)")
        elif kind == "tick":
            printer(f"  {board.line()}")

    printer(f"{session['jobs']} jobs ({len(todo)} runs x {len(impls)} languages) on {describe(executor)}")
    try:
        for outcome in executor.run(job_stream(), on_event):
            board.finished(outcome)
            running.pop(id(outcome.job), None)
            if outcome.started is not None:
                finished_spans.append((outcome.host, outcome.started, outcome.finished, outcome.job.name))
            again = f" (attempt {outcome.attempts}: its Dask worker was lost)" if outcome.attempts > 1 else ""
            printer(f"  {outcome.job.name}: {'done' if outcome.ok else 'FAILED'} in {outcome.wall_s:.1f}s{again}"
                    + ("" if outcome.ok else f": {outcome.error}") + f"   [{board.line()}]")
            run = runs[Path(outcome.job.run_dir)]
            run.outcomes[id(outcome.job)] = outcome
            if len(run.outcomes) < len(run.jobs):
                continue
            ordered = [run.outcomes[id(j)] for j in run.jobs]
            mine = {o.job.name for o in ordered}
            others = [s for s in finished_spans if s[3] not in mine]
            others += [(h, a, None, label) for h, a, label in running.values()]
            mark_shared(ordered, others)
            run.harness["workers"] = [o.record() for o in ordered]
            run.harness["executor"] = session["executor"]
            run.harness["phases"]["workers"] = max(o.finished or 0 for o in ordered) - min(
                o.started or time.time() for o in ordered)
            t = time.time()
            try:
                finish_run(run.run_dir, run.harness, run.config, quiet, run.t_run)
            except Exception as exc:  # this run's report failed; the others go on, resume redoes it
                mark_incomplete(run.run_dir, f"{type(exc).__name__}: {exc}")
                printer(f"{run.cell['id']} seed {run.seed}: the run could not be finished: {exc}")
            finished_spans.append((client_host, t, time.time(), f"cross-load {run.run_dir.name}"))
            runs.pop(run.run_dir)
            session["runs_done"] += 1
            summary = cell_summary(sweep_dir, run.cell, [run.seed], impls)
            printer(f"{run.cell['id']} seed {run.seed}: {summary['verdict']}; val IoU "
                    + ", ".join(f"{i} {s['mean']:.4f}" for i, s in summary["val_iou"].items() if s)
                    + "".join(f"; {i}/python time {s['mean']:.2f}" for i, s in summary["time_ratio_vs_python"].items() if s))
            session["wall_s"] = time.time() - t0
            write_sweep(sweep_dir, plan, sessions, complete=False, render=False)
    except BaseException as exc:
        for run in runs.values():
            mark_incomplete(run.run_dir, "the sweep stopped: " + (type(exc).__name__ if isinstance(exc, KeyboardInterrupt)
                                                                  else f"{type(exc).__name__}: {exc}"))
        session["wall_s"] = time.time() - t0
        write_sweep(sweep_dir, plan, sessions, complete=False, render=False)
        raise
    session["finished"] = datetime.now(timezone.utc).isoformat()
    session["wall_s"] = time.time() - t0
    doc = write_sweep(sweep_dir, plan, sessions, complete=True, render=True)
    (sweep_dir / "INCOMPLETE").unlink(missing_ok=True)
    return doc


def describe(executor) -> str:
    """``a LocalCluster of 2 Dask worker processes (1 thread per job)``, for the progress lines."""
    d = executor.describe()
    threads = d.get("threads_per_job")
    per_job = f"{threads} thread(s) per job" if threads else "the config's threads per job"
    if d["kind"] == "sequential":
        return f"this machine, one job after another ({per_job})"
    where = "a LocalCluster" if d["kind"] == "dask-localcluster" else f"the Dask scheduler {d.get('scheduler')}"
    dash = f"; dashboard {d['dashboard']}" if d.get("dashboard") else ""
    return f"{where} of {d['workers']} Dask worker(s), {d['slots']} job(s) at once ({per_job}){dash}"


# ---------------------------------------------------------------------------------------------- main

def main(args) -> int:
    """``tailings-parity sweep``: exit 0 when every cell shows parity, 1 otherwise, 2 on a usage error."""
    from parity.env import REPORTS_DIR
    from parity.run.executor import explicit_threads, job_threads, make_executor
    from parity.run.runner import model_override, parse_impls, parse_seeds
    from python_impl.config import load_config

    command = ["tailings-parity", "sweep"] + sys.argv[2:]
    executor = None
    sweep_dir = None
    try:
        if args.resume:
            given = [name for name, v in (("--preset", args.preset), ("--grid", args.grid), ("--set", args.overrides),
                                          ("--seeds", args.seeds), ("--impls", args.impls), ("--data", args.data),
                                          ("--model", getattr(args, "model", None)))
                     if v]
            if given:
                raise UsageError(f"--resume takes the cells from {args.resume}/sweep_plan.json; leave out "
                                 f"{', '.join(given)}")
            sweep_dir = Path(args.resume)
            plan = read_plan(sweep_dir)
            if not (sweep_dir / "INCOMPLETE").exists():
                print(f"{sweep_dir}: the sweep finished already; its summary: {sweep_dir / 'sweep.html'}")
                return 0
            base = plan["cells"][0]["config"]
        else:
            if not args.grid:
                raise UsageError("give at least one --grid KEY=V1,V2 (e.g. --grid learning_rate=1e-4,3e-4,1e-3)")
            preset = args.preset or "smoke"
            grid = parse_grid(args.grid)
            impls = parse_impls(args.impls or DEFAULT_IMPLS)
            if args.data is not None and not Path(args.data).is_dir():
                raise UsageError(f"--data {args.data}: no such folder")
            overrides = list(args.overrides) + model_override(getattr(args, "model", None))
            base = load_config(preset, overrides)
            seeds = parse_seeds(args.seeds, int(base["seed"]), "strict")
            cells = plan_cells(preset, overrides, grid, args.data, None)
        # Configs and data checked, then the executor (an unreachable --scheduler): all before anything is written.
        datasets = check_cells(plan["cells"] if args.resume else cells, plan["seeds"] if args.resume else seeds)
        executor = make_executor(base, parallel=args.parallel, scheduler=args.scheduler, dashboard=args.dashboard,
                                 default_cluster=True)
        if not args.resume:
            for cell in cells:  # each job's share of the cores, in the config both languages of a cell get
                cell["config"] = job_threads(cell["config"], executor.threads_per_job)
            plan = {"schema": PLAN_SCHEMA, "version": VERSION, "preset": preset, "grid": grid,
                    "overrides": overrides, "data": args.data, "seeds": seeds, "impls": impls,
                    "threads_per_job": executor.threads_per_job, "cells": cells,
                    "created": datetime.now(timezone.utc).isoformat()}
        elif explicit_threads(base) is not None and executor.threads_per_job not in (None, explicit_threads(base)):
            print(f"note: the cells keep the threads of the plan ({explicit_threads(base)} per job); this executor "
                  f"would give {executor.threads_per_job}", file=sys.stderr)
    except (UsageError, ConfigError, RunError) as exc:
        if executor is not None:
            executor.close()
        if isinstance(exc, RunError):
            raise RunError(f"{exc}; nothing was written") from None
        raise
    try:
        if not args.resume:
            sweep_dir = create_sweep_dir(Path(args.reports_dir).resolve() if args.reports_dir else REPORTS_DIR, preset, plan)
            write_atomic(sweep_dir / "sweep_plan.json", json.dumps(plan, indent=1) + "\n")
        grid_text = " x ".join(f"{k} ({len(v)})" for k, v in plan["grid"].items())
        print(f"sweep folder {sweep_dir}")
        print(f"{len(plan['cells'])} cells ({grid_text}) x {len(plan['seeds'])} seed(s) x languages "
              f"{', '.join(plan['impls'])}")
        doc = run_sweep(sweep_dir, plan, executor, command=command, datasets=datasets)
    except KeyboardInterrupt:
        if sweep_dir is not None:
            print(f"interrupted: continue with tailings-parity sweep --resume {sweep_dir}", file=sys.stderr)
        raise
    except Exception as exc:  # recorded: the unfinished runs are marked INCOMPLETE; one line for the user
        if os.environ.get("TAILINGS_PARITY_DEBUG"):
            raise
        why = str(exc) if isinstance(exc, RunError) else f"{type(exc).__name__}: {exc}"
        resume = f"continue it with tailings-parity sweep --resume {sweep_dir}; " if sweep_dir is not None else ""
        raise RunError(f"the sweep stopped: {why} ({resume}TAILINGS_PARITY_DEBUG=1 shows the traceback)") from exc
    finally:
        executor.close()
    n = len(doc["cells"])
    parity = doc["verdicts"].get("PARITY", 0)
    others = ", ".join(f"{v} {k}" for k, v in doc["verdicts"].items() if k != "PARITY")
    print(f"{'PARITY' if parity == n else 'NOT ALL PARITY'}: {parity}/{n} cells at parity across "
          f"{', '.join(doc['impls'])}, every seed" + (f" ({others})" if others else ""))
    best = doc.get("best")
    if best:
        print("best cell: " + best["id"] + f" (val IoU {best['val_iou_mean']:.4f}, val loss {best['val_loss_mean']:.4f})")
    print(f"sweep: {sweep_dir / 'sweep.html'} (wall time {doc['sessions'][-1]['wall_s']:.1f} s)")
    return 0 if parity == n else 1
