"""``tailings-parity doctor``: the health check of R + reticulate + rpy2 + TensorFlow, seen from Python.

Three probes run side by side, each in its own child process with a time limit, and report as JSON:

* ``python``     the project's Python: TensorFlow, Keras, devices, the smoke fit (probes/python_side.py);
* ``r-host``     Rscript runs probes/probe.R: R, reticulate, the Python it picks, NumPy round trip,
                 TensorFlow, devices, the smoke fit;
* ``r-embedded`` a Python child starts R through rpy2 and sources the same probe.R (probes/embedded.py).

Each check reads what the probes saw and says ok / warn / fail / skip, what it saw, and the fix. A probe that
segfaults, aborts or hangs becomes a failed check with the last lines of its stderr; the doctor carries on.

    tailings-parity doctor                   # table (colour on a terminal)
    tailings-parity doctor --json            # one entry per check: name, status, seen, fix
    tailings-parity doctor --only r,rpy2     # a subset (the probes that subset needs, nothing else)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from parity.doctor.probes import R_PROBE
from parity.env import project_r_lib, r_environment
from parity.process import run_child

STATUS_ORDER = {"ok": 0, "warn": 1, "skip": 2, "fail": 3}
SIDE_LABEL = {"python": "Python", "r-host": "R host", "r-embedded": "R embedded"}
# reticulate versions (its NEWS.md): 1.31 fixed the segfault of long rpy2 sessions (#1236), 1.38 NumPy 2 (#1621).
RETICULATE_EMBEDDED_MIN = "1.31"
RETICULATE_NUMPY2_MIN = "1.38"
DEFAULT_TIMEOUT = 240.0

# check name -> (what it checks, {probe: [sections it reads]}), in the order of the table.
CHECKS: dict[str, tuple[str, dict[str, list[str]]]] = {
    "r": ("R found: which R, R_HOME, version", {"r-host": ["r"]}),
    "rpy2": ("rpy2 imports and starts R; rpy2 and R fit", {"r-embedded": ["rpy2"]}),
    "reticulate": ("reticulate installed, new enough for rpy2 and NumPy 2", {"r-host": ["reticulate"]}),
    "embedded-python": ("embedded: reticulate attaches to the host Python", {"r-embedded": ["python"]}),
    "host-python": ("R as host: the Python reticulate picks", {"r-host": ["python"]}),
    "tensorflow": ("TensorFlow imports from R, same version as Python",
                   {"python": ["tensorflow"], "r-host": ["tensorflow"], "r-embedded": ["tensorflow"]}),
    "keras": ("Keras 3 (not legacy tf_keras), backend, same version",
              {"python": ["tensorflow"], "r-host": ["tensorflow"], "r-embedded": ["tensorflow"]}),
    "numpy": ("R array -> NumPy -> R, every element in place", {"r-host": ["numpy"], "r-embedded": ["numpy"]}),
    "devices": ("CPUs and GPUs seen from Python and from R",
                {"python": ["devices"], "r-host": ["devices"], "r-embedded": ["devices"]}),
    "smoke-fit": ("a tiny model fitted from R: finite loss", {"r-host": ["fit"], "r-embedded": ["fit"]}),
    "determinism": ("same seed: R and Python weights bit-identical",
                    {"python": ["fit"], "r-host": ["fit"], "r-embedded": ["fit"]}),
    "r-packages": ("R packages keras3, keras, tensorflow (information)", {"r-host": ["packages"]}),
    "python-override": ("no other Python wins silently: TENSORFLOW_PYTHON/KERAS_PYTHON, py_require, early start",
                        {"r-host": ["python"]}),
    "keras-config": ("one keras.json: backend, floatx, epsilon, image format, KERAS_HOME alike on every side",
                     {"python": ["keras_config"], "r-host": ["keras_config"], "r-embedded": ["keras_config"]}),
    "numpy-shadow": ("one NumPy: the Python's own, not a second copy on PYTHONPATH or in the user site",
                     {"python": ["platform"], "r-host": ["platform", "python"], "r-embedded": ["platform"]}),
    "r-keras-version": ("no R keras 2.x package beside Keras 3", {"r-host": ["packages"]}),
    "r-fork": ("a forked R child (parallel::mcparallel) after TensorFlow loads finishes", {"r-host": ["fork"]}),
    "libstdcxx": ("the libstdc++ R loads first is as new as Python's (GLIBCXX versions)",
                  {"python": ["platform"], "r-host": ["python"], "r-embedded": ["python"]}),
    "architecture": ("R and Python built for the same CPU architecture",
                     {"python": ["platform"], "r-host": ["platform"], "r-embedded": ["platform"]}),
    "cpu-features": ("the CPU has the AVX that TensorFlow's wheels need", {"python": ["platform"]}),
    "gpu-libraries": ("CUDA/cuDNN build, CUDA libraries loaded, LD_LIBRARY_PATH, XLA_FLAGS, ptxas on each side",
                      {"python": ["gpu"], "r-host": ["gpu"], "r-embedded": ["gpu"]}),
    "gpu-memory": ("GPU memory growth on, so that probes and workers share a GPU",
                   {"python": ["gpu"], "r-host": ["gpu"], "r-embedded": ["gpu"]}),
}
# Sections a section needs, per probe kind (the probes skip a section whose prerequisites did not pass).
PREREQUISITES = {
    "python": {"devices": ["tensorflow"], "fit": ["tensorflow"], "gpu": ["tensorflow"]},
    "r": {"numpy": ["python"], "platform": ["python"], "tensorflow": ["python"],
          "keras_config": ["python"], "devices": ["python", "tensorflow"],
          "gpu": ["python", "tensorflow"], "fit": ["python", "tensorflow"], "fork": ["python", "tensorflow"]},
}
R_SECTION_ORDER = ["r", "packages", "reticulate", "python", "numpy", "platform", "tensorflow", "keras_config",
                   "devices", "gpu", "fit", "fork"]
PY_SECTION_ORDER = ["platform", "tensorflow", "keras_config", "devices", "gpu", "fit"]
# R's parallelism that survives TensorFlow: separate processes, not forks of one that runs it.
PSOCK_FIX = ("do not fork R after TensorFlow has started (parallel::mclapply / mcparallel, future's multicore, "
             "doMC): use parallel::makePSOCKcluster() or future::plan(multisession) and load TensorFlow in each "
             "worker, or fork before TensorFlow loads")


@dataclass
class CheckResult:
    """One row of the report."""

    name: str
    status: str  # ok | warn | fail | skip
    seen: str
    fix: str = ""


@dataclass
class ProbeRun:
    """What one probe child left behind: its sections, where it stopped, how it ended."""

    name: str
    wanted: list[str]
    sections: dict = field(default_factory=dict)
    running: str | None = None
    started: bool = True
    not_started: str = ""
    returncode: int | None = None
    timed_out: bool = False
    timeout: float = 0.0
    stderr_tail: str = ""
    elapsed_s: float = 0.0

    def ended_badly(self) -> bool:
        """True when the child crashed, was killed or timed out."""
        return self.timed_out or (self.returncode not in (0, None))

    def how_it_ended(self) -> str:
        """A phrase for the report: 'timed out after 240 s', 'died with signal 11 (SIGSEGV)', 'exited 1'."""
        if self.timed_out:
            return f"timed out after {self.timeout:g} s and was killed"
        rc = self.returncode
        if rc is not None and rc < 0:
            try:
                sig = signal.Signals(-rc).name
            except ValueError:
                sig = "?"
            return f"died with signal {-rc} ({sig})"
        return f"exited with status {rc}"

    def outcome(self, section: str) -> tuple[str, object]:
        """('data', dict) | ('error', message) | ('skip', reason) for one section of this probe."""
        label = SIDE_LABEL.get(self.name, self.name)
        if not self.started:
            return "skip", f"{label} probe not run: {self.not_started}"
        if section in self.sections:
            value = self.sections[section]
            if value.get("skipped"):
                return "skip", f"{label}: {section} {value['skipped']}"
            if value.get("error"):
                # reticulate appends this hint to every Python error; it says nothing here.
                message = value["error"].replace("Run `reticulate::py_last_error()` for details.", "").strip()
                return "error", f"{label}: {message}"
            return "data", value
        first_missing = next((s for s in self.wanted if s not in self.sections), None)
        if self.running == section or (self.running is None and section == first_missing and self.ended_badly()):
            tail = f"; last stderr lines:\n{self.stderr_tail}" if self.stderr_tail else ""
            return "error", f"{label} probe {self.how_it_ended()} in section '{section}'{tail}"
        if self.ended_badly():
            where = f" in section '{self.running or first_missing}'"
            return "skip", f"{label} probe {self.how_it_ended()}{where} before reaching '{section}'"
        return "error", f"{label} probe ended ({self.how_it_ended()}) without reporting '{section}'"


@dataclass
class Context:
    """Everything the checks compare against: the expected Python, R, environment, and the probe results."""

    python: str
    python_prefix: str
    python_explicit: bool
    env: dict
    rscript: str | None
    r_home_arg: str | None
    numpy_version: str
    probes: dict = field(default_factory=dict)
    r_home_guess: str | None = None  # filled on first use: asking `R RHOME` costs a process


# --- known messages -> fixes ---------------------------------------------------------------------------------

def _known_problems(ctx: Context) -> list[tuple[str, str]]:
    """(regex, fix) for the messages recorded in R-PYTHON-TENSORFLOW.md and a few more seen here."""
    py = ctx.python
    rpy2_reinstall = (f"{py} -m pip uninstall -y rpy2 rpy2-rinterface rpy2-robjects && "
                      f"R_HOME=$(R RHOME) {py} -m pip install 'rpy2>=3.5.17,<3.6'")
    rlib = project_r_lib()
    venv_bin = str(Path(py).parent)
    return [
        # Crashes with a cause: before the libpython entry, whose words these messages also contain.
        (r"SIGILL|[Ii]llegal (instruction|operation|opcode)",
         "the CPU lacks an instruction that TensorFlow's wheel was built for (AVX, since TensorFlow 1.6): "
         "`grep -o -w avx /proc/cpuinfo` prints nothing on such a CPU; use a machine (or VM CPU model) with AVX, "
         "or a TensorFlow built without it; on Apple silicon run arm64 R and Python, not x86_64 ones under Rosetta"),
        (r"incompatible architecture|wrong ELF class|[Ee]xec format error",
         "R and Python are built for different CPU architectures (a 'have'/'need' pair names them); a shared "
         "libpython does not help: install R and Python for the same one (compare `Rscript -e 'R.version$arch'` "
         f"with `{py} -c 'import platform; print(platform.machine())'`), e.g. the arm64 R from CRAN with an "
         "arm64 Python on Apple silicon, then bash parity/setup.sh"),
        (r"GLIBCXX_[\d.]+'? not found|CXXABI_[\d.]+'? not found",
         "an older libstdc++ is found first (R's etc/ldpaths, R_LD_LIBRARY_PATH, LD_LIBRARY_PATH or a conda lib/ "
         "put it before the system's): take that folder out of LD_LIBRARY_PATH / R_LD_LIBRARY_PATH, or start R "
         "with LD_PRELOAD=$(gcc -print-file-name=libstdc++.so.6); the doctor's libstdcxx check names the "
         "libstdc++ each side loaded"),
        (r"compiled using NumPy 1\.x cannot be run in\s+NumPy 2|_ARRAY_API not found",
         "a module built for NumPy 1 (an old TensorFlow or another extension) meets NumPy 2: in the same venv "
         f"install a TensorFlow built for NumPy 2 ({py} -m pip install 'tensorflow-cpu>=2.18,<2.22') or "
         f"downgrade NumPy ({py} -m pip install 'numpy<2')"),
        (r"numpy\.core\.multiarray failed to import|numpy\.core\._multiarray_umath|"
         r"import numpy from its source directory",
         "a second NumPy shadows the venv's (a folder on PYTHONPATH, or the user site ~/.local/lib/python3.*/"
         "site-packages): unset PYTHONPATH, export PYTHONNOUSERSITE=1, or remove it "
         "(python -m pip uninstall numpy, run by the user that installed it there)"),
        (r"'what' must be a function or character string",
         "the R keras package (2.x) drives Keras 2 and fails with Keras 3: in R, remove.packages('keras'); "
         "install.packages('keras3'); then library(keras3) (this project itself needs neither)"),
        (r"C stack usage\s+\d+ is too close to the limit",
         "R ran on a thread that is not R's main thread (rpy2 called from a Python worker thread, a thread pool "
         "or Dask's threaded scheduler): call R only from the thread that started it, or run R work in "
         "processes (multiprocessing with the spawn start method)"),
        (r"libdevice not found|[Cc]an't find libdevice|[Cc]ouldn't (find|invoke) ptxas|ptxas.*not found",
         f"XLA needs CUDA's ptxas and libdevice, and R never puts the venv's bin/ on PATH: export "
         f"PATH={venv_bin}:$PATH before starting R (pip's nvidia-cuda-nvcc-cu12 puts ptxas there) and "
         "XLA_FLAGS=--xla_gpu_cuda_data_dir=<the folder holding nvvm/libdevice>"),
        (r"CUDA_ERROR_OUT_OF_MEMORY|failed to allocate .* from device|OOM when allocating",
         "another process holds the GPU's memory (TensorFlow takes all of it at start): export "
         "TF_FORCE_GPU_ALLOW_GROWTH=true for every R and Python process, or give each its own GPU with "
         "CUDA_VISIBLE_DEVICES"),
        (r"Loaded runtime CuDNN library: \S+ but source was compiled with|CUDNN_STATUS_(NOT_INITIALIZED|"
         r"VERSION_MISMATCH)|cuDNN version mismatch",
         "the cuDNN loaded is not the one TensorFlow was built with (tf.sysconfig.get_build_info()"
         "['cudnn_version']): install TensorFlow with its own CUDA libraries "
         f"({py} -m pip install 'tensorflow[and-cuda]') and take system CUDA folders out of LD_LIBRARY_PATH, "
         "for R and Python alike"),
        (r"Could not load dynamic library 'lib(cudart|cudnn|cublas|cufft|cusolver|cusparse)|"
         r"Cannot dlopen some GPU libraries",
         "TensorFlow found no CUDA libraries in this process: R's etc/ldpaths or the IDE rewrote "
         "LD_LIBRARY_PATH; give R the same LD_LIBRARY_PATH as Python (pip's CUDA libraries lie under "
         f"{Path(py).parent.parent}/lib/python3.*/site-packages/nvidia/*/lib)"),
        (r"[Pp]revious request to .?use_python|will be ignored|failed to initialize requested version of Python"
         r"|Python .* already initialized",
         "Python had already started in this R session (an .Rprofile, a package's .onLoad, an earlier "
         "reticulate call), so use_python() came too late: set RETICULATE_PYTHON before R starts "
         "(.Renviron, written by parity/setup.sh), or restart R and call use_python() first"),
        (r"py_require\(\).*not installed|[Rr]equirements.*declared.*not.*installed",
         f"reticulate is bound to a fixed Python (RETICULATE_PYTHON={py}) that lacks what py_require() "
         f"declared: install it there ({py} -m pip install <package>), or drop the py_require() call"),
        (r"undefined symbol: R_ParentEnv|symbol 'R_getVar' not found",
         "rpy2 >= 3.6 needs R >= 4.3 (R_getVar, R_ParentEnv are R 4.3 API); with R 4.2 use rpy2 3.5.x: "
         + rpy2_reinstall),
        (r"cannot import name 'SexpVectorCCompatibleAbstract'",
         "rpy2, rpy2-rinterface and rpy2-robjects of different versions are mixed; remove all three, then "
         "install one: " + rpy2_reinstall),
        (r"rpy2 in API mode cannot be built without R",
         "install R first (apt-get install -y --no-install-recommends r-base-core r-base-dev), then "
         f"R_HOME=$(R RHOME) {py} -m pip install 'rpy2>=3.5.17,<3.6'"),
        (r"No module named 'rpy2'",
         f"R_HOME=$(R RHOME) {py} -m pip install 'rpy2>=3.5.17,<3.6' (or: bash parity/setup.sh)"),
        (r"Required version of NumPy not available",
         f"this reticulate predates NumPy 2 (needs >= {RETICULATE_NUMPY2_MIN}): bash parity/setup.sh builds "
         f"reticulate 1.41 into {rlib}, and {rlib} must come first on the R library path (R_LIBS={rlib}:...)"),
        (r"PyThreadState_Get: the function must be called with the GIL held",
         f"reticulate too old to run embedded under rpy2 (R's GC finalises Python objects without the GIL): "
         f"use reticulate >= 1.41 from {rlib} (bash parity/setup.sh) and put {rlib} first on R_LIBS"),
        (r"too old to run embedded under rpy2",
         f"use reticulate >= 1.41 from {rlib} (bash parity/setup.sh) and put {rlib} first on R_LIBS"),
        (r"attempt to apply non-function",
         "a Python object imported with convert = FALSE is not an R function: call it with "
         "reticulate::py_call(layer, x), or import it with convert = TRUE"),
        (r"Unable to determine R library path|unable to open the base package|cannot find system Renviron"
         r"|R_HOME.*(does not|doesn't) exist",
         f"R_HOME ({ctx.env.get('R_HOME', 'unset')}) does not point at an R installation: unset R_HOME, "
         f"or export R_HOME={_r_home_guess(ctx) or '$(R RHOME)'}"),
        (r"R_HOME cannot be None|[Uu]nable to determine R home|R_HOME (is )?not (defined|set)",
         "rpy2 found no R: install R (apt-get install -y --no-install-recommends r-base-core r-base-dev) or "
         "export R_HOME=<the output of `R RHOME`>"),
        (r"there is no package called .jsonlite.",
         "apt-get install -y --no-install-recommends r-cran-jsonlite (or: bash parity/setup.sh)"),
        (r"there is no package called .reticulate.",
         f"bash parity/setup.sh (it builds reticulate >= 1.41 into {rlib}); R must see {rlib} on R_LIBS"),
        (r"No module named '(jax|torch|openvino)'",
         "Keras's backend (KERAS_BACKEND, or \"backend\" in keras.json) names one this Python lacks: unset "
         "KERAS_BACKEND and set \"backend\": \"tensorflow\" in keras.json, for R and Python alike (an R-only "
         "KERAS_BACKEND comes from ~/.Renviron, .Rprofile or a Sys.setenv before library(keras3))"),
        (r"No module named 'tensorflow'|No module named 'keras'",
         f"the Python that R uses has no TensorFlow/Keras: point reticulate at the project's venv "
         f"(unset RETICULATE_PYTHON, or export RETICULATE_PYTHON={py}), or install them there "
         f"(<that python> -m pip install 'tensorflow-cpu>=2.18,<2.22')"),
        (r"Keras cannot be imported|tf_keras",
         "unset TF_USE_LEGACY_KERAS: the project uses Keras 3 (`import keras`), not legacy tf_keras"),
        (r"libpython|shared librar",
         "reticulate needs a Python built with a shared libpython: make the venv from such a Python "
         "(Debian's python3, or pyenv with PYTHON_CONFIGURE_OPTS=--enable-shared), then bash parity/setup.sh"),
    ]


def diagnose(text: str, ctx: Context) -> str | None:
    """The fix for the first known message found in ``text``, or None."""
    for pattern, fix in _known_problems(ctx):
        if re.search(pattern, text or ""):
            return fix
    return None


def _r_home_guess(ctx: Context) -> str | None:
    """R_HOME of the R on PATH (what `R RHOME` prints), asked without the R_HOME under suspicion."""
    if ctx.r_home_guess is not None:
        return ctx.r_home_guess or None
    ctx.r_home_guess = ""
    r = shutil.which("R", path=ctx.env.get("PATH"))
    if not r:
        return None
    env = {k: v for k, v in ctx.env.items() if k != "R_HOME"}
    try:
        out = subprocess.run([r, "RHOME"], env=env, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    ctx.r_home_guess = out.stdout.strip()
    return ctx.r_home_guess or None


def is_r_home(path: str) -> bool:
    """True when ``path`` looks like an R installation (bin/R and the base package)."""
    p = Path(path)
    return (p / "bin" / "R").exists() and (p / "library" / "base").is_dir()


# --- running the probes ----------------------------------------------------------------------------------------

def _tail(text: str, lines: int = 12) -> str:
    """The last non-empty lines of a child's output."""
    kept = [ln for ln in (text or "").splitlines() if ln.strip()]
    return "\n".join(kept[-lines:])


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _with_prerequisites(sections: set[str], kind: str, order: list[str]) -> list[str]:
    wanted = set(sections)
    for s in sections:
        wanted.update(PREREQUISITES[kind].get(s, []))
    return [s for s in order if s in wanted]


def run_probes(ctx: Context, checks: list[str], timeout: float, workdir: Path) -> dict[str, ProbeRun]:
    """Run the probes the selected checks need, side by side, each with ``timeout`` seconds."""
    needed: dict[str, set[str]] = {}
    for name in checks:
        for probe, sections in CHECKS[name][1].items():
            needed.setdefault(probe, set()).update(sections)

    # Three probes start TensorFlow side by side: on a GPU each would take all of its memory
    # (CUDA_ERROR_OUT_OF_MEMORY) unless memory grows on demand. A value the user set is kept (and checked).
    probe_env = dict(ctx.env)
    probe_env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    jobs = {}
    if "python" in needed:
        wanted = _with_prerequisites(needed["python"], "python", PY_SECTION_ORDER)
        env = dict(probe_env, TP_DOCTOR_OUT=str(workdir / "python.json"), TP_DOCTOR_SECTIONS=",".join(wanted),
                   TP_DOCTOR_WEIGHTS=str(workdir / "python-weights.npz"))
        jobs["python"] = (ProbeRun("python", wanted), [sys.executable, "-m", "parity.doctor.probes.python_side"],
                          env, [workdir / "python.json"])
    if "r-host" in needed:
        wanted = _with_prerequisites(needed["r-host"], "r", R_SECTION_ORDER)
        env = dict(probe_env, TP_DOCTOR_MODE="host", TP_DOCTOR_OUT=str(workdir / "r-host.json"),
                   TP_DOCTOR_SECTIONS=",".join(wanted), TP_DOCTOR_WEIGHTS=str(workdir / "r-host-weights.npz"))
        run = ProbeRun("r-host", wanted)
        if not ctx.rscript:
            run.started, run.not_started = False, "no Rscript found (R is not installed or not on PATH)"
        jobs["r-host"] = (run, [ctx.rscript or "Rscript", str(R_PROBE)],
                          env, [workdir / "r-host.json"])
    if "r-embedded" in needed:
        r_wanted = _with_prerequisites(needed["r-embedded"] - {"rpy2"}, "r", R_SECTION_ORDER)
        env = dict(probe_env, TP_DOCTOR_MODE="embedded", TP_DOCTOR_OUT=str(workdir / "r-embedded.json"),
                   TP_DOCTOR_OUT_RPY2=str(workdir / "rpy2.json"), TP_DOCTOR_SECTIONS=",".join(r_wanted),
                   TP_DOCTOR_WEIGHTS=str(workdir / "r-embedded-weights.npz"),
                   TP_DOCTOR_RETICULATE_EMBEDDED_MIN=RETICULATE_EMBEDDED_MIN)
        jobs["r-embedded"] = (ProbeRun("r-embedded", ["rpy2", *r_wanted]),
                              [sys.executable, "-m", "parity.doctor.probes.embedded"], env,
                              [workdir / "rpy2.json", workdir / "r-embedded.json"])

    def one(name: str) -> ProbeRun:
        run, cmd, env, outputs = jobs[name]
        run.timeout = timeout
        if not run.started:
            return run
        try:
            child = run_child(cmd, env, timeout)
            run.returncode, run.timed_out, err, run.elapsed_s = (child.returncode, child.timed_out, child.stderr,
                                                                 child.seconds)
        except OSError as exc:
            run.started, run.not_started = False, f"could not start {cmd[0]}: {exc}"
            return run
        run.stderr_tail = _tail(err)
        for path in outputs:
            data = _read_json(path)
            run.sections.update(data.get("sections", {}))
            run.running = run.running or data.get("running")
        rpy2 = run.sections.get("rpy2")
        if name == "r-embedded" and rpy2 is not None and not rpy2.get("ok"):
            for s in run.wanted[1:]:
                run.sections.setdefault(s, {"ok": False, "skipped": "needs rpy2, which did not pass"})
        return run

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = {name: pool.submit(one, name) for name in jobs}
        return {name: f.result() for name, f in futures.items()}


# --- the checks ------------------------------------------------------------------------------------------------

def _worst(statuses: list[str]) -> str:
    return max(statuses, key=STATUS_ORDER.__getitem__) if statuses else "skip"


def _sides(ctx: Context, check: str, section: str, describe, default_fix) -> tuple[list, dict]:
    """Per-side (status, seen, fix) of one section, and the data of the sides that reported."""
    rows, datas = [], {}
    for probe in CHECKS[check][1]:
        if probe not in ctx.probes:
            continue
        kind, value = ctx.probes[probe].outcome(section)
        if kind == "data":
            datas[probe] = value
            rows.append(describe(probe, value))
        elif kind == "skip":
            rows.append(("skip", value, ""))
        else:
            rows.append(("fail", value, diagnose(value, ctx) or default_fix(probe, value)))
    return rows, datas


def _combine(name: str, rows: list[tuple[str, str, str]]) -> CheckResult:
    status = _worst([r[0] for r in rows])
    seen = "; ".join(r[1] for r in rows if r[1])
    fixes = []
    for st, _, fix in rows:
        if fix and st != "ok" and fix not in fixes:
            fixes.append(fix)
    return CheckResult(name, status, seen, " | ".join(fixes))


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v or "")[:3])


def check_r(ctx: Context) -> CheckResult:
    """Which R, its R_HOME, its version."""
    rows = []
    r_home_env = ctx.env.get("R_HOME")
    if r_home_env and not is_r_home(r_home_env):
        guess = _r_home_guess(ctx)
        source = "--r-home" if ctx.r_home_arg else "the environment"
        rows.append(("fail", f"R_HOME={r_home_env} (from {source}) is not an R installation (no bin/R and "
                             f"library/base there); rpy2 starts R from R_HOME",
                     f"unset R_HOME, or export R_HOME={guess or '$(R RHOME)'}"
                     + (f" / --r-home {guess}" if ctx.r_home_arg and guess else "")))
    if not ctx.rscript and ctx.r_home_arg:
        rows.append(("fail", f"--r-home {ctx.r_home_arg}: no bin/Rscript there",
                     f"--r-home {_r_home_guess(ctx) or '<the output of `R RHOME`>'}, or leave --r-home out"))
        return _combine("r", rows)
    if not ctx.rscript:
        rows.append(("fail", "no R found: neither R nor Rscript is on PATH",
                     "apt-get install -y --no-install-recommends r-base-core r-base-dev, then bash parity/setup.sh"))
        return _combine("r", rows)

    def describe(probe, d):
        status = "ok" if _version_tuple(d.get("version_number", "")) >= (4, 2) else "warn"
        fix = "" if status == "ok" else "R >= 4.2 is what this project is tested with (Debian 12's r-base-core)"
        return status, f"{d.get('version')} at {ctx.rscript}, R_HOME {d.get('r_home')}", fix

    more, _ = _sides(ctx, "r", "r", describe,
                     lambda p, m: f"run `{ctx.rscript} -e 'R.version.string'` to see why R does not start")
    return _combine("r", rows + more)


def check_rpy2(ctx: Context) -> CheckResult:
    """rpy2 imports and starts R in this process; rpy2 >= 3.6 needs R >= 4.3."""
    def describe(probe, d):
        rpy2_v, r_v = _version_tuple(d.get("version", "")), _version_tuple(d.get("r_version_number", ""))
        seen = f"rpy2 {d.get('version')} starts {d.get('r_version')} in-process (R_HOME {d.get('r_home')})"
        if rpy2_v >= (3, 6) and r_v < (4, 3):
            return "fail", seen + ": rpy2 3.6 does not fit R < 4.3", diagnose("R_getVar not found", ctx)
        if rpy2_v < (3, 5):
            return "warn", seen + ": older than the tested 3.5.17", diagnose("R_getVar not found", ctx)
        return "ok", seen, ""

    rows, _ = _sides(ctx, "rpy2", "rpy2", describe,
                     lambda p, m: f"R_HOME=$(R RHOME) {ctx.python} -m pip install --force-reinstall "
                                  f"'rpy2>=3.5.17,<3.6'")
    return _combine("rpy2", rows)


def check_reticulate(ctx: Context) -> CheckResult:
    """reticulate's version on the R library path, and whether an older copy shadows a newer one."""
    rlib = project_r_lib()

    def describe(probe, d):
        version, lib = d.get("version", ""), d.get("lib", "")
        copies = d.get("copies") or []
        seen = f"reticulate {version} from {lib}"
        if len(copies) > 1:
            seen += " (also: " + ", ".join(f"{c['version']} in {c['lib']}" for c in copies[1:]) + ")"
        v = _version_tuple(version)
        newer = [c for c in copies[1:] if _version_tuple(c["version"]) >= (1, 41)]
        if newer:
            fix = (f"reticulate {version} in {lib} is found before {newer[0]['version']} in {newer[0]['lib']}: "
                   f"put {newer[0]['lib']} first (R_LIBS={newer[0]['lib']}:...) or remove the old copy "
                   f"(R CMD REMOVE -l {lib} reticulate; Debian's: apt-get remove r-cran-reticulate)")
        else:
            fix = f"bash parity/setup.sh (builds reticulate >= 1.41 into {rlib}; {rlib} first on R_LIBS)"
        problems = []
        if v < _version_tuple(RETICULATE_EMBEDDED_MIN):
            problems.append("too old to run embedded under rpy2 (Fatal Python error: PyThreadState_Get: the "
                            "function must be called with the GIL held)")
        if v < _version_tuple(RETICULATE_NUMPY2_MIN) and _version_tuple(ctx.numpy_version) >= (2,):
            problems.append(f"too old for NumPy {ctx.numpy_version} (Required version of NumPy not available)")
        if problems:
            return "fail", seen + ": " + "; ".join(problems), fix
        if v < (1, 41):
            return "warn", seen + ": older than 1.41, the version tested here", fix
        return "ok", seen + f"; fits rpy2 (>= {RETICULATE_EMBEDDED_MIN}) and NumPy 2 (>= {RETICULATE_NUMPY2_MIN})", ""

    rows, _ = _sides(ctx, "reticulate", "reticulate", describe,
                     lambda p, m: f"bash parity/setup.sh (builds reticulate >= 1.41 into {rlib})")
    return _combine("reticulate", rows)


def check_embedded_python(ctx: Context) -> CheckResult:
    """Embedded under rpy2, reticulate must use the host process's Python, not start or load another."""
    run = ctx.probes.get("r-embedded")
    host = (run.sections.get("rpy2") or {}) if run else {}

    def describe(probe, d):
        same_pid = d.get("python_pid") == host.get("python_pid") == d.get("r_pid")
        same_exe = d.get("executable") == host.get("executable")
        seen = (f"host pid {host.get('python_pid')} {host.get('executable')}; reticulate sees pid "
                f"{d.get('python_pid')} {d.get('executable')} (R pid {d.get('r_pid')}, forced by {d.get('forced')})")
        if same_pid and same_exe:
            return "ok", "same interpreter: " + seen, ""
        return ("fail", "reticulate is not on the host's interpreter: " + seen,
                "reticulate must attach to the Python that runs rpy2: use reticulate >= 1.41 (bash parity/setup.sh) "
                "and do not set PYTHONHOME/PYTHONPATH for the embedded process")

    rows, _ = _sides(ctx, "embedded-python", "python", describe,
                     lambda p, m: "see the message; `Rscript -e 'reticulate::py_config()'` shows reticulate's view")
    if run and run.ended_badly() and all(r[0] == "ok" for r in rows):
        rows.append(("fail", f"the embedded process {run.how_it_ended()} after its checks; stderr:\n"
                             f"{run.stderr_tail}", diagnose(run.stderr_tail, ctx) or
                     "see the stderr lines; a crash at exit is reticulate/rpy2 finalising Python objects"))
    return _combine("embedded-python", rows)


def check_host_python(ctx: Context) -> CheckResult:
    """R as host: which Python reticulate picks, why, whether it is the expected one, shared libpython."""
    def describe(probe, d):
        exe, prefix = d.get("config_python") or d.get("executable"), d.get("prefix")
        env = d.get("env") or {}
        forced = d.get("forced")
        if forced and forced == "RETICULATE_PYTHON":
            why = f"RETICULATE_PYTHON={env.get('RETICULATE_PYTHON')}"
        elif forced:
            why = f"forced by {forced}"
        elif env.get("VIRTUAL_ENV"):
            why = f"the active virtualenv VIRTUAL_ENV={env['VIRTUAL_ENV']}"
        else:
            why = f"found on PATH ({d.get('path_python') or 'python3'})"
        seen = f"reticulate picks {exe} (because {why}), libpython {d.get('libpython')}"
        problems, fix = [], ""
        if os.path.normpath(prefix or "") != os.path.normpath(ctx.python_prefix):
            which = "--python" if ctx.python_explicit else "the project's (this doctor's)"
            problems.append(f"not {which} {ctx.python} (prefix {prefix} vs {ctx.python_prefix})")
            fix = (f"export RETICULATE_PYTHON={ctx.python} (or unset it: the project's R processes get it from "
                   f"parity/env.py, interactive R from .Renviron, written by parity/setup.sh)")
        if str(d.get("shared")) != "1":
            problems.append("its libpython is not a shared library")
            fix = diagnose("libpython", ctx)
        if problems:
            return "fail", seen + ": " + "; ".join(problems), fix
        return "ok", seen + ", shared libpython", ""

    rows, _ = _sides(ctx, "host-python", "python", describe,
                     lambda p, m: f"export RETICULATE_PYTHON={ctx.python} (a Python with a shared libpython)")
    return _combine("host-python", rows)


def check_tensorflow(ctx: Context) -> CheckResult:
    """TensorFlow imports on every side, with the Python side's version."""
    def describe(probe, d):
        return "ok", f"{SIDE_LABEL[probe]} {d.get('tensorflow')}", ""

    rows, datas = _sides(ctx, "tensorflow", "tensorflow", describe,
                         lambda p, m: f"run `{ctx.python} -c 'import tensorflow'` to see why TensorFlow fails")
    _versions_differ(ctx, datas, "tensorflow", "TensorFlow", rows)
    return _combine("tensorflow", rows)


def _versions_differ(ctx: Context, datas: dict, key: str, label: str, rows: list) -> dict:
    """Append a fail row to ``rows`` when the sides load different versions of ``key``; return the versions."""
    versions = {p: d.get(key) for p, d in datas.items()}
    if len(set(versions.values())) > 1:
        rows.append(("fail", f"{label} versions differ: " + ", ".join(f"{SIDE_LABEL[p]} {v}"
                                                                      for p, v in versions.items()),
                     f"R and Python must load the same {label}: export RETICULATE_PYTHON={ctx.python}"))
    return versions


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def check_keras(ctx: Context) -> CheckResult:
    """Keras 3 on the TensorFlow backend on every side; legacy Keras 2 (tf_keras) not requested."""
    def describe(probe, d):
        env = d.get("env") or {}
        label = SIDE_LABEL[probe]
        seen = f"{label} keras {d.get('keras')} backend {d.get('backend')}"
        if _truthy(env.get("TF_USE_LEGACY_KERAS")):
            if d.get("tf_keras_installed"):
                return ("fail", f"{seen}, but TF_USE_LEGACY_KERAS={env['TF_USE_LEGACY_KERAS']} makes tf.keras legacy "
                                f"Keras 2 (tf_keras {d.get('tf_keras_version')})",
                        "unset TF_USE_LEGACY_KERAS: the project uses Keras 3 on both sides")
            return ("fail", f"{seen}, but TF_USE_LEGACY_KERAS={env['TF_USE_LEGACY_KERAS']} asks for legacy Keras 2 "
                            f"and tf_keras is not installed: tf.keras fails ({d.get('tf_keras_error')})",
                    "unset TF_USE_LEGACY_KERAS: the project uses Keras 3 (`import keras`), not tf_keras")
        if _version_tuple(d.get("keras", ""))[:1] != (3,):
            return "fail", seen + ": not Keras 3", f"{ctx.python} -m pip install 'keras>=3.10,<4'"
        if d.get("backend") != "tensorflow":
            return ("fail", f"{seen} (KERAS_BACKEND={env.get('KERAS_BACKEND')})",
                    "unset KERAS_BACKEND or export KERAS_BACKEND=tensorflow")
        if d.get("tf_keras_error"):
            return "warn", f"{seen}; tf.keras fails: {d['tf_keras_error']}", "unset TF_USE_LEGACY_KERAS"
        return "ok", seen, ""

    rows, datas = _sides(ctx, "keras", "tensorflow", describe,
                         lambda p, m: f"run `{ctx.python} -c 'import keras'` to see why Keras fails")
    versions = _versions_differ(ctx, datas, "keras", "Keras", rows)
    if len(set(versions.values())) <= 1 and rows and all(r[0] == "ok" for r in rows):
        rows = [("ok", f"Keras {next(iter(versions.values()))} (not legacy tf_keras), backend tensorflow, on "
                       + ", ".join(SIDE_LABEL[p] for p in datas), "")]
    return _combine("keras", rows)


def check_numpy(ctx: Context) -> CheckResult:
    """A 2x3x4 R array with distinct values: each R [i,j,k] lands at NumPy [i-1,j-1,k-1] and comes back."""
    def describe(probe, d):
        label = SIDE_LABEL[probe]
        if d.get("ok"):
            return ("ok", f"{label}: all {d.get('elements_checked')} elements of a 2x3x4 array at [i-1,j-1,k-1] "
                          f"in NumPy {d.get('numpy')} ({d.get('dtype')}), back to R unchanged", "")
        bad = (d.get("misplaced") or [])[:3]
        return ("fail", f"{label}: shape {d.get('shape')}, round trip {d.get('round_trip')}; " + "; ".join(bad),
                "the R <-> NumPy conversion is wrong: use reticulate >= 1.41 (bash parity/setup.sh)")

    rows, _ = _sides(ctx, "numpy", "numpy", describe,
                     lambda p, m: f"run `Rscript -e 'reticulate::np_array(1:3)'` with RETICULATE_PYTHON={ctx.python}")
    return _combine("numpy", rows)


def check_devices(ctx: Context) -> CheckResult:
    """CPUs and GPUs seen by TensorFlow on every side; a GPU seen by one side and not another fails."""
    def count(d, kind):
        return sum(1 for x in d.get("devices") or [] if x.get("type") == kind)

    def describe(probe, d):
        if count(d, "CPU") == 0:
            return "fail", f"{SIDE_LABEL[probe]} sees no CPU device", "reinstall TensorFlow in the project's venv"
        return "ok", f"{SIDE_LABEL[probe]} {count(d, 'CPU')} CPU {count(d, 'GPU')} GPU", ""

    rows, datas = _sides(ctx, "devices", "devices", describe,
                         lambda p, m: f"run `{ctx.python} -c 'import tensorflow as tf; "
                                      f"print(tf.config.list_physical_devices())'`")
    gpus = {p: count(d, "GPU") for p, d in datas.items()}
    if len(set(gpus.values())) > 1:
        rows.append(("fail", "GPUs differ: " + ", ".join(f"{SIDE_LABEL[p]} {n}" for p, n in gpus.items()),
                     "both sides must load the same TensorFlow build and CUDA libraries: same venv "
                     f"(RETICULATE_PYTHON={ctx.python}), same CUDA_VISIBLE_DEVICES and LD_LIBRARY_PATH"))
    return _combine("devices", rows)


def check_smoke_fit(ctx: Context) -> CheckResult:
    """A tiny model fitted from R (host and embedded): the loss is finite."""
    def describe(probe, d):
        losses = d.get("losses") or []
        seen = f"{SIDE_LABEL[probe]} loss " + " -> ".join(f"{x:.6f}" if isinstance(x, float) else str(x)
                                                          for x in losses)
        if d.get("ok"):
            return "ok", seen, ""
        return "fail", seen + " (not finite)", "check the TensorFlow install: the same fit is finite elsewhere"

    rows, _ = _sides(ctx, "smoke-fit", "fit", describe,
                     lambda p, m: "see the message: the smoke fit is the 'fit' section of parity/doctor/probes/probe.R")
    return _combine("smoke-fit", rows)


def compare_weights(a_path: str, b_path: str) -> tuple[bool, str]:
    """Bit-for-bit comparison of two weight .npz files: (identical, what differs)."""
    import numpy as np

    from parity.artifacts.diffs import weights_diff

    with np.load(a_path) as a, np.load(b_path) as b:
        lines = weights_diff({k: a[k] for k in a.files}, {k: b[k] for k in b.files})
    return not lines, "; ".join(lines)


def check_determinism(ctx: Context) -> CheckResult:
    """The same tiny fit from Python and from R gives bit-identical weights (seed, op determinism, 1 thread)."""
    rows, datas = _sides(ctx, "determinism", "fit", lambda p, d: ("ok", "", ""),
                         lambda p, m: "see the smoke-fit check")
    reference = datas.get("python")
    for probe, d in datas.items():
        if probe == "python" or not reference:
            continue
        same, what = compare_weights(reference["weights"], d["weights"])
        if same:
            rows.append(("ok", f"{SIDE_LABEL[probe]} weights bit-identical to Python's "
                               f"({len(d.get('variables') or [])} variables)", ""))
        else:
            rows.append(("fail", f"{SIDE_LABEL[probe]} weights differ from Python's: {what}",
                         "both sides must use the same TensorFlow, thread settings and determinism flags "
                         "(TF_ENABLE_ONEDNN_OPTS, TF_DETERMINISTIC_OPS alike on both sides); "
                         "compare environment.json of the two workers"))
    return _combine("determinism", rows)


def check_r_packages(ctx: Context) -> CheckResult:
    """The R packages keras3, keras, tensorflow: information only."""
    def describe(probe, d):
        parts = [f"{p} {d[p]['version'] if d.get(p, {}).get('installed') else 'not installed'}"
                 for p in ("keras3", "keras", "tensorflow")]
        return "ok", ", ".join(parts) + " (information: the project reaches Keras through reticulate::import)", ""

    rows, _ = _sides(ctx, "r-packages", "packages", describe, lambda p, m: "")
    return _combine("r-packages", rows)


def _python_has(python: str, module: str, timeout: float = 30) -> tuple[str | None, bool | None]:
    """(sys.prefix, whether ``module`` is importable) of another interpreter, asked without importing it."""
    code = f"import importlib.util, sys; print(sys.prefix); print(importlib.util.find_spec({module!r}) is not None)"
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None, None
    lines = out.stdout.split()
    return (lines[0], lines[1] == "True") if out.returncode == 0 and len(lines) == 2 else (None, None)


def check_python_override(ctx: Context) -> CheckResult:
    """No other Python can win silently: TENSORFLOW_PYTHON / KERAS_PYTHON (copied into RETICULATE_PYTHON by the R
    tensorflow / keras packages' .onLoad), reticulate's managed (py_require, uv) environment, a Python started
    before the R code could choose one (use_python() then ignored)."""
    def describe(probe, d):
        env = d.get("env") or {}
        rows = []
        for var, package in (("TENSORFLOW_PYTHON", "tensorflow"), ("KERAS_PYTHON", "keras")):
            other = env.get(var)
            if not other:
                continue
            prefix, has_tf = _python_has(other, "tensorflow")
            if prefix and os.path.normpath(prefix) == os.path.normpath(ctx.python_prefix):
                continue
            what = ("which does not run" if prefix is None else
                    "which has no TensorFlow" if not has_tf else f"another Python (prefix {prefix})")
            rows.append(("fail", f"{var}={other}: the R {package} package's .onLoad copies it into "
                                 f"RETICULATE_PYTHON, so library({package}) switches R to {other}, {what} "
                                 f"(reticulate here uses {d.get('config_python')})",
                         f"unset {var} (or export {var}={ctx.python})"))
        declared = [r for r in d.get("declared_requirements") or [] if r != "numpy"]  # numpy: reticulate's own
        if d.get("ephemeral") or env.get("RETICULATE_PYTHON") == "managed" or d.get("forced") == "py_require()":
            rows.append(("fail", f"reticulate uses its uv-managed ephemeral environment ({d.get('config_python')}, "
                                 f"forced by {d.get('forced')}), not the project's venv",
                         f"export RETICULATE_PYTHON={ctx.python} (and drop RETICULATE_PYTHON=managed / "
                         f"RETICULATE_USE_MANAGED_VENV)"))
        elif declared:
            rows.append(("warn", f"py_require() declared {', '.join(declared)}, but reticulate is bound to "
                                 f"{d.get('config_python')} (forced by {d.get('forced')}): they are not installed "
                                 f"for you", diagnose("py_require() not installed", ctx)))
        if d.get("started_before_probe"):
            rows.append(("fail", "Python had already started before the probe's first line (an .Rprofile or site "
                                 "profile starts it): a use_python() in R code would be ignored",
                         diagnose("will be ignored", ctx)))
        if rows:
            return _worst([r[0] for r in rows]), "; ".join(r[1] for r in rows), " | ".join(r[2] for r in rows)
        overrides = ", ".join(f"{v} {'at the same Python' if env.get(v) else 'unset'}"
                              for v in ("TENSORFLOW_PYTHON", "KERAS_PYTHON"))
        return ("ok", f"{SIDE_LABEL[probe]}: {d.get('config_python')} forced by {d.get('forced')}, not ephemeral; "
                      f"{overrides}; Python started by the probe, not before", "")

    rows, _ = _sides(ctx, "python-override", "python", describe,
                     lambda p, m: f"export RETICULATE_PYTHON={ctx.python}")
    return _combine("python-override", rows)


KERAS_CONFIG_KEYS = ("backend", "floatx", "epsilon", "image_data_format", "keras_home")
KERAS_CONFIG_EXPECTED = {"backend": "tensorflow", "floatx": "float32", "image_data_format": "channels_last"}


def _keras_origin(probe: str, d: dict) -> str:
    """Which keras.json a side read and the variables that chose it (Python's os.environ, and R's where else)."""
    env, r_env = d.get("env") or {}, d.get("r_env")
    text = f"{SIDE_LABEL[probe]} reads {d.get('keras_json')}"
    for var in ("KERAS_HOME", "KERAS_BACKEND"):
        if env.get(var):
            text += f", {var}={env[var]}"
        if r_env is not None and r_env.get(var) != env.get(var):
            text += f" (R's {var}={r_env.get(var) or 'unset'}, Python's {env.get(var) or 'unset'})"
    return text


def check_keras_config(ctx: Context) -> CheckResult:
    """Keras reads keras.json from KERAS_HOME (or ~/.keras): every side must compute with the same settings."""
    rows, datas = _sides(ctx, "keras-config", "keras_config", lambda p, d: ("ok", "", ""),
                         lambda p, m: f"run `{ctx.python} -c 'import keras; print(keras.config.floatx())'`")
    rows = [r for r in rows if r[1]]
    differ = [k for k in KERAS_CONFIG_KEYS if len({str(d.get(k)) for d in datas.values()}) > 1]
    for key in differ:
        rows.append(("fail", f"{key} differs: " + ", ".join(f"{SIDE_LABEL[p]} {d.get(key)}" for p, d in datas.items()),
                     "one keras.json and one backend for R and Python: export the same KERAS_HOME (or none) and "
                     "the same KERAS_BACKEND (or none) for both (keras3 points KERAS_HOME at R's user cache when "
                     "~/.keras is absent, so `mkdir -p ~/.keras` or an explicit KERAS_HOME keeps them together), "
                     "then set floatx float32, image_data_format channels_last in that keras.json"))
    if differ:
        rows.append(("fail", "where from: " + "; ".join(_keras_origin(p, d) for p, d in datas.items()), ""))
    for p, d in datas.items():
        odd = [f"{k} {d.get(k)}" for k, v in KERAS_CONFIG_EXPECTED.items() if d.get(k) != v and k not in differ]
        if odd:
            rows.append(("warn", f"{SIDE_LABEL[p]}: {', '.join(odd)} (the project's model assumes "
                                 f"{', '.join(f'{k} {v}' for k, v in KERAS_CONFIG_EXPECTED.items())})",
                         f"edit {d.get('keras_json')} or unset KERAS_BACKEND"))
        if d.get("keras3_would_set_home"):
            rows.append(("warn", f"{SIDE_LABEL[p]}: ~/.keras does not exist and KERAS_HOME is unset: library(keras3) "
                                 f"would point KERAS_HOME at {d['keras3_would_set_home']}, away from Python's",
                         "mkdir -p ~/.keras (or export KERAS_HOME for R and Python alike)"))
    if datas and not differ:
        one = next(iter(datas.values()))
        rows.append(("ok", f"{', '.join(SIDE_LABEL[p] for p in datas)} alike: backend {one.get('backend')}, floatx "
                           f"{one.get('floatx')}, epsilon {one.get('epsilon')}, {one.get('image_data_format')}, "
                           f"{one.get('keras_json')}", ""))
    return _combine("keras-config", rows)


def _under(path: str, folder: str) -> bool:
    return bool(folder) and os.path.normpath(path).startswith(os.path.normpath(folder) + os.sep)


def check_numpy_shadow(ctx: Context) -> CheckResult:
    """Each side loads the NumPy of its own Python, and the same one; a copy on PYTHONPATH or in the user site
    shadows it (``numpy.core.multiarray failed to import`` when the versions part)."""
    r_host = ctx.probes.get("r-host")
    reticulate_numpy = ((r_host.sections.get("python") or {}).get("numpy_path") if r_host else None)

    def describe(probe, d):
        loaded = os.path.dirname(d.get("numpy_file") or "")
        copies = d.get("numpy_on_path") or []
        seen = f"{SIDE_LABEL[probe]} NumPy {d.get('numpy_version')} from {loaded}"
        own = _under(loaded, d.get("prefix", "")) or _under(loaded, d.get("base_prefix", ""))
        fix = diagnose("numpy.core.multiarray failed to import", ctx)
        if not own:
            where = ("PYTHONPATH" if any(_under(loaded, p) for p in (d.get("pythonpath") or "").split(":") if p)
                     else "the user site" if _under(loaded, d.get("user_site", "")) else "outside the Python")
            return "fail", f"{seen}: from {where}, not {d.get('prefix')}'s own", fix
        if len(copies) > 1:
            return "warn", f"{seen}; another NumPy lies on sys.path in {', '.join(copies[1:])}", fix
        return "ok", seen, ""

    rows, datas = _sides(ctx, "numpy-shadow", "platform", describe,
                         lambda p, m: f"run `{ctx.python} -c 'import numpy; print(numpy.__file__)'`")
    loaded = {p: os.path.dirname(d.get("numpy_file") or "") for p, d in datas.items()}
    if len(set(loaded.values())) > 1:
        rows.append(("fail", "the sides load different NumPy copies", "R and Python must load one NumPy: "
                     f"export RETICULATE_PYTHON={ctx.python}, and the same PYTHONPATH (best: none) for both"))
    if reticulate_numpy and "r-host" in loaded and os.path.normpath(reticulate_numpy) != loaded["r-host"]:
        rows.append(("warn", f"reticulate::py_config() names NumPy at {reticulate_numpy}, R host loaded "
                             f"{loaded['r-host']}", diagnose("numpy.core.multiarray failed to import", ctx)))
    if rows and all(r[0] == "ok" for r in rows) and len(set(loaded.values())) == 1:
        rows = [("ok", f"NumPy {next(iter(datas.values())).get('numpy_version')} from {next(iter(loaded.values()))} "
                       f"on {', '.join(SIDE_LABEL[p] for p in datas)}; no other copy on sys.path", "")]
    return _combine("numpy-shadow", rows)


def check_r_keras_version(ctx: Context) -> CheckResult:
    """The R keras package (2.x) drives Keras 2: beside Keras 3 its calls fail ('what' must be a function)."""
    try:
        py_keras = metadata.version("keras")
    except metadata.PackageNotFoundError:
        py_keras = ""

    def describe(probe, d):
        keras_r = d.get("keras") or {}
        if keras_r.get("installed") and _version_tuple(keras_r.get("version"))[:1] < (3,) \
                and _version_tuple(py_keras)[:1] == (3,):
            return ("fail", f"R package keras {keras_r.get('version')} is installed beside Keras {py_keras}: it "
                            f"drives Keras 2, so library(keras) code fails with \"'what' must be a function or "
                            f"character string\"", diagnose("'what' must be a function or character string", ctx))
        return "ok", (f"R keras {keras_r.get('version') if keras_r.get('installed') else 'not installed'}, "
                      f"Keras {py_keras or '?'} in Python: no Keras 2 R package beside Keras 3"), ""

    rows, _ = _sides(ctx, "r-keras-version", "packages", describe, lambda p, m: "")
    return _combine("r-keras-version", rows)


def check_r_fork(ctx: Context) -> CheckResult:
    """A forked R child (what parallel::mclapply does) after TensorFlow started: it must finish, not hang."""
    def describe(probe, d):
        threads = f"{d.get('intra_op_threads')} intra-op / {d.get('inter_op_threads')} inter-op threads"
        seen = (f"{SIDE_LABEL[probe]}: a forked R child (parallel::mcparallel) after TensorFlow started "
                f"({threads})")
        outcome = d.get("outcome")
        if outcome == "completed":
            return "ok", f"{seen} ran a TensorFlow op in {d.get('seconds', 0):.2f} s", ""
        if outcome == "hung":
            return ("fail", f"{seen} did not finish a 300x300 matmul in {d.get('limit'):g} s and was killed: "
                            f"TensorFlow's thread pools do not survive a fork", PSOCK_FIX)
        return "fail", f"{seen} failed: {outcome} {d.get('child_error') or ''}".strip(), PSOCK_FIX

    rows, _ = _sides(ctx, "r-fork", "fork", describe, lambda p, m: PSOCK_FIX)
    return _combine("r-fork", rows)


def glibcxx_newest(path: str) -> str | None:
    """The newest GLIBCXX_3.4.N version a libstdc++ file defines ('3.4.30'), read from its bytes; None if unreadable."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    found = [int(n) for n in re.findall(rb"GLIBCXX_3\.4\.(\d+)\x00", data)]
    return f"3.4.{max(found)}" if found else None


def check_libstdcxx(ctx: Context) -> CheckResult:
    """R may load its own libstdc++ (R's etc/ldpaths, R_LD_LIBRARY_PATH, a conda lib/) before Python's modules ask
    for theirs; an older one fails them with "version `GLIBCXX_3.4.N' not found"."""
    rows, datas = [], {}
    # Python records it in its platform section; R in its python section, after reticulate's C++ library loaded.
    for probe, section in (("python", "platform"), ("r-host", "python"), ("r-embedded", "python")):
        if probe not in ctx.probes:
            continue
        kind, value = ctx.probes[probe].outcome(section)
        if kind == "data":
            datas[probe] = value
        elif kind == "skip":
            rows.append(("skip", value, ""))
        else:
            rows.append(("fail", value, diagnose(value, ctx) or diagnose("GLIBCXX_3.4.30 not found", ctx)))
    loaded = {p: next(iter((d.get("libstdcxx") or {}).values()), None) for p, d in datas.items()}
    newest = {p: glibcxx_newest(path) if path else None for p, path in loaded.items()}
    known = {p: v for p, v in newest.items() if v}
    reference = max(known.values(), key=_version_tuple, default=None)
    older = [p for p, v in known.items() if _version_tuple(v) < _version_tuple(reference)]
    for p, v in known.items():
        if p in older:
            best = next(q for q, w in known.items() if w == reference)
            rows.append(("fail", f"{SIDE_LABEL[p]} loads {loaded[p]} (GLIBCXX up to {v}), older than "
                                 f"{SIDE_LABEL[best]}'s {loaded[best]} (up to {reference}): a module built for the "
                                 f"newer one fails there with \"version `GLIBCXX_...' not found\"",
                         diagnose("GLIBCXX_3.4.30 not found", ctx)))
    if known and not older:
        files = {loaded[p] for p in known}
        where = ", ".join(SIDE_LABEL[p] for p in known)
        rows.append(("ok", (f"{where}: {next(iter(files))} (GLIBCXX up to {reference})" if len(files) == 1 else
                            "; ".join(f"{SIDE_LABEL[p]} {loaded[p]} (GLIBCXX up to {known[p]})" for p in known)),
                     ""))
    for p in datas:
        if p not in known:
            rows.append(("ok", f"{SIDE_LABEL[p]}: no libstdc++ loaded at that point", ""))
    return _combine("libstdcxx", rows)


_MACHINE_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "arm64e": "aarch64"}


def check_architecture(ctx: Context) -> CheckResult:
    """R and the Python it loads are built for one architecture (else: 'incompatible architecture')."""
    def norm(machine):
        return _MACHINE_ALIASES.get((machine or "").lower(), (machine or "").lower())

    def describe(probe, d):
        r_arch, py_arch = d.get("r_arch"), d.get("python_machine")
        seen = (f"{SIDE_LABEL[probe]}: " + (f"R {r_arch}, " if r_arch else "")
                + f"Python {py_arch} ({d.get('pointer_bits')}-bit)")
        if r_arch and norm(r_arch) != norm(py_arch):
            return "fail", seen + ": different architectures", diagnose("incompatible architecture", ctx)
        return "ok", seen, ""

    rows, _ = _sides(ctx, "architecture", "platform", describe,
                     lambda p, m: diagnose(m, ctx) or "see the message")
    return _combine("architecture", rows)


def check_cpu_features(ctx: Context) -> CheckResult:
    """TensorFlow's x86 wheels need AVX; without it the first import dies with SIGILL (illegal instruction)."""
    def describe(probe, d):
        flags = d.get("cpu_flags")
        if flags is None:
            return "ok", "no /proc/cpuinfo here (not Linux): AVX not checked", ""
        if (d.get("python_machine") or "").lower() not in ("x86_64", "amd64"):
            return "ok", f"{d.get('python_machine')} CPU: AVX does not apply", ""
        if "avx" not in flags:
            return ("fail", f"the CPU has no AVX (flags seen: {', '.join(flags) or 'none of sse4_2, avx, avx2, fma'})"
                            ": TensorFlow's wheels die at import with SIGILL (illegal instruction)",
                    diagnose("SIGILL", ctx))
        return "ok", f"CPU flags {' '.join(flags)} (TensorFlow's wheels need avx)", ""

    rows, _ = _sides(ctx, "cpu-features", "platform", describe, lambda p, m: diagnose(m, ctx) or "see the message")
    return _combine("cpu-features", rows)


def _gpu_facts(d: dict) -> dict[str, str]:
    """What one side's gpu section recorded, as the words of the report."""
    build = d.get("build") or {}
    env = d.get("env") or {}
    return {"build": (f"CUDA build (CUDA {build.get('cuda_version')}, cuDNN {build.get('cudnn_version')})"
                      if build.get("is_cuda_build") else "CPU-only build"),
            "GPUs": str(d.get("gpus")),
            "CUDA libraries loaded": ", ".join(sorted(d.get("cuda_libraries") or {})) or "none",
            "libstdc++": ", ".join((d.get("libstdcxx") or {}).values()) or "?",
            "LD_LIBRARY_PATH": env.get("LD_LIBRARY_PATH") or "(unset)",
            "XLA_FLAGS": env.get("XLA_FLAGS") or "(unset)", "ptxas": d.get("ptxas") or "not on PATH"}


def _gpu_summary(datas: dict) -> str:
    """One phrase per fact: its value once where every side agrees, else each side's."""
    facts = {p: _gpu_facts(d) for p, d in datas.items()}
    parts = []
    for key in next(iter(facts.values()), {}):
        values = {p: f[key] for p, f in facts.items()}
        if len(set(values.values())) == 1:
            parts.append(f"{key} {next(iter(values.values()))}")
        else:
            parts.append(f"{key}: " + "; ".join(f"{SIDE_LABEL[p]} {v}" for p, v in values.items()))
    return f"{', '.join(SIDE_LABEL[p] for p in datas)}: " + ", ".join(parts)


def check_gpu_libraries(ctx: Context) -> CheckResult:
    """Where TensorFlow is a CUDA build: every side sees the GPUs, loads a cuDNN of the build's version, and
    finds ptxas for XLA. On a CPU-only build: what each side loaded, for the record."""
    rows, datas = _sides(ctx, "gpu-libraries", "gpu", lambda p, d: ("ok", "", ""),
                         lambda p, m: f"run `{ctx.python} -c 'import tensorflow as tf; "
                                      f"print(tf.sysconfig.get_build_info())'`")
    cuda = {p: d for p, d in datas.items() if (d.get("build") or {}).get("is_cuda_build")}
    gpus = {p: d.get("gpus") or 0 for p, d in cuda.items()}
    if gpus and max(gpus.values()) > 0:
        blind = [p for p, n in gpus.items() if n == 0]
        seeing = next(p for p, n in gpus.items() if n > 0)
        for p in blind:
            paths = {SIDE_LABEL[q]: (datas[q].get("env") or {}).get("LD_LIBRARY_PATH") or "(unset)"
                     for q in (seeing, p)}
            rows.append(("fail", f"{SIDE_LABEL[p]} sees no GPU where {SIDE_LABEL[seeing]} sees {gpus[seeing]} "
                                 f"(LD_LIBRARY_PATH: " + "; ".join(f"{k} {v}" for k, v in paths.items()) + ")",
                         diagnose("Cannot dlopen some GPU libraries", ctx)))
        for p, d in cuda.items():
            want = str((d.get("build") or {}).get("cudnn_version") or "")
            loaded = [n for n in (d.get("cuda_libraries") or {}) if n.startswith("libcudnn.so.")]
            majors = {re.sub(r"^libcudnn\.so\.(\d+).*", r"\1", n) for n in loaded}
            if want and majors and want.split(".")[0] not in majors:
                rows.append(("fail", f"{SIDE_LABEL[p]} loads {', '.join(loaded)}, TensorFlow was built with cuDNN "
                                     f"{want}", diagnose("CUDNN_STATUS_VERSION_MISMATCH", ctx)))
            if d.get("gpus") and not d.get("ptxas") and "xla_gpu_cuda_data_dir" not in (
                    (d.get("env") or {}).get("XLA_FLAGS") or ""):
                rows.append(("warn", f"{SIDE_LABEL[p]}: no ptxas on PATH and no --xla_gpu_cuda_data_dir in XLA_FLAGS: "
                                     "XLA-compiled models fail with 'libdevice not found' / 'Couldn't find ptxas'",
                             diagnose("libdevice not found", ctx)))
    if datas:
        rows.insert(0, ("ok", _gpu_summary(datas), ""))
    return _combine("gpu-libraries", rows)


def check_gpu_memory(ctx: Context) -> CheckResult:
    """Memory growth on every GPU of every side: TensorFlow otherwise takes the whole GPU at start, and the next
    process (the doctor's own probes, a second worker) fails with CUDA_ERROR_OUT_OF_MEMORY."""
    set_by = "you" if "TF_FORCE_GPU_ALLOW_GROWTH" in ctx.env else "the doctor, for its probes"

    def describe(probe, d):
        growth = d.get("memory_growth") or []
        value = (d.get("env") or {}).get("TF_FORCE_GPU_ALLOW_GROWTH")
        if not d.get("gpus"):
            return "ok", f"{SIDE_LABEL[probe]} no GPU (TF_FORCE_GPU_ALLOW_GROWTH={value}, set by {set_by})", ""
        if all(g is True for g in growth) or _truthy(value):
            return ("ok", f"{SIDE_LABEL[probe]} {d.get('gpus')} GPU, memory growth on "
                          f"(TF_FORCE_GPU_ALLOW_GROWTH={value})", "")
        return ("fail", f"{SIDE_LABEL[probe]} {d.get('gpus')} GPU with memory growth off "
                        f"(TF_FORCE_GPU_ALLOW_GROWTH={value}, set by {set_by}): each TensorFlow process takes the "
                        f"whole GPU", diagnose("CUDA_ERROR_OUT_OF_MEMORY", ctx))

    rows, datas = _sides(ctx, "gpu-memory", "gpu", describe, lambda p, m: diagnose(m, ctx) or "see the message")
    if datas and len(rows) == len(datas) and not any(d.get("gpus") for d in datas.values()):
        values = {(d.get("env") or {}).get("TF_FORCE_GPU_ALLOW_GROWTH") for d in datas.values()}
        rows = [("ok", f"no GPU on {', '.join(SIDE_LABEL[p] for p in datas)}; the probes ran with "
                       f"TF_FORCE_GPU_ALLOW_GROWTH={'/'.join(sorted(map(str, values)))} (set by {set_by})", "")]
    return _combine("gpu-memory", rows)


CHECK_FUNCTIONS = {
    "r": check_r, "rpy2": check_rpy2, "reticulate": check_reticulate, "embedded-python": check_embedded_python,
    "host-python": check_host_python, "tensorflow": check_tensorflow, "keras": check_keras,
    "numpy": check_numpy, "devices": check_devices, "smoke-fit": check_smoke_fit,
    "determinism": check_determinism, "r-packages": check_r_packages,
    "python-override": check_python_override, "keras-config": check_keras_config,
    "numpy-shadow": check_numpy_shadow, "r-keras-version": check_r_keras_version, "r-fork": check_r_fork,
    "libstdcxx": check_libstdcxx, "architecture": check_architecture, "cpu-features": check_cpu_features,
    "gpu-libraries": check_gpu_libraries, "gpu-memory": check_gpu_memory,
}


# --- output ----------------------------------------------------------------------------------------------------

COLOURS = {"ok": "\033[32m", "warn": "\033[33m", "fail": "\033[31;1m", "skip": "\033[36m"}


def render_table(results: list[CheckResult], colour: bool, width: int | None = None) -> str:
    """The readable report: one row per check, the fix under every row that is not ok."""
    width = width or max(80, min(shutil.get_terminal_size((120, 20)).columns, 160))
    name_w = max([len("check")] + [len(r.name) for r in results])
    indent = " " * (name_w + 10)
    lines = [f"{'check':<{name_w}}  status  seen", f"{'-' * name_w}  ------  {'-' * (width - name_w - 10)}"]
    for r in results:
        status = f"{r.status:<6}"
        if colour:
            status = f"{COLOURS[r.status]}{status}\033[0m"
        seen = textwrap.wrap(r.seen.replace("\n", " | "), width - len(indent)) or [""]
        lines.append(f"{r.name:<{name_w}}  {status}  {seen[0]}")
        lines += [indent + s for s in seen[1:]]
        if r.fix and r.status != "ok":
            fix = textwrap.wrap("fix: " + r.fix, width - len(indent))
            lines += [indent + s for s in fix]
    counts = {s: sum(1 for r in results if r.status == s) for s in STATUS_ORDER}
    lines.append("")
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no checks")
    return "\n".join(lines)


# --- CLI -------------------------------------------------------------------------------------------------------

def _check_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CHECKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown check(s) {', '.join(unknown) or '(none)'}; "
                                         f"choose from {', '.join(CHECKS)}")
    return names


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--timeout wants a positive number of seconds, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `tailings-parity doctor`."""
    parser.add_argument("--json", action="store_true", help="print JSON: one entry per check (name, status, seen, fix)")
    parser.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"time limit of each probe (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--python", metavar="PATH",
                        help="the Python that R as host should use (default: this doctor's, the project venv's)")
    parser.add_argument("--r-home", metavar="DIR", help="the R installation to check (default: R on PATH / R_HOME)")
    parser.add_argument("--only", type=_check_list, metavar="CHECK[,CHECK]",
                        help=f"run only these checks: {', '.join(CHECKS)}")
    parser.add_argument("--no-color", "--no-colour", dest="no_color", action="store_true", help="no colour")


def _python_prefix(python: str, timeout: float) -> str | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True,
                             timeout=min(timeout, 60))
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def build_context(args: argparse.Namespace) -> Context | str:
    """The expected Python and R, and the environment every probe child gets; a string is a usage error."""
    python_explicit = bool(args.python)
    python = os.path.abspath(args.python) if args.python else sys.executable
    if python_explicit:
        prefix = _python_prefix(python, args.timeout)
        if prefix is None:
            return f"--python {args.python}: not a Python interpreter that runs (try `{args.python} -V`)"
    else:
        prefix = sys.prefix
    env = r_environment(python=python)
    if python_explicit:
        env["RETICULATE_PYTHON"] = python  # an explicit --python wins over the environment's
    rscript = None
    if args.r_home:
        env["R_HOME"] = os.path.abspath(args.r_home)
        candidate = Path(env["R_HOME"]) / "bin" / "Rscript"
        rscript = str(candidate) if candidate.exists() else None
        # Rscript of the R asked for first on PATH: R's own scripts and rpy2 find R through it.
        env["PATH"] = f"{Path(env['R_HOME']) / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    else:
        rscript = shutil.which("Rscript", path=env.get("PATH"))
    try:
        numpy_version = metadata.version("numpy")
    except metadata.PackageNotFoundError:
        numpy_version = ""
    return Context(python=python, python_prefix=prefix, python_explicit=python_explicit, env=env,
                   rscript=rscript, r_home_arg=args.r_home, numpy_version=numpy_version)


def run_doctor(args: argparse.Namespace) -> tuple[list[CheckResult], dict]:
    """Run the probes and the checks; returns the results and the probe records (for --json)."""
    ctx = build_context(args)
    if isinstance(ctx, str):
        raise ValueError(ctx)
    checks = [n for n in CHECKS if not args.only or n in args.only]  # table order, whatever --only said
    with tempfile.TemporaryDirectory(prefix="tailings-doctor-") as tmp:
        ctx.probes = run_probes(ctx, checks, args.timeout, Path(tmp))
        results = []
        for name in checks:
            try:
                results.append(CHECK_FUNCTIONS[name](ctx))
            except Exception as exc:  # noqa: BLE001 - a broken check is a failed check, not a dead doctor
                results.append(CheckResult(name, "fail", f"the check itself failed: {type(exc).__name__}: {exc}",
                                           "report this as a bug of parity/doctor.py"))
    probes = {n: {"returncode": p.returncode, "timed_out": p.timed_out, "elapsed_s": round(p.elapsed_s, 2),
                  "started": p.started, "stopped_in": p.running} for n, p in ctx.probes.items()}
    return results, {"python": ctx.python, "rscript": ctx.rscript, "probes": probes}


def main(args: argparse.Namespace) -> int:
    """Run the doctor: 0 when no check fails, 1 when one does, 2 for a usage error."""
    t0 = time.monotonic()
    try:
        results, info = run_doctor(args)
    except ValueError as exc:
        print(f"tailings-parity doctor: {exc}", file=sys.stderr)
        return 2
    failed = any(r.status == "fail" for r in results)
    if args.json:
        print(json.dumps({"schema": "tailings-parity/doctor", "version": 1, "ok": not failed,
                          "elapsed_s": round(time.monotonic() - t0, 2), **info,
                          "checks": [asdict(r) for r in results]}, indent=2))
    else:
        colour = sys.stdout.isatty() and not args.no_color and "NO_COLOR" not in os.environ
        print(render_table(results, colour))
        print(f"doctor took {time.monotonic() - t0:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="tailings-parity doctor")
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
