"""The porting-mistake catalogue: R twins and R sides of model pairs with the mistakes R users make, made by
patching a temporary copy of ``r_impl/R`` or of a shipped pair's folder (see mistakes.toml).

Each mistake is a list of exact (file, old text, new text) replacements. ``apply_mistake`` copies the twin (or
the pair) and applies them, failing loudly when an ``old`` text is not found exactly once (the file changed:
update the patch). The test suite runs each patched R side as an R worker and checks that
``parity/compare/stages.py`` reports the divergence at the stage the mistake belongs to (the forward ones naming
the layer), or that the worker fails at build where Keras itself refuses.
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

CATALOG = Path(__file__).with_name("mistakes.toml")


class MistakeError(RuntimeError):
    """A mistake whose patch no longer applies to the R twin."""


@dataclass
class Mistake:
    """One classic mistake: its name, the stage where it must be caught, and its patches; ``pair``: the shipped
    pair whose model.R it patches (None: the R twin); ``layer``: what the report must name as the first
    differing layer; ``fails``: the text of Keras's own error when the worker must fail at build."""

    name: str
    stage: str
    description: str
    patches: list[dict] = field(default_factory=list)
    pair: str | None = None
    layer: str | None = None
    fails: str | None = None


def load_catalog(path: Path | str = CATALOG) -> tuple[dict[str, Mistake], dict]:
    """All mistakes of ``path`` by name, and the config overrides they run with."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    mistakes = {m["name"]: Mistake(m["name"], m["stage"], m["description"], m["patch"], m.get("pair"),
                                   m.get("layer"), m.get("fails")) for m in doc["mistake"]}
    return mistakes, dict(doc.get("config", {}))


def apply_mistake(mistake: Mistake, dest: Path | str, r_dir: Path | str | None = None) -> Path:
    """Copy ``r_dir`` (default r_impl/R, or the mistake's pair folder) to ``dest`` and apply ``mistake``'s
    patches; returns ``dest``."""
    from parity.env import R_IMPL_DIR
    from python_impl.config import MODELS_DIR

    src = Path(r_dir) if r_dir else (MODELS_DIR / mistake.pair if mistake.pair else R_IMPL_DIR / "R")
    dest = Path(dest)
    shutil.copytree(src, dest)
    for patch in mistake.patches:
        path = dest / patch["file"]
        if not path.is_file():
            raise MistakeError(f"mistake {mistake.name}: {patch['file']} is not in {src}")
        text = path.read_text()
        hits = text.count(patch["old"])
        if hits != 1:
            raise MistakeError(f"mistake {mistake.name}: the text to replace occurs {hits} times in "
                               f"{src / patch['file']} (expected once); the file changed, update "
                               f"parity/mistakes/mistakes.toml:\n{patch['old']}")
        path.write_text(text.replace(patch["old"], patch["new"]))
    return dest
