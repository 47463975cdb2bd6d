"""The worker-folder contract, read from ``parity/FORMATS.md`` (section "Worker output"): written once, there.

Each row of that table names one or more files, who writes them (``worker``, ``spawner`` or ``runner``) and
whether they are required. The spawner refuses a worker that exits 0 without a required ``worker`` file; the
comparison fails a stage whose required file is missing. Changing the contract means editing that table.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

FORMATS_PATH = Path(__file__).resolve().parent.parent / "FORMATS.md"
SECTION = "## Worker output"


@dataclass(frozen=True)
class ArtifactSpec:
    """One file of a worker folder: its name (a pattern when it holds ``<...>``), writer, and whether required."""

    name: str
    writer: str
    required: bool
    content: str


@functools.lru_cache(maxsize=None)
def worker_artifacts(path: Path | str = FORMATS_PATH) -> tuple[ArtifactSpec, ...]:
    """Every file of the "Worker output" table of FORMATS.md, in the table's order."""
    text = Path(path).read_text()
    if SECTION not in text:
        raise RuntimeError(f"{path}: no '{SECTION}' section: the worker-folder contract is missing")
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    specs = []
    for line in rows:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4:
            raise RuntimeError(f"{path}: row {line!r} needs the columns file | written by | required | content")
        names, writer, required = re.findall(r"`([^`]+)`", cells[0]), cells[1], cells[2]
        for name in names:
            specs.append(ArtifactSpec(name, writer, required.startswith("yes"), " | ".join(cells[3:])))
    if not specs:
        raise RuntimeError(f"{path}: the '{SECTION}' table lists no files")
    return tuple(specs)


def required_files(writer: str = "worker") -> tuple[str, ...]:
    """Names of the required files written by ``writer`` (``worker``, ``spawner`` or ``runner``)."""
    return tuple(s.name for s in worker_artifacts() if s.required and s.writer == writer and "<" not in s.name)


def is_required(name: str) -> bool:
    """Whether the contract lists ``name`` as required (a file it does not list is not)."""
    return any(s.name == name and s.required for s in worker_artifacts())
