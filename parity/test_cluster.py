"""``tailings-parity sweep`` across three hosts without a shared disk: network namespaces on this machine, built by
parity/cluster_demo.sh (needs root and ``ip netns``; skipped otherwise, saying which).

tp-harness runs the Dask scheduler and the harness; tp-worker1 and tp-worker2 run one Dask worker each, on one core,
in their own working folder, with the harness's reports, the other worker's folder and the real tiles under an
empty tmpfs; every process is started with the README's commands ("Sweeps on a cluster"). Checked: a 2 x 2 smoke
sweep with every cell at parity and jobs on both worker hosts; tp-worker1's cable pulled mid-job (the job runs
again on tp-worker2, once, every cell at parity, the report names the loss, nothing half-written); a sweep started
while the scheduler's host is off the network (exit 2 within seconds, nothing written). The hosts and every
process on them are removed at the end, also when a test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parity.env import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "parity" / "cluster_demo.sh"
TP = str(Path(sys.prefix) / "bin" / "tailings-parity")
SCHEDULER = "tcp://tp-harness:8786"
SMOKE = ["--preset", "smoke", "--set", "epochs=1", "--impls", "python,r-rscript"]
TRAINING = ("worker.R", "python_impl.worker")  # what a worker process's command line holds, per language


def cluster_unavailable() -> str | None:
    """Why the hosts cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root for network namespaces (CI runs as root)"
    missing = [t for t in ("ip", "unshare", "setsid", "taskset", "hostname", "mount") if shutil.which(t) is None]
    if missing:
        return f"needs {', '.join(missing)} (iproute2, util-linux)"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "`ip netns` does not work here"
    return None


class Cluster:
    """The three hosts of one ``cluster_demo.sh up``: run commands on them, pull their cables."""

    def __init__(self, folder: Path):
        self.folder = folder

    def script(self, *args, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        """``cluster_demo.sh COMMAND DIR ARGS`` for these hosts; with ``check``, an exit status != 0 fails."""
        res = subprocess.run(["bash", str(SCRIPT), args[0], str(self.folder), *args[1:]], capture_output=True,
                             text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"cluster_demo.sh {' '.join(args)}: exit {res.returncode}\n{res.stdout}{res.stderr}")
        return res

    def on(self, host: str, *cmd, timeout: float = 900) -> subprocess.CompletedProcess:
        """``cmd`` on ``host``, to its end."""
        return self.script("on", host, *cmd, timeout=timeout, check=False)

    def start(self, host: str, *cmd) -> subprocess.Popen:
        """``cmd`` on ``host``, in the background; stdout and stderr together."""
        return subprocess.Popen(["bash", str(SCRIPT), "on", str(self.folder), host, *cmd], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def link(self, host: str, state: str) -> None:
        """Pull (``"down"``) or plug back (``"up"``) ``host``'s cable, at the bridge."""
        self.script("link", host, state)

    def address(self, host: str) -> str:
        """``host``'s IP address (the hosts file all three read)."""
        names = dict(reversed(line.split()) for line in (self.folder / "hosts").read_text().splitlines())
        return names[host]

    def training(self, host: str) -> list[tuple[int, str]]:
        """(pid, command line) of the worker processes (python or R training) running on ``host``."""
        prefix = (self.folder / "prefix").read_text().strip()
        pids = subprocess.run(["ip", "netns", "pids", f"{prefix}-{host}"], capture_output=True, text=True).stdout
        found = []
        for pid in pids.split():
            try:
                line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # ended meanwhile
                continue
            if any(t in line for t in TRAINING) and "setpriv" not in line:
                found.append((int(pid), line))
        return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """tp-harness (scheduler), tp-worker1 and tp-worker2 (a Dask worker each), removed at the end in every case."""
    reason = cluster_unavailable()
    if reason:
        pytest.skip(reason)
    hosts = Cluster(tmp_path_factory.mktemp("cluster"))
    terminate = signal.signal(signal.SIGTERM, signal.default_int_handler)  # a killed session removes them too
    try:
        hosts.script("up")
        yield hosts
    finally:
        hosts.script("down", timeout=120, check=False)
        signal.signal(signal.SIGTERM, terminate)


def only_sweep(reports: Path) -> Path:
    """The one sweep folder under ``reports``."""
    found = sorted(reports.glob("sweep-*"))
    assert len(found) == 1, found
    return found[0]


def runs_of(sweep: Path) -> list[Path]:
    """The run folders of a sweep folder's cells."""
    return sorted(p.parent for p in sweep.glob("cells/*/*/harness.json"))


def assert_nothing_half_written(sweep: Path) -> None:
    """Every run finished, every worker folder from one attempt that ran to its end, no temporary file left."""
    assert not list(sweep.rglob("INCOMPLETE")) and not list(sweep.rglob("*.tmp"))
    for run in runs_of(sweep):
        assert (run / "comparison.json").is_file() and (run / "report.html").is_file(), run
        for worker in (run / "workers").iterdir():
            if worker.name.startswith("."):  # the cross-loaders' specs
                continue
            assert json.loads((worker / "status.json").read_text())["ok"], worker
            phases = (worker / "progress.log").read_text().splitlines()
            assert sum(line.startswith("phase start") for line in phases) == 1 and phases[-1] == "phase done", worker


@pytest.mark.heavy
@pytest.mark.slow
def test_a_2x2_sweep_runs_on_both_worker_hosts_every_cell_parity(cluster):
    res = cluster.on("tp-harness", TP, "sweep", *SMOKE, "--grid", "learning_rate=1e-3,3e-3",
                     "--grid", "batch_size=4,8", "--scheduler", SCHEDULER, "--reports-dir", "reports")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "PARITY: 4/4 cells" in res.stdout
    sweep = only_sweep(cluster.folder / "tp-harness" / "reports")
    doc = json.loads((sweep / "sweep.json").read_text())
    assert doc["complete"] and [c["verdict"] for c in doc["cells"]] == ["PARITY"] * 4
    executor = doc["sessions"][0]["executor"]
    assert executor["kind"] == "dask-scheduler" and executor["workers"] == 2 and executor["threads_per_job"] == 1
    assert executor["hosts"] == sorted(cluster.address(h) for h in ("tp-worker1", "tp-worker2"))
    hosts = set()
    for run in runs_of(sweep):
        harness = json.loads((run / "harness.json").read_text())
        assert all(w["ok"] and w["attempts"] == 1 for w in harness["workers"]), harness["workers"]
        hosts |= {w["host"] for w in harness["workers"]}
    assert hosts == {"tp-worker1", "tp-worker2"}, hosts
    assert_nothing_half_written(sweep)
    # The worker hosts never saw the run folders (the tiles were made again there) and kept no job folder.
    assert cluster.on("tp-worker1", "test", "-e", str(runs_of(sweep)[0] / "manifest.json")).returncode == 1
    for host in ("tp-worker1", "tp-worker2"):
        assert not list((cluster.folder / host / "tmp").glob("tailings-parity-job-*")), host


@pytest.mark.heavy
@pytest.mark.slow
def test_a_worker_host_cut_off_mid_job_its_job_runs_again_once_on_the_other(cluster):
    sweep_proc = cluster.start("tp-harness", TP, "sweep", *SMOKE, "--grid", "learning_rate=1e-3",
                               "--scheduler", SCHEDULER, "--reports-dir", "reports-cut")
    try:
        deadline = time.time() + 300
        while not cluster.training("tp-worker1"):
            assert time.time() < deadline and sweep_proc.poll() is None, "no job started on tp-worker1"
            time.sleep(0.5)
        time.sleep(3)
        running = cluster.training("tp-worker1")
        assert running, "the job on tp-worker1 ended before the cable was pulled: not mid-job"
        cluster.link("tp-worker1", "down")  # for good: its Dask worker ends itself once cut off
        out, _ = sweep_proc.communicate(timeout=600)
    finally:
        if sweep_proc.poll() is None:
            sweep_proc.kill()
            sweep_proc.wait()
    lost_impl = "r-rscript" if "worker.R" in running[0][1] else "python"
    cut_off = f"tcp://{cluster.address('tp-worker1')}:"
    assert sweep_proc.returncode == 0, out[-4000:]
    assert "PARITY: 1/1 cells" in out
    assert f"s42 {lost_impl}: its Dask worker {cut_off}" in out and "the job runs again" in out, out
    sweep = only_sweep(cluster.folder / "tp-harness" / "reports-cut")
    doc = json.loads((sweep / "sweep.json").read_text())
    assert doc["complete"] and doc["cells"][0]["verdict"] == "PARITY"
    assert [(r["impl"], r["attempts"]) for r in doc["cells"][0]["resubmitted"]] == [(lost_impl, 2)]
    (run,) = runs_of(sweep)
    records = {w["impl"]: w for w in json.loads((run / "harness.json").read_text())["workers"]}
    lost = records[lost_impl]
    assert lost["ok"] and lost["attempts"] == 2 and lost["host"] == "tp-worker2", lost
    assert len(lost["lost_workers"]) == 1 and lost["lost_workers"][0].startswith(cut_off), lost
    assert all(w["attempts"] == 1 for impl, w in records.items() if impl != lost_impl)
    assert f"its Dask worker {lost['lost_workers'][0]} was lost" in (run / "report.md").read_text()
    assert lost["lost_workers"][0] in (sweep / "sweep.md").read_text()
    assert_nothing_half_written(sweep)


@pytest.mark.heavy
@pytest.mark.slow
def test_a_sweep_whose_scheduler_host_is_off_the_network_exits_2_within_seconds(cluster):
    cluster.link("tp-harness", "down")
    try:
        t = time.monotonic()
        res = cluster.on("tp-worker2", TP, "sweep", *SMOKE, "--grid", "learning_rate=1e-3",
                         "--scheduler", SCHEDULER, "--reports-dir", "reports", timeout=120)
        took = time.monotonic() - t
    finally:
        cluster.link("tp-harness", "up")
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert "cannot reach the Dask scheduler" in res.stderr and f"--scheduler {SCHEDULER}" in res.stderr
    assert took < 20, f"took {took:.1f} s"
    assert not (cluster.folder / "tp-worker2" / "reports").exists()
