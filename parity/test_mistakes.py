"""The classic R mistakes (parity/mistakes/mistakes.toml) must each be caught at the stage they belong to."""

from __future__ import annotations

import pytest

from parity.compare import stages as compare
from parity.testing import describe_divergence
from parity.mistakes import apply_mistake, load_catalog

MISTAKES, _ = load_catalog()


def _run_r(base: dict, name: str, r_dir=None) -> compare.WorkerFolder:
    from parity.run.workers import spawn_worker

    out = base["dir"] / f"r-{name}"
    spawn_worker("r-rscript", base["dir"] / "config.json", base["dir"] / "manifest.json", out,
                 timeout_s=float(base["config"]["worker_timeout_s"]), r_dir=r_dir)
    return compare.WorkerFolder(out, "r-rscript")


def test_unpatched_twin_matches(mistake_base):
    """Control: under the mistakes' config the unpatched R twin is bit-identical up to the predictions."""
    ref = compare.WorkerFolder(mistake_base["dir"] / "python", "python")
    pair = compare.compare_pair(ref, _run_r(mistake_base, "control"), "strict", manifest=mistake_base["manifest"])
    stages = {s["stage"]: s["verdict"] for s in pair["stages"]}
    # No cross-loading here (that is the runner's); every other stage must be identical.
    assert all(v == "identical" for k, v in stages.items() if k != "saved_models"), describe_divergence(pair)


@pytest.mark.parametrize("name", list(MISTAKES))
def test_mistake_caught_at_its_stage(mistake_base, tmp_path, name):
    """Run the patched twin; the first divergence is the mistake's stage."""
    mistake = MISTAKES[name]
    r_dir = apply_mistake(mistake, tmp_path / "R")
    ref = compare.WorkerFolder(mistake_base["dir"] / "python", "python")
    pair = compare.compare_pair(ref, _run_r(mistake_base, name, r_dir), "strict", manifest=mistake_base["manifest"])
    fd = pair["first_divergence"]
    assert fd is not None, f"mistake {name} ({mistake.description}) went unnoticed\n" + describe_divergence(pair)
    assert fd["stage"] == mistake.stage, (f"mistake {name} ({mistake.description}) should show at stage "
                                          f"{mistake.stage}\n" + describe_divergence(pair))
