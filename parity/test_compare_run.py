"""A whole run folder compared (parity/compare/run.py) on folders written here: which workers are the reference
and candidates, repeats and seeds, the mode and tolerances the run recorded, comparison.json, and the thread
settings named as the likely cause of a divergence.

Fast: no TensorFlow, no R, no worker.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from parity.compare import run as compare_run_mod
from parity.compare import stages
from parity.errors import CompareError
from parity.test_compare_stages import PINNED, _bias_up, _metric, changed, one_ulp_up, write_worker

THREADS_HINT = ("(the workers ran with different thread settings: threads_intra 1 vs 2: the likely cause; run both "
                "with the same threads_intra/threads_inter)")


@pytest.fixture
def pinned(monkeypatch):
    """Run-level comparisons over the stages pinned in parity/test_compare_stages.py."""
    monkeypatch.setattr(stages, "STAGES", list(PINNED))


def run_folder(path, workers: dict, harness: dict | None = None, config: dict | None = None):
    """A run folder at ``path``: config.json, manifest.json, harness.json (when given) and ``workers``
    (folder name -> (impl, files))."""
    (path / "workers").mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config or {"rules": {"class_threshold": 0.5}}))
    (path / "manifest.json").write_text(json.dumps({"val": [7, 9]}))
    if harness is not None:
        (path / "harness.json").write_text(json.dumps(harness))
    for key, (impl, files) in workers.items():
        write_worker(path / "workers" / key, impl, files)
    return path


def record(key, impl, seed=None, repeat=1):
    return {"key": key, "impl": impl, "seed": seed, "repeat": repeat}


def test_the_run_as_the_harness_recorded_it(tmp_path, pinned):
    """harness.json names the workers, the mode and the tolerances: a 1-ULP final weight is within the default
    tolerance, not within the run's (0, 0); comparison.json is the document returned."""
    workers = {"python": ("python", None), "r-rscript": ("r-rscript", _bias_up())}
    harness = {"workers": [record("python", "python"), record("r-rscript", "r-rscript")], "mode": "tolerance",
               "tolerances": {"final_weights": [0.0, 0.0]}}
    run = run_folder(tmp_path / "run", workers, harness)
    doc = compare_run_mod.compare_run(run)
    assert doc["mode"] == "tolerance" and doc["tolerances"]["final_weights"] == [0.0, 0.0]
    assert doc["workers"] == ["python", "r-rscript"] and doc["reference"] == "python"
    assert doc["worker_keys"] == {"python": "python", "r-rscript": "r-rscript"}
    assert not doc["ok"] and doc["first_divergence"]["stage"] == "final_weights"
    assert json.loads((run / "comparison.json").read_text()) == doc
    assert compare_run_mod.compare_run(run, mode="strict")["mode"] == "strict"
    harness["tolerances"] = {}
    (run / "harness.json").write_text(json.dumps(harness))
    assert compare_run_mod.compare_run(run)["ok"]


@pytest.mark.parametrize("harness, config, mode", [
    ({"mode": "tolerance"}, {"mode": "strict"}, "tolerance"),
    ({}, {"mode": "tolerance"}, "tolerance"),
    ({}, {}, "strict"),
    (None, {}, "strict"),
])
def test_the_mode_comes_from_the_harness_then_the_config(tmp_path, pinned, harness, config, mode):
    """The mode: the harness's, else the config's, else strict."""
    run = run_folder(tmp_path / "run", {"python": ("python", None), "r-rpy2": ("r-rpy2", None)}, harness, config)
    doc = compare_run_mod.compare_run(run)
    assert doc["mode"] == mode and doc["ok"]
    assert doc["verdict"] == f"PARITY: bit-identical across python, r-rpy2 ({mode}, 2 workers)"


def test_workers_read_from_the_folder_names_with_their_repeats(tmp_path, pinned):
    """Without harness.json: python and r-rscript compared, python-r2 compared with python as a repeat."""
    workers = {"python": ("python", None), "python-r2": ("python", _bias_up()), "r-rscript": ("r-rscript", None)}
    doc = compare_run_mod.compare_run(run_folder(tmp_path / "run", workers))
    assert doc["workers"] == ["python", "r-rscript"]
    assert [(p["reference"], p["candidate"], p["kind"]) for p in doc["repeats"]] == [("python", "python-r2",
                                                                                      "repeat")]
    assert doc["verdict"].startswith("NOT REPRODUCIBLE: repeats of python differ at stage final_weights")


def test_seeds_make_the_statistical_groups(tmp_path, pinned):
    """Statistical mode: the first seed's workers are the pairs; every seed's first repeat joins its language's
    group for the test over seeds."""
    workers = {}
    for impl, ious in {"python": (0.5, 0.52, 0.49), "r-rscript": (0.51, 0.5, 0.52)}.items():
        for seed, iou in zip((1, 2, 3), ious):
            workers[f"{impl}-s{seed}"] = (impl, _metric(2, "val", "iou", iou))
    workers["python-s1-r2"] = ("python", _metric(2, "val", "iou", 0.5))
    run = run_folder(tmp_path / "run", workers, config={"mode": "statistical"})
    doc = compare_run_mod.compare_run(run)
    assert doc["workers"] == ["python", "r-rscript"]
    assert doc["worker_keys"] == {"python": "python-s1", "r-rscript": "r-rscript-s1"}
    assert [(t["metric"], t["n_reference"], t["n_candidate"]) for t in doc["statistical"]["tests"]] == [
        ("val_iou", 3, 3), ("val_loss", 3, 3)]
    assert doc["ok"] and doc["verdict"].startswith("PARITY (statistical): ")
    assert [p["candidate"] for p in doc["repeats"]] == ["python-s1-r2"]
    assert compare_run_mod.compare_run(run, mode="strict")["statistical"] is None


def test_a_run_without_workers(tmp_path):
    """A run folder without worker folders is an error naming the folder and the fix."""
    run = run_folder(tmp_path / "run", {})
    with pytest.raises(CompareError) as err:
        compare_run_mod.compare_run(run)
    assert str(err.value) == (f"{run / 'workers'}: no worker folders; fix: the run stopped before its workers: run "
                              "it again")


def test_different_threads_are_named_as_the_likely_cause(tmp_path, pinned):
    """A divergence between workers run with different thread counts names them as the likely cause."""
    env2 = {"environment.json": {"threads_intra": 2, "threads_inter": 1}}
    workers = {"python": ("python", None), "r-rscript": ("r-rscript", {**_bias_up(), **env2})}
    doc = compare_run_mod.compare_run(run_folder(tmp_path / "run", workers))
    assert doc["first_divergence"]["summary"].endswith(THREADS_HINT)
    assert doc["verdict"].endswith(THREADS_HINT) and doc["pairs"][0]["first_divergence"]["summary"].endswith(
        THREADS_HINT)
    same = compare_run_mod.compare_run(run_folder(tmp_path / "same", {"python": ("python", None),
                                                                     "r-rscript": ("r-rscript", env2)}))
    assert same["ok"]  # different threads, no divergence: nothing to explain


def test_threads_are_named_only_where_both_workers_recorded_them(tmp_path):
    """Threads are named only when both workers recorded them, every differing setting listed."""
    def doc_with(env_a, env_b):
        a = write_worker(tmp_path / f"a{len(env_a)}{len(env_b)}", "python", {"environment.json": env_a})
        b = write_worker(tmp_path / f"b{len(env_a)}{len(env_b)}", "r-rpy2", {"environment.json": env_b})
        pair = {"reference": "python", "candidate": "r-rpy2", "stages": [],
                "first_divergence": {"stage": "metrics", "location": None, "verdict": "differs", "summary": "m"}}
        doc = {"workers": ["python", "r-rpy2"], "mode": "strict", "pairs": [pair]}
        compare_run_mod.name_thread_differences(doc, [a, b])
        return doc
    assert doc_with({"threads_intra": 1}, {})["pairs"][0]["first_divergence"]["summary"] == "m"
    both = doc_with({"threads_intra": 1, "threads_inter": 4}, {"threads_intra": 2, "threads_inter": 8})
    assert both["verdict"] == ("DIVERGED: r-rpy2 vs python at stage metrics: m (the workers ran with different "
                               "thread settings: threads_intra 1 vs 2, threads_inter 4 vs 8: the likely cause; run "
                               "both with the same threads_intra/threads_inter)")
    assert not both["ok"]



def test_the_first_seed_is_the_pair_whatever_the_order_of_the_records(tmp_path, pinned):
    """harness.json lists the workers as they finished (seed 2 second): the pairs are still those of the first
    seed, and records without a repeat count are first repeats."""
    workers = {f"{impl}-s{seed}": (impl, None) for seed in (1, 2) for impl in ("python", "r-rscript")}
    harness = {"mode": "statistical", "workers": [
        {"key": "python-s1", "impl": "python", "seed": 1}, {"key": "python-s2", "impl": "python", "seed": 2},
        {"key": "r-rscript-s1", "impl": "r-rscript", "seed": 1},
        {"key": "r-rscript-s2", "impl": "r-rscript", "seed": 2}]}
    doc = compare_run_mod.compare_run(run_folder(tmp_path / "run", workers, harness))
    assert doc["worker_keys"] == {"python": "python-s1", "r-rscript": "r-rscript-s1"}
    assert [len(g) for g in (doc["statistical"]["tests"][0]["reference_values"],
                             doc["statistical"]["tests"][0]["candidate_values"])] == [2, 2]


def test_the_run_gives_the_stages_its_manifest_and_rules(tmp_path, pinned):
    """The predictions stage names the val tile by the run's manifest and counts classes at the run's
    class_threshold (0.25 here, where a 1-ULP change crosses it)."""
    def at(value):
        def edit(a):
            a[1, 0, 0] = value
        return changed("predictions_val.npy", edit)
    workers = {"python": ("python", at(0.25)), "r-rscript": ("r-rscript", at(one_ulp_up(np.float32(0.25))))}
    run = run_folder(tmp_path / "run", workers, {"mode": "tolerance"},
                     config={"rules": {"class_threshold": 0.25}})
    doc = compare_run_mod.compare_run(run)
    assert doc["first_divergence"]["stage"] == "predictions"
    assert doc["first_divergence"]["location"] == "val tile 9"  # manifest val: [7, 9]


def test_a_pair_of_a_worker_not_given_is_left_alone(tmp_path):
    """A pair naming a worker whose environment was not given keeps its summary."""
    a = write_worker(tmp_path / "a", "python", {"environment.json": {"threads_intra": 1}})
    pair = {"reference": "python", "candidate": "r-x", "stages": [],
            "first_divergence": {"stage": "metrics", "location": None, "verdict": "differs", "summary": "m"}}
    doc = {"workers": ["python", "r-x"], "mode": "strict", "pairs": [pair]}
    compare_run_mod.name_thread_differences(doc, [a])
    assert doc["pairs"][0]["first_divergence"]["summary"] == "m"
    pair["reference"], pair["candidate"] = "r-x", "python"
    compare_run_mod.name_thread_differences(doc, [a])
    assert doc["verdict"] == "DIVERGED: python vs r-x at stage metrics: m"
