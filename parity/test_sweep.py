"""``tailings-parity sweep`` and the Dask executor, on a real LocalCluster of this machine (2 worker processes).

Real workers, real Dask worker processes, a real kill: a 2x2 smoke sweep in both languages with every cell at
parity; a Dask worker killed mid-job (the job runs again once, the sweep completes and says so, the orphaned
training process is gone); the Dask workers killed after a job ended but before the harness took its folder
(kept); an unreachable --scheduler (exit 2 within seconds, nothing written); --resume after the sweep process
was killed (only the unfinished cells run again). Usage errors run in the fast tier. Separate hosts without a
shared disk: parity/test_cluster.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from argparse import Namespace
from pathlib import Path

import pytest

from parity.env import PROJECT_ROOT

CLI = [sys.executable, "-m", "parity"]
SMOKE = ["--preset", "smoke", "--set", "epochs=1", "--impls", "python,r-rscript"]


def sweep_cli(*args, timeout=600, **kw) -> subprocess.CompletedProcess:
    """``tailings-parity sweep ARGS`` in a child process."""
    return subprocess.run(CLI + ["sweep", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout,
                          **kw)


def only_sweep(reports: Path) -> Path:
    found = sorted(reports.glob("sweep-*"))
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------------------------------------- fast tier

def _args(**kw) -> Namespace:
    base = dict(preset=None, grid=[], overrides=[], seeds=None, impls=None, data=None, parallel=None, scheduler=None,
                dashboard=False, reports_dir=None, resume=None)
    return Namespace(**{**base, **kw})


@pytest.mark.parametrize("kw, words", [
    (dict(), "at least one --grid"),
    (dict(grid=["no_such_key=1,2"]), "unknown config key"),
    (dict(grid=["batch_size=4,four"]), "batch_size"),
    (dict(grid=["seed=1,2"]), "--seeds"),
    (dict(grid=["learning_rate=1e-3,1e-3"]), "listed twice"),
    (dict(grid=["learning_rate=1e-3"], overrides=["learning_rate=1e-2"]), "one of them"),
    (dict(grid=["learning_rate=1e-3"], parallel=0), "--parallel"),
    (dict(grid=["learning_rate=1e-3"], parallel=2, scheduler="tcp://127.0.0.1:1"), "choose one"),
    (dict(resume="/nonexistent/sweep"), "not a sweep folder"),
])
def test_sweep_usage_errors_exit_2_and_write_nothing(tmp_path, capsys, kw, words):
    from parity.cli import dispatch
    from parity.sweep.sweep import main

    assert dispatch(main, _args(reports_dir=str(tmp_path), **kw)) == 2
    assert words in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_local_cluster_size_keeps_jobs_times_threads_within_cores():
    from parity.run.executor import job_threads, local_cluster_size

    auto = {"threads_intra": "auto", "threads_inter": "auto"}
    assert local_cluster_size(auto, 2) == (1, 2)          # "auto" = all cores: one job at a time
    assert local_cluster_size(auto, 2, parallel=2) == (2, 1)
    assert local_cluster_size({"threads_intra": 1}, 2) == (2, 1)
    assert local_cluster_size({"threads_intra": 2}, 8) == (4, 2)
    assert job_threads(auto, 1) == {"threads_intra": 1, "threads_inter": 1}
    assert job_threads({"threads_intra": 3, "threads_inter": "auto"}, 1) == {"threads_intra": 3, "threads_inter": 1}


# ---------------------------------------------------------------------------------------------- heavy

@pytest.mark.heavy
def test_unreachable_scheduler_is_a_usage_error_within_seconds(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    res = sweep_cli(*SMOKE, "--grid", "learning_rate=1e-3,3e-3", "--scheduler", f"tcp://127.0.0.1:{port}",
                    "--reports-dir", str(tmp_path / "reports"), timeout=60)
    took = time.monotonic() - t
    assert res.returncode == 2, res.stderr
    assert "cannot reach the Dask scheduler" in res.stderr and f"--scheduler tcp://127.0.0.1:{port}" in res.stderr
    assert took < 20, f"took {took:.1f} s"
    assert not (tmp_path / "reports").exists()


@pytest.mark.heavy
@pytest.mark.slow
def test_smoke_sweep_2x2_on_a_local_cluster_every_cell_parity(tmp_path):
    res = sweep_cli(*SMOKE, "--grid", "learning_rate=1e-3,3e-3", "--grid", "batch_size=4,8", "--parallel", "2",
                    "--reports-dir", str(tmp_path))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "PARITY: 4/4 cells" in res.stdout
    sweep = only_sweep(tmp_path)
    doc = json.loads((sweep / "sweep.json").read_text())
    assert doc["complete"] and [c["verdict"] for c in doc["cells"]] == ["PARITY"] * 4
    assert [c["params"] for c in doc["cells"]] == [{"learning_rate": lr, "batch_size": bs}
                                                  for lr in (1e-3, 3e-3) for bs in (4, 8)]
    assert doc["best"]["id"] in {c["id"] for c in doc["cells"]}
    session = doc["sessions"][0]
    assert session["executor"]["kind"] == "dask-localcluster" and session["executor"]["workers"] == 2
    for cell in doc["cells"]:
        assert set(cell["val_iou"]) == {"python", "r-rscript"} and cell["time_ratio_vs_python"]["r-rscript"]
        run = sweep / cell["seeds"][0]["run"]
        assert (run / "report.html").is_file() and not (run / "INCOMPLETE").exists()
        config = json.loads((run / "config.json").read_text())
        assert (config["threads_intra"], config["threads_inter"]) == (1, 1)  # 2 cores / 2 jobs, in the config
        harness = json.loads((run / "harness.json").read_text())
        assert {w["impl"] for w in harness["workers"]} == {"python", "r-rscript"}
        assert all(w["ok"] and w["attempts"] == 1 and w["dask_worker"] for w in harness["workers"])
    # two jobs at a time on 2 cores: the reports say that the timings were taken on a shared machine
    assert any(c["shared_machine"] for c in doc["cells"])
    shared_run = sweep / next(c for c in doc["cells"] if c["shared_machine"])["seeds"][0]["run"]
    assert "SHARED MACHINE" in (shared_run / "report.md").read_text()
    for name in ("sweep.md", "sweep.html", "plots/heatmap_val_iou.png", "plots/heatmap_time_ratio_vs_python.png"):
        assert (sweep / name).is_file(), name
    assert "data:image/png;base64," in (sweep / "sweep.html").read_text()


@pytest.fixture
def local_cluster():
    """A LocalCluster of 2 worker processes, 1 thread each, a job lost with its worker rescheduled once."""
    import logging

    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


class KillWorkerOnce:
    """Runs the jobs on a real DaskExecutor and SIGKILLs the Dask worker process that runs the first ``impl`` job,
    ``delay_s`` after it started (mid-job); remembers the training process that the Dask worker had started."""

    def __init__(self, executor, impl: str, delay_s: float):
        self.executor, self.impl, self.delay_s = executor, impl, delay_s
        self.pids = executor.client.run(os.getpid)
        self.killed: dict = {}

    def __getattr__(self, name):
        return getattr(self.executor, name)

    def _kill(self, address):
        import psutil

        pid = self.pids[address]
        self.killed["orphans"] = [p.pid for p in psutil.Process(pid).children()]
        self.killed["worker"] = address
        os.kill(pid, signal.SIGKILL)

    def run(self, jobs, on_event=None, forward_progress=False):
        def hook(kind, job, info):
            if kind == "start" and job.impl == self.impl and not self.killed.get("armed"):
                self.killed["armed"] = True
                threading.Timer(self.delay_s, self._kill, [info["dask_worker"]]).start()
            if on_event:
                on_event(kind, job, info)

        yield from self.executor.run(jobs, hook, forward_progress)


@pytest.mark.heavy
@pytest.mark.slow
def test_a_killed_dask_worker_is_resubmitted_once_and_the_sweep_says_so(tmp_path, local_cluster):
    import psutil

    from parity.run.executor import DaskExecutor
    from parity.sweep.sweep import PLAN_SCHEMA, VERSION, create_sweep_dir, plan_cells, run_sweep

    executor = DaskExecutor(client=local_cluster)
    grid = {"learning_rate": ["1e-3"]}
    plan = {"schema": PLAN_SCHEMA, "version": VERSION, "preset": "smoke", "grid": grid, "overrides": ["epochs=1"],
            "data": None, "seeds": [42], "impls": ["python", "r-rscript"], "threads_per_job": 1,
            "cells": plan_cells("smoke", ["epochs=1"], grid, None, executor.threads_per_job)}
    sweep = create_sweep_dir(tmp_path, "smoke", plan)
    (sweep / "sweep_plan.json").write_text(json.dumps(plan))
    killer = KillWorkerOnce(executor, "r-rscript", delay_s=4.0)
    lines: list[str] = []
    doc = run_sweep(sweep, plan, killer, printer=lines.append)

    assert killer.killed.get("worker"), "the Dask worker was not killed"
    assert killer.killed["orphans"], "the Dask worker had no training process when it was killed: not mid-job"
    deadline = time.time() + 10
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
              for p in killer.killed["orphans"]) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                   for p in killer.killed["orphans"]), "the killed worker's training process is still running"
    cell = doc["cells"][0]
    assert doc["complete"] and cell["verdict"] == "PARITY", cell
    assert [(r["impl"], r["attempts"]) for r in cell["resubmitted"]] == [("r-rscript", 2)]
    assert cell["resubmitted"][0]["lost_workers"] == [killer.killed["worker"]]
    assert any("was lost; the job runs again" in line for line in lines), lines
    assert "Resubmitted jobs" in (sweep / "sweep.md").read_text()
    harness = json.loads((sweep / cell["seeds"][0]["run"] / "harness.json").read_text())
    rec = next(w for w in harness["workers"] if w["impl"] == "r-rscript")
    assert rec["resubmitted"] and rec["ok"]


@pytest.mark.heavy
@pytest.mark.slow
def test_a_finished_job_is_kept_when_its_dask_worker_dies_while_the_harness_is_busy(tmp_path, local_cluster):
    """A job's folder comes over when the job ends, not when the harness gets round to it (after another run's
    cross-loading and report): a Dask worker or host lost meanwhile takes no finished job with it."""
    from parity.run.executor import DaskExecutor, job_threads
    from parity.run.runner import Printer, create_run_dir, prepare_run, worker_jobs
    from python_impl.config import load_config

    config = job_threads(load_config("smoke", ["epochs=1"]), 1)
    run_dir = create_run_dir(tmp_path, "smoke", config)
    harness, setups = prepare_run(run_dir, config, ["python"], 2, None, None, None, Printer(quiet=True), None)
    jobs = worker_jobs(run_dir, harness, setups, config)
    assert len(jobs) == 2

    def task_states(dask_scheduler=None):
        return {t.state for t in dask_scheduler.tasks.values()}

    outcomes = DaskExecutor(client=local_cluster).run(jobs)
    first = next(outcomes)  # the harness now works on this one; the other job ends meanwhile
    deadline = time.time() + 300
    while local_cluster.run_on_scheduler(task_states) - {"memory"}:
        assert time.time() < deadline, "the second job did not end"
        time.sleep(0.5)
    time.sleep(2)
    killed_at = time.time()
    for pid in local_cluster.run(os.getpid).values():  # every Dask worker dies before the harness comes back
        os.kill(pid, signal.SIGKILL)
    time.sleep(2)  # the scheduler and the client know by now
    second = next(outcomes)
    assert first.ok and second.ok, second.error
    assert second.finished < killed_at, "the job ran again: its folder had not come over before its worker died"
    assert second.attempts == 1 and not second.lost_workers
    status = json.loads((second.job.out_dir / "status.json").read_text())
    assert status["ok"] and (second.job.out_dir / "weights_final.npz").is_file()


@pytest.mark.heavy
@pytest.mark.slow
def test_resume_after_the_sweep_was_killed_runs_only_the_unfinished_cells(tmp_path):
    import psutil

    grid = ["--grid", "learning_rate=1e-3,3e-3"]
    proc = subprocess.Popen(CLI + ["sweep", *SMOKE, *grid, "--parallel", "2", "--reports-dir", str(tmp_path)],
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        for line in proc.stdout:  # kill the sweep as soon as its first cell is finished
            seen.append(line)
            if line.startswith("c01__") and "seed 42:" in line:
                tree = psutil.Process(proc.pid).children(recursive=True)
                proc.kill()
                break
        else:
            pytest.fail("the sweep ended before its first cell was reported:\n" + "".join(seen))
    finally:
        proc.kill()
        proc.wait()
    # the killed sweep's Dask workers and training processes go away by themselves
    gone, alive = psutil.wait_procs(tree, timeout=20)
    assert not alive, f"left running after the sweep was killed: {[p.cmdline()[:3] for p in alive]}"
    sweep = only_sweep(tmp_path)
    assert (sweep / "INCOMPLETE").exists()
    first = next((sweep / "cells").glob("c01__*/*/comparison.json")).parent
    before = (first / "comparison.json").stat().st_mtime_ns

    res = sweep_cli("--resume", str(sweep), "--parallel", "2")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "1 run(s) finished before are kept; 1 to run" in res.stdout
    assert not any(line.startswith("c01__") for line in res.stdout.splitlines())
    doc = json.loads((sweep / "sweep.json").read_text())
    assert doc["complete"] and [c["verdict"] for c in doc["cells"]] == ["PARITY"] * 2
    assert [s["jobs"] for s in doc["sessions"]] == [4, 2]
    assert (first / "comparison.json").stat().st_mtime_ns == before
    for cell in doc["cells"]:
        runs = list((sweep / "cells" / cell["id"]).iterdir())
        assert len(runs) == 1, runs  # the unfinished run folders were replaced, not kept beside
    assert not (sweep / "INCOMPLETE").exists()
