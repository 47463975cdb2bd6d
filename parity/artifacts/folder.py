"""One reader of run and worker folders (``parity/FORMATS.md``), used by comparison, report, plots and regress.

``WorkerFolder`` reads one worker's files lazily and caches them; ``RunFolder`` checks that a folder is a run
folder and lists its worker runs (from ``harness.json``, else from the folder names). Neither writes anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from parity.errors import ReportError

IMPL_ORDER = {"python": 0, "r-rpy2": 1, "r-rscript": 2}


def read_json(path: Path | str, default=None):
    """Parsed JSON of ``path``, or ``default`` when absent."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else default


class WorkerFolder:
    """Lazy reader of one worker's output folder (FORMATS.md, "Worker output")."""

    def __init__(self, path: Path | str, name: str | None = None):
        self.path = Path(path)
        self.name = name or self.path.name
        self._cache: dict = {}

    def has(self, filename: str) -> bool:
        """Whether the worker wrote ``filename``."""
        return (self.path / filename).is_file()

    def json(self, filename: str):
        """Parsed JSON file, or None when absent."""
        if filename not in self._cache:
            self._cache[filename] = read_json(self.path / filename)
        return self._cache[filename]

    def npy(self, filename: str):
        """A .npy array, or None when absent."""
        if filename not in self._cache:
            p = self.path / filename
            self._cache[filename] = np.load(p, allow_pickle=False) if p.is_file() else None
        return self._cache[filename]

    def npz(self, filename: str) -> dict | None:
        """A .npz archive as an ordered dict of arrays (file order kept: it is the model order), or None."""
        if filename not in self._cache:
            p = self.path / filename
            if p.is_file():
                with np.load(p, allow_pickle=False) as z:
                    self._cache[filename] = {k: z[k] for k in z.files}
            else:
                self._cache[filename] = None
        return self._cache[filename]

    @property
    def status(self) -> dict:
        """status.json, or a failure record when the spawner never wrote one."""
        return self.json("status.json") or {"impl": self.name, "ok": False, "phase": None,
                                            "error": f"no status.json in {self.path}"}

    @property
    def ok(self) -> bool:
        """Whether the worker finished."""
        return bool(self.status.get("ok"))


class RunFolder:
    """A run folder: its config, manifest, harness record and worker runs. Raises ReportError if it is none."""

    def __init__(self, path: Path | str):
        path = Path(path)
        if not path.is_dir():
            raise ReportError("no such run folder", where=str(path),
                              fix="run folders are under reports/ (tailings-parity run)")
        for name in ("config.json", "manifest.json", "workers"):
            if not (path / name).exists():
                raise ReportError(f"{name} missing: this is not a tailings-parity run folder, or the run stopped "
                                  "before its workers", where=str(path), fix="see its INCOMPLETE file")
        self.path = path

    def json(self, name: str, default=None):
        """A JSON file of the run folder, or ``default``."""
        return read_json(self.path / name, default)

    @property
    def config(self) -> dict:
        return self.json("config.json")

    @property
    def manifest(self) -> dict:
        return self.json("manifest.json")

    @property
    def harness(self) -> dict:
        return self.json("harness.json", {})

    @property
    def incomplete(self) -> str | None:
        """The INCOMPLETE marker's text, or None for a finished run."""
        marker = self.path / "INCOMPLETE"
        return marker.read_text().strip() or "INCOMPLETE" if marker.exists() else None

    def worker_records(self) -> list[dict]:
        """The worker runs, from harness.json, else from the folder names under workers/."""
        harness = self.harness
        if harness.get("workers"):
            return harness["workers"]
        recs = []
        for d in sorted(p for p in (self.path / "workers").iterdir() if p.is_dir() and not p.name.startswith(".")):
            parts = d.name.split("-")
            tagged = {p[0]: int(p[1:]) for p in parts[1:] if p[:1] in "rs" and p[1:].isdigit()}
            impl = "-".join(p for p in parts if not (p[:1] in "rs" and p[1:].isdigit()))
            recs.append({"key": d.name, "impl": impl, "seed": tagged.get("s"), "repeat": tagged.get("r", 1)})
        return sorted(recs, key=lambda r: (r["seed"] or 0, r["repeat"], IMPL_ORDER.get(r["impl"], 9)))

    def worker(self, key: str, name: str | None = None) -> WorkerFolder:
        """The folder of worker run ``key`` (``workers/<key>``), named ``name`` (default: the key)."""
        return WorkerFolder(self.path / "workers" / key, name or key)
