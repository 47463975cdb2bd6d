"""The console while workers run (parity/run/progress.py): a quiet line per epoch in logs, every batch with
--verbose, a redrawn row per worker on a terminal. Fed with the workers' own progress lines."""

from __future__ import annotations

import io

from parity.run.progress import Printer, WorkerRow, choose_mode

# What a worker prints (python_impl/train.py, r_impl/R/train.R): 2 epochs of 3 batches.
WORKER_LINES = ["phase start pid 1", "phase data", "phase build", "phase train"] + [
    line for e in (1, 2) for line in
    [f"epoch {e}/2 batch {b}/3 loss 0.{e}{b}00 elapsed {3 * (e - 1) + b}.0s" for b in (1, 2, 3)]
    + [f"epoch {e}/2 done val_loss 0.5 val_iou 0.1 elapsed {3 * e}.0s"]] + ["phase evaluation", "phase done"]


def _feed(printer: Printer, keys=("python", "r-rscript")) -> None:
    printer.plan(keys)
    for key in keys:
        printer.worker_started(key)
        for line in WORKER_LINES:
            printer.worker(key)(key, line)
        printer.worker_finished(key, True, 12.5)
    printer("cross-loading the saved models in Python and R")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_not_a_terminal_prints_one_line_per_epoch_and_no_batch():
    out = io.StringIO()
    _feed(Printer(stream=out))
    lines = out.getvalue().splitlines()
    assert lines == ["worker python: started",
                     "  [python] epoch 1/2 done val_loss 0.5 val_iou 0.1 elapsed 3.0s",
                     "  [python] epoch 2/2 done val_loss 0.5 val_iou 0.1 elapsed 6.0s",
                     "worker python: done in 12.5s",
                     "worker r-rscript: started",
                     "  [r-rscript] epoch 1/2 done val_loss 0.5 val_iou 0.1 elapsed 3.0s",
                     "  [r-rscript] epoch 2/2 done val_loss 0.5 val_iou 0.1 elapsed 6.0s",
                     "worker r-rscript: done in 12.5s",
                     "cross-loading the saved models in Python and R"]


def test_verbose_prints_every_progress_line():
    out = io.StringIO()
    _feed(Printer(stream=out, verbose=True), keys=("python",))
    text = out.getvalue()
    assert all(f"  [python] {line}" in text for line in WORKER_LINES)
    assert text.count(" batch ") == 6


def test_quiet_prints_nothing():
    out = io.StringIO()
    _feed(Printer(stream=out, quiet=True))
    assert out.getvalue() == ""


def test_a_failed_worker_is_a_line_in_every_mode():
    for mode in ("plain", "live", "verbose"):
        out = _Terminal() if mode == "live" else io.StringIO()
        p = Printer(stream=out, mode=mode)
        p.worker_started("r-rpy2")
        p.worker_finished("r-rpy2", False, 3.0, "exit status 1: error: no package called 'reticulate'")
        assert "worker r-rpy2: FAILED in 3.0s: exit status 1: error: no package called 'reticulate'" in out.getvalue()


def test_a_terminal_gets_the_live_display_with_a_row_per_worker():
    out = _Terminal()
    p = Printer(stream=out)
    assert p.mode == "live"
    p.plan(["python", "r-rscript"])
    p.worker_started("python")
    for line in WORKER_LINES[:6]:  # into epoch 1, batch 2 of 3
        p.worker("python")("python", line)
    table = p._render()
    from rich.console import Console

    screen = io.StringIO()
    Console(file=screen, width=120).print(table)
    rows = screen.getvalue().splitlines()
    assert len(rows) == 2
    assert "python" in rows[0] and "train" in rows[0] and "epoch 1/2 batch 2/3" in rows[0] and "loss 0.1200" in rows[0]
    assert "ETA" in rows[0]
    assert "r-rscript" in rows[1] and "waiting" in rows[1]
    p.worker_finished("python", True, 12.5)
    p.worker_started("r-rscript")
    p.worker_finished("r-rscript", True, 11.0)
    assert p._live is None  # stopped once every worker ended: later messages print as plain lines


def test_eta_from_the_batches_done():
    row = WorkerRow("python")
    row.update("epoch 2/4 batch 1/10 loss 0.5 elapsed 22.0s")  # 11 of 40 batches in 22 s
    assert row.eta_s() == 58.0


def test_mode_follows_the_stream():
    assert choose_mode(io.StringIO(), quiet=False, verbose=False) == "plain"
    assert choose_mode(_Terminal(), quiet=False, verbose=False) == "live"
    assert choose_mode(_Terminal(), quiet=False, verbose=True) == "verbose"
    assert choose_mode(_Terminal(), quiet=True, verbose=True) == "quiet"
