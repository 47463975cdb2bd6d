"""Probes of ``tailings-parity doctor``: each runs in its own child process and writes what it saw as JSON.

``probe.R`` (R as host through Rscript, or sourced embedded), ``embedded.py`` (rpy2 in a Python child) and
``python_side.py`` (the Python reference) write ``{"probe", "running", "sections": {name: {...}}}`` after every
section, so a probe that crashes still leaves what it saw and names the section it died in (``running``).
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path

PROBE_DIR = Path(__file__).resolve().parent
R_PROBE = PROBE_DIR / "probe.R"


class SectionRecorder:
    """Runs named sections, records each result (or error) and rewrites the JSON file after every step."""

    def __init__(self, probe: str, out: str | os.PathLike, wanted: list[str]):
        self.out = Path(out)
        self.wanted = wanted
        self.result = {"probe": probe, "running": None, "sections": {}}

    def save(self) -> None:
        """Write the current state (atomically, so the doctor never reads half a file)."""
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.result, indent=1, default=str))
        tmp.replace(self.out)

    def run(self, name: str, fn, requires: tuple[str, ...] = ()) -> dict | None:
        """Run section ``name`` if wanted: skipped when a required section did not pass; errors are kept."""
        if name not in self.wanted:
            return None
        failed = [r for r in requires if not self.result["sections"].get(r, {}).get("ok")]
        if failed:
            value = {"ok": False, "skipped": f"needs {', '.join(failed)}, which did not pass"}
        else:
            self.result["running"] = name
            self.save()
            try:
                value = dict(fn() or {})
                value.setdefault("ok", True)
            except Exception as exc:  # noqa: BLE001 - a probe reports every error, it never raises
                value = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                         "traceback": traceback.format_exc(limit=-3)}
        self.result["sections"][name] = value
        self.result["running"] = None
        self.save()
        return value


def env_seen(names: list[str]) -> dict:
    """The variables of ``names`` that are set in this process."""
    return {n: os.environ[n] for n in names if n in os.environ}
