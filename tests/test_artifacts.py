"""The artifact layer: the worker-file contract read from FORMATS.md, the run-folder reader, the error module.

Fast: no TensorFlow, no R, no worker.
"""

from __future__ import annotations

import json

import pytest

from parity.artifacts import contract
from parity.artifacts.folder import RunFolder, WorkerFolder
from parity.compare import stages
from parity.errors import ParityError, ReportError, UsageError, exit_status


def test_contract_is_read_from_formats_md():
    names = [s.name for s in contract.worker_artifacts()]
    assert names[:2] == ["status.json", "worker_output.log"]
    required = contract.required_files("worker")
    assert "batch_order.json" in required and "weights_final.npz" in required and "model.keras" in required
    assert "progress.log" not in required and "status.json" not in required  # not required / the spawner's
    from parity.run.workers import REQUIRED_FILES

    assert REQUIRED_FILES == required  # the spawner checks exactly the contract


def test_a_contract_without_its_table_is_refused(tmp_path):
    bad = tmp_path / "FORMATS.md"
    bad.write_text("# Formats\n\n## Worker output\nno table here\n")
    with pytest.raises(RuntimeError, match="lists no files"):
        contract.worker_artifacts(bad)


def test_a_missing_required_file_fails_its_stage(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "status.json").write_text(json.dumps({"ok": True, "phase": "done"}))
    ref, cand = WorkerFolder(tmp_path / "a", "python"), WorkerFolder(tmp_path / "b", "r-rscript")
    # Neither worker recorded the batches it fed: no verdict, a failure (it used to pass as "not_recorded").
    result = stages.compare_batch_order(ref, cand, "strict", {})
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
