"""The porting-mistake catalogue (parity/mistakes/mistakes.toml): each mistake is caught at the stage it belongs to,
the forward ones naming the layer; where Keras itself refuses, the R worker fails at build with Keras's error."""

from __future__ import annotations

import json

import pytest

from parity.compare import stages as compare
from parity.mistakes import load_catalog, run_catalog
from parity.testing import describe_divergence

MISTAKES, _ = load_catalog()
# The default suite runs one mistake per stage it can reach and one that Keras refuses; the others run in the slow
# tier (make test-slow), so that `make test` stays within its time.
DEFAULT_TIER = ("not_permuted", "r_shuffle", "rows_reversed", "concat_swapped", "scale_255", "kernel_size_double")


@pytest.fixture(scope="module")
def mistake_workers(mistake_base, tmp_path_factory, request) -> dict:
    """The unpatched R twin ("control") and every patched R side that a selected test needs, run two at a time
    (one thread each, on two cores): name -> (base, spawn result, worker folder)."""
    wanted = [item.callspec.params["name"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_mistake_caught_at_its_stage"]
    return run_catalog(wanted, tmp_path_factory.mktemp("catalogue"), twin_base=mistake_base)


def test_unpatched_twin_matches(mistake_base, mistake_workers):
    """Control: under the mistakes' config the unpatched R twin is bit-identical up to the predictions."""
    base, res, cand = mistake_workers["control"]
    assert res.ok, res.error
    ref = compare.WorkerFolder(base["dir"] / "python", "python")
    pair = compare.compare_pair(ref, cand, "strict", manifest=base["manifest"])
    stages = {s["stage"]: s["verdict"] for s in pair["stages"]}
    # No cross-loading here (that is the runner's); every other stage must be identical.
    assert all(v == "identical" for k, v in stages.items() if k != "saved_models"), describe_divergence(pair)


@pytest.mark.parametrize("name", [n if n in DEFAULT_TIER else pytest.param(n, marks=pytest.mark.slow)
                                  for n in MISTAKES])
def test_mistake_caught_at_its_stage(mistake_workers, name):
    """Run the patched R side; the first divergence is the mistake's stage (and layer), or the worker fails at
    build with Keras's own error where Keras refuses."""
    mistake = MISTAKES[name]
    base, res, cand = mistake_workers[name]
    if mistake.fails:
        status = json.loads((cand.path / "status.json").read_text())
        assert not res.ok and status["phase"] == "build", f"mistake {name}: the R worker should fail at build: {status}"
        assert mistake.fails in (res.error or ""), f"mistake {name}: not Keras's own error: {res.error}"
        return
    assert res.ok, f"mistake {name}: the R worker failed: {res.error}"
    ref = compare.WorkerFolder(base["dir"] / "python", "python")
    pair = compare.compare_pair(ref, cand, "strict", manifest=base["manifest"])
    fd = pair["first_divergence"]
    assert fd is not None, f"mistake {name} ({mistake.description}) went unnoticed\n" + describe_divergence(pair)
    assert fd["stage"] == mistake.stage, (f"mistake {name} ({mistake.description}) should show at stage "
                                          f"{mistake.stage}\n" + describe_divergence(pair))
    if mistake.layer:
        assert mistake.layer in (fd.get("location") or ""), (f"mistake {name}: the report should name layer "
                                                              f"{mistake.layer}: {fd}")
