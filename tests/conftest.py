"""Shared fixtures: the project's Python, the environment of R processes, and real broken set-ups made on the spot.

Nothing here is a mock: the fixtures make real interpreters and real R libraries (cached under .cache/).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from parity.env import PROJECT_ROOT, r_environment

CACHE_DIR = PROJECT_ROOT / ".cache"


@pytest.fixture(scope="session")
def project_python() -> str:
    """The interpreter running the tests: the project's venv Python (with TensorFlow, rpy2)."""
    return sys.executable


@pytest.fixture()
def r_env() -> dict:
    """A fresh copy of the environment every R process of the project gets (parity.env.r_environment)."""
    return r_environment()


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> str:
    """A real virtual environment with nothing installed (no TensorFlow, NumPy or rpy2), same base Python."""
    venv = tmp_path_factory.mktemp("bare-venv")
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True, timeout=120)
    return str(venv / "bin" / "python")


@pytest.fixture(scope="session")
def old_reticulate_lib() -> Path:
    """An R library holding Debian 12's reticulate 1.28 (apt-get download + dpkg -x; cached in .cache/).

    Nothing is installed into the system: the .deb is only unpacked into a private folder.
    """
    lib = CACHE_DIR / "old-reticulate" / "root" / "usr" / "lib" / "R" / "site-library"
    if (lib / "reticulate" / "DESCRIPTION").exists():
        return lib
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        pytest.skip("needs apt-get and dpkg to fetch Debian's r-cran-reticulate 1.28")
    work = CACHE_DIR / "old-reticulate"
    work.mkdir(parents=True, exist_ok=True)
    got = subprocess.run(["apt-get", "download", "r-cran-reticulate"], cwd=work, capture_output=True, text=True,
                         timeout=300)
    debs = sorted(work.glob("r-cran-reticulate_*.deb"))
    if not debs:
        pytest.skip(f"apt-get download r-cran-reticulate failed (network?): {got.stderr.strip()[-300:]}")
    subprocess.run(["dpkg", "-x", str(debs[-1]), str(work / "root")], check=True, timeout=120)
    return lib
