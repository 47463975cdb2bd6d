"""``run`` under faults (parity/run/runner.py): the harness killed with SIGKILL, a full disk, a worker that prints
without end."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from parity.env import PROJECT_ROOT, R_IMPL_DIR
from parity.testing import TINY
from parity.testing import cli_run as _cli
from parity.testing import make_tiles as _tiles
from parity.testing import run_python as _python
from parity.testing import worker_inputs as _worker_inputs


from parity.testing import pid_alive as _pid_alive  # noqa: E402


@pytest.mark.heavy
@pytest.mark.slow
def test_harness_killed_mid_run_leaves_incomplete_and_the_next_run_is_unaffected(tmp_path, capsys):
    data = _tiles(tmp_path / "tiles")
    reports = tmp_path / "reports"
    argv = [sys.executable, "-u", "-m", "parity", "run", "--verbose", "--impls", "python", "--data", str(data),
            "--reports-dir", str(reports)] + [a for s in TINY[2:] for a in ("--set", s)]
    harness = subprocess.Popen(argv + ["--set", "epochs=50"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    worker_pid = None
    try:
        for line in harness.stdout:
            if "phase start pid" in line:
                worker_pid = int(line.split()[-1])
            if "phase train" in line:
                break
        assert worker_pid, "the worker never started"
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=30)
        deadline = time.time() + 15
        while _pid_alive(worker_pid) and time.time() < deadline:
            time.sleep(0.2)
        assert not _pid_alive(worker_pid), "the worker trained on after its harness was killed"
    finally:
        harness.kill()
        if worker_pid and _pid_alive(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
    (killed,) = list(reports.iterdir())
    marker = (killed / "INCOMPLETE").read_text()
    assert marker.startswith("running since ") and f"(harness pid {harness.pid})" in marker
    rc, out, err = _cli(["report", str(killed)], capsys)
    assert rc == 1 and f"error: {killed} is marked INCOMPLETE (running since" in err
    assert out.startswith("INCOMPLETE run, no verdict; what its files show: ")
    # The next run: its own folder, finished, the killed one left as it was.
    proc = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "NO COMPARISON: only python ran" in proc.stdout, proc.stdout + proc.stderr
    (second,) = [p for p in reports.iterdir() if p != killed]
    assert not (second / "INCOMPLETE").exists() and (second / "report.html").is_file()
    assert (killed / "INCOMPLETE").read_text() == marker


@pytest.fixture()
def small_disk(tmp_path):
    """A 160 KiB tmpfs (root only; skipped where mount is not permitted); unmounted afterwards."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.heavy
def test_a_full_disk_ends_with_the_folder_named_and_incomplete(tmp_path, small_disk):
    data = _tiles(tmp_path / "tiles")
    argv = [sys.executable, "-m", "parity", "run", "--impls", "python", "--data", str(data),
            "--reports-dir", str(small_disk)] + [a for s in TINY[2:] for a in ("--set", s)]
    proc = subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    (run_dir,) = list(small_disk.iterdir())
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert errors[0].startswith(f"error: the run stopped: {run_dir}: no space left on the device")
    assert "fix: free space there or pass --reports-dir on a disk with room" in errors[0]
    assert "(its folder is marked INCOMPLETE" in proc.stderr and "Traceback" not in proc.stderr
    assert (run_dir / "INCOMPLETE").is_file() and not (run_dir / "report.html").exists()


@pytest.mark.heavy
@pytest.mark.slow
def test_a_worker_that_prints_without_end_does_not_grow_the_harness(tmp_path):
    """An R twin that prints 200 MB without a newline, then hangs: the harness's peak memory stays flat, the
    log stops at its cap and says so, status.json keeps a short tail."""
    config_path, manifest_path, _ = _worker_inputs(tmp_path, [])
    r_dir = tmp_path / "R"
    shutil.copytree(R_IMPL_DIR / "R", r_dir)
    worker = r_dir / "worker.R"
    head = "run_worker <- function(config_path, manifest_path, out_dir, launched_at = NULL) {\n"
    assert worker.read_text().count(head) == 1
    worker.write_text(worker.read_text().replace(
        head, head + '  for (k in 1:2000) cat(strrep("x", 100000L))\n  Sys.sleep(600)\n'))
    out = tmp_path / "out"
    probe = _python(textwrap.dedent(f"""
        import json, resource
        from parity.run.workers import spawn_worker
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        res = spawn_worker("r-rscript", {str(config_path)!r}, {str(manifest_path)!r}, {str(out)!r},
                           timeout_s=45, r_dir={str(r_dir)!r}, log_max_bytes=1_000_000)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"grew_kb": after - before, "error": res.error}}))
    """), timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout.splitlines()[-1])
    status = json.loads((out / "status.json").read_text())
    assert status["output_bytes"] >= 200_000_000 and status["log_truncated"] is True, status["output_bytes"]
    assert "timed out after 45 s" in seen["error"]
    assert seen["grew_kb"] < 40_000, f"the harness grew by {seen['grew_kb']} KiB"
    log = (out / "worker_output.log").read_bytes()
    assert 1_000_000 - 100_000 <= len(log) <= 1_001_000
    assert re.search(rb"\[worker_output\.log truncated at 1000000 bytes: the worker printed \d+ bytes", log)
    assert len(status["stderr_tail"]) < 40 * 2100
