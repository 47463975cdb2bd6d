"""Spawn one training worker in a fresh process, with a time limit, and turn any ending into a result.

Three workers, one contract (config, manifest, output folder; FORMATS.md "Worker output"):
- ``python``:    ``python -m python_impl.worker`` (the reference);
- ``r-rpy2``:    ``python -m parity.run.workers --embedded-r``: a Python process that starts R through rpy2 and runs
                 r_impl (R drives Keras through reticulate on this same interpreter);
- ``r-rscript``: ``Rscript r_impl/worker.R``: R as host, reticulate bound to the project's Python.

``spawn_worker`` never raises for a worker failure: a crash (signal, fatal Python error, R error), a missing
artifact or a time-out becomes ``WorkerResult(ok=False)`` with the reason and the last lines of output, and
``status.json`` is written in every case. ``tailings-parity worker`` is the same from the command line.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from parity import process
from parity.artifacts.contract import required_files
from parity.env import PROJECT_ROOT, R_IMPL_DIR, r_environment

from python_impl.config import load_rules

IMPLS = tuple(load_rules()["workers"])  # the first is the reference
# Files a finished worker must have written: the contract's table in FORMATS.md ("Worker output").
REQUIRED_FILES = required_files("worker")
TAIL_LINES = 40
# A worker that prints without end must not grow the harness: lines are read in pieces of at most LINE_MAX_BYTES,
# the tail keeps TAIL_LINES of them (each cut to TAIL_LINE_CHARS), and worker_output.log stops at LOG_MAX_BYTES
# (a last line says how much more the worker printed). The pipe is always drained, so the worker never blocks.
LINE_MAX_BYTES = 64 * 1024
TAIL_LINE_CHARS = 2000
LOG_MAX_BYTES = 32 * 1024 * 1024
PROGRESS_RE = re.compile(r"^(phase \S+( .*)?|epoch \d+/\d+ .*)$")


@dataclass
class WorkerResult:
    """How one worker run ended."""

    impl: str
    ok: bool
    returncode: int | None
    error: str | None
    stderr_tail: str
    wall_s: float
    out_dir: str
    phase: str | None = None


def worker_command(impl: str, config_path, manifest_path, out_dir, r_dir=None) -> list[str]:
    """The command line that runs worker ``impl`` in a fresh process."""
    common = ["--config", str(config_path), "--manifest", str(manifest_path), "--out", str(out_dir)]
    if impl == "python":
        return [sys.executable, "-u", "-m", "python_impl.worker", *common]
    if impl == "r-rpy2":
        extra = ["--r-dir", str(r_dir)] if r_dir else []
        return [sys.executable, "-u", "-m", "parity.run.workers", "--embedded-r", *common, *extra]
    if impl == "r-rscript":
        extra = ["--r-dir", str(r_dir)] if r_dir else []
        return ["Rscript", "--no-save", "--no-restore", str(R_IMPL_DIR / "worker.R"), *common, *extra]
    raise ValueError(f"unknown worker {impl!r}; use one of {', '.join(IMPLS)}")


def worker_environment(impl: str, launched_at: float) -> dict:
    """Environment of a worker process: R's (project library, RETICULATE_PYTHON), unbuffered output, launch time."""
    env = r_environment(python=sys.executable)
    env["PYTHONUNBUFFERED"] = "1"
    env["TAILINGS_PARITY_LAUNCHED_AT"] = repr(launched_at)
    env["TAILINGS_PARITY_IMPL"] = impl
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _describe_exit(returncode: int, tail: list[str]) -> str:
    """One line saying why a worker ended without success."""
    text = "\n".join(tail)
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        reason = f"killed by {name}"
        if "Fatal Python error" in text:
            reason += " after a fatal Python error"
        return reason
    errors = [line for line in tail if line.startswith("error: ") or line.startswith("Error")]
    if "Fatal Python error" in text:
        fatal = [line for line in tail if "Fatal Python error" in line]
        return f"exit status {returncode}: {fatal[-1].strip()}"
    if errors:
        return f"exit status {returncode}: {errors[-1].strip()}"
    return f"exit status {returncode}"


def spawn_worker(impl: str, config_path, manifest_path, out_dir, *, timeout_s: float, r_dir=None,
                 on_progress=None, log_max_bytes: int = LOG_MAX_BYTES) -> WorkerResult:
    """Run worker ``impl`` in a fresh process group and wait at most ``timeout_s`` seconds.

    Streams progress lines (``phase ...``, ``epoch ...``) to ``on_progress(impl, line)``; the output also goes
    to ``out_dir/worker_output.log``, up to ``log_max_bytes`` (then a last line says how much more came). On
    time-out the whole process group is killed (TERM, then KILL); the worker dies with this process too
    (``parity.process``). Always writes ``out_dir/status.json`` and returns a WorkerResult; never raises for a
    worker failure (a full disk while writing status.json raises OSError: that is no worker's failure).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ["status.json", "progress.log", *REQUIRED_FILES]:
        (out_dir / stale).unlink(missing_ok=True)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    phase = [None]
    launched_at = time.time()
    try:
        proc = process.start(worker_command(impl, config_path, manifest_path, out_dir, r_dir),
                             worker_environment(impl, launched_at), PROJECT_ROOT, merge_stderr=True)
    except (OSError, ValueError) as exc:
        return _finish(impl, out_dir, False, None, f"could not start the worker: {exc}", [], launched_at, None)

    output = {"bytes": 0, "logged": 0, "log_error": None}

    def pump():
        try:
            log = open(out_dir / "worker_output.log", "wb")
        except OSError as exc:  # e.g. a full disk: keep draining the pipe, say so in status.json
            log, output["log_error"] = None, str(exc)
        while True:
            raw = proc.stdout.readline(LINE_MAX_BYTES)  # bounded: a line without end arrives in pieces
            if not raw:
                break
            output["bytes"] += len(raw)
            if log is not None and output["logged"] + len(raw) <= log_max_bytes:
                try:
                    log.write(raw)
                    log.flush()
                    output["logged"] += len(raw)
                except OSError as exc:
                    output["log_error"] = str(exc)
                    log = None
            line = raw.decode("utf-8", "replace").rstrip("\n")
            tail.append(line if len(line) <= TAIL_LINE_CHARS else
                        line[:TAIL_LINE_CHARS] + f" ... [{len(line) - TAIL_LINE_CHARS} more characters]")
            if PROGRESS_RE.match(line):
                if line.startswith("phase "):
                    phase[0] = line.split()[1]
                if on_progress is not None:
                    try:
                        on_progress(impl, line)
                    except Exception:  # a broken callback must not stall the pipe
                        pass
        if log is not None:
            try:
                if output["bytes"] > output["logged"]:
                    log.write(f"\n[worker_output.log truncated at {log_max_bytes} bytes: the worker printed "
                              f"{output['bytes']} bytes; status.json holds the last lines]\n".encode())
                log.close()
            except OSError as exc:
                output["log_error"] = str(exc)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        process.stop(proc)
    except KeyboardInterrupt:
        process.stop(proc)
        raise
    reader.join(timeout=10)
    rc = proc.returncode
    lines = list(tail)
    seen = {"output_bytes": output["bytes"], "log_truncated": output["bytes"] > output["logged"],
            "log_error": output["log_error"]}
    if timed_out:
        return _finish(impl, out_dir, False, rc, f"timed out after {timeout_s:g} s (phase {phase[0]}); "
                       "the process group was killed", lines, launched_at, phase[0], seen)
    if rc != 0:
        return _finish(impl, out_dir, False, rc, _describe_exit(rc, lines), lines, launched_at, phase[0], seen)
    missing = [f for f in REQUIRED_FILES if not (out_dir / f).is_file()]
    if missing:
        return _finish(impl, out_dir, False, rc, f"exit status 0 but missing {', '.join(missing)}", lines,
                       launched_at, phase[0], seen)
    return _finish(impl, out_dir, True, rc, None, lines, launched_at, phase[0], seen)


def _finish(impl, out_dir: Path, ok: bool, rc, error, lines, launched_at, phase, seen=None) -> WorkerResult:
    result = WorkerResult(impl=impl, ok=ok, returncode=rc, error=error, stderr_tail="\n".join(lines),
                          wall_s=time.time() - launched_at, out_dir=str(out_dir), phase=phase)
    status = {"impl": impl, "ok": ok, "error": error, "phase": phase, "returncode": rc,
              "stderr_tail": result.stderr_tail, "wall_s": result.wall_s,
              **(seen or {"output_bytes": 0, "log_truncated": False, "log_error": None})}
    path = out_dir / "status.json"
    try:
        path.write_text(json.dumps(status, indent=2) + "\n")
    except OSError as exc:  # e.g. a full disk: the runner names the folder; say which file
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    return result


def run_embedded_r(config_path, manifest_path, out_dir, r_dir=None) -> int:
    """The r-rpy2 worker's body: start R in this Python process through rpy2 and run r_impl's worker.

    R's console output goes to this process's stdout/stderr so that the spawner sees progress and errors.
    """
    from parity.env import prepare_embedded_r

    prepare_embedded_r()
    import rpy2.rinterface_lib.callbacks as callbacks

    callbacks.consolewrite_print = lambda text: (sys.stdout.write(text), sys.stdout.flush())
    callbacks.consolewrite_warnerror = lambda text: (sys.stderr.write(text), sys.stderr.flush())
    import rpy2.robjects as ro

    entry = R_IMPL_DIR / "worker.R"
    ro.r["source"](str(entry))
    ro.globalenv[".r_impl_dir"] = str(R_IMPL_DIR)
    args = ["--config", str(config_path), "--manifest", str(manifest_path), "--out", str(out_dir)]
    if r_dir:
        args += ["--r-dir", str(r_dir)]
    status = ro.globalenv["worker_main"](ro.StrVector(args), str(R_IMPL_DIR))
    return int(status[0])


def check_worker_inputs(config_path, manifest_path) -> dict:
    """The config of a worker checked against ``[schema]``, the rules that name the data counted on the
    manifest's tiles (as the worker itself does); returns the config, or raises ConfigError / ManifestError."""
    from python_impl.config import ConfigError, check_config, read_config
    from python_impl.manifest import ManifestError, read_manifest

    manifest = read_manifest(manifest_path)
    try:
        n_tiles = sum(len(manifest[split]) for split in ("train", "val", "test"))
    except (KeyError, TypeError):
        raise ManifestError(f"{manifest_path}: no train, val and test tile lists") from None
    try:
        config = read_config(config_path)
    except ValueError as exc:
        raise ConfigError(f"--config {config_path}: not JSON ({exc})") from None
    return check_config(config, n_tiles)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tailings-parity worker``."""
    parser.add_argument("--impl", required=True, choices=IMPLS, help="which worker")
    parser.add_argument("--config", required=True, help="resolved config.json of the run")
    parser.add_argument("--manifest", required=True, help="manifest.json of the run")
    parser.add_argument("--out", required=True, help="worker output folder")
    parser.add_argument("--r-dir", default=None, help="folder of R sources to use instead of r_impl/R")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds before the worker is killed (default: config worker_timeout_s)")


def main(args: argparse.Namespace) -> int:
    """``tailings-parity worker``: spawn one worker, print its progress, exit 0 if it succeeded, else 1; bad
    input raises UsageError, ConfigError or ManifestError (exit 2) before the output folder is made."""
    from parity.errors import UsageError

    for name in ("config", "manifest"):
        if not Path(getattr(args, name)).is_file():
            raise UsageError(f"--{name} {getattr(args, name)}: no such file")
    if args.r_dir and not Path(args.r_dir).is_dir():
        raise UsageError(f"--r-dir {args.r_dir}: no such folder")
    config = check_worker_inputs(args.config, args.manifest)  # the config's rules on the manifest's tiles
    timeout = float(config["worker_timeout_s"]) if args.timeout is None else args.timeout
    result = spawn_worker(args.impl, Path(args.config).resolve(), Path(args.manifest).resolve(),
                          Path(args.out).resolve(), timeout_s=timeout, r_dir=args.r_dir and Path(args.r_dir).resolve(),
                          on_progress=lambda impl, line: print(f"[{impl}] {line}", flush=True))
    if result.ok:
        print(f"{args.impl}: ok in {result.wall_s:.1f} s -> {result.out_dir}")
        return 0
    print(f"{args.impl}: FAILED ({result.error}); last output:\n{result.stderr_tail}", file=sys.stderr)
    return 1


def _embedded_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity.run.workers --embedded-r")
    parser.add_argument("--embedded-r", action="store_true", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--r-dir", default=None)
    args = parser.parse_args(argv)
    try:
        return run_embedded_r(args.config, args.manifest, args.out, args.r_dir)
    except Exception as exc:  # recorded: rpy2 could not start R, or R failed outside worker_main's handler
        from python_impl.worker import report_failure

        return report_failure(exc)


if __name__ == "__main__":
    status = _embedded_main(sys.argv[1:])
    # The worker's files are written and closed: skip the teardown of TensorFlow and R at exit (about 1.5 s of the
    # worker's wall time); R's session folder is removed first, as R's own exit would.
    if "rpy2.robjects" in sys.modules:
        try:
            sys.modules["rpy2.robjects"].r("unlink(tempdir(), recursive = TRUE)")
        except Exception:  # R in a broken state: leaving its folder is better than hiding the worker's status
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
