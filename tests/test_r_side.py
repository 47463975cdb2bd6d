"""The R side's own testthat suite (r_impl/tests/testthat/), run by the README's test command.

Each testthat file checks an R function against its Python twin in one R process; a failure shows testthat's
summary with the file, the test and the expectation.
"""

from __future__ import annotations

import pytest

from parity.env import R_IMPL_DIR, run_rscript

pytestmark = pytest.mark.heavy


def test_r_testthat_suite_passes():
    result = run_rscript(R_IMPL_DIR / "tests" / "testthat.R", [], timeout_s=600)
    out = (result.stdout + "\n" + result.stderr).strip()
    assert result.returncode == 0, "r_impl/tests/testthat failed:\n" + out[-6000:]
    assert "OK" in out or "DONE" in out, out[-2000:]
