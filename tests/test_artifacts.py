"""The artifact layer: the run-folder reader and the error module (the contract: tests/test_contract.py).

Fast: no TensorFlow, no R, no worker.
"""

from __future__ import annotations

import json

import pytest

from parity.artifacts import contract
from parity.artifacts.folder import RunFolder, WorkerFolder
from parity.compare import stages
from parity.errors import ParityError, ReportError, UsageError, exit_status


def test_a_missing_required_file_fails_its_stage(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "status.json").write_text(json.dumps({"ok": True, "phase": "done"}))
    ref, cand = WorkerFolder(tmp_path / "a", "python"), WorkerFolder(tmp_path / "b", "r-rscript")
    # Neither worker recorded the batches it fed: no verdict, a failure (it used to pass as "not_recorded").
    result = stages.compare_batch_order(ref, cand, stages.Context("strict", {}))
    assert result["verdict"] == "missing" and not result["ok"]
    assert "batch_order.json not written by python, r-rscript" in result["summary"]


def test_run_folder_reader_names_what_is_missing(tmp_path):
    with pytest.raises(ReportError, match="no such run folder"):
        RunFolder(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ReportError, match=r"manifest.json missing.*fix: see its INCOMPLETE file"):
        RunFolder(tmp_path)


def test_errors_say_what_where_and_fix():
    err = UsageError("must be at least 1", where="--set epochs=-1", fix="give a positive number of epochs")
    assert str(err) == "--set epochs=-1: must be at least 1; fix: give a positive number of epochs"
    assert exit_status(err) == 2 and exit_status(ParityError("x")) == 1
