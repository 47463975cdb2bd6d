"""``tailings-parity run``: resolve the config, make the manifest, run the workers, compare, write the report.

Every run gets a new folder ``reports/<UTC time>-<preset>-<config hash>`` (created exclusively, never reused).
The folder holds an ``INCOMPLETE`` marker until the report is written; a run that stops half-way keeps it,
with the reason inside, so that nobody mistakes it for a finished run. Layout: ``parity/FORMATS.md``.
Besides the files named there, the runner writes ``harness.json`` (what it ran, the worker results, its own
phase timings) so that ``tailings-parity report RUN`` can rebuild the report without training.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from parity.errors import RunError, UsageError
from parity.run.progress import Printer
from parity.run.workers import IMPLS
HARNESS_SCHEMA = "tailings-parity/harness"


# ---------------------------------------------------------------------------------------------- arguments

def add_arguments(parser) -> None:
    """Options of ``tailings-parity run``."""
    parser.add_argument("--preset", default="smoke", help="preset of parity/presets.toml (default: smoke)")
    parser.add_argument("--data", default=None, help="dataset folder (overrides the preset's data)")
    parser.add_argument("--model", default=None, metavar="PAIR",
                        help="model pair: a folder with model.py and model.R, or a shipped pair (unet, resunet, "
                             "se_unet); default: the config's model, unet")
    parser.add_argument("--impls", default=",".join(IMPLS),
                        help="workers to run, the first is the reference (default: python,r-rpy2,r-rscript)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each worker, for timing medians (default 1)")
    parser.add_argument("--seeds", default=None,
                        help="statistical mode: a count N (seeds seed..seed+N-1) or a list such as 1,2,3")
    parser.add_argument("--mode", choices=("strict", "tolerance", "statistical"), default=None,
                        help="comparison mode (default: the config's mode, strict)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set epochs=3 (repeatable)")
    parser.add_argument("--tol", action="append", default=[], metavar="STAGE=RTOL,ATOL",
                        help="tolerance mode: rtol and atol of one stage, e.g. --tol final_weights=1e-4,1e-5")
    parser.add_argument("--reports-dir", default=None, help="where run folders go (default: <project>/reports)")
    parser.add_argument("--r-dir", default=None,
                        help="run the R workers from this copy of r_impl/R (e.g. a mistake fixture)")
    # Workers as jobs on Dask (parity/run/executor.py); without these, one after another, for fair timings.
    parser.add_argument("--parallel", type=int, default=None, metavar="N",
                        help="run N workers at once on a Dask LocalCluster here, each with cores/N threads "
                             "(the report marks their timings as taken on a shared machine)")
    parser.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                        help="run the workers as jobs on this running Dask scheduler (README: starting a cluster)")
    parser.add_argument("--dashboard", action="store_true", help="serve the Dask dashboard (needs bokeh)")
    parser.add_argument("--verbose", action="store_true",
                        help="print every worker's progress line (per batch) instead of one line per worker")


def model_override(model: str | None) -> list[str]:
    """``--model PAIR`` as the override ``model=PAIR`` (a config key like any other: a sweep may grid it)."""
    return [] if model is None else [f"model={model}"]


def parse_impls(text: str) -> list[str]:
    """``python,r-rpy2`` -> list of worker names, checked."""
    impls = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in impls if t not in IMPLS]
    if bad or not impls:
        raise UsageError(f"--impls {text!r}: unknown worker {', '.join(bad) or '(none)'}; choose from {', '.join(IMPLS)}")
    if len(set(impls)) != len(impls):
        raise UsageError(f"--impls {text!r}: a worker is named twice")
    return impls


def parse_seeds(text: str | None, base_seed: int, mode: str) -> list[int]:
    """``--seeds``: a count or a comma list; statistical mode without it uses 3 seeds."""
    if text is None:
        return [base_seed + k for k in range(3)] if mode == "statistical" else [base_seed]
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",") if s.strip()]
        else:
            n = int(text)
            if n < 1:
                raise ValueError
            seeds = [base_seed + k for k in range(n)]
    except ValueError:
        raise UsageError(f"--seeds {text!r}: give a count (3) or a list of integers (1,2,3)") from None
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds {text!r}: a seed is named twice")
    if mode == "statistical" and len(seeds) < 2:
        raise UsageError("statistical mode needs at least 2 seeds per language (--seeds 3)")
    return seeds


def parse_tolerances(items: list[str]) -> dict:
    """``--tol stage=rtol,atol`` items -> {stage: (rtol, atol)}."""
    from parity.compare.stages import DEFAULT_TOLERANCES

    out = {}
    for item in items:
        try:
            stage, values = item.split("=", 1)
            rtol, atol = (float(v) for v in values.split(","))
        except ValueError:
            raise UsageError(f"--tol {item!r}: expected STAGE=RTOL,ATOL such as final_weights=1e-4,1e-5") from None
        if stage not in DEFAULT_TOLERANCES:
            raise UsageError(f"--tol {item!r}: unknown stage {stage!r}; stages: {', '.join(DEFAULT_TOLERANCES)}")
        out[stage] = (rtol, atol)
    return out


# ---------------------------------------------------------------------------------------------- run folder

def config_hash(config: dict) -> str:
    """Short sha256 of the resolved config (the same config gives the same hash in the run id)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:8]


def create_run_dir(reports_dir: Path, preset: str, config: dict) -> Path:
    """Make ``<reports>/<UTC>-<preset>-<hash>`` exclusively, with its INCOMPLETE marker; never reuse one."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{preset}-{config_hash(config)}"
    for k in range(1, 1000):
        path = reports_dir / (base if k == 1 else f"{base}-{k}")
        try:
            path.mkdir()  # exclusive: fails if another run took the name
        except FileExistsError:
            continue
        # The harness's pid: a marker whose process is gone belongs to a run that was killed.
        (path / "INCOMPLETE").write_text(f"running since {datetime.now(timezone.utc).isoformat()} "
                                         f"(harness pid {os.getpid()})\n")
        return path
    raise RunError(f"could not create a new run folder under {reports_dir}")


def mark_incomplete(run_dir: Path, reason: str) -> None:
    """Leave the INCOMPLETE marker with the reason the run stopped (on a full disk the marker made at the start,
    "running since ...", stays: it still says INCOMPLETE)."""
    try:
        (run_dir / "INCOMPLETE").write_text(f"run stopped: {reason}\n")
    except OSError:
        pass


def disk_full(exc: BaseException, run_dir: Path, doing: str) -> RunError | None:
    """A RunError naming the run folder when ``exc`` is a full disk (ENOSPC, EDQUOT), else None."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        detail = exc.strerror + (f": {exc.filename}" if exc.filename else "")
        return RunError(f"no space left on the device while {doing} ({detail})",
                        where=str(run_dir),
                        fix="free space there or pass --reports-dir on a disk with room, then run again; delete "
                            "this folder")
    return None


def check_worker_space(run_dir: Path, harness: dict) -> None:
    """Stop the run when a worker failed for lack of disk space: every later stage would fail the same way."""
    for rec in harness["workers"]:
        if not rec["ok"] and "No space left on device" in str(rec.get("error")) + _status_tail(run_dir, rec["key"]):
            raise RunError(f"no space left on the device: worker {rec['key']} could not write its files "
                           f"({rec['error']})", where=str(run_dir),
                           fix="free space there or pass --reports-dir on a disk with room, then run again; "
                               "delete this folder")


def _status_tail(run_dir: Path, key: str) -> str:
    try:
        return json.loads((run_dir / "workers" / key / "status.json").read_text()).get("stderr_tail") or ""
    except (OSError, ValueError):
        return ""


def worker_key(impl: str, seed: int | None, repeat: int | None) -> str:
    """Folder name under workers/: ``<impl>[-s<seed>][-r<k>]``."""
    return impl + (f"-s{seed}" if seed is not None else "") + (f"-r{repeat}" if repeat is not None else "")


# ---------------------------------------------------------------------------------------------- data

def resolve_data_dir(config: dict, run_dir: Path) -> Path:
    """The dataset folder of a run: synthetic tiles made in run_dir/data, else the configured folder."""
    if config["data"] == "synthetic":
        from parity.data.synthetic import make_synthetic

        out = run_dir / "data"
        make_synthetic(out, int(config["synthetic_count"]), int(config["synthetic_size"]), int(config["synthetic_seed"]))
        return out
    return data_folder(config)


def data_folder(config: dict) -> Path:
    """The configured dataset folder (config ``data`` other than "synthetic"), resolved; a ConfigError (exit 2)
    when it does not exist: the ``folder_or`` rule of ``[schema]``, which needs the harness's paths."""
    from parity.env import PROJECT_ROOT, default_data_dir
    from python_impl.config import ConfigError

    path = Path(config["data"])
    if not path.is_absolute():
        if config["data"] == "../shared/data/tailings" and default_data_dir() is not None:
            path = default_data_dir()  # $TAILINGS_DATA wins over the preset's relative default
        else:
            path = PROJECT_ROOT / path
    if not path.is_dir():
        raise ConfigError(f"config key data = '{config['data']}': must be 'synthetic' or an existing folder (no "
                          f"folder {path}); pass --data DIR, set TAILINGS_DATA, or use the smoke preset")
    return path.resolve()


def check_run_inputs(config: dict, seeds: list[int] | None = None, printer=None):
    """Everything a run can refuse before it writes anything: the config's rules (``[schema]``), the data
    folder, its tiles and files (one pass: ``parity.data.check.check_folder``), and the rules that name the data
    (batch_size <= the training tiles; splits that leave a training and a validation tile), for the config of
    every seed. Returns the folder's ``FolderCheck``, or None for synthetic tiles (made in the run folder).

    Raises ConfigError (exit 2) naming the key, the value and the rule; RunError for a dataset that cannot be
    used (no usable tiles, two files of one tile id). Prints each stray file as a warning.
    """
    from python_impl.config import check_config, model_dir
    from python_impl.pair import check_pair_folder

    printer = printer or Printer()
    config = check_config(config)
    check_pair_folder(model_dir(config["model"]))  # the pair's files, before any worker imports them
    if config["data"] == "synthetic":
        dataset, n_good = None, int(config["synthetic_count"])
    else:
        dataset = check_folder(config, data_folder(config))
        if dataset.files["duplicates"]:
            dup = dataset.files["duplicates"][0]
            raise RunError(f"duplicate tile {dup['tile']}: {dup['reason']}", where=str(dataset.data_dir),
                           fix="keep one file per tile, remove or rename the other(s) (`tailings-parity data "
                               "check` lists them all)")
        for stray in dataset.files["stray"]:
            printer(f"warning: stray file {stray['file']} in {dataset.data_dir}: {stray['reason']}")
        n_good = len(dataset.good)
    for seed in seeds or [config["seed"]]:
        check_config(dict(config, seed=seed), n_good)
    return dataset


def check_folder(config: dict, data_dir: Path):
    """The run's one pass over its data folder (``FolderCheck``); RunError when it leaves no train and val tile."""
    from parity.data.check import DataError, check_folder as check

    expected = int(config["synthetic_size"]) if config["data"] == "synthetic" else None
    try:
        dataset = check(data_dir, config["encoding"], expected_size=expected)
    except DataError as exc:
        raise RunError(str(exc)) from None
    if len(dataset.good) < 2:
        raise RunError(f"{data_dir}: {len(dataset.good)} usable {config['encoding']} tiles ({len(dataset.excluded)} "
                       "left out): a run needs train and val tiles; check the folder layout in data/README.md")
    return dataset


def run_parity(config: dict, impls: list[str], *, repeats: int = 1, seeds: list[int] | None = None,
               reports_dir: Path | str | None = None, r_dir: Path | str | None = None,
               tolerances: dict | None = None, printer: Printer | None = None,
               command: list[str] | None = None, executor=None, dataset=None,
               after_repeat=None) -> Path:
    """Run the whole parity run; returns the run folder (its INCOMPLETE marker gone only on success).

    ``config`` is the resolved config; ``seeds`` only in statistical mode; ``r_dir`` a patched copy of
    ``r_impl/R`` for the R workers (the mistake fixtures); ``executor`` (parity/run/executor.py) runs the
    workers as jobs (``--parallel``, ``--scheduler``); None: one after another here. ``dataset``: what
    ``check_run_inputs`` found (it runs here when not given); a config mistake or unusable data stops the run
    before its folder exists. ``after_repeat(run_dir, repeat)``, if given, runs once every worker of a repeat
    has run (``bench``: its plain fits between the workers' repeats, so that both see the same machine).
    """
    from parity.env import REPORTS_DIR

    printer = printer or Printer()
    # Absolute: the workers run in the project root, and their paths come from here.
    reports_dir = Path(reports_dir).resolve() if reports_dir else REPORTS_DIR
    t_run = time.time()
    if dataset is None and config["data"] != "synthetic":
        dataset = check_run_inputs(config, seeds, printer)
    try:
        run_dir = create_run_dir(reports_dir, config["preset"], config)
    except OSError as exc:
        raise disk_full(exc, reports_dir, "making the run folder") or exc
    printer(f"run folder {run_dir}")
    try:
        _run_in(run_dir, config, impls, repeats, seeds, r_dir, tolerances, printer, command, t_run, executor,
                dataset, after_repeat)
    except KeyboardInterrupt:
        mark_incomplete(run_dir, "interrupted")
        raise
    except Exception as exc:  # recorded in the INCOMPLETE marker, then raised on
        full = disk_full(exc, run_dir, "writing the run's files")
        mark_incomplete(run_dir, f"{type(exc).__name__}: {exc}" if full is None else str(full))
        if full is not None:
            raise full from exc
        raise
    finally:
        printer.close()
    return run_dir


def _run_in(run_dir, config, impls, repeats, seeds, r_dir, tolerances, printer, command, t_run, executor=None,
            dataset=None, after_repeat=None):
    harness, setups = prepare_run(run_dir, config, impls, repeats, seeds, r_dir, tolerances, printer, command,
                                  dataset)
    run_workers(run_dir, harness, setups, config, printer, executor, after_repeat)
    check_worker_space(run_dir, harness)
    finish_run(run_dir, harness, config, printer, t_run)


def prepare_run(run_dir, config, impls, repeats, seeds, r_dir, tolerances, printer, command, dataset=None):
    """Write config.json, the tiles (synthetic), dataset_card.json and a manifest per seed into ``run_dir``;
    returns the harness record so far and ``[(seed, config path, manifest path)]``. ``dataset``: the data
    folder's ``FolderCheck`` (check_run_inputs), None for synthetic tiles."""
    from parity.data import manifest as manifest_mod
    from python_impl.config import write_config

    harness = {"schema": HARNESS_SCHEMA, "version": 1, "command": command, "impls": impls, "repeats": repeats,
               "mode": config["mode"], "seeds": seeds, "r_dir": str(r_dir) if r_dir else None,
               "tolerances": {k: list(v) for k, v in (tolerances or {}).items()},
               "started": datetime.now(timezone.utc).isoformat(), "phases": {}, "workers": []}
    statistical = config["mode"] == "statistical"
    seeds = seeds or [int(config["seed"])]

    t = time.time()
    write_config(config, run_dir / "config.json")
    if dataset is None:  # synthetic tiles, made here from their seed
        dataset = check_folder(config, resolve_data_dir(config, run_dir))
    data_dir, good = dataset.data_dir, dataset.good
    excluded = {str(k): v for k, v in dataset.excluded.items()}
    # One config + manifest per seed in statistical mode; the first seed's sit at the top of the run folder.
    setups = []
    for k, seed in enumerate(seeds):
        cfg = dict(config, seed=seed)
        where = run_dir if k == 0 else run_dir / "seeds" / f"s{seed}"
        where.mkdir(parents=True, exist_ok=True)
        if k > 0:
            write_config(cfg, where / "config.json")
        man = manifest_mod.make_manifest(cfg, data_dir, good, excluded)
        manifest_mod.write_manifest(man, where / "manifest.json")
        setups.append((seed, where / "config.json", where / "manifest.json"))
        if k == 0:
            from parity.data.check import dataset_card

            card = dataset_card(dataset.results, man, data_dir, dataset.files)
            (run_dir / "dataset_card.json").write_text(json.dumps(card, indent=1, default=str) + "\n")
    harness["phases"]["prepare"] = time.time() - t
    printer(f"data {data_dir}: {len(good)} tiles used, {len(excluded)} left out; "
            f"{len(impls)} workers x {repeats} repeat(s)" + (f" x {len(seeds)} seeds" if statistical else ""))
    from parity.data.check import format_left_out

    for line in format_left_out(excluded, dataset.results):  # which tiles, and why (also in dataset_card.json)
        printer(f"  {line}")
    return harness, setups


def worker_jobs(run_dir, harness, setups, config) -> list:
    """The run's worker runs in order (per seed, per repeat, per impl) as executor jobs (``WorkerJob``)."""
    from parity.run.executor import WorkerJob

    statistical = config["mode"] == "statistical"
    repeats = harness["repeats"]
    return [WorkerJob(run_dir=run_dir, key=worker_key(impl, seed if statistical else None, rep if repeats > 1 else None),
                      impl=impl, seed=seed, repeat=rep, config_path=cfg_path, manifest_path=man_path,
                      timeout_s=float(config["worker_timeout_s"]), r_dir=harness["r_dir"])
            for seed, cfg_path, man_path in setups for rep in range(1, repeats + 1) for impl in harness["impls"]]


def run_workers(run_dir, harness, setups, config, printer, executor=None, after_repeat=None) -> None:
    """Run every worker of the run as jobs of ``executor`` (one after another here by default); their records go
    to ``harness["workers"]``. ``after_repeat(run_dir, repeat)`` runs once each repeat's workers (of the first
    seed) are done: between the repeats with the sequential executor, after all of them on Dask."""
    from parity.run.executor import SequentialExecutor, run_jobs

    executor = executor or SequentialExecutor()
    t = time.time()
    harness["executor"] = executor.describe()
    harness["workers"], t_hooks = run_jobs(executor, worker_jobs(run_dir, harness, setups, config), printer,
                                           after_repeat=after_repeat)
    harness["phases"]["workers"] = time.time() - t - t_hooks  # the workers' phase times the workers only


def finish_run(run_dir, harness, config, printer, t_run) -> None:
    """Cross-load the first seed's models, compare, write harness.json and the report, remove INCOMPLETE."""
    from parity.run.crossload import crossload

    t = time.time()
    seed0 = (harness["seeds"] or [int(config["seed"])])[0]
    first = [w for w in harness["workers"] if w["seed"] == seed0 and w["repeat"] == 1 and w["ok"]]
    if first:
        printer("cross-loading the saved models in Python and R")
        crossload(run_dir, [w["key"] for w in first], config, printer=printer)
    harness["phases"]["crossload"] = time.time() - t

    from parity.compare.run import compare_run
    from parity.report import build as report

    # compare_run reads harness.json to know which folders are repeats and seeds.
    (run_dir / "harness.json").write_text(json.dumps(harness, indent=1) + "\n")
    t = time.time()
    doc = compare_run(run_dir)
    harness["phases"]["compare"] = time.time() - t
    # The report carries the harness's timings, so they are written before it (its own time is not in it).
    harness["phases"]["total"] = time.time() - t_run
    harness["finished"] = datetime.now(timezone.utc).isoformat()
    (run_dir / "harness.json").write_text(json.dumps(harness, indent=1) + "\n")
    report.build_report(run_dir, comparison=doc, complete=True)
    (run_dir / "INCOMPLETE").unlink()


# ---------------------------------------------------------------------------------------------- main

def main(args) -> int:
    """``tailings-parity run``: exit 0 on parity, 1 on a divergence or a failed run; raises UsageError or
    ConfigError (exit 2) and RunError (exit 1) for ``cli.main`` to print, before anything is written."""
    from python_impl.config import load_config

    impls = parse_impls(args.impls)
    if args.repeats < 1:
        raise UsageError(f"--repeats {args.repeats}: must be at least 1")
    config = load_config(args.preset, list(args.overrides) + model_override(getattr(args, "model", None)))
    if args.data is not None:
        if not Path(args.data).is_dir():
            raise UsageError(f"--data {args.data}: no such folder; give a folder with img_tiff/ and "
                             "mask_tiff/ (or img/ and mask/ with --set encoding=jpeg)")
        config["data"] = str(Path(args.data).resolve())
    if args.mode:
        config["mode"] = args.mode
    seeds = parse_seeds(args.seeds, int(config["seed"]), config["mode"])
    if len(seeds) > 1 and config["mode"] != "statistical":
        raise UsageError("--seeds with more than one seed needs --mode statistical")
    tolerances = parse_tolerances(args.tol)
    if args.r_dir and not Path(args.r_dir).is_dir():
        raise UsageError(f"--r-dir {args.r_dir}: no such folder")
    try:  # the data: tiles and files checked, the rules that name them, before any folder is made
        dataset = check_run_inputs(config, seeds)
    except RunError as exc:
        raise RunError(f"{exc}; nothing was written") from None
    # Last of the checks: an unreachable --scheduler is a usage error, before any folder is made.
    from parity.run.executor import job_threads, make_executor

    executor = make_executor(config, parallel=args.parallel, scheduler=args.scheduler, dashboard=args.dashboard)
    if executor.threads_per_job is not None:
        config = job_threads(config, executor.threads_per_job)  # each job's share of the cores, in its config
    try:
        run_dir = run_parity(config, impls, repeats=args.repeats, seeds=seeds, reports_dir=args.reports_dir,
                             r_dir=args.r_dir, tolerances=tolerances, printer=Printer(verbose=args.verbose),
                             command=["tailings-parity", "run"] + sys.argv[2:], executor=executor, dataset=dataset)
    except Exception as exc:  # recorded: the run folder says INCOMPLETE with this reason; one line for the user
        if os.environ.get("TAILINGS_PARITY_DEBUG"):
            raise
        why = str(exc) if isinstance(exc, RunError) else f"{type(exc).__name__}: {exc}"
        raise RunError(f"the run stopped: {why} (its folder is marked INCOMPLETE; TAILINGS_PARITY_DEBUG=1 shows the "
                       "traceback)") from exc
    finally:
        executor.close()
    doc = json.loads((run_dir / "comparison.json").read_text())
    print(doc["verdict"])
    print(f"report: {run_dir / 'report.html'}")
    return 0 if doc["ok"] else 1
