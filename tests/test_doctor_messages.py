"""`tailings-parity doctor` on what cannot be made on this machine: recorded messages and recorded probe data.

The messages are those R users report (rstudio/tensorflow, rstudio/keras3, rstudio/reticulate issue trackers),
each with a piece of the fix the doctor must answer with. The probe data are what a probe on a GPU machine, or
on a CPU without AVX, or with R and Python of different architectures, would record: the checks read them as
they read a live probe's. No process is started here.
"""

from __future__ import annotations

import sys

import pytest

from parity.doctor import checks as doctor

RECORDED_MESSAGES = {
    # a CPU without AVX (keras3#309): R's own words, and the doctor's for a probe killed by the signal
    "illegal operation\n *** caught illegal operation ***\naddress 0x7f1c2b1e4a40, cause 'illegal opcode'":
        "AVX",
    "R host probe died with signal 4 (SIGILL) in section 'tensorflow'": "AVX",
    # R and Python of different architectures (reticulate#1159): NOT the shared-libpython fix
    "Error: dlopen(/Library/Frameworks/Python.framework/Versions/3.11/lib/libpython3.11.dylib, 0x000A): tried: "
    "'/Library/Frameworks/Python.framework/Versions/3.11/lib/libpython3.11.dylib' (mach-o file, but is an "
    "incompatible architecture (have 'x86_64', need 'arm64e'))": "different CPU architectures",
    # an older libstdc++ loaded first by R (reticulate#841, #1282)
    "ImportError: /usr/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.30' not found (required by "
    "/home/u/.virtualenvs/r-tensorflow/lib/python3.10/site-packages/tensorflow/python/"
    "_pywrap_tensorflow_internal.so)": "LD_LIBRARY_PATH",
    # TensorFlow built for NumPy 1 meets NumPy 2 (keras3#1501); the NumPy-1 words come before the generic ones
    "A module that was compiled using NumPy 1.x cannot be run in\nNumPy 2.0.0 as it may crash. To support both "
    "1.x and 2.x\nversions of NumPy, modules must be compiled with NumPy 2.0.\n...\nImportError: "
    "numpy.core.multiarray failed to import": "built for NumPy 2",
    # a second NumPy shadows the venv's
    "ImportError: numpy.core.multiarray failed to import": "unset PYTHONPATH",
    # the R keras 2.x package with Keras 3 (keras3#1412)
    "Error in do.call(layer_function, args) : 'what' must be a function or character string":
        "install.packages('keras3')",
    # R called from a Python worker thread (reticulate#502)
    "Error: C stack usage  7971092 is too close to the limit": "the thread that started it",
    # XLA on a GPU: libdevice, ptxas
    "W external/local_xla/xla/service/gpu/llvm_gpu_backend/gpu_backend_lib.cc:101] libdevice not found at "
    "./libdevice.10.bc": "xla_gpu_cuda_data_dir",
    "INTERNAL: Couldn't invoke ptxas --version": "PATH=",
    # three TensorFlow processes, each taking the whole GPU
    "E external/local_xla/xla/stream_executor/cuda/cuda_driver.cc:1101] failed to allocate 14.56G (15634530304 "
    "bytes) from device: CUDA_ERROR_OUT_OF_MEMORY: out of memory": "TF_FORCE_GPU_ALLOW_GROWTH=true",
    # cuDNN of another version than TensorFlow's build
    "E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:535] Loaded runtime CuDNN library: 8.6.0 but "
    "source was compiled with: 8.9.4.  CuDNN library needs to have matching major version and equal or higher "
    "minor version.": "tensorflow[and-cuda]",
    # R's ldpaths / the IDE rewrote LD_LIBRARY_PATH: pip's CUDA libraries not found (tensorflow#452, #569)
    "W tensorflow/core/common_runtime/gpu/gpu_device.cc:2256] Cannot dlopen some GPU libraries. Please make sure "
    "the missing libraries mentioned above are installed properly": "same LD_LIBRARY_PATH",
    # use_python() after Python started (reticulate#441, #625, #1150)
    "Warning message:\nPrevious request to `use_python(\"/usr/bin/python3\", required = TRUE)` will be ignored. "
    "It is superseded by request to `use_python(\"/opt/venv/bin/python\")`": "RETICULATE_PYTHON before R starts",
    # a Keras backend that only one side asks for and that is not installed
    "R host: ModuleNotFoundError: No module named 'jax'": "unset KERAS_BACKEND",
}


@pytest.fixture()
def ctx() -> doctor.Context:
    return doctor.Context(python=sys.executable, python_prefix=sys.prefix, python_explicit=False, env={},
                          rscript=None, r_home_arg=None, numpy_version="2.4")


@pytest.mark.parametrize("message", list(RECORDED_MESSAGES))
def test_recorded_message_gets_its_fix(message, ctx):
    fix = doctor.diagnose(message, ctx)
    assert fix is not None, f"not recognised: {message}"
    assert RECORDED_MESSAGES[message] in fix, fix


def test_architecture_message_is_not_answered_with_the_libpython_fix(ctx):
    message = next(m for m in RECORDED_MESSAGES if "incompatible architecture" in m)
    assert "libpython" in message  # the words the libpython entry would also match
    fix = doctor.diagnose(message, ctx)
    assert "shared libpython does not help" in fix and "--enable-shared" not in fix


def probed(ctx: doctor.Context, **sides: dict) -> doctor.Context:
    """``ctx`` with probes that recorded ``sides`` ({probe name: {section: data}}), as a live run leaves them."""
    for name, sections in sides.items():
        run = doctor.ProbeRun(name.replace("_", "-"), list(sections), returncode=0)
        run.sections = {s: dict(d, ok=d.get("ok", True)) for s, d in sections.items()}
        ctx.probes[run.name] = run
    return ctx


def gpu_record(gpus: int, ld_path: str, cudnn_loaded: str = "libcudnn.so.9", ptxas: str = "/venv/bin/ptxas",
               growth: bool = True) -> dict:
    """A gpu section as a CUDA build of TensorFlow records it (tf.sysconfig.get_build_info(), /proc/self/maps)."""
    libs = {"libcudart.so.12": "/venv/.../nvidia/cuda_runtime/lib/libcudart.so.12",
            cudnn_loaded: f"/venv/.../nvidia/cudnn/lib/{cudnn_loaded}"} if gpus else {}
    return {"build": {"is_cuda_build": True, "cuda_version": "12.5.1", "cudnn_version": "9"}, "gpus": gpus,
            "memory_growth": [growth] * gpus, "cuda_libraries": libs, "ptxas": ptxas,
            "libstdcxx": {"libstdc++.so.6.0.30": "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30"},
            "env": {"LD_LIBRARY_PATH": ld_path, "TF_FORCE_GPU_ALLOW_GROWTH": "true" if growth else "false"}}


def test_r_does_not_see_the_gpu_that_python_sees(ctx):
    probed(ctx, python={"gpu": gpu_record(1, "/venv/lib/python3.11/site-packages/nvidia/cudnn/lib")},
           r_host={"gpu": gpu_record(0, "/usr/lib/R/lib:/usr/lib/x86_64-linux-gnu")})
    result = doctor.check_gpu_libraries(ctx)
    assert result.status == "fail"
    assert "R host sees no GPU where Python sees 1" in result.seen
    assert "R host /usr/lib/R/lib:/usr/lib/x86_64-linux-gnu" in result.seen
    assert "same LD_LIBRARY_PATH" in result.fix


def test_cudnn_of_another_major_version(ctx):
    probed(ctx, python={"gpu": gpu_record(1, "", cudnn_loaded="libcudnn.so.8")})
    result = doctor.check_gpu_libraries(ctx)
    assert result.status == "fail" and "loads libcudnn.so.8, TensorFlow was built with cuDNN 9" in result.seen
    assert "tensorflow[and-cuda]" in result.fix


def test_no_ptxas_for_r_on_a_gpu(ctx):
    probed(ctx, python={"gpu": gpu_record(1, "")}, r_host={"gpu": gpu_record(1, "", ptxas="")})
    result = doctor.check_gpu_libraries(ctx)
    assert result.status == "warn" and "R host: no ptxas on PATH" in result.seen
    assert "PATH=" in result.fix and "xla_gpu_cuda_data_dir" in result.fix


def test_gpu_memory_growth_off(ctx):
    ctx.env["TF_FORCE_GPU_ALLOW_GROWTH"] = "false"
    probed(ctx, python={"gpu": gpu_record(1, "", growth=False)})
    result = doctor.check_gpu_memory(ctx)
    assert result.status == "fail" and "memory growth off (TF_FORCE_GPU_ALLOW_GROWTH=false, set by you)" in result.seen
    assert "TF_FORCE_GPU_ALLOW_GROWTH=true" in result.fix


def test_r_and_python_of_different_architectures(ctx):
    probed(ctx, r_host={"platform": {"r_arch": "aarch64", "python_machine": "x86_64", "pointer_bits": 64}})
    result = doctor.check_architecture(ctx)
    assert result.status == "fail" and "R aarch64, Python x86_64" in result.seen
    assert "different CPU architectures" in result.fix and "--enable-shared" not in result.fix


def test_cpu_without_avx(ctx):
    probed(ctx, python={"platform": {"python_machine": "x86_64", "cpu_flags": ["sse4_2"]}})
    result = doctor.check_cpu_features(ctx)
    assert result.status == "fail" and "no AVX" in result.seen and "SIGILL" in result.seen
    assert "AVX" in result.fix


def test_reticulate_managed_ephemeral_environment(ctx):
    probed(ctx, r_host={"python": {"config_python": "/root/.cache/R/reticulate/uv/cache/archive-v0/x/bin/python",
                                   "forced": "py_require()", "ephemeral": True,
                                   "env": {"RETICULATE_PYTHON": "managed"}, "declared_requirements": ["numpy"]}})
    result = doctor.check_python_override(ctx)
    assert result.status == "fail" and "uv-managed ephemeral environment" in result.seen
    assert f"export RETICULATE_PYTHON={sys.executable}" in result.fix


def test_python_started_before_r_code_could_choose(ctx):
    probed(ctx, r_host={"python": {"config_python": sys.executable, "forced": "RETICULATE_PYTHON",
                                   "started_before_probe": True, "env": {}}})
    result = doctor.check_python_override(ctx)
    assert result.status == "fail" and "use_python() in R code would be ignored" in result.seen
    assert "RETICULATE_PYTHON before R starts" in result.fix


def test_r_loads_an_older_libstdcxx_than_python(ctx, tmp_path):
    # What the probes record when R's libstdc++ loads but lacks the newest versions (the files, as read here).
    old, new = tmp_path / "old" / "libstdc++.so.6", tmp_path / "new" / "libstdc++.so.6"
    for path, newest in ((old, 21), (new, 30)):
        path.parent.mkdir()
        path.write_bytes(b"\0".join(f"GLIBCXX_3.4.{n}".encode() for n in range(newest + 1)) + b"\0")
    probed(ctx, python={"platform": {"libstdcxx": {"libstdc++.so.6": str(new)}}},
           r_host={"python": {"libstdcxx": {"libstdc++.so.6": str(old)}}})
    result = doctor.check_libstdcxx(ctx)
    assert result.status == "fail"
    assert f"R host loads {old} (GLIBCXX up to 3.4.21), older than Python's {new} (up to 3.4.30)" in result.seen
    assert "R_LD_LIBRARY_PATH" in result.fix
