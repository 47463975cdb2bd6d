"""The porting-mistake catalogue (parity/mistakes/mistakes.toml): each mistake is caught at the stage it belongs to,
the forward ones naming the layer; where Keras itself refuses, the R worker fails at build with Keras's error."""

from __future__ import annotations

import json

import pytest

from parity.compare import stages as compare
from parity.mistakes import apply_mistake, load_catalog
from parity.testing import describe_divergence

MISTAKES, _ = load_catalog()
# The default suite runs one mistake per stage it can reach and one that Keras refuses; the others run in the slow
# tier (make test-slow), so that `make test` stays within its time.
DEFAULT_TIER = ("not_permuted", "r_shuffle", "rows_reversed", "concat_swapped", "scale_255", "kernel_size_double")


def _pair_base(mistake_base, tmp_path_factory, pair: str) -> dict:
    """The mistakes' config with ``model = pair``, the same manifest, and its Python reference worker."""
    from parity.run.workers import spawn_worker
    from python_impl.config import write_config

    base = tmp_path_factory.mktemp(f"mistakes-{pair}")
    config = dict(mistake_base["config"], model=pair)
    config.update(_pair_defaults(pair))
    write_config(config, base / "config.json")
    (base / "manifest.json").write_text((mistake_base["dir"] / "manifest.json").read_text())
    res = spawn_worker("python", base / "config.json", base / "manifest.json", base / "python",
                       timeout_s=float(config["worker_timeout_s"]))
    assert res.ok, f"the Python reference of pair {pair} failed: {res.error}\n{res.stderr_tail}"
    return {"dir": base, "config": config, "manifest": mistake_base["manifest"]}


def _pair_defaults(pair: str) -> dict:
    from python_impl.config import model_toml

    return model_toml(pair)["defaults"]


def _run_r(base: dict, name: str, r_dir=None, model_dir=None):
    """The R worker (Rscript) with the patched twin ``r_dir`` or the patched pair folder ``model_dir``."""
    from parity.run.workers import spawn_worker
    from python_impl.config import write_config

    out = base["dir"] / f"r-{name}"
    config_path = base["dir"] / "config.json"
    if model_dir is not None:  # the patched pair: a config of its own that names the copy
        config_path = base["dir"] / f"config-{name}.json"
        write_config(dict(base["config"], model=str(model_dir)), config_path)
    res = spawn_worker("r-rscript", config_path, base["dir"] / "manifest.json", out,
                       timeout_s=float(base["config"]["worker_timeout_s"]), r_dir=r_dir)
    return res, compare.WorkerFolder(out, "r-rscript")


@pytest.fixture(scope="module")
def mistake_workers(mistake_base, tmp_path_factory, request) -> dict:
    """The unpatched R twin ("control") and every patched R side that a selected test needs, run two at a time
    (one thread each, on two cores); name -> (base, spawn result, worker folder)."""
    from concurrent.futures import ThreadPoolExecutor

    wanted = {item.callspec.params["name"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_mistake_caught_at_its_stage"}
    pairs = sorted({MISTAKES[n].pair for n in wanted if MISTAKES[n].pair})
    with ThreadPoolExecutor(max_workers=2) as pool:
        bases = {None: mistake_base, **{p: f for p, f in
                                        zip(pairs, [pool.submit(_pair_base, mistake_base, tmp_path_factory, p)
                                                    for p in pairs])}}
        bases = {k: (v.result() if hasattr(v, "result") else v) for k, v in bases.items()}
        futures = {"control": pool.submit(lambda: (mistake_base, *_run_r(mistake_base, "control")))}
        for name in sorted(wanted):
            m = MISTAKES[name]
            patched = apply_mistake(m, tmp_path_factory.mktemp(f"mistake-{name}") / ("R" if m.pair is None else m.pair))
            base = bases[m.pair]
            kwargs = {"model_dir": patched} if m.pair else {"r_dir": patched}
            futures[name] = pool.submit(lambda b=base, n=name, k=kwargs: (b, *_run_r(b, n, **k)))
    return {name: f.result() for name, f in futures.items()}


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
