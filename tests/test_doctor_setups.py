"""`tailings-parity doctor`'s checks added for issue 29, each on a broken set-up made for real on the spot.

A Python without TensorFlow named by TENSORFLOW_PYTHON, a keras.json with floatx float64 that only R reads, a
Keras backend that only R asks for, a second NumPy first on PYTHONPATH, an R `keras` 2.x package on the R
library path, a forked R child after TensorFlow started its thread pools, an older libstdc++ put first by R's
own R_LD_LIBRARY_PATH. Each test asserts the doctor's words
(what it saw, the fix); where the fix is cheap it is applied and the check run again. Tests use --only to start
only the probes the check needs. What cannot be made here (GPU, another architecture) is in
test_doctor_messages.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from parity.env import PROJECT_ROOT, project_r_lib

pytestmark = pytest.mark.heavy


def run_doctor(*args: str, env: dict | None = None, pythonpath: list[str] = ()) -> tuple[int, dict]:
    """Run the doctor with --json in a child process: (exit status, {check name: entry})."""
    child_env = dict(os.environ, **(env or {}))
    # A folder given here comes before the project (which a bare interpreter needs to find the parity package).
    child_env["PYTHONPATH"] = os.pathsep.join([*pythonpath, str(PROJECT_ROOT)])
    proc = subprocess.run([sys.executable, "-m", "parity", "doctor", "--json", *args], env=child_env,
                          capture_output=True, text=True, timeout=600, cwd=PROJECT_ROOT)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"--json printed no valid JSON (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
                    f"{proc.stderr[-2000:]}")
    return proc.returncode, {c["name"]: c for c in report["checks"]}


def r_only_environ(tmp_path: Path, **values: str) -> dict:
    """An R user-environment file (what ~/.Renviron is) with ``values``: R processes read it, Python does not."""
    renviron = tmp_path / "Renviron"
    renviron.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return {"R_ENVIRON_USER": str(renviron)}


def test_tensorflow_python_at_a_python_without_tensorflow(bare_python, project_python):
    rc, checks = run_doctor("--only", "python-override", env={"TENSORFLOW_PYTHON": bare_python})
    check = checks["python-override"]
    assert rc == 1 and check["status"] == "fail", check
    assert f"TENSORFLOW_PYTHON={bare_python}" in check["seen"]
    assert "copies it into RETICULATE_PYTHON" in check["seen"] and "which has no TensorFlow" in check["seen"]
    assert "unset TENSORFLOW_PYTHON" in check["fix"]
    # The fix, applied: TENSORFLOW_PYTHON at the project's Python is harmless.
    fixed = re.search(r"export TENSORFLOW_PYTHON=(\S+?)\)?$", check["fix"]).group(1)
    assert fixed == project_python
    rc, checks = run_doctor("--only", "python-override", env={"TENSORFLOW_PYTHON": fixed})
    assert rc == 0 and checks["python-override"]["status"] == "ok", checks


def test_keras_json_with_float64_read_by_r_only(tmp_path):
    # keras3 points KERAS_HOME at R's user cache when ~/.keras is absent; an .Renviron line does the same here.
    r_home = tmp_path / "r-keras-home"
    r_home.mkdir()
    (r_home / "keras.json").write_text(json.dumps({"floatx": "float64", "epsilon": 1e-07, "backend": "tensorflow",
                                                   "image_data_format": "channels_last"}))
    rc, checks = run_doctor("--only", "keras-config", env=r_only_environ(tmp_path, KERAS_HOME=str(r_home)))
    check = checks["keras-config"]
    assert rc == 1 and check["status"] == "fail", check
    assert re.search(r"floatx differs: Python float32, R host float64", check["seen"]), check["seen"]
    assert f"R host reads {r_home / 'keras.json'}, KERAS_HOME={r_home}" in check["seen"]
    assert "keras_home differs" in check["seen"]
    # Embedded, Python copied its environment before R read the .Renviron: R and Keras disagree in one process.
    assert f"R embedded reads {Path.home() / '.keras' / 'keras.json'} (R's KERAS_HOME={r_home}, Python's unset)" \
        in check["seen"]
    assert "export the same KERAS_HOME" in check["fix"]


@pytest.mark.slow  # 17-26 s here: three probes import Keras; the float64 test covers the same check by default
def test_keras_backend_set_for_r_only(tmp_path):
    rc, checks = run_doctor("--only", "keras-config", env=r_only_environ(tmp_path, KERAS_BACKEND="jax"))
    check = checks["keras-config"]
    assert rc == 1 and check["status"] == "fail", check
    assert "R host: ModuleNotFoundError: No module named 'jax'" in check["seen"]
    assert "Python" in check["seen"] or check["seen"].count("No module named 'jax'") == 1
    assert "unset KERAS_BACKEND" in check["fix"] and "R and Python alike" in check["fix"]


def test_second_numpy_first_on_pythonpath(tmp_path):
    import numpy

    shadow = tmp_path / "shadow"
    shadow.mkdir()
    # A second copy of NumPy (the same files under another folder), first on PYTHONPATH for every side.
    (shadow / "numpy").symlink_to(Path(numpy.__file__).parent, target_is_directory=True)
    rc, checks = run_doctor("--only", "numpy-shadow", pythonpath=[str(shadow)])
    check = checks["numpy-shadow"]
    assert rc == 1 and check["status"] == "fail", check
    for side in ("Python", "R host", "R embedded"):
        assert f"{side} NumPy {numpy.__version__} from {shadow / 'numpy'}: from PYTHONPATH" in check["seen"], side
    assert "unset PYTHONPATH" in check["fix"]
    # The fix, applied: PYTHONPATH without the second copy.
    rc, checks = run_doctor("--only", "numpy-shadow")
    assert rc == 0 and checks["numpy-shadow"]["status"] == "ok", checks


@pytest.fixture()
def stale_r_keras_lib(tmp_path, r_env) -> Path:
    """An R library holding a package named keras at version 2.15.0 (installed with R CMD INSTALL)."""
    src = tmp_path / "keras-src" / "keras"
    (src / "R").mkdir(parents=True)
    (src / "DESCRIPTION").write_text("Package: keras\nVersion: 2.15.0\nTitle: Stand-in for the R keras 2.x\n"
                                     "Description: Made by the doctor's tests.\nLicense: MIT\n"
                                     "Authors@R: person('t', 'e', role = c('aut', 'cre'), email = 't@e.x')\n")
    (src / "NAMESPACE").write_text("export(use_implementation)\n")
    (src / "R" / "keras.R").write_text("use_implementation <- function(implementation = 'tensorflow') "
                                       "invisible(implementation)\n")
    lib = tmp_path / "old-keras-lib"
    lib.mkdir()
    subprocess.run(["R", "CMD", "INSTALL", "--no-test-load", "-l", str(lib), str(src)], env=r_env, check=True,
                   capture_output=True, timeout=120)
    return lib


def test_r_keras_2_beside_keras_3(stale_r_keras_lib, r_env):
    import keras

    libs = f"{project_r_lib()}:{stale_r_keras_lib}"
    rc, checks = run_doctor("--only", "r-keras-version,r-packages", env={"R_LIBS": libs})
    check = checks["r-keras-version"]
    assert rc == 1 and check["status"] == "fail", check
    assert f"R package keras 2.15.0 is installed beside Keras {keras.__version__}" in check["seen"]
    assert "'what' must be a function or character string" in check["seen"]
    assert "remove.packages('keras')" in check["fix"] and "install.packages('keras3')" in check["fix"]
    assert "keras 2.15.0" in checks["r-packages"]["seen"]
    # The fix, applied: the package removed.
    subprocess.run(["R", "CMD", "REMOVE", "-l", str(stale_r_keras_lib), "keras"], env=r_env, check=True,
                   capture_output=True, timeout=120)
    rc, checks = run_doctor("--only", "r-keras-version", env={"R_LIBS": libs})
    assert rc == 0 and checks["r-keras-version"]["status"] == "ok", checks


def test_forked_r_child_after_tensorflow_started_its_thread_pools():
    # TensorFlow's own variables give it two threads each way (the probes run one otherwise); a fork then hangs.
    rc, checks = run_doctor("--only", "r-fork", env={"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2",
                                                     "TP_DOCTOR_FORK_TIMEOUT": "3"})
    check = checks["r-fork"]
    assert rc == 1 and check["status"] == "fail", check
    assert "(2 intra-op / 2 inter-op threads) did not finish a 300x300 matmul in 3 s and was killed" in check["seen"]
    assert "parallel::makePSOCKcluster()" in check["fix"] and "mclapply" in check["fix"]
    # With one thread each way (the probes' default) the child finishes: test_doctor.py's healthy run shows it.


def test_older_libstdcxx_first_for_r(tmp_path):
    # A stand-in for an older libstdc++ (GCC 8's ends at GLIBCXX_3.4.25): a copy of the system's with the newer
    # version names renamed, so the dynamic loader no longer finds them. R's etc/ldpaths puts R_LD_LIBRARY_PATH
    # first, as an R built with conda's toolchain does with conda's lib/.
    system = Path(os.path.realpath("/usr/lib/x86_64-linux-gnu/libstdc++.so.6"))
    if not system.exists():
        pytest.skip("no /usr/lib/x86_64-linux-gnu/libstdc++.so.6 to copy")
    data = system.read_bytes()
    newest = max(int(n) for n in re.findall(rb"GLIBCXX_3\.4\.(\d+)\x00", data))
    for n in range(26, newest + 1):
        data = data.replace(f"GLIBCXX_3.4.{n}\0".encode(), f"XLIBCXX_3.4.{n}\0".encode())
    old = tmp_path / "old-lib"
    old.mkdir()
    (old / "libstdc++.so.6").write_bytes(data)
    rc, checks = run_doctor("--only", "libstdcxx", env={"R_LD_LIBRARY_PATH": str(old)})
    check = checks["libstdcxx"]
    assert rc == 1 and check["status"] == "fail", check
    assert re.search(rf"{re.escape(str(old))}/libstdc\+\+\.so\.6: version `GLIBCXX_3\.4\.\d+' not found", check["seen"])
    # R host dies at start (R itself needs the newer versions); embedded R, started by rpy2, is not affected.
    assert check["seen"].startswith("R host probe exited with status 1")
    assert "Python, R embedded: " in check["seen"] and "(GLIBCXX up to 3.4." in check["seen"]
    assert "R_LD_LIBRARY_PATH" in check["fix"] and "LD_PRELOAD" in check["fix"]
