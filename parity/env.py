"""Where things are, and the environment every R and worker process of the project starts with."""

from __future__ import annotations

import os
import sys
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
    probe, the cross-loaders): the caller's, with TensorFlow's C++ log quiet unless set."""
    env = dict(os.environ if base is None else base)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


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
    return env


def prepare_embedded_r() -> None:
    """Set this process's environment so that R started by rpy2 here sees the project library.

    Must run before ``import rpy2.robjects`` (R reads R_LIBS once, at start-up).
    """
    os.environ.update(r_environment())


def run_rscript(script: Path | str, args: list, timeout_s: float = 600):
    """Run the R program ``script`` (an .R file) in an Rscript child with the project's R environment.

    ``args`` are its trailing arguments. Raises CompareError when Rscript is missing or runs past ``timeout_s``;
    the caller checks the exit status (a ``parity.process.ChildResult``).
    """
    from parity.errors import CompareError
    from parity.process import run_child

    cmd = ["Rscript", "--vanilla", str(script), *[str(a) for a in args]]
    try:
        result = run_child(cmd, r_environment(), timeout_s)
    except FileNotFoundError:
        raise CompareError("Rscript not found on PATH", fix="install R: bash parity/setup.sh") from None
    if result.timed_out:
        raise CompareError(f"{script} did not finish within {timeout_s:.0f} s", fix="pass a longer time limit")
    return result
