"""Read and verify a run's split manifest; twin of ``r_impl/R/manifest.R``.

The harness writes the manifest once (``parity/data/manifest.py``); both languages read it here, check its own
hash (``manifest_sha256``, of the text with the field's value blank) and, before training, the sha256 of every
data file it lists, so that a tile changed after the manifest was made is refused by name, not trained on.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

SCHEMA = "tailings-parity/manifest"
VERSION = 1


class ManifestError(ValueError):
    """A manifest that is missing, not of this schema, or altered after it was written."""


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_text(text: str) -> str:
    """Check the ``manifest_sha256`` of a manifest's text; returns the hash or raises ManifestError."""
    match = re.search(r'"manifest_sha256": "([0-9a-f]*)"', text)
    if not match:
        raise ManifestError("no manifest_sha256 field: not a tailings-parity manifest")
    blank = text[:match.start(1)] + text[match.end(1):]
    digest = hashlib.sha256(blank.encode()).hexdigest()
    if digest != match.group(1):
        raise ManifestError(f"manifest_sha256 is {match.group(1)[:12]}... but the content hashes to {digest[:12]}...: "
                            "the manifest was edited after it was written; write it again with write_manifest")
    return digest


def read_manifest(path: Path | str) -> dict:
    """Read and verify a manifest (schema, version and manifest_sha256)."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest missing")
    text = path.read_text()
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not JSON ({exc})") from None
    if manifest.get("schema") != SCHEMA or manifest.get("version") != VERSION:
        raise ManifestError(f"{path}: schema {manifest.get('schema')!r} version {manifest.get('version')!r}, "
                            f"expected {SCHEMA!r} version {VERSION}")
    try:
        verify_text(text)
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    return manifest


def verify_files(manifest: dict) -> list[str]:
    """Files of ``manifest`` whose bytes changed or vanished since it was written (relative paths)."""
    root = Path(manifest["data_dir"])
    changed = []
    for rel, digest in manifest["files"].items():
        path = root / rel
        if not path.is_file() or file_sha256(path) != digest:
            changed.append(rel)
    return sorted(changed)


def check_files(manifest: dict) -> None:
    """Raise ManifestError naming every data file that changed or vanished since the manifest was written."""
    changed = verify_files(manifest)
    if changed:
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        raise ManifestError(f"{len(changed)} data file(s) changed or missing since the manifest was written: "
                            f"{', '.join(changed[:5])}{more} (in {manifest['data_dir']}); restore them, or start "
                            "a new run (tailings-parity run), which makes a new manifest")
