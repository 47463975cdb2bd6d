"""The spawner: a worker that crashes, is killed, runs too long or gets bad input becomes a clear failed result.

Real processes throughout: the Python worker, R through rpy2, R through Rscript. Runs on a tiny synthetic
set (8 tiles of 32 x 32, one epoch) so that what is measured is the failure handling, not training.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parity.env import PROJECT_ROOT
from parity.run.workers import spawn_worker

pytestmark = pytest.mark.heavy

TINY = ["synthetic_count=8", "synthetic_size=32", "tile_size=32", "epochs=1", "batch_size=2"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from test_twins import make_run_inputs  # pytest puts tests/ on sys.path

    folder = tmp_path_factory.mktemp("workers-tiny")
    return make_run_inputs(folder, "smoke", TINY)


@pytest.fixture(scope="module")
def endless(tmp_path_factory):
    """The tiny set trained for 500 epochs (2000 batches, minutes): a worker that cannot finish within a short limit.
    The tiny run itself ended within 6 s once the workers got faster, and then no limit was tested."""
    from test_twins import make_run_inputs

    folder = tmp_path_factory.mktemp("workers-endless")
    return make_run_inputs(folder, "smoke", [*TINY[:-2], "epochs=500", "batch_size=2"])


def read_status(out: Path) -> dict:
    return json.loads((out / "status.json").read_text())


from parity.testing import pid_alive  # noqa: E402


# r-rpy2 in the slow tier: the spawner's handling does not depend on the host; the two others stay in make test.
@pytest.mark.parametrize("impl", ["python", pytest.param("r-rpy2", marks=pytest.mark.slow), "r-rscript"])
def test_worker_killed_mid_training_is_a_failed_result(tiny, tmp_path, impl):
    config_path, manifest_path = tiny
    seen = {"pid": None, "lines": []}

    def on_progress(name, line):
        seen["lines"].append(line)
        if line.startswith("phase start pid "):
            seen["pid"] = int(line.split()[-1])
        if line.startswith("epoch 1/1 batch 1/") and seen["pid"]:
            os.kill(seen["pid"], signal.SIGKILL)

    result = spawn_worker(impl, config_path, manifest_path, tmp_path / impl, timeout_s=300, on_progress=on_progress)
    assert not result.ok
    assert result.returncode == -signal.SIGKILL
    assert "killed by SIGKILL" in result.error
    assert "epoch 1/1 batch 1/" in result.stderr_tail
    status = read_status(tmp_path / impl)
    assert status["ok"] is False and status["phase"] == "train" and status["error"] == result.error
    assert not (tmp_path / impl / "weights_final.npz").exists()


@pytest.mark.parametrize("impl", ["r-rpy2", "r-rscript"])
def test_broken_r_file_is_a_failed_result_naming_the_file(tiny, tmp_path, impl):
    config_path, manifest_path = tiny
    r_dir = tmp_path / "R"
    shutil.copytree(PROJECT_ROOT / "r_impl" / "R", r_dir)
    with open(r_dir / "unet.R", "a") as f:
        f.write("\nbuild_unet <- function(config) {\n  keras$layers$Conv2D(\n")  # unbalanced: a parse error
    result = spawn_worker(impl, config_path, manifest_path, tmp_path / "out", timeout_s=300, r_dir=r_dir)
    assert not result.ok
    assert result.returncode == 1
    assert "unet.R" in result.error and result.error.startswith("exit status 1: error: ")
    assert "Traceback" not in result.stderr_tail
    assert read_status(tmp_path / "out")["ok"] is False


@pytest.mark.slow
def test_r_runtime_error_is_a_failed_result(tiny, tmp_path):
    config_path, manifest_path = tiny
    r_dir = tmp_path / "R"
    shutil.copytree(PROJECT_ROOT / "r_impl" / "R", r_dir)
    # A classic mistake: a double where Keras wants an integer.
    text = (r_dir / "train.R").read_text().replace("set_random_seed(as.integer(config$seed))",
                                                  "set_random_seed(config$seed + 0.5)")
    (r_dir / "train.R").write_text(text)
    result = spawn_worker("r-rscript", config_path, manifest_path, tmp_path / "out", timeout_s=300, r_dir=r_dir)
    assert not result.ok and result.returncode == 1
    assert result.phase == "start"
    assert "error: " in result.error


def test_worker_past_its_time_limit_is_killed_with_its_children(endless, tmp_path):
    config_path, manifest_path = endless
    seen = {}

    def on_progress(name, line):
        if line.startswith("phase start pid "):
            seen["pid"] = int(line.split()[-1])

    started = time.time()
    result = spawn_worker("r-rscript", config_path, manifest_path, tmp_path / "out", timeout_s=6,
                          on_progress=on_progress)
    assert time.time() - started < 6 + 20
    assert not result.ok and "timed out after 6 s" in result.error
    assert read_status(tmp_path / "out")["ok"] is False
    # The worker got far enough to say its pid (R start-up is ~4 s), and it is gone with its process group.
    assert seen.get("pid"), "the worker never printed its pid before the time limit"
    assert not pid_alive(seen["pid"])


def test_bad_config_is_a_clear_failed_result(tmp_path, tiny):
    config_path, manifest_path = tiny
    config = json.loads(Path(config_path).read_text())
    config["variant"] = "paper-julia"
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps(config))
    for impl in ("python", "r-rscript"):
        result = spawn_worker(impl, bad, manifest_path, tmp_path / impl, timeout_s=300)
        assert not result.ok
        assert "config key variant = 'paper-julia': must be one of 'paper-r', 'paper-python'" in result.error, \
            result.error
        assert result.returncode == 2  # a config mistake, as `run` says it
        assert "Traceback" not in result.stderr_tail


def test_progress_is_streamed_while_training(tiny, tmp_path):
    config_path, manifest_path = tiny
    lines = []
    result = spawn_worker("python", config_path, manifest_path, tmp_path / "out", timeout_s=300,
                          on_progress=lambda impl, line: lines.append((time.time(), impl, line)))
    assert result.ok, result.error
    batches = [line for _, _, line in lines if line.startswith("epoch 1/1 batch ")]
    assert len(batches) == 3 and all(" loss " in b and " elapsed " in b for b in batches)
    assert [line.split()[1] for _, _, line in lines if line.startswith("phase ")] == \
        ["start", "data", "build", "train", "evaluation", "save", "done"]
    # Lines arrive while the worker runs, not in one burst at its end.
    assert lines[-1][0] - lines[0][0] > 0.5
    assert (tmp_path / "out" / "progress.log").read_text().count("batch") == 3


def test_cli_worker_usage_errors(tmp_path):
    cmd = [sys.executable, "-m", "parity", "worker", "--impl", "python", "--config", str(tmp_path / "none.json"),
           "--manifest", str(tmp_path / "none.json"), "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert proc.returncode == 2
    assert "--config" in proc.stderr and "no such file" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(cmd[:4] + ["--impl", "julia"] + cmd[6:], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          timeout=120)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_r_worker_bound_to_a_python_without_tensorflow_names_it_and_the_fix(tiny, tmp_path, bare_python,
                                                                            monkeypatch):
    config_path, manifest_path = tiny
    # The classic R TensorFlow failure: reticulate picks a Python that has no TensorFlow.
    monkeypatch.setenv("RETICULATE_PYTHON", bare_python)
    result = spawn_worker("r-rscript", config_path, manifest_path, tmp_path / "out", timeout_s=300)
    assert not result.ok
    assert bare_python in result.error and "RETICULATE_PYTHON" in result.error
    assert "cannot import tensorflow" in result.error and "tailings-parity doctor" in result.error
    assert read_status(tmp_path / "out")["phase"] == "start"
    assert not (tmp_path / "out" / "weights_initial.npz").exists()
