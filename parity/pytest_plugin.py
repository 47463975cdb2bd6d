"""pytest plugin of tailings-parity: the ``parity_run`` fixture, for a team's own test suite.

Installed with the project (entry point ``pytest11``), so that any test may write::

    def test_my_port(parity_run):
        result = parity_run(model="path/to/pair", preset="smoke", impls="python,r-rscript")
        assert result.verdict.startswith("PARITY"), result.first_divergence

A run is a real ``tailings-parity run`` (workers, comparison, report) in a temporary reports folder; a config
mistake or a broken pair raises the harness's own error (``ConfigError``) instead of returning a verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class ParityResult:
    """What a parity run found: its verdict line, whether it shows parity, the first divergence in one line
    (None at parity), the run folder (report.html, comparison.json) and the comparison itself."""

    verdict: str
    ok: bool
    first_divergence: str | None
    run_dir: Path
    comparison: dict = field(repr=False)


def divergence_line(doc: dict) -> str | None:
    """The first divergence of a comparison.json in one line: stage, workers, where and what."""
    fd = doc.get("first_divergence")
    if not fd:
        return None if doc.get("ok") else doc.get("verdict")
    where = f" at {fd['location']}" if fd.get("location") else ""
    return f"{fd.get('stage')} ({fd.get('reference')} vs {fd.get('candidate')}){where}: {fd.get('summary')}"


def run_pair(model="unet", preset: str = "smoke", impls: str = "python,r-rpy2,r-rscript", data=None,
             overrides=(), mode: str | None = None, reports_dir=None) -> ParityResult:
    """Train ``model`` (a pair folder or a shipped pair's name) in each of ``impls`` as ``tailings-parity run``
    does, compare, report; returns the ParityResult."""
    from parity.run.progress import Printer
    from parity.run.runner import check_run_inputs, model_override, parse_impls, run_parity
    from python_impl.config import load_config

    config = load_config(preset, list(overrides) + model_override(str(model)))
    if data is not None:
        config["data"] = str(Path(data).resolve())
    if mode is not None:
        config["mode"] = mode
    dataset = check_run_inputs(config)
    run_dir = run_parity(config, parse_impls(impls), reports_dir=reports_dir, dataset=dataset,
                         printer=Printer(quiet=True))
    doc = json.loads((run_dir / "comparison.json").read_text())
    return ParityResult(doc["verdict"], bool(doc["ok"]), divergence_line(doc), run_dir, doc)


@pytest.fixture
def parity_run(tmp_path_factory):
    """``parity_run(model=..., preset="smoke", impls="python,r-rscript", data=None, overrides=(), mode=None)``:
    a parity run of a model pair in a temporary reports folder; returns a ``ParityResult``."""
    def run(model="unet", preset: str = "smoke", impls: str = "python,r-rpy2,r-rscript", data=None, overrides=(),
            mode: str | None = None) -> ParityResult:
        return run_pair(model, preset, impls, data, overrides, mode, tmp_path_factory.mktemp("parity-run"))

    return run
