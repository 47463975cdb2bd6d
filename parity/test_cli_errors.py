"""Bad input: a clear message naming the thing and the fix, a non-zero exit, no traceback, no finished-looking
folder."""

from __future__ import annotations

import pytest


def _run(argv, capsys):
    from parity.cli import main

    rc = main(argv)
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err + cap.out
    return rc, cap.err


@pytest.mark.parametrize("argv, needle", [
    (["run", "--preset", "nope"], "unknown preset 'nope'"),
    (["run", "--set", "epochs=many"], "epochs"),
    (["run", "--set", "nokey=1"], "unknown config key 'nokey'"),
    (["run", "--impls", "python,julia"], "unknown worker julia"),
    (["run", "--data", "/nonexistent/tiles"], "--data /nonexistent/tiles: no such folder"),
    (["run", "--seeds", "1,2"], "--mode statistical"),
    (["run", "--mode", "tolerance", "--tol", "weights=1"], "STAGE=RTOL,ATOL"),
])
def test_usage_errors_exit_2_and_create_nothing(argv, needle, capsys, tmp_path):
    """Each usage error names the bad value and the fix, exits 2, and makes no run folder."""
    rc, err = _run(argv + ["--reports-dir", str(tmp_path)], capsys)
    assert rc == 2 and needle in err, err
    assert not any(tmp_path.iterdir()), "a usage error must not create a run folder"


def test_run_on_a_folder_without_tiles_stops_before_writing_anything(tmp_path, capsys):
    """A dataset folder without tiles is found before the run folder exists: exit 1, the reason, nothing
    written (a run that stops half-way keeps INCOMPLETE: tests/test_hardening.py kills one and fills its disk)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    reports = tmp_path / "reports"
    rc, err = _run(["run", "--data", str(empty), "--reports-dir", str(reports)], capsys)
    assert rc == 1 and "no tiles found" in err and "nothing was written" in err, err
    assert not reports.exists() or not any(reports.iterdir())


def test_report_of_a_missing_run(capsys, tmp_path):
    """`report` on a folder that does not exist says so and exits 2."""
    rc, err = _run(["report", str(tmp_path / "no-such-run")], capsys)
    assert rc == 2 and "no such run folder" in err
