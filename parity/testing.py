"""The test suite's shared fixtures and tiers, loaded as a pytest plugin (``-p parity.testing`` in pyproject.toml),
so that ``tests/`` and ``parity/`` share one smoke run per session instead of training it twice.

Real runs of the real workers, made once per session:

- ``smoke_run``: ``run`` of the smoke preset with python, r-rpy2 and r-rscript (the default parity run);
- ``lr_run``: the smoke preset with a changed learning rate, python only (for ``compare``);
- ``mistake_base``: a config, data, manifest and Python reference worker for the R mistake fixtures;
- ``ci_run``: the ci preset on the real tiles, all three workers (tests marked ``ci`` only).
Run folders go to a session temporary folder, never to reports/.

Tiers: a test that starts TensorFlow, R or a worker is marked ``heavy`` (by hand, or because it uses one of
``HEAVY_FIXTURES``). ``make test-fast`` runs ``-m "not heavy and not ci"`` with ``TAILINGS_PARITY_FAST_TIER=1``:
then starting R or a worker raises, and the session fails if TensorFlow or rpy2 was imported, so a test put in
the fast tier by mistake is named instead of silently slowing it down.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

HEAVY_FIXTURES = {"smoke_run", "smoke_comparison", "lr_run", "mistake_base", "ci_run", "smoke_workers",
                  "healthy_report", "tiny", "batch"}
FAST_TIER_ENV = "TAILINGS_PARITY_FAST_TIER"


def pytest_configure(config):
    config.addinivalue_line("markers", "heavy: starts TensorFlow, R or a worker process (not in the fast tier)")
    if os.environ.get(FAST_TIER_ENV):
        refuse_children_in_fast_tier()


def refuse_children_in_fast_tier() -> None:
    """In the fast tier no R, worker or twin process may start: the harness's one supervisor
    (``parity.process.start``) raises instead, naming the test to mark heavy."""
    from parity import process

    start = process.start

    def guarded(cmd, *args, **kw):
        words = " ".join(map(str, cmd))
        if "Rscript" in words or "python_impl" in words or "parity.run" in words:
            raise RuntimeError(f"fast tier: {words[:120]} ... started by a test not marked heavy; "
                               "mark it @pytest.mark.heavy")
        return start(cmd, *args, **kw)

    process.start = guarded


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.heavy)


def pytest_sessionfinish(session, exitstatus):
    """In the fast tier, TensorFlow and rpy2 must never have been imported."""
    if os.environ.get(FAST_TIER_ENV):
        loaded = [m for m in ("tensorflow", "keras", "rpy2.robjects") if m in sys.modules]
        if loaded:
            print(f"\nfast tier: {', '.join(loaded)} imported by a test not marked heavy", file=sys.stderr)
            session.exitstatus = 1

from parity.run.workers import IMPLS

REFERENCE = "python"
CANDIDATES = [i for i in IMPLS if i != REFERENCE]


def _run(config: dict, impls, reports_dir: Path) -> Path:
    from parity.run.runner import Printer, run_parity

    return run_parity(config, list(impls), reports_dir=reports_dir, printer=Printer(quiet=True))


@pytest.fixture(scope="session")
def reports_dir(tmp_path_factory) -> Path:
    """Where this session's run folders go."""
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="session")
def smoke_run(reports_dir) -> Path:
    """The default parity run (smoke preset, synthetic tiles, all three workers), once per session."""
    from python_impl.config import load_config

    return _run(load_config("smoke"), IMPLS, reports_dir)


@pytest.fixture(scope="session")
def smoke_comparison(smoke_run) -> dict:
    """comparison.json of the smoke run."""
    return json.loads((smoke_run / "comparison.json").read_text())


@pytest.fixture(scope="session")
def lr_run(reports_dir) -> Path:
    """The smoke preset with learning_rate 1e-5 and 2 epochs (learns far less), Python worker only."""
    from python_impl.config import load_config

    return _run(load_config("smoke", ["learning_rate=1e-5", "epochs=2"]), ["python"], reports_dir)


@pytest.fixture(scope="session")
def smoke_workers(smoke_run) -> tuple[Path, dict]:
    """The smoke run's worker folders and their status.json, by worker (tests/test_twins.py reads them)."""
    folder = smoke_run / "workers"
    return folder, {impl: json.loads((folder / impl / "status.json").read_text()) for impl in IMPLS}


@pytest.fixture(scope="session")
def mistake_base(tmp_path_factory) -> dict:
    """Config, manifest and a finished Python reference worker for the mistake fixtures' config."""
    from parity.mistakes import make_base

    return make_base(tmp_path_factory.mktemp("mistakes"))


@pytest.fixture(scope="session")
def ci_run(reports_dir) -> Path:
    """The ci preset on the real tiles, all three workers; skipped when the tiles are absent."""
    from parity.env import default_data_dir
    from python_impl.config import load_config

    data = default_data_dir()
    if data is None:
        pytest.skip("real tiles not found: set TAILINGS_DATA or put them at ../shared/data/tailings")
    config = load_config("ci")
    config["data"] = str(data)
    return _run(config, IMPLS, reports_dir)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie counts as dead: /proc says so)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def describe_divergence(doc_or_pair: dict) -> str:
    """A failure message that names the first divergence and lists every stage's verdict."""
    fd = doc_or_pair.get("first_divergence")
    head = "no divergence" if not fd else (
        f"first divergence: stage {fd['stage']}" + (f", {fd['location']}" if fd.get("location") else "")
        + f": {fd['summary']}")
    pairs = doc_or_pair.get("pairs") or [doc_or_pair]
    lines = [head]
    for p in pairs:
        for s in p.get("stages", []):
            lines.append(f"  {p.get('candidate')}: {s['stage']:<16} {s['verdict']:<16} {s['summary']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- helpers

# A tiny run: 8 tiles of 32 x 32, one epoch (where failure handling is measured, not training).
TINY = ["synthetic_count=8", "synthetic_size=32", "tile_size=32", "epochs=1", "batch_size=2"]


def cli_run(argv, capsys) -> tuple[int, str, str]:
    """``tailings-parity ARGV`` in this process: (exit status, stdout, stderr); never a traceback."""
    from parity.cli import main

    rc = main(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    return rc, cap.out, cap.err


def error_lines(err: str) -> list[str]:
    """The non-empty lines of ``err``."""
    return [line for line in err.splitlines() if line.strip()]


def make_tiles(folder: Path, count: int = 8, broken: str | None = None) -> Path:
    """Synthetic tiles (both encodings) in ``folder``; ``broken``: a kind of parity/data/fixtures.py for tile 3."""
    from parity.data.fixtures import make_fixture
    from parity.data.synthetic import make_synthetic

    if broken:
        return make_fixture(broken, folder, count=count, size=32)
    make_synthetic(folder, count=count, size=32, seed=5)
    return folder


def run_python(code: str, timeout: float = 300):
    """``python -c CODE`` in the project root: the CompletedProcess."""
    import subprocess

    from parity.env import PROJECT_ROOT

    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=timeout)


def worker_inputs(folder: Path, overrides: list[str]) -> tuple[Path, Path, Path]:
    """config.json and manifest.json of a tiny run on synthetic tiles in ``folder``; returns them and the tiles."""
    from parity.data.manifest import make_manifest, write_manifest
    from python_impl.config import load_config, write_config

    data = make_tiles(folder / "data")
    config = load_config("smoke", TINY + overrides)
    config["data"] = str(data)
    write_config(config, folder / "config.json")
    write_manifest(make_manifest(config, data, list(range(8))), folder / "manifest.json")
    return folder / "config.json", folder / "manifest.json", data
