"""``tailings-parity regress A B`` (parity/compare/regress.py) on results.json records written here: which final
metric got worse in which direction (the directions written here, not imported), undefined metrics, slower phases,
lost parity, and the warnings about machines, versions and configs.

Fast: no TensorFlow, no R, no worker.
"""

from __future__ import annotations

import argparse
import json

import pytest

from parity.compare import regress
from parity.errors import ReportError

# Whether a higher value is better, for each final metric that regress compares.
HIGHER_IS_BETTER = {"loss": False, "accuracy": True, "iou": True, "f1": True, "precision": True, "recall": True}
BLOCK = {"loss": 0.5, "accuracy": 0.8, "iou": 0.5, "f1": 0.6, "precision": 0.7, "recall": 0.6, "tp": 3}


def results(run_id="a", ok=True, final=None, epochs=None, timing=None, environment=None, config=None) -> dict:
    """A results.json record of one Python worker."""
    final = final or {"train": dict(BLOCK), "val": dict(BLOCK)}
    return {"schema": "tailings-parity/results", "version": 1, "run_id": run_id, "ok": ok,
            "verdict": "PARITY: ..." if ok else "DIVERGED: ...",
            "metrics": {"python": epochs or [{"train": {"loss": 0.9}, "val": dict(BLOCK, iou=0.1)}]},
            "final_metrics": {"python": final},
            "timing": {"per_impl": {"python": timing or {"total": {"median": 10.0, "n": 3}}}},
            "environment": {"python": environment or {"tensorflow_version": "2.18.0"}},
            "config": config or {"epochs": 2}}


def with_metric(split, key, value, **kw) -> dict:
    final = {"train": dict(BLOCK), "val": dict(BLOCK)}
    final[split][key] = value
    return results("b", final=final, **kw)


def test_final_metrics_are_the_final_block_else_the_last_epoch():
    """The final block's metrics, else the last epoch's; a worker without epochs is left out."""
    got = regress.final_metrics(results())
    assert got == {"python": {f"{s}_{k}": BLOCK[k] for s in ("train", "val") for k in HIGHER_IS_BETTER}}
    r = results()
    r["final_metrics"] = {}
    r["metrics"]["r-rpy2"] = []
    last = regress.final_metrics(r)
    assert set(last) == {"python"}
    assert last["python"]["train_loss"] == 0.9 and last["python"]["val_iou"] == 0.1
    assert last["python"]["train_iou"] is None


@pytest.mark.parametrize("key, higher_is_better", list(HIGHER_IS_BETTER.items()))
@pytest.mark.parametrize("split", ["train", "val"])
def test_each_metric_regresses_in_its_own_direction(split, key, higher_is_better):
    """Each metric in each split: worse in its own direction is a regression, better an improvement."""
    worse = BLOCK[key] - 0.1 if higher_is_better else BLOCK[key] + 0.1
    better = BLOCK[key] + 0.1 if higher_is_better else BLOCK[key] - 0.1
    doc = regress.compare_results(results(), with_metric(split, key, worse))
    assert [r["what"] for r in doc["regressions"]] == [f"python {split}_{key}"] and not doc["ok"]
    assert doc["improvements"] == []
    row = next(r for r in doc["rows"] if r["what"] == f"{split}_{key}")
    assert row["flag"] == "REGRESSION" and row["delta"] == pytest.approx(worse - BLOCK[key])
    doc = regress.compare_results(results(), with_metric(split, key, better))
    assert doc["regressions"] == [] and doc["ok"]
    assert [r["what"] for r in doc["improvements"]] == [f"python {split}_{key}"]


def test_metric_tolerance_is_exclusive():
    """A change of exactly --metric-tol is no change; a little more is."""
    doc = regress.compare_results(results(), with_metric("val", "iou", 0.25), metric_tol=0.25)
    assert doc["regressions"] == [] and next(r for r in doc["rows"] if r["what"] == "val_iou")["flag"] == ""
    doc = regress.compare_results(results(), with_metric("val", "iou", 0.24), metric_tol=0.25)
    assert doc["regressions"][0]["detail"] == "0.5 -> 0.24 (-0.26)"
    doc = regress.compare_results(results(), with_metric("val", "loss", 0.76), metric_tol=0.25)
    assert doc["regressions"][0] == {"what": "python val_loss", "detail": "0.5 -> 0.76 (+0.26)"}
    doc = regress.compare_results(results(), with_metric("val", "loss", 0.24), metric_tol=0.25)
    assert doc["improvements"] == [{"what": "python val_loss", "detail": "0.5 -> 0.24 (-0.26)"}]


def test_a_metric_that_became_undefined_is_a_regression():
    """precision None (nothing predicted as tailings) after a number: worse; the other way round: better."""
    doc = regress.compare_results(results(), with_metric("val", "precision", None))
    assert doc["regressions"] == [{"what": "python val_precision", "detail": "0.7 -> None (became undefined)"}]
    row = next(r for r in doc["rows"] if r["what"] == "val_precision")
    assert (row["a"], row["b"], row["delta"], row["flag"]) == (0.7, None, None, "REGRESSION")
    doc = regress.compare_results(with_metric("val", "precision", None), results())
    assert doc["improvements"] == [{"what": "python val_precision", "detail": "None -> 0.7 (no longer undefined)"}]
    assert next(r for r in doc["rows"] if r["what"] == "val_precision")["flag"] == "improved"
    both = regress.compare_results(with_metric("val", "precision", None), with_metric("val", "precision", None))
    assert [r["what"] for r in both["rows"] if r["kind"] == "metric"].count("val_precision") == 0


def test_parity_lost_and_regained():
    """Parity lost is a regression, parity regained an improvement, neither when both runs diverged."""
    doc = regress.compare_results(results(), results("b", ok=False))
    assert doc["regressions"] == [{"what": "parity", "detail": "parity lost: DIVERGED: ..."}] and not doc["ok"]
    doc = regress.compare_results(results(ok=False), results("b"))
    assert doc["improvements"] == [{"what": "parity", "detail": "parity regained: PARITY: ..."}] and doc["ok"]
    assert regress.compare_results(results(ok=False), results("b", ok=False))["regressions"] == []


@pytest.mark.parametrize("a, b, slower", [
    (10.0, 13.0, True),      # x1.3 and 3 s more
    (10.0, 12.5, False),     # x1.25: the limit itself is no regression
    (10.0, 12.6, True),
    (0.4, 0.8, False),       # x2 but only 0.4 s more (under --time-min-s 0.5)
    (1.0, 1.5, False),       # x1.5 and exactly 0.5 s more
    (1.0, 1.6, True),
    (0.0, 5.0, False),       # nothing to take a ratio of
])
def test_a_slower_phase(a, b, slower):
    """A phase is a regression only when slower by more than --time-tol and by more than --time-min-s."""
    doc = regress.compare_results(results(timing={"total": {"median": a, "n": 3}}),
                                  results("b", timing={"total": {"median": b, "n": 5}}))
    row = next(r for r in doc["rows"] if r["kind"] == "time")
    assert (row["impl"], row["what"], row["a"], row["b"]) == ("python", "total", a, b)
    assert row["flag"] == ("REGRESSION" if slower else "")
    assert row["ratio"] == (None if a == 0 else pytest.approx(b / a))
    assert [r["what"] for r in doc["regressions"]] == (["python time total"] if slower else [])
    if slower:
        assert doc["regressions"][0]["detail"] == f"{a:.2f}s -> {b:.2f}s (x{b / a:.2f}, n = 3 / 5)"


def test_time_thresholds_are_arguments():
    """The time thresholds given are the ones applied; a phase without a median in one run is skipped."""
    a, b = results(timing={"build": {"median": 1.0, "n": 1}}), results("b", timing={"build": {"median": 1.2, "n": 1}})
    assert regress.compare_results(a, b)["regressions"] == []
    assert [r["what"] for r in regress.compare_results(a, b, time_tol=0.1, time_min_s=0.1)["regressions"]] == [
        "python time build"]
    half = results("b", timing={"build": {"n": 1}})
    assert [r for r in regress.compare_results(a, half)["rows"] if r["kind"] == "time"] == []


def test_warnings_about_machines_versions_workers_and_config():
    """Different versions, workers and config values are warned about, in that order."""
    a = results(environment={"tensorflow_version": "2.18.0", "cpu": "x", "hostname": "h1"},
                config={"epochs": 2, "learning_rate": 0.001})
    b = results("b", environment={"tensorflow_version": "2.19.0", "cpu": "x", "hostname": "h2"},
                config={"epochs": 3, "seed": 1, "learning_rate": 0.001})
    b["environment"]["r-rpy2"] = {}
    doc = regress.compare_results(a, b)
    assert doc["warnings"] == [
        "python: tensorflow_version differs: 2.18.0 vs 2.19.0 (a difference may be the machine's, not the code's)",
        "workers present in one run only: r-rpy2",
        "config differs: epochs 2 -> 3, seed None -> 1"]
    assert doc["config_changes"] == {"epochs": (2, 3), "seed": (None, 1)}
    assert (doc["run_a"], doc["run_b"]) == ("a", "b")
    assert doc["thresholds"] == {"metric_tol": 1e-6, "time_tol": 0.25, "time_min_s": 0.5}
    assert regress.ENV_KEYS == ("r_version", "reticulate_version", "rpy2_version", "python_version",
                                "tensorflow_version", "keras_version", "numpy_version", "threads_intra",
                                "threads_inter", "op_determinism", "devices", "cpu", "cpu_count", "platform")


def test_the_same_results_have_nothing_to_say():
    """A run against itself: no regression, improvement or warning; every metric still has its row."""
    doc = regress.compare_results(results(), results("b"))
    assert (doc["regressions"], doc["improvements"], doc["warnings"], doc["ok"]) == ([], [], [], True)
    assert len([r for r in doc["rows"] if r["kind"] == "metric"]) == 12


def test_format_comparison():
    """The terminal text: the runs, the warnings, one row per metric or phase, the regressions."""
    doc = {"run_a": "a", "run_b": "b", "warnings": ["w1"], "regressions": [{"what": "python val_iou",
                                                                          "detail": "0.5 -> 0.4 (-0.1)"}],
           "rows": [{"kind": "metric", "impl": "python", "what": "val_iou", "a": 0.5, "b": 0.4, "delta": -0.1,
                     "flag": "REGRESSION"},
                    {"kind": "metric", "impl": "python", "what": "val_precision", "a": 0.7, "b": None,
                     "delta": None, "flag": "REGRESSION"},
                    {"kind": "time", "impl": "python", "what": "total", "a": 10.0, "b": 13.0, "ratio": 1.3,
                     "flag": "REGRESSION"},
                    {"kind": "time", "impl": "python", "what": "build", "a": 0.0, "b": 1.0, "ratio": None,
                     "flag": ""}]}
    assert regress.format_comparison(doc).splitlines() == [
        "A (baseline): a",
        "B:            b",
        "",
        "warning: w1",
        "",
        "worker     metric / phase                    A            B     change  flag",
        "python     val_iou                         0.5          0.4       -0.1  REGRESSION",
        "python     val_precision                   0.7          n/a  undefined  REGRESSION",
        "python     time total                       10           13      x1.30  REGRESSION",
        "python     time build                        0            1          -  ",
        "",
        "REGRESSIONS (1):",
        "  python val_iou: 0.5 -> 0.4 (-0.1)",
    ]
    quiet = regress.format_comparison(dict(doc, warnings=[], regressions=[], rows=[])).splitlines()
    assert quiet == ["A (baseline): a", "B:            b", "",
                     "worker     metric / phase                    A            B     change  flag", "",
                     "no regressions"]


def _run(tmp_path, name, record) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(record))
    return str(folder)


def _args(argv):
    parser = argparse.ArgumentParser()
    regress.add_arguments(parser)
    return parser.parse_args(argv)


def test_main_exit_status_and_json(tmp_path, capsys):
    """regress exits 1 with a regression, 0 without; --json writes the document."""
    a, b = _run(tmp_path, "a", results()), _run(tmp_path, "b", with_metric("val", "iou", 0.1))
    out = tmp_path / "cmp.json"
    assert regress.main(_args([a, b, "--json", str(out)])) == 1
    text = capsys.readouterr().out
    assert "REGRESSIONS (1):\n  python val_iou: 0.5 -> 0.1 (-0.4)" in text
    doc = json.loads(out.read_text())
    assert [r["what"] for r in doc["regressions"]] == ["python val_iou"] and out.read_text().endswith("}\n")
    assert regress.main(_args([a, a])) == 0 and "no regressions" in capsys.readouterr().out
    assert regress.main(_args([a, b, "--metric-tol", "0.5"])) == 0


def test_arguments_and_their_defaults():
    """The options of regress and their defaults."""
    args = _args(["A", "B"])
    assert (args.run_a, args.run_b, args.metric_tol, args.time_tol, args.time_min_s, args.json) == (
        "A", "B", 1e-6, 0.25, 0.5, None)
    args = _args(["A", "B", "--metric-tol", "0.1", "--time-tol", "0.5", "--time-min-s", "2", "--json", "x.json"])
    assert (args.metric_tol, args.time_tol, args.time_min_s, args.json) == (0.1, 0.5, 2.0, "x.json")


def test_load_results_checks_schema_and_version(tmp_path):
    """results.json of another schema or version is refused with the fix."""
    good = _run(tmp_path, "good", results())
    assert regress.load_results(good)["run_id"] == "a"
    bad = _run(tmp_path, "schema", dict(results(), schema="other"))
    with pytest.raises(ReportError) as err:
        regress.load_results(bad)
    assert str(err.value) == f"{bad}/results.json: schema 'other', expected 'tailings-parity/results'"
    old = _run(tmp_path, "version", dict(results(), version=2))
    with pytest.raises(ReportError) as err:
        regress.load_results(old)
    assert str(err.value) == (f"{old}/results.json: results version 2, this harness reads 1; rebuild it with "
                              f"tailings-parity report {old}")


def test_every_worker_and_metric_is_compared_past_the_ones_that_are_skipped():
    """A worker without epochs, a metric undefined in both runs, a metric that became undefined and a worker
    present in one run only are passed over, not the end of the comparison."""
    def final(**changes):
        block = {"train": dict(BLOCK), "val": dict(BLOCK)}
        for key, value in changes.items():
            split, metric = key.split("_", 1)
            block[split][metric] = value
        return block
    a = results(final=final(train_precision=None, train_iou=0.9))
    b = results("b", final=final(train_precision=None, train_iou=None, train_recall=0.1, val_loss=0.9))
    a["metrics"] = {"r-empty": [], **a["metrics"]}
    a["final_metrics"]["r-a"] = final()
    b["metrics"]["r-a"] = b["metrics"]["python"]
    b["metrics"]["r-b"] = b["metrics"]["python"]
    b["final_metrics"]["r-b"] = final()
    doc = regress.compare_results(a, b)
    assert [r["what"] for r in doc["regressions"]] == ["python train_iou", "python train_recall", "python val_loss"]
    assert {r["impl"] for r in doc["rows"]} == {"python"}
    assert regress.final_metrics(a).keys() == {"python"}  # r-a has a final block but no epochs: not counted
    assert next(r for r in doc["rows"] if r["what"] == "train_iou") == {
        "kind": "metric", "impl": "python", "what": "train_iou", "a": 0.9, "b": None, "delta": None,
        "flag": "REGRESSION"}


def test_a_final_block_without_a_split():
    """A final block without the train split gives None for its metrics."""
    r = results(final={"val": dict(BLOCK)})
    got = regress.final_metrics(r)["python"]
    assert got["train_loss"] is None and got["val_loss"] == 0.5


def test_a_change_of_exactly_the_tolerance_is_none_in_either_direction():
    """A change of exactly --metric-tol is no change, up or down, for either direction of better."""
    for key, value in (("loss", 0.75), ("loss", 0.25), ("iou", 0.75), ("iou", 0.25)):
        doc = regress.compare_results(results(), with_metric("val", key, value), metric_tol=0.25)
        row = next(r for r in doc["rows"] if r["what"] == f"val_{key}")
        assert (row["flag"], doc["regressions"], doc["improvements"]) == ("", [], []), (key, value)
    doc = regress.compare_results(results(), with_metric("val", "iou", 0.9))
    assert next(r for r in doc["rows"] if r["what"] == "val_iou")["flag"] == "improved"


def test_times_are_compared_for_every_phase_of_the_workers_in_both_runs():
    """Every phase of every worker timed in both runs is compared, past a phase without a median."""
    a = results(timing={"data": {"n": 1}, "build": {"median": 1.0, "n": 1}, "total": {"median": 10.0, "n": 1}})
    b = results("b", timing={"data": {"median": 1.0, "n": 1}, "build": {"median": 1.0, "n": 1},
                             "total": {"median": 20.0, "n": 1}})
    b["timing"]["per_impl"]["r-rpy2"] = {"total": {"median": 1.0, "n": 1}}
    doc = regress.compare_results(a, b)
    assert [(r["impl"], r["what"]) for r in doc["rows"] if r["kind"] == "time"] == [("python", "build"),
                                                                                   ("python", "total")]
    assert [r["what"] for r in doc["regressions"]] == ["python time total"]


def test_workers_in_one_run_only_are_listed():
    """Workers present in one run only are listed, sorted."""
    b = results("b")
    b["environment"].update({"r-rscript": {}, "r-rpy2": {}})
    assert regress.compare_results(results(), b)["warnings"] == [
        "workers present in one run only: r-rpy2, r-rscript"]


def test_main_passes_every_threshold(tmp_path, capsys):
    """regress passes --time-tol and --time-min-s on; --json writes the document indented."""
    a = _run(tmp_path, "a", results(timing={"total": {"median": 10.0, "n": 1}}))
    b = _run(tmp_path, "b", results("b", timing={"total": {"median": 13.0, "n": 1}}))
    assert regress.main(_args([a, b])) == 1
    assert regress.main(_args([a, b, "--time-min-s", "5"])) == 0
    assert regress.main(_args([a, b, "--time-tol", "0.5"])) == 0
    out = tmp_path / "doc.json"
    regress.main(_args([a, b, "--json", str(out)]))
    capsys.readouterr()
    doc = json.loads(out.read_text())
    assert out.read_text() == json.dumps(doc, indent=1) + "\n"
    assert doc["thresholds"] == {"metric_tol": 1e-6, "time_tol": 0.25, "time_min_s": 0.5}


def test_load_results_rebuilds_a_missing_results_json(tmp_path, monkeypatch):
    """A run folder without results.json: the report is rebuilt from the folder (what `report` does)."""
    from parity.report import build

    folder = tmp_path / "run"
    folder.mkdir()
    built = []

    def build_report(run_dir):
        built.append(run_dir)
        (run_dir / "results.json").write_text(json.dumps(results("rebuilt")))
    monkeypatch.setattr(build, "build_report", build_report)
    assert regress.load_results(folder)["run_id"] == "rebuilt" and built == [folder]
    assert regress.load_results(folder)["run_id"] == "rebuilt" and built == [folder]  # there now: read, not rebuilt


# The --help of `regress`: each option says what it does and its default, which is the default it has.
HELP = {
    "run_a": "baseline run folder or run id",
    "run_b": "run folder or run id to check against the baseline",
    "metric_tol": "a final metric worse by more than this is a regression (default 1e-6: runs are deterministic on "
                  "the CPU)",
    "time_tol": "a phase slower by more than this share is a regression (default 0.25)",
    "time_min_s": "...and by more than this many seconds (default 0.5)",
    "json": "also write the comparison to this JSON file",
}


def test_the_help_of_each_argument():
    """The help of each option, and the default it states is the default it has."""
    parser = argparse.ArgumentParser()
    regress.add_arguments(parser)
    actions = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert {dest: a.help for dest, a in actions.items()} == HELP
    for dest in ("metric_tol", "time_tol", "time_min_s"):
        stated = HELP[dest].split("(default ", 1)[1].split(")")[0].split(":")[0]
        assert float(stated) == actions[dest].default and actions[dest].type is float, dest
