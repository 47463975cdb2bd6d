"""Speed features: threads "auto" recorded, the lean metrics layout, thread differences named, `bench`.

No test asserts a time: `bench` is checked for what it measures and how it derives its ratios.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from parity.compare.run import compare_run


def test_workers_record_auto_threads_and_lean_metrics(smoke_run):
    for impl in ("python", "r-rpy2", "r-rscript"):
        wdir = smoke_run / "workers" / impl
        env = json.loads((wdir / "environment.json").read_text())
        assert env["threads_setting"] == ["auto", "auto"]
        assert env["threads_intra"] == env["threads_inter"] == env["available_cores"] >= 1
        # No process-wide tuning: what the user's environment says is what the workers ran with.
        assert env["env"]["GLIBC_TUNABLES"] == (os.environ.get("GLIBC_TUNABLES") or None)
        metrics = json.loads((wdir / "metrics.json").read_text())
        # Per epoch: train = the mean batch loss only; val counted. Final: both splits counted.
        losses = np.load(wdir / "batch_losses.npy")
        for e, epoch in enumerate(metrics["epochs"]):
            assert set(epoch["train"]) == {"loss"}
            assert epoch["train"]["loss"] == pytest.approx(float(np.mean(losses[e].astype(np.float64))), rel=1e-12)
            assert {"loss", "iou", "tp", "baseline_accuracy"} <= set(epoch["val"])
        assert metrics["final"]["val"] == metrics["epochs"][-1]["val"]
        assert {"loss", "iou", "f1", "tp", "tn"} <= set(metrics["final"]["train"])


def test_a_thread_difference_is_named_as_the_likely_cause(smoke_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    cand = run / "workers" / "r-rscript"
    env = json.loads((cand / "environment.json").read_text())
    env["threads_intra"] = env["threads_intra"] + 1
    (cand / "environment.json").write_text(json.dumps(env))
    with np.load(cand / "weights_final.npz") as z:
        weights = {k: z[k].copy() for k in z.files}
    first = next(iter(weights))
    weights[first].reshape(-1).view(np.uint32)[0] ^= 1  # one ULP in one weight
    np.savez(cand / "weights_final.npz", **weights)
    doc = compare_run(run)
    assert not doc["ok"]
    assert "different thread settings: threads_intra" in doc["verdict"], doc["verdict"]


@pytest.mark.heavy
@pytest.mark.slow
def test_bench_measures_plain_fit_probe_and_ratios(tmp_path, capsys):
    from parity import cli

    out = tmp_path / "bench.json"
    rc = cli.main(["bench", "--preset", "smoke", "--set", "epochs=1", "--impls", "python,r-rscript",
                   "--repeats", "2", "--reports-dir", str(tmp_path / "reports"), "--json", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    # The plain fits run between the workers' repeats, not after all of them.
    at = [printed.index(line) for line in ("worker r-rscript-r1: done", "plain model.fit 1/2",
                                            "worker python-r2: started", "plain model.fit 2/2")]
    assert at == sorted(at), printed
    doc = json.loads(out.read_text())
    assert set(doc["ratios"]) == {"training_over_plain_fit", "r_over_python_training", "r_over_python_data",
                                  "metrics_over_training"}
    assert set(doc["ratios"]["training_over_plain_fit"]) == {"python", "r-rscript"}
    assert set(doc["ratios"]["r_over_python_data"]) == {"r-rscript"}
    assert doc["probe"]["flops_per_s"] > 1e8 and doc["plain_fit_median_s"] > 0
    # The ratio is what the phases say, not a number of its own.
    py = doc["phases"]["python"]["epochs"]["median"]
    assert doc["ratios"]["training_over_plain_fit"]["python"] == pytest.approx(py / doc["plain_fit_median_s"])
    assert 0 < doc["utilisation"]["python"] < 1.5
    run_dir = next((tmp_path / "reports").iterdir())
    assert (run_dir / "bench.json").is_file()
    assert "utilisation of the matmul peak" in (run_dir / "report.md").read_text()
    assert "training_over_plain_fit" in printed
