"""Where a run stands, on the console: one line per worker (phase, epoch, batch bar, loss, elapsed and ETA).

Three ways to show it, chosen by ``Printer``:
- ``live``: a terminal. A Rich live display with a row per worker, redrawn in place; messages print above it.
- ``plain``: not a terminal (CI, a log file). A line when a worker starts and ends, and one per finished epoch.
- ``verbose`` (``--verbose``): every progress line of every worker, per batch, as the workers print them.

Every line a worker prints also goes to its ``worker_output.log``, whatever is shown here.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field

BATCH_RE = re.compile(r"^epoch (\d+)/(\d+) batch (\d+)/(\d+) loss (\S+) elapsed ([\d.]+)s")
EPOCH_DONE_RE = re.compile(r"^epoch (\d+)/(\d+) done\b")
PHASE_RE = re.compile(r"^phase (\S+)")


@dataclass
class WorkerRow:
    """What the display knows of one worker, from its progress lines."""

    key: str
    state: str = "waiting"          # waiting, running, done, FAILED
    phase: str = ""
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    loss: str = ""
    train_elapsed: float = 0.0      # seconds since its training began, as the worker counts them
    started: float = field(default_factory=time.time)
    wall_s: float | None = None
    where: str = ""

    def update(self, line: str) -> None:
        """Take one progress line of the worker."""
        if m := PHASE_RE.match(line):
            self.phase = m.group(1)
        elif m := BATCH_RE.match(line):
            self.phase = "train"
            self.epoch, self.epochs, self.batch, self.batches = (int(m.group(k)) for k in range(1, 5))
            self.loss, self.train_elapsed = m.group(5), float(m.group(6))

    def eta_s(self) -> float | None:
        """Seconds of training left, from the batches done so far (None before the first batch)."""
        if not (self.batches and self.epochs and self.train_elapsed > 0):
            return None
        done = (self.epoch - 1) * self.batches + self.batch
        total = self.epochs * self.batches
        return self.train_elapsed * (total - done) / done if done else None


def duration(seconds: float | None) -> str:
    """``75.2`` -> ``1m15s``; ``None`` -> ``-``."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def choose_mode(stream, quiet: bool, verbose: bool) -> str:
    """``quiet``, ``verbose``, ``live`` (a terminal that can redraw) or ``plain``."""
    if quiet:
        return "quiet"
    if verbose:
        return "verbose"
    tty = hasattr(stream, "isatty") and stream.isatty()
    return "live" if tty and os.environ.get("TERM", "") != "dumb" else "plain"


class Printer:
    """Progress of a run: messages (``printer(text)``) and the workers' progress (``worker_started``,
    ``worker(key)`` as a spawn_worker ``on_progress`` callback, ``worker_finished``). Thread-safe: progress
    lines arrive on the threads that read the workers' output."""

    def __init__(self, stream=None, quiet: bool = False, verbose: bool = False, mode: str | None = None):
        self.stream = stream or sys.stdout
        self.mode = mode or choose_mode(self.stream, quiet, verbose)
        self.quiet = self.mode == "quiet"
        self.rows: dict[str, WorkerRow] = {}
        self._lock = threading.RLock()
        self._live = None

    # ------------------------------------------------------------------ messages

    def __call__(self, text: str) -> None:
        """Print one message line (above the live display, if one is shown)."""
        if self.quiet:
            return
        live = self._live
        if live is not None:  # Rich's console is thread-safe and keeps the display below the message
            live.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            print(text, file=self.stream, flush=True)

    # ------------------------------------------------------------------ workers

    def plan(self, keys) -> None:
        """The workers this run will start, shown as waiting until they do."""
        with self._lock:
            for key in keys:
                self.rows.setdefault(key, WorkerRow(key))

    def worker_started(self, key: str, where: str = "") -> None:
        """Worker ``key`` starts (on ``where``, a host or Dask worker, when not here)."""
        with self._lock:
            row = self.rows.setdefault(key, WorkerRow(key))
            row.state, row.started, row.where = "running", time.time(), where
        if self.mode == "live":
            self._start_live()
        else:
            self(f"worker {key}: started" + (f" on {where}" if where else ""))

    def worker(self, key: str):
        """An ``on_progress(impl, line)`` callback for worker ``key``."""
        def on_progress(impl, line):
            line = (line or "").strip()
            if not line:
                return
            with self._lock:
                row = self.rows.setdefault(key, WorkerRow(key, state="running"))
                row.update(line)
            if self.mode == "verbose" or (self.mode == "plain" and EPOCH_DONE_RE.match(line)):
                self(f"  [{key}] {line}")
        return on_progress

    def worker_finished(self, key: str, ok: bool, wall_s: float, error: str | None = None, note: str = "") -> None:
        """Worker ``key`` ended; a failure is printed as a line in every mode."""
        with self._lock:
            row = self.rows.setdefault(key, WorkerRow(key))
            row.state, row.wall_s = ("done" if ok else "FAILED"), wall_s
            all_ended = all(r.state in ("done", "FAILED") for r in self.rows.values())
        line = f"worker {key}: {'done' if ok else 'FAILED'} in {wall_s:.1f}s{note}" + ("" if ok else f": {error}")
        if self.mode != "live" or not ok:
            self(line)
        if all_ended:
            self.close()

    # ------------------------------------------------------------------ the live display

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        with self._lock:
            if self._live is not None:
                return
            self._live = Live(get_renderable=self._render, console=Console(file=self.stream), refresh_per_second=4,
                              transient=False, redirect_stdout=False, redirect_stderr=False)
        self._live.start()

    def _render(self):
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        with self._lock:  # a snapshot: the lock is never held while Rich draws or prints
            rows = list(self.rows.values())
        for row in rows:
            now = time.time()
            if row.state == "running":
                elapsed = now - row.started
                if row.batches:
                    done = (row.epoch - 1) * row.batches + row.batch
                    bar = ProgressBar(total=row.epochs * row.batches, completed=done, width=24)
                    what = f"epoch {row.epoch}/{row.epochs} batch {row.batch}/{row.batches}"
                else:
                    bar, what = "", ""
                table.add_row(row.key, row.phase or "start", bar, what,
                              f"loss {row.loss}" if row.loss else "",
                              f"{duration(elapsed)} ETA {duration(row.eta_s())}" if row.phase == "train"
                              else duration(elapsed))
            elif row.state == "waiting":
                table.add_row(row.key, "waiting", "", "", "", "")
            else:
                table.add_row(row.key, row.state, "", f"epoch {row.epoch}/{row.epochs}" if row.epochs else "",
                              f"loss {row.loss}" if row.loss else "", duration(row.wall_s))
        return table

    def close(self) -> None:
        """Stop the live display (its last state stays on screen); later messages print as plain lines."""
        with self._lock:
            live, self._live = self._live, None
        if live is not None:
            live.stop()
