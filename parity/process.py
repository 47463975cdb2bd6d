"""The one process supervisor: every child the harness starts (workers, cross-loaders, predictors, bench's plain
fit and probe, the doctor's probes, R readers) runs through ``start`` and ``stop``.

A child runs in its own process group (a time-out ends the whole group: Rscript and the Python it embeds, or
TensorFlow's threads, must not outlive it) and dies with the process that started it (``setpriv --pdeathsig
KILL`` where util-linux has it: a harness, or a Dask worker, killed with SIGKILL leaves no child training on).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

KILL_GRACE_S = 5.0


def orphan_guard() -> list[str]:
    """A prefix that makes the child die with its parent (``setpriv --pdeathsig KILL``); [] where setpriv is
    missing."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv and sys.platform.startswith("linux") else []


def start(cmd: list, env: dict, cwd: Path | str, *, merge_stderr: bool = False) -> subprocess.Popen:
    """Start ``cmd`` in its own process group, guarded against outliving this process; output piped (stderr
    into stdout with ``merge_stderr``). Raises OSError when the program cannot be started."""
    return subprocess.Popen(orphan_guard() + [str(c) for c in cmd], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                            start_new_session=True)


def stop(proc: subprocess.Popen, grace_s: float = KILL_GRACE_S) -> None:
    """TERM the child's process group, KILL it after ``grace_s`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class ChildResult:
    """What a child process left: exit status (None if killed before it had one), output, and whether it timed out."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float


def run_child(cmd: list, env: dict, timeout_s: float, cwd: Path | str | None = None) -> ChildResult:
    """Run ``cmd`` to its end and collect its output; at ``timeout_s`` stop its whole group.

    Raises FileNotFoundError when the program does not exist (callers name the fix).
    """
    from parity.env import PROJECT_ROOT

    t0 = time.monotonic()
    proc = start(cmd, env, cwd or PROJECT_ROOT)
    out: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda name, pipe: out.__setitem__(name, pipe.read()), args=(name, pipe),
                                daemon=True) for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for reader in readers:
        reader.start()
    try:
        proc.wait(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        stop(proc, grace_s=0)
        timed_out = True
    except KeyboardInterrupt:
        stop(proc)
        raise
    for reader in readers:
        reader.join(timeout=10)
    text = {k: v.decode("utf-8", "replace") for k, v in out.items()}
    return ChildResult(proc.returncode, text.get("stdout", ""), text.get("stderr", ""), timed_out,
                       time.monotonic() - t0)
