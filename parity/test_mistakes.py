"""The classic R mistakes (parity/mistakes/mistakes.toml) must each be caught at the stage they belong to."""

from __future__ import annotations

import pytest

from parity.compare import stages as compare
from parity.testing import describe_divergence
from parity.mistakes import apply_mistake, load_catalog

MISTAKES, _ = load_catalog()
# The default suite runs one classic mistake per stage it can reach (and the R predictions' inversion of the
# original project); the others run in the slow tier (make test-slow), so that `make test` stays within 5 minutes.
DEFAULT_TIER = ("not_permuted", "mask_inverted", "r_shuffle", "concat_swapped")


def _run_r(base: dict, name: str, r_dir=None) -> compare.WorkerFolder:
    from parity.run.workers import spawn_worker

    out = base["dir"] / f"r-{name}"
    spawn_worker("r-rscript", base["dir"] / "config.json", base["dir"] / "manifest.json", out,
                 timeout_s=float(base["config"]["worker_timeout_s"]), r_dir=r_dir)
    return compare.WorkerFolder(out, "r-rscript")


@pytest.fixture(scope="module")
def mistake_workers(mistake_base, tmp_path_factory, request) -> dict:
    """The unpatched R twin ("control") and every patched one that a selected test needs, run two at a time
    (one thread each, on two cores); name -> worker folder."""
    from concurrent.futures import ThreadPoolExecutor

    wanted = {item.callspec.params["name"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_mistake_caught_at_its_stage"}
    patched = {name: apply_mistake(m, tmp_path_factory.mktemp(f"mistake-{name}") / "R")
               for name, m in MISTAKES.items() if name in wanted}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_run_r, mistake_base, name, r_dir)
                   for name, r_dir in [("control", None), *patched.items()]}
    return {name: f.result() for name, f in futures.items()}


def test_unpatched_twin_matches(mistake_base, mistake_workers):
    """Control: under the mistakes' config the unpatched R twin is bit-identical up to the predictions."""
    ref = compare.WorkerFolder(mistake_base["dir"] / "python", "python")
    pair = compare.compare_pair(ref, mistake_workers["control"], "strict", manifest=mistake_base["manifest"])
    stages = {s["stage"]: s["verdict"] for s in pair["stages"]}
    # No cross-loading here (that is the runner's); every other stage must be identical.
    assert all(v == "identical" for k, v in stages.items() if k != "saved_models"), describe_divergence(pair)


@pytest.mark.parametrize("name", [n if n in DEFAULT_TIER else pytest.param(n, marks=pytest.mark.slow)
                                  for n in MISTAKES])
def test_mistake_caught_at_its_stage(mistake_base, mistake_workers, name):
    """Run the patched twin; the first divergence is the mistake's stage."""
    mistake = MISTAKES[name]
    ref = compare.WorkerFolder(mistake_base["dir"] / "python", "python")
    pair = compare.compare_pair(ref, mistake_workers[name], "strict", manifest=mistake_base["manifest"])
    fd = pair["first_divergence"]
    assert fd is not None, f"mistake {name} ({mistake.description}) went unnoticed\n" + describe_divergence(pair)
    assert fd["stage"] == mistake.stage, (f"mistake {name} ({mistake.description}) should show at stage "
                                          f"{mistake.stage}\n" + describe_divergence(pair))
