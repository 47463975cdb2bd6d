"""`tailings-parity doctor` on the healthy set-up, and on real broken set-ups made on the spot.

Each broken set-up is made for real (a Python without TensorFlow, Debian's reticulate 1.28 first on the R
library path, R_HOME at a folder that is not R, legacy Keras requested through the environment, a Python
without rpy2); the doctor must fail the right check with a fix, and where it is cheap the fix is applied and
the check run again to show that it mends the set-up. Tests use --only to start only the probes they need.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from parity import cli
from parity.doctor import checks as doctor
from parity.env import PROJECT_ROOT, project_r_lib

R_PYTHON_NOTES_MESSAGES = {
    # exact messages from R-PYTHON-TENSORFLOW.md -> a piece of the fix that mends it
    "ImportError: .../_rinterface_cffi_api.abi3.so: undefined symbol: R_ParentEnv": "rpy2>=3.5.17,<3.6",
    "symbol 'R_getVar' not found in library '/usr/lib/R/lib/libR.so'": "rpy2>=3.5.17,<3.6",
    "ImportError: cannot import name 'SexpVectorCCompatibleAbstract' from 'rpy2.rinterface'":
        "pip uninstall -y rpy2 rpy2-rinterface rpy2-robjects",
    "Error: Required version of NumPy not available: incompatible NumPy binary version 33554432 "
    "(expecting version 16777225)": "bash parity/setup.sh",
    "Fatal Python error: PyThreadState_Get: the function must be called with the GIL held, but the GIL is "
    "released": "reticulate >= 1.41",
    "Error in layer(x) : attempt to apply non-function": "reticulate::py_call(layer, x)",
    "rpy2 in API mode cannot be built without R in the PATH or R_HOME defined": "r-base-core",
}


def run_doctor(*args: str, env: dict | None = None, python: str | None = None,
               unset: tuple[str, ...] = ()) -> tuple[int, dict, str]:
    """Run the doctor in a child process with --json; (exit status, parsed report, stderr)."""
    child_env = dict(os.environ)
    for name in unset:
        child_env.pop(name, None)
    child_env.update(env or {})
    child_env["PYTHONPATH"] = str(PROJECT_ROOT)  # a bare interpreter must still find the parity package
    proc = subprocess.run([python or sys.executable, "-m", "parity", "doctor", "--json", *args],
                          env=child_env, capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"--json printed no valid JSON (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                    f"{proc.stderr[-2000:]}")
    return proc.returncode, report, proc.stderr


def by_name(report: dict) -> dict:
    return {c["name"]: c for c in report["checks"]}


@pytest.fixture(scope="module")
def healthy_report():
    """One full doctor run on this machine's set-up, shared by the tests that read it."""
    t0 = time.monotonic()
    rc, report, stderr = run_doctor()
    return rc, report, stderr, time.monotonic() - t0


def test_healthy_setup_passes_every_check(healthy_report):
    rc, report, stderr, _ = healthy_report
    checks = by_name(report)
    not_fine = {n: c for n, c in checks.items() if c["status"] not in ("ok", "warn")}
    assert not not_fine, f"checks that should pass here: {json.dumps(not_fine, indent=1)}\n{stderr[-1000:]}"
    assert rc == 0
    assert report["ok"] is True


def test_json_has_one_entry_per_check(healthy_report):
    _, report, _, _ = healthy_report
    names = [c["name"] for c in report["checks"]]
    assert names == list(doctor.CHECKS)
    for c in report["checks"]:
        assert set(c) == {"name", "status", "seen", "fix"}
        assert c["seen"], f"{c['name']} says nothing about what it saw"


def test_healthy_report_saw_real_things(healthy_report):
    _, report, _, _ = healthy_report
    checks = by_name(report)
    import tensorflow as tf  # the Python side's version, read here independently of the doctor

    assert checks["tensorflow"]["seen"].count(tf.__version__) == 3  # Python, R host, R embedded
    assert "bit-identical" in checks["determinism"]["seen"]
    assert "24 elements" in checks["numpy"]["seen"]
    # The embedded probe is its own child process: host pid = reticulate's pid = R's pid, and none is ours.
    pids = [int(p) for p in re.findall(r"pid (\d+)", checks["embedded-python"]["seen"])]
    assert len(pids) == 3 and len(set(pids)) == 1 and pids[0] != os.getpid(), checks["embedded-python"]["seen"]
    assert sys.executable in checks["host-python"]["seen"]
    # Issue 29's checks, on the healthy set-up: what each saw, read independently where it is cheap.
    import keras
    import numpy

    assert len(checks) >= 20
    assert "ran a TensorFlow op" in checks["r-fork"]["seen"]  # a forked R child after TensorFlow started
    assert f"floatx {keras.config.floatx()}" in checks["keras-config"]["seen"]
    assert os.path.dirname(numpy.__file__) in checks["numpy-shadow"]["seen"]
    assert "TF_FORCE_GPU_ALLOW_GROWTH=true" in checks["gpu-memory"]["seen"]
    assert "Python, R host, R embedded" in checks["gpu-libraries"]["seen"]


def test_table_output_and_colour(healthy_report):
    _, report, _, _ = healthy_report
    results = [doctor.CheckResult(**c) for c in report["checks"]]
    plain = doctor.render_table(results, colour=False, width=100)
    assert "\033[" not in plain
    for name in doctor.CHECKS:
        assert re.search(rf"^{re.escape(name)}\s+(ok|warn)\b", plain, re.M), plain
    broken = results + [doctor.CheckResult("example", "fail", "what was seen", "what to do")]
    coloured = doctor.render_table(broken, colour=True, width=100)
    assert "\033[31" in coloured and "fix: what to do" in coloured


@pytest.mark.heavy
@pytest.mark.slow
def test_python_without_tensorflow(bare_python, project_python):
    rc, report, _ = run_doctor("--only", "host-python,tensorflow", env={"RETICULATE_PYTHON": bare_python})
    checks = by_name(report)
    assert rc == 1
    tf_check = checks["tensorflow"]
    assert tf_check["status"] == "fail"
    assert "No module named 'tensorflow'" in tf_check["seen"]
    assert f"RETICULATE_PYTHON={project_python}" in tf_check["fix"]
    host = checks["host-python"]
    assert host["status"] == "fail" and bare_python in host["seen"] and "RETICULATE_PYTHON" in host["seen"]
    # The fix, applied: RETICULATE_PYTHON at the project's Python.
    fixed = re.search(r"export RETICULATE_PYTHON=(\S+)", host["fix"]).group(1)
    rc, report, _ = run_doctor("--only", "host-python", env={"RETICULATE_PYTHON": fixed})
    assert by_name(report)["host-python"]["status"] == "ok", report
    assert rc == 0


@pytest.mark.heavy
def test_old_reticulate_first_on_the_library_path(old_reticulate_lib):
    old_version = re.search(r"^Version:\s*(\S+)", (old_reticulate_lib / "reticulate" / "DESCRIPTION").read_text(),
                            re.M).group(1)
    rlib = str(project_r_lib())
    rc, report, _ = run_doctor("--only", "reticulate,numpy,embedded-python",
                               env={"R_LIBS": f"{old_reticulate_lib}:{rlib}"})
    checks = by_name(report)
    assert rc == 1
    ret = checks["reticulate"]
    assert ret["status"] == "fail"
    assert f"reticulate {old_version} from {old_reticulate_lib}" in ret["seen"]
    assert "Required version of NumPy not available" in ret["seen"] and "GIL" in ret["seen"]
    assert f"put {rlib} first" in ret["fix"]
    numpy_check = checks["numpy"]
    assert numpy_check["status"] == "fail"
    assert "Required version of NumPy not available" in numpy_check["seen"]
    assert "parity/setup.sh" in numpy_check["fix"]
    emb = checks["embedded-python"]
    assert emb["status"] == "fail" and "too old to run embedded under rpy2" in emb["seen"]
    # The fix, applied: the project library first.
    fixed = re.search(r"\(R_LIBS=([^:]+):", ret["fix"]).group(1)
    rc, report, _ = run_doctor("--only", "reticulate", env={"R_LIBS": f"{fixed}:{old_reticulate_lib}"})
    assert by_name(report)["reticulate"]["status"] == "ok", report
    assert rc == 0


@pytest.mark.heavy
def test_r_home_not_r(tmp_path):
    not_r = tmp_path / "not-r"
    (not_r / "bin").mkdir(parents=True)
    (not_r / "README").write_text("this folder is not an R installation\n")
    rc, report, _ = run_doctor("--only", "r,rpy2", env={"R_HOME": str(not_r)})
    checks = by_name(report)
    assert rc == 1
    r = checks["r"]
    assert r["status"] == "fail" and f"R_HOME={not_r}" in r["seen"]
    assert "unset R_HOME" in r["fix"]
    rpy2 = checks["rpy2"]
    assert rpy2["status"] == "fail"
    assert "R_HOME" in rpy2["fix"] and "unable to open the base package" in rpy2["seen"]
    # The fix, applied: R_HOME where R is.
    fixed = re.search(r"export R_HOME=(\S+)", r["fix"]).group(1)
    rc, report, _ = run_doctor("--only", "r,rpy2", env={"R_HOME": fixed})
    assert [c["status"] for c in report["checks"]] == ["ok", "ok"], report
    assert rc == 0


@pytest.mark.heavy
@pytest.mark.slow
def test_legacy_keras_requested_without_tf_keras():
    rc, report, _ = run_doctor("--only", "keras", env={"TF_USE_LEGACY_KERAS": "1"})
    keras_check = by_name(report)["keras"]
    assert rc == 1
    assert keras_check["status"] == "fail"
    assert "TF_USE_LEGACY_KERAS=1" in keras_check["seen"]
    for side in ("Python", "R host", "R embedded"):
        assert side in keras_check["seen"]
    assert "unset TF_USE_LEGACY_KERAS" in keras_check["fix"]


def test_python_without_rpy2(bare_python):
    rc, report, _ = run_doctor("--only", "rpy2,embedded-python", python=bare_python)
    checks = by_name(report)
    assert rc == 1
    assert checks["rpy2"]["status"] == "fail"
    assert "No module named 'rpy2'" in checks["rpy2"]["seen"]
    assert f"{bare_python} -m pip install 'rpy2>=3.5.17,<3.6'" in checks["rpy2"]["fix"]
    assert checks["embedded-python"]["status"] == "skip"
    assert "rpy2" in checks["embedded-python"]["seen"]


def test_r_absent(tmp_path):
    # PATH without R: only the venv's bin and a folder with nothing in it.
    rc, report, _ = run_doctor("--only", "r,rpy2", env={"PATH": f"{os.path.dirname(sys.executable)}:{tmp_path}"},
                               unset=("R_HOME",))
    checks = by_name(report)
    assert rc == 1
    assert checks["r"]["status"] == "fail" and "apt-get install" in checks["r"]["fix"]
    assert checks["rpy2"]["status"] == "fail" and "R_HOME" in checks["rpy2"]["fix"]


@pytest.mark.heavy
def test_probe_past_its_time_limit_is_a_failed_check():
    t0 = time.monotonic()
    rc, report, _ = run_doctor("--only", "tensorflow", "--timeout", "0.5")
    tf_check = by_name(report)["tensorflow"]
    assert rc == 1
    assert tf_check["status"] == "fail"
    assert "timed out after 0.5 s" in tf_check["seen"]
    assert time.monotonic() - t0 < 60  # killed, not waited for


@pytest.mark.parametrize("argv", [["doctor", "--only", "no-such-check"], ["doctor", "--timeout", "-1"],
                                  ["doctor", "--python", "/nonexistent/python"]])
def test_usage_errors_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip()


@pytest.mark.parametrize("message", list(R_PYTHON_NOTES_MESSAGES))
def test_known_messages_map_to_their_fix(message):
    ctx = doctor.Context(python=sys.executable, python_prefix=sys.prefix, python_explicit=False, env={},
                         rscript=None, r_home_arg=None, numpy_version="2.0")
    fix = doctor.diagnose(message, ctx)
    assert fix is not None, f"not recognised: {message}"
    assert R_PYTHON_NOTES_MESSAGES[message] in fix
