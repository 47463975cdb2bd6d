"""Where things are, and the environment every R and worker process of the project starts with."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
R_IMPL_DIR = PROJECT_ROOT / "r_impl"
REPORTS_DIR = PROJECT_ROOT / "reports"


def project_r_lib() -> Path:
    """The project-local R library that holds reticulate >= 1.41 (made by parity/setup.sh)."""
    return Path(os.environ.get("TAILINGS_PARITY_R_LIB", PROJECT_ROOT / ".rlib"))


def default_data_dir() -> Path | None:
    """The real tiles: $TAILINGS_DATA, else ../shared/data/tailings beside the project; None if neither exists."""
    env = os.environ.get("TAILINGS_DATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    guess = PROJECT_ROOT.parent / "shared" / "data" / "tailings"
    return guess if guess.is_dir() else None


def compute_environment(base: dict | None = None) -> dict:
    """Environment for a process that reads tiles or trains (a worker of either language, bench's plain fit and
    probe, the cross-loaders): the same in all of them, so that their timings compare. Values already set win.

    NumPy asks the kernel for transparent huge pages on every array of 4 MB or more (madvise); where the kernel
    then compacts memory on the fault (THP "defrag" = madvise, Debian's and most distributions' default) the first
    touch of such an array costs more than it saves (figures: parity/BENCHMARKS.md). Set NUMPY_MADVISE_HUGEPAGE=1
    to have them back.
    """
    env = dict(os.environ if base is None else base)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    env.setdefault("GLIBC_TUNABLES", GLIBC_TUNABLES)
    return env


# glibc's malloc keeps what a process frees for its next allocations: blocks under 64 MB come from the heap, and
# the heap is not trimmed below 1 GB. By default glibc maps each large block afresh and trims the heap, so memory
# freed in bulk (R frees its vectors at a collection) comes back as new pages, each a page fault, whose cost on
# a VM moves with the host. The same setting for every worker and for bench's plain fit and probe, so their
# timings compare (figures: parity/BENCHMARKS.md).
GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=67108864:glibc.malloc.trim_threshold=1073741824"


@contextlib.contextmanager
def numpy_as_in_workers():
    """Within the block, this process's NumPy uses huge pages as the worker processes do (compute_environment):
    for tiles read here that are timed against a worker or the R reader (``data compare``). Restored after."""
    from numpy._core import multiarray  # NumPy's own switch for what NUMPY_MADVISE_HUGEPAGE sets at import

    before = multiarray._get_madvise_hugepage()
    multiarray._set_madvise_hugepage(int(compute_environment()["NUMPY_MADVISE_HUGEPAGE"] or 0) != 0)
    try:
        yield
    finally:
        multiarray._set_madvise_hugepage(before)


def r_environment(base: dict | None = None, python: str | None = None) -> dict:
    """Environment for a process that runs R: the project's R library first, reticulate bound to ``python``.

    Values the caller already set (``R_LIBS``, ``RETICULATE_PYTHON``) are kept, with the project library put
    in front of ``R_LIBS``: a user's own library stays reachable, ours wins.
    """
    env = compute_environment(base)
    lib = str(project_r_lib())
    libs = [p for p in env.get("R_LIBS", "").split(":") if p]
    if lib not in libs:
        libs.insert(0, lib)
    env["R_LIBS"] = ":".join(libs)
    env.setdefault("RETICULATE_PYTHON", python or sys.executable)
    env["TAILINGS_PARITY_ROOT"] = str(PROJECT_ROOT)
    # R frees memory in bulk, at its garbage collections (Python frees each array when its last reference goes),
    # and reading tiles allocates several MB per tile: at R's defaults every few tiles cost a collection over R's
    # whole heap (some 2 M objects of terra, methods and reticulate). So R's vector heap starts at 512 MB and grows
    # in its largest steps (R's ?Memory); the cost is up to 512 MB of garbage between collections. Loading terra,
    # methods and reticulate makes some 2-3 M R objects, so the object heap starts at 5 M cells instead of R's
    # 350 k, which would collect repeatedly at start-up (figures: parity/BENCHMARKS.md).
    env.setdefault("R_GC_MEM_GROW", "3")
    env.setdefault("R_VSIZE", "512M")
    env.setdefault("R_NSIZE", "5M")
    return env


def prepare_embedded_r() -> None:
    """Set this process's environment so that R started by rpy2 here sees the project library.

    Must run before ``import rpy2.robjects`` (R reads R_LIBS once, at start-up).
    """
    os.environ.update(r_environment())


@dataclass
class ChildResult:
    """What a child process left: exit status (None if killed before it had one), output, and whether it timed out."""

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    seconds: float


def run_rscript(script: Path | str, args: list, timeout_s: float = 600) -> ChildResult:
    """Run the R program ``script`` (an .R file) in an Rscript child with the project's R environment.

    ``args`` are its trailing arguments. Raises CompareError when Rscript is missing or runs past ``timeout_s``;
    the caller checks the exit status.
    """
    from parity.errors import CompareError

    cmd = ["Rscript", "--vanilla", str(script), *[str(a) for a in args]]
    try:
        result = run_child(cmd, r_environment(), timeout_s)
    except FileNotFoundError:
        raise CompareError("Rscript not found on PATH", fix="install R: bash parity/setup.sh") from None
    if result.timed_out:
        raise CompareError(f"{script} did not finish within {timeout_s:.0f} s", fix="pass a longer time limit")
    return result


def refuse_in_fast_tier(cmd: list[str]) -> None:
    """In the test suite's fast tier (parity/testing.py) no R and no worker may start: say which test tried."""
    if os.environ.get("TAILINGS_PARITY_FAST_TIER"):
        raise RuntimeError(f"fast tier: {' '.join(map(str, cmd[:4]))} ... started by a test not marked heavy; "
                           "mark it @pytest.mark.heavy")


def run_child(cmd: list[str], env: dict, timeout_s: float, cwd: Path | str = PROJECT_ROOT) -> ChildResult:
    """Run ``cmd`` in its own process group and collect its output; at ``timeout_s`` kill the whole group.

    The group matters: Rscript and the Python it embeds, or TensorFlow's threads, must not outlive the caller.
    Raises FileNotFoundError when the program does not exist (callers name the fix).
    """
    if cmd and (Path(str(cmd[0])).name == "Rscript" or "python_impl" in " ".join(map(str, cmd))):
        refuse_in_fast_tier(cmd)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        timed_out = True
    return ChildResult(proc.returncode, out, err, timed_out, time.monotonic() - t0)
