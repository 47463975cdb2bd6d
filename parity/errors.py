"""One error module: every error the harness shows a person says what was wrong, where, and the fix.

``ParityError(what, where=..., fix=...)`` renders as ``<where>: <what>; fix: <fix>``. The command line prints
``error: <message>`` and exits with the class's ``exit_status`` (2 for usage and config mistakes, 1 otherwise),
never with a traceback (``TAILINGS_PARITY_DEBUG=1`` shows one). The twins' own errors (``python_impl`` has no
dependency on the harness) are re-exported here so that callers catch them from one place.
"""

from __future__ import annotations

from python_impl.config import ConfigError  # noqa: F401  (re-exported: a config mistake, exit 2)
from python_impl.data import DataError  # noqa: F401  (re-exported: a tile that cannot be read)


class ParityError(Exception):
    """Base of the harness's errors: ``what`` went wrong, ``where`` (file, tile, layer, key), and the ``fix``."""

    exit_status = 1

    def __init__(self, what: str, where: str | None = None, fix: str | None = None):
        self.what, self.where, self.fix = what, where, fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text}; fix: {self.fix}" if self.fix else text


class UsageError(ParityError):
    """Bad command-line input or config value: exit status 2, nothing written."""

    exit_status = 2


class RunError(ParityError):
    """A run that cannot go on (missing data folder, no usable tiles, a full disk)."""


class CompareError(ParityError):
    """A run or worker folder that cannot be compared, or an R reader child that failed."""


class ReportError(ParityError):
    """A run folder that cannot be reported on (missing, not a run folder, stopped before its workers): exit 2."""

    exit_status = 2


def exit_status(exc: BaseException) -> int:
    """The exit status a command returns for ``exc``: 2 for usage and config mistakes, else 1."""
    if isinstance(exc, ParityError):
        return exc.exit_status
    from python_impl.manifest import ManifestError

    return 2 if isinstance(exc, (ConfigError, ManifestError)) else 1


def user_errors() -> tuple[type, ...]:
    """The exceptions ``cli.main`` prints as one ``error:`` line (no traceback): the harness's and the twins'."""
    from python_impl.manifest import ManifestError

    return (ParityError, ConfigError, DataError, ManifestError)
