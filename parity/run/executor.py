"""Where worker runs execute: one after another in this process, or as jobs on a Dask cluster.

One job = one worker run (a config, a seed, a language, a repeat) of one run folder. Both executors have the
same ``run(jobs, on_event) -> outcomes`` interface; ``tailings-parity run`` and ``tailings-parity sweep`` use them.

- ``SequentialExecutor``: ``spawn_worker`` straight into the run folder, one job after the other (the default of
  ``run``, and ``--parallel 1``).
- ``DaskExecutor``: each job runs ``execute_job`` on a Dask worker: it writes the job's config and manifest to a
  temporary folder there, makes sure the tiles are there (synthetic tiles are re-made from their seed, byte for
  byte; real tiles must sit at the same path), runs the ordinary worker process (``spawn_worker``) and returns
  the worker folder as a tar.gz with the ``WorkerResult``. The client fetches it as soon as the job ends and
  unpacks it into ``workers/<key>/`` of the run folder, so no shared file system is needed. A ``LocalCluster``
  of worker processes is started when no ``--scheduler`` is given.

Reads: the config.json and manifest.json of each job's run folder. Writes: ``workers/<key>/`` (the worker
folder, FORMATS.md "Worker output") of each job. Failure rules: a worker that fails (exit status != 0,
time-out, missing file) is an ordinary outcome with its output tail, never retried; a job lost with its Dask
worker (the process died, or its host dropped off the network: the scheduler drops a worker whose connection
went silent within ``distributed.comm.timeouts.tcp``, 30 s) is rescheduled once by the scheduler
(``distributed.scheduler.allowed-failures`` = 1 on the LocalCluster) and its outcome says so (``attempts`` 2,
``lost_workers``); lost twice, it fails. A finished job whose folder went with its worker before it came over
runs again too (Dask's own rule for lost results), and says so the same way.
"""

from __future__ import annotations

import io
import json
import os
import queue
import socket
import sys
import tarfile
import time
import uuid
from concurrent.futures import CancelledError
from dataclasses import asdict, dataclass, field
from pathlib import Path

from parity.errors import UsageError

EVENTS_TOPIC = "tailings-parity-jobs"
ALLOWED_FAILURES = 1  # a job lost with its Dask worker runs once more, not again
CONNECT_TIMEOUT = "5s"
WORKERS_TIMEOUT_S = 30.0  # how long a --scheduler may take to show its first Dask worker
TICK_S = 30.0  # a progress line at least this often while jobs run
TAIL_CHARS = 2000


# ---------------------------------------------------------------------------------------------- jobs

@dataclass
class WorkerJob:
    """One worker run to do: worker ``impl`` on the config and manifest of ``run_dir``, into ``workers/<key>``."""

    run_dir: Path
    key: str                  # worker folder name: <impl>[-s<seed>][-r<k>] (runner.worker_key)
    impl: str
    seed: int
    repeat: int
    config_path: Path
    manifest_path: Path
    timeout_s: float
    r_dir: str | None = None
    label: str = ""           # how progress lines name the job (the sweep prefixes its cell)

    @property
    def out_dir(self) -> Path:
        """The worker folder in the run folder (on the client)."""
        return Path(self.run_dir) / "workers" / self.key

    @property
    def name(self) -> str:
        """How progress lines and overlap records name the job."""
        return self.label or self.key


@dataclass
class JobOutcome:
    """How one job ended: the worker's result, and where and when it ran."""

    job: WorkerJob
    ok: bool
    returncode: int | None
    error: str | None
    stderr_tail: str
    wall_s: float
    phase: str | None
    host: str
    dask_worker: str | None = None
    started: float | None = None     # epoch seconds on the job's host
    finished: float | None = None
    attempts: int = 1                # 2: the Dask worker running it was lost and the job ran again
    lost_workers: list[str] = field(default_factory=list)
    shared_machine: bool = False     # other jobs (or the client's cross-loading) ran on the host meanwhile
    overlapping: list[str] = field(default_factory=list)

    def record(self) -> dict:
        """The harness.json worker record: the runner's fields, then where, when and how often it ran."""
        j = self.job
        return {"key": j.key, "impl": j.impl, "seed": j.seed, "repeat": j.repeat, "ok": self.ok,
                "returncode": self.returncode, "error": self.error, "wall_s": self.wall_s,
                "host": self.host, "dask_worker": self.dask_worker, "started": self.started,
                "finished": self.finished, "attempts": self.attempts, "resubmitted": self.attempts > 1,
                "lost_workers": self.lost_workers, "shared_machine": self.shared_machine,
                "overlapping_jobs": len(self.overlapping)}


def job_threads(config: dict, threads_per_job: int | None) -> dict:
    """The config a job gets: ``"auto"`` thread counts replaced by ``threads_per_job`` (explicit numbers kept).

    Jobs that share a machine each get their share of its cores, written into their config, so that timings and
    the thread setting recorded beside them mean what they say. ``None``: the config as it is (sequential).
    """
    if threads_per_job is None:
        return dict(config)
    out = dict(config)
    for key in ("threads_intra", "threads_inter"):
        if str(out.get(key)) == "auto":
            out[key] = int(threads_per_job)
    return out


def explicit_threads(config: dict) -> int | None:
    """``threads_intra`` as a number, or None for ``"auto"`` (all the cores the job may use)."""
    value = config.get("threads_intra", "auto")
    return None if str(value) == "auto" else int(value)


def machine_cores() -> int:
    """Cores this process may use (CPU affinity)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def local_cluster_size(config: dict, cores: int, parallel: int | None = None) -> tuple[int, int]:
    """(Dask worker processes, threads per job) on this machine so that jobs x threads <= cores.

    ``parallel`` fixes the number of workers (each job then gets ``cores // parallel`` threads unless the config
    names a number); otherwise ``"auto"`` threads count as all cores: ``max(1, cores // threads)`` workers.
    """
    threads = explicit_threads(config)
    if parallel:
        return parallel, threads or max(1, cores // parallel)
    threads = threads or cores
    return max(1, cores // threads), threads


# ---------------------------------------------------------------------------------------------- one job

def pack_folder(folder: Path) -> bytes:
    """A folder's files as tar.gz bytes (names relative to the folder)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=3) as tar:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buf.getvalue()


def unpack_folder(data: bytes, dest: Path) -> None:
    """Unpack ``pack_folder`` bytes into ``dest`` (created; only plain files inside it are accepted)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(dest, filter="data")


def job_spec(job: WorkerJob, task_key: str, forward_progress: bool) -> dict:
    """What a Dask worker needs to run ``job`` without the client's file system: texts, not paths."""
    config = json.loads(Path(job.config_path).read_text())
    synthetic = None
    if config.get("data") == "synthetic":
        synthetic = {k: int(config[f"synthetic_{k}"]) for k in ("count", "size", "seed")}
    return {"task_key": task_key, "key": job.key, "impl": job.impl, "timeout_s": job.timeout_s,
            "r_dir": job.r_dir, "config_text": Path(job.config_path).read_text(),
            "manifest_text": Path(job.manifest_path).read_text(), "synthetic": synthetic,
            "forward_progress": forward_progress}


def ensure_data(spec: dict) -> str | None:
    """Make sure the manifest's data folder exists on this machine; returns why not, or None.

    Synthetic tiles are made again from their seed at the same path (the generator writes the same bytes; the
    worker checks every file's sha256 against the manifest); real tiles must already be there.
    """
    from parity.data.synthetic import make_synthetic

    data_dir = Path(json.loads(spec["manifest_text"])["data_dir"])
    if data_dir.is_dir():
        return None
    host = socket.gethostname()
    if not spec.get("synthetic"):
        return (f"data folder {data_dir} does not exist on {host}: real tiles must sit at the same path on every "
                "Dask worker's machine (copy or mount them there; README, 'Sweeps on a cluster')")
    staging = data_dir.parent / f".{data_dir.name}.{uuid.uuid4().hex[:8]}"
    try:
        s = spec["synthetic"]
        make_synthetic(staging, s["count"], s["size"], s["seed"])
        try:
            staging.rename(data_dir)  # atomic: a job beside this one may have made it first
        except OSError:
            if not data_dir.is_dir():
                raise
    except OSError as exc:
        return f"cannot make the synthetic tiles at {data_dir} on {host}: {exc}"
    finally:
        if staging.exists():
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
    return None


def _current_dask_worker():
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _emit(worker, msg: dict) -> None:
    if worker is not None:
        try:
            worker.log_event(EVENTS_TOPIC, msg)
        except Exception:  # progress is for people; a lost event must not fail the job
            pass


def _failed_folder(impl: str, out: Path, error: str) -> dict:
    """status.json and worker_output.log of a job that could not start its worker; returns the result dict."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "worker_output.log").write_text(f"error: {error}\n")
    status = {"impl": impl, "ok": False, "error": error, "phase": None, "returncode": None,
              "stderr_tail": f"error: {error}", "wall_s": 0.0}
    (out / "status.json").write_text(json.dumps(status, indent=2) + "\n")
    return {**status, "out_dir": str(out)}


def execute_job(spec: dict) -> dict:
    """The body of one job on a Dask worker: run the worker process, return its folder (tar.gz) and result.

    Never raises for a worker failure (that is a result); an exception here is a harness bug or a full disk.
    """
    import shutil
    import tempfile

    from parity.run.workers import spawn_worker

    me = _current_dask_worker()
    info = {"host": socket.gethostname(), "pid": os.getpid(), "dask_worker": me.address if me else None}
    started = time.time()
    _emit(me, {"event": "start", "task": spec["task_key"], "time": started, **info})
    tmp = Path(tempfile.mkdtemp(prefix="tailings-parity-job-"))
    try:
        (tmp / "config.json").write_text(spec["config_text"])
        (tmp / "manifest.json").write_text(spec["manifest_text"])
        out = tmp / spec["key"]
        problem = ensure_data(spec)
        if problem:
            result = _failed_folder(spec["impl"], out, problem)
        else:
            def forward(impl, line):
                _emit(me, {"event": "line", "task": spec["task_key"], "line": line})

            res = spawn_worker(spec["impl"], tmp / "config.json", tmp / "manifest.json", out,
                               timeout_s=float(spec["timeout_s"]), r_dir=spec.get("r_dir"),
                               on_progress=forward if spec.get("forward_progress") else None)
            result = asdict(res)
        return {"result": result, "archive": pack_folder(out), "started": started, "finished": time.time(), **info}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- progress

class JobBoard:
    """Counts of the jobs (finished / failed / running / waiting) and an ETA from the durations seen so far."""

    def __init__(self, jobs: list[WorkerJob], slots: int, total: int | None = None):
        self.total = len(jobs) if total is None else total
        self.slots = max(1, slots)
        self.waiting: dict[int, str] = {id(j): j.impl for j in jobs}
        self.unseen: list[str] = []  # languages of jobs counted in ``total`` but not submitted yet
        self.running: dict[int, tuple[str, float]] = {}
        self.done = 0
        self.failed = 0
        self.resubmitted = 0
        self.durations: dict[str, list[float]] = {}

    def add(self, job: WorkerJob) -> None:
        """A job submitted after the board was made (counted in ``total`` already)."""
        if job.impl in self.unseen:
            self.unseen.remove(job.impl)
        self.waiting[id(job)] = job.impl

    def started(self, job: WorkerJob) -> None:
        """A job began (again, after a lost worker: its clock restarts)."""
        self.waiting.pop(id(job), None)
        self.running[id(job)] = (job.impl, time.time())

    def finished(self, outcome: JobOutcome) -> None:
        """A job ended."""
        self.waiting.pop(id(outcome.job), None)
        self.running.pop(id(outcome.job), None)
        if outcome.ok:
            self.done += 1
            self.durations.setdefault(outcome.job.impl, []).append(outcome.wall_s)
        else:
            self.failed += 1

    def eta_s(self) -> float | None:
        """Seconds until every job has ended (mean duration per language over the free slots), None before
        the first job finished."""
        seen = [d for ds in self.durations.values() for d in ds]
        if not seen:
            return None
        mean_all = sum(seen) / len(seen)

        def expect(impl):
            ds = self.durations.get(impl)
            return sum(ds) / len(ds) if ds else mean_all

        now = time.time()
        left = sum(max(0.0, expect(impl) - (now - t)) for impl, t in self.running.values())
        left += sum(expect(impl) for impl in list(self.waiting.values()) + self.unseen)
        return left / self.slots

    def line(self) -> str:
        """``jobs 3/8 finished (0 failed), 2 running, ETA 1m05s``."""
        text = (f"jobs {self.done + self.failed}/{self.total} finished ({self.failed} failed), "
                f"{len(self.running)} running")
        if self.resubmitted:
            text += f", {self.resubmitted} resubmitted"
        eta = self.eta_s()
        if eta is not None and self.done + self.failed < self.total:
            text += f", ETA {_duration(eta)}" if eta >= 5 else ", ETA <5s"
        return text


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


# ---------------------------------------------------------------------------------------------- executors

class SequentialExecutor:
    """One job after the other in this process, each ``spawn_worker`` writing straight into its run folder."""

    kind = "sequential"

    def __init__(self):
        self.slots = 1

    def describe(self) -> dict:
        """What ran the jobs, for harness.json and the sweep's record."""
        return {"kind": self.kind, "slots": 1, "threads_per_job": None, "host": socket.gethostname()}

    @property
    def threads_per_job(self) -> int | None:
        """None: the config's own setting ("auto" = all cores: nothing else runs beside the job)."""
        return None

    def run(self, jobs: list[WorkerJob], on_event=None, forward_progress: bool = False):
        """Run ``jobs`` in order; yields a JobOutcome per job. ``on_event(kind, job, info)``: "start", and "line"
        (a progress line) with ``forward_progress``."""
        from parity.run.workers import spawn_worker

        host = socket.gethostname()
        for job in jobs:
            started = time.time()
            if on_event:
                on_event("start", job, {"host": host, "dask_worker": None, "time": started})
            res = spawn_worker(job.impl, job.config_path, job.manifest_path, job.out_dir, timeout_s=job.timeout_s,
                               r_dir=job.r_dir,
                               on_progress=(lambda impl, line, job=job: on_event("line", job, {"line": line}))
                               if on_event and forward_progress else None)
            yield JobOutcome(job=job, ok=res.ok, returncode=res.returncode, error=res.error,
                             stderr_tail=res.stderr_tail[-TAIL_CHARS:], wall_s=res.wall_s, phase=res.phase,
                             host=host, started=started, finished=time.time())

    def close(self) -> None:
        """Nothing to release."""


def _task_suspicious(dask_scheduler=None, keys=()):
    """On the scheduler: how many Dask workers died while running each task (its ``suspicious`` count)."""
    return {k: (dask_scheduler.tasks[k].suspicious if k in dask_scheduler.tasks else None) for k in keys}


def _worker_probe() -> dict:
    """On each Dask worker: where it runs, with which Python, and whether it finds this project."""
    import parity

    return {"host": socket.gethostname(), "cores": machine_cores(), "python": sys.executable,
            "project": str(Path(parity.__file__).resolve().parent.parent)}


class DaskExecutor:
    """Jobs on Dask: a LocalCluster of ``n_workers`` processes (1 thread each) or a running ``scheduler``."""

    kind = "dask"

    def __init__(self, scheduler: str | None = None, n_workers: int | None = None, threads_per_job: int | None = None,
                 dashboard: bool = False, client=None):
        """Start a LocalCluster (``n_workers``), connect to ``scheduler``, or use ``client`` (tests).

        Raises UsageError (exit 2) when ``--scheduler`` cannot be reached within 5 s or shows no worker.
        """
        import dask
        import logging

        from distributed import Client, LocalCluster

        self.cluster = None
        self.scheduler = scheduler
        self._threads = threads_per_job
        self.dashboard = dashboard
        if dashboard:
            import importlib.util

            if importlib.util.find_spec("bokeh") is None:
                raise UsageError("--dashboard needs bokeh", fix="pip install 'bokeh>=3.1' (or leave out --dashboard)")
        self._own_client = client is None
        if client is not None:
            self.client = client
        elif scheduler:
            try:
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as exc:
                raise UsageError(f"cannot reach the Dask scheduler: {exc}", where=f"--scheduler {scheduler}",
                                 fix="start one with `dask scheduler` and `dask worker tcp://HOST:8786 --nthreads 1` "
                                     "(README, 'Sweeps on a cluster'), or leave out --scheduler for a LocalCluster "
                                     "on this machine") from None
            try:
                self.client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
            except (TimeoutError, OSError):
                self.client.close()
                raise UsageError(f"the Dask scheduler has no worker after {WORKERS_TIMEOUT_S:.0f} s",
                                 where=f"--scheduler {scheduler}",
                                 fix=f"start workers: dask worker {scheduler} --nthreads 1 --nworkers N") from None
        else:
            with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
                self.cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                            dashboard_address=":8787" if dashboard else None,
                                            silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        try:
            self.workers = self._probe()
        except BaseException:
            self.close()
            raise

    def _probe(self) -> dict:
        """Every Dask worker's host, cores and project; UsageError when one cannot import this project."""
        got = self.client.run(_worker_probe, on_error="return")
        bad = {addr: v for addr, v in got.items() if isinstance(v, BaseException)}
        if bad:
            addr, exc = next(iter(bad.items()))
            raise UsageError(f"{len(bad)} Dask worker(s) cannot run jobs of this project ({addr}: "
                             f"{type(exc).__name__}: {exc})", where=f"--scheduler {self.scheduler}",
                             fix="start the Dask workers with this project's Python (.venv/bin/dask worker ...) on "
                                 "machines set up with `make setup`")
        return got

    @property
    def slots(self) -> int:
        """Jobs that can run at once: the workers' threads."""
        return max(1, sum(w["nthreads"] for w in self.client.scheduler_info(n_workers=-1)["workers"].values()))

    @property
    def threads_per_job(self) -> int:
        """Threads each job may use: the given number, else per machine its cores over its Dask worker threads
        (the smallest over the machines, so that every job of a cell uses the same setting)."""
        if self._threads:
            return self._threads
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        per_host: dict[str, list] = {}
        for addr, w in info.items():
            probe = self.workers.get(addr) or {}
            per_host.setdefault(w.get("host"), []).append((probe.get("cores") or 1, w["nthreads"]))
        shares = [max(1, cores // sum(n for _, n in ws)) for ws in per_host.values() for cores, _ in ws[:1]]
        return min(shares) if shares else 1

    def describe(self) -> dict:
        """What ran the jobs, for harness.json and the sweep's record."""
        info = self.client.scheduler_info(n_workers=-1)
        hosts = sorted({w.get("host") for w in info["workers"].values()})
        return {"kind": "dask-localcluster" if self.cluster is not None else "dask-scheduler",
                "scheduler": info.get("address"), "workers": len(info["workers"]), "slots": self.slots,
                "threads_per_job": self.threads_per_job, "hosts": hosts,
                "dashboard": self.cluster.dashboard_link if self.cluster is not None and self.dashboard else None}

    def run(self, jobs: list[WorkerJob], on_event=None, forward_progress: bool = False):
        """Submit every job, yield a JobOutcome per job as it ends (any order).

        ``on_event(kind, job, info)``: "start" (a Dask worker began it), "line" (a progress line, with
        ``forward_progress``), "resubmitted" (it started again after its worker was lost).
        """
        from distributed import KilledWorker

        token = uuid.uuid4().hex[:6]
        inbox: queue.Queue = queue.Queue()
        by_task: dict[str, WorkerJob] = {}
        starts: dict[str, list[dict]] = {}

        def on_log_event(event):
            inbox.put(("event", event[1]))

        def fetch(fut):
            """In Dask's callback thread, as soon as a job ends: its folder comes over and the job is released.
            Left on its Dask worker until this client got round to it (a run's cross-loading and report take a
            while), a finished job would go with a host that drops off the network meanwhile."""
            try:
                got = fut.result()  # data lost before it came: Dask runs the job again and this waits for that
            except BaseException as exc:  # the job's failure, recorded as its outcome
                got = exc
            lost = 0
            try:
                lost = self.client.run_on_scheduler(_task_suspicious, keys=[fut.key]).get(fut.key) or 0
                fut.release()
            except Exception:  # the scheduler or this client is gone: the start events count the attempts
                pass
            inbox.put(("done", (fut.key, got, lost)))

        self.client.subscribe_topic(EVENTS_TOPIC, on_log_event)
        futures = {}
        left: set[str] = set()
        try:
            # ``jobs`` may be a generator that prepares run folders: the first jobs run while it makes the next.
            for i, job in enumerate(jobs):
                task = task_key(job, token)
                by_task[task] = job
                fut = self.client.submit(execute_job, job_spec(job, task, forward_progress), key=task, pure=False,
                                         priority=-i, retries=0)  # earlier jobs first: runs finish in order
                fut.add_done_callback(fetch)
                futures[task] = fut
                left.add(task)
            while left:
                try:
                    kind, item = inbox.get(timeout=TICK_S)
                except queue.Empty:
                    if on_event:
                        on_event("tick", None, {})
                    continue
                if kind == "event":
                    job = by_task.get(item.get("task"))
                    if job is None or item["task"] not in left:  # another run's job, or a late event
                        continue
                    if item.get("event") == "start":
                        starts.setdefault(item["task"], []).append(item)
                        if on_event:
                            if len(starts[item["task"]]) > 1:
                                on_event("resubmitted", job, {"lost_worker": starts[item["task"]][-2]["dask_worker"],
                                                              **item})
                            else:
                                on_event("start", job, item)
                    elif item.get("event") == "line" and on_event:
                        on_event("line", job, item)
                    continue
                task, got, lost = item
                if task not in left:
                    continue
                left.discard(task)
                yield self._outcome(by_task[task], got, lost, starts.get(task, []), KilledWorker)
        finally:
            for task in left:
                futures[task].cancel()
            try:
                self.client.unsubscribe_topic(EVENTS_TOPIC)
            except Exception:  # a client already closed by a lost scheduler: nothing left to unsubscribe
                pass

    def _outcome(self, job: WorkerJob, got, lost: int, starts: list[dict], killed_worker_type) -> JobOutcome:
        """Unpack a finished job (``got``: its result, or the exception it ended with) into its run folder; a job
        that raised becomes a failed outcome. ``lost``: the Dask workers lost while it ran (the scheduler's
        count); ``starts``: its start events, one per attempt that got to send one."""
        attempts = max(1 + lost, len(starts), 1)
        lost_workers = [s.get("dask_worker") for s in starts[:-1]]
        lost_workers += [None] * (attempts - 1 - len(lost_workers))
        last = starts[-1] if starts else {}
        if isinstance(got, dict):
            unpack_folder(got["archive"], job.out_dir)
            r = got["result"]
            return JobOutcome(job=job, ok=bool(r["ok"]), returncode=r.get("returncode"), error=r.get("error"),
                              stderr_tail=(r.get("stderr_tail") or "")[-TAIL_CHARS:], wall_s=float(r.get("wall_s") or 0),
                              phase=r.get("phase"), host=got["host"], dask_worker=got["dask_worker"],
                              started=got["started"], finished=got["finished"], attempts=attempts,
                              lost_workers=lost_workers)
        if isinstance(got, killed_worker_type):
            error = (f"lost with its Dask worker {ALLOWED_FAILURES + 1} times ({got}); not run again: look at the "
                     "Dask workers' memory and logs, and whether their hosts stay on the network")
            attempts = ALLOWED_FAILURES + 1
        elif isinstance(got, CancelledError):
            error = "the job was cancelled (the scheduler or this client went away)"
        else:
            error = f"the job raised {type(got).__name__}: {got}"
        status = _failed_folder(job.impl, job.out_dir, error)
        return JobOutcome(job=job, ok=False, returncode=None, error=error, stderr_tail=status["stderr_tail"],
                          wall_s=0.0, phase=None, host=last.get("host") or "?", dask_worker=last.get("dask_worker"),
                          started=last.get("time"), finished=time.time(), attempts=attempts,
                          lost_workers=lost_workers)

    def close(self) -> None:
        """Close the client, and the LocalCluster if this executor started it."""
        try:
            if self._own_client:
                self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()


def task_key(job: WorkerJob, token: str) -> str:
    """The Dask key of a job: language, seed, config hash and repeat, plus this submission's token (identical
    keys would be merged by Dask, and two runs of the same config may share a cluster)."""
    import hashlib

    digest = hashlib.sha256(Path(job.config_path).read_bytes()).hexdigest()[:8]
    return f"tailings-parity-{job.impl}-s{job.seed}-c{digest}-r{job.repeat}-{token}"


# ---------------------------------------------------------------------------------------------- helpers

def mark_shared(outcomes: list[JobOutcome], others: list[tuple[str, float, float | None, str]] = ()) -> None:
    """Mark each outcome whose run overlapped, on the same host, another job of ``outcomes`` or an interval of
    ``others`` (host, start, end or None while still running, label): its timings were taken on a shared machine."""
    spans = [(o.host, o.started, o.finished, o.job.name, id(o)) for o in outcomes if o.started is not None]
    spans += [(h, a, b, label, None) for h, a, b, label in others]
    for o in outcomes:
        if o.started is None or o.finished is None:
            continue
        o.overlapping = sorted({label for host, a, b, label, ident in spans
                                if ident != id(o) and host == o.host and a < o.finished
                                and (b is None or b > o.started)})
        o.shared_machine = bool(o.overlapping)


def run_jobs(executor, jobs: list[WorkerJob], printer, after_repeat=None) -> tuple[list[dict], float]:
    """Run one run folder's worker jobs on ``executor`` (``run``, ``bench``), showing each worker's progress;
    returns the harness.json worker records in job order and the seconds spent in ``after_repeat``.

    ``after_repeat(run_dir, repeat)`` runs when the last job of a repeat (of the first seed) has ended: the
    sequential executor starts the next job only after it (bench's plain fits then see the machine the workers
    saw); on Dask, jobs run at once, so it runs for every repeat once all have ended."""
    board = JobBoard(jobs, executor.slots)
    outcomes: dict[int, JobOutcome] = {}
    printer.plan(job.key for job in jobs)
    last_of_repeat = {}
    for job in jobs:
        if job.seed == jobs[0].seed:
            last_of_repeat[job.repeat] = id(job)
    t_hooks = 0.0

    def hook(repeat):
        nonlocal t_hooks
        t = time.time()
        after_repeat(jobs[0].run_dir, repeat)
        t_hooks += time.time() - t

    def on_event(kind, job, info):
        if kind == "start":
            board.started(job)
            printer.worker_started(job.key, info.get("dask_worker") or "")
        elif kind == "resubmitted":
            board.resubmitted += 1
            board.started(job)
            printer(f"worker {job.key}: its Dask worker {info.get('lost_worker')} was lost; the scheduler runs the "
                    f"job again on {info.get('dask_worker')} (once)")
        elif kind == "line":
            printer.worker(job.key)(job.impl, info["line"])

    sequential = executor.kind == "sequential"
    for outcome in executor.run(jobs, on_event, forward_progress=True):
        board.finished(outcome)
        outcomes[id(outcome.job)] = outcome
        again = f" (attempt {outcome.attempts}: its Dask worker was lost)" if outcome.attempts > 1 else ""
        printer.worker_finished(outcome.job.key, outcome.ok, outcome.wall_s, outcome.error, note=again)
        if not sequential:
            printer(f"  {board.line()}")
        if after_repeat and sequential and last_of_repeat.get(outcome.job.repeat) == id(outcome.job):
            hook(outcome.job.repeat)
    if after_repeat and not sequential:
        for repeat in sorted(last_of_repeat):
            hook(repeat)
    ordered = [outcomes[id(j)] for j in jobs]
    mark_shared(ordered)
    return [o.record() for o in ordered], t_hooks


def make_executor(config: dict, *, parallel: int | None = None, scheduler: str | None = None,
                  dashboard: bool = False, default_cluster: bool = False):
    """The executor that ``--parallel`` / ``--scheduler`` / ``--dashboard`` ask for: without them, jobs one after
    another here; ``default_cluster``: without either option, a LocalCluster sized to the cores (``sweep``).

    Raises UsageError (exit 2, before anything is written) for a bad combination or an unreachable scheduler.
    """
    if parallel is not None and parallel < 1:
        raise UsageError(f"--parallel {parallel}: give 1 (one job after the other) or more")
    if scheduler and parallel is not None:
        raise UsageError("--parallel and --scheduler: choose one (the cluster behind --scheduler sets how many "
                         "jobs run at once)")
    if dashboard and not (scheduler or default_cluster or (parallel or 1) > 1):
        raise UsageError("--dashboard shows a Dask cluster: add --parallel N (N > 1) or --scheduler")
    if scheduler:
        return DaskExecutor(scheduler=scheduler, threads_per_job=explicit_threads(config), dashboard=dashboard)
    if parallel == 1 or (parallel is None and not default_cluster):
        return SequentialExecutor()
    cores = machine_cores()
    n_workers, threads = local_cluster_size(config, cores, parallel)
    return DaskExecutor(n_workers=n_workers, threads_per_job=threads, dashboard=dashboard)
