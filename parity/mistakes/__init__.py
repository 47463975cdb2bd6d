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


def make_base(folder: Path, pair: str | None = None, manifest_from: Path | None = None) -> dict:
    """The catalogue's config (smoke plus its [config], ``model = pair`` when given), a manifest (made here, or
    copied from ``manifest_from``) and the Python reference worker, in ``folder``; a RuntimeError when the
    reference fails."""
    from parity.data import manifest as manifest_mod
    from parity.run.runner import check_folder, resolve_data_dir
    from parity.run.workers import spawn_worker
    from python_impl.config import load_config, write_config

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _, overrides = load_catalog()
    config = load_config("smoke", {**overrides, **({"model": pair} if pair else {})})
    write_config(config, folder / "config.json")
    if manifest_from is None:
        data_dir = resolve_data_dir(config, folder)
        dataset = check_folder(config, data_dir)
        excluded = {str(k): v for k, v in dataset.excluded.items()}
        manifest_mod.write_manifest(manifest_mod.make_manifest(config, data_dir, dataset.good, excluded),
                                    folder / "manifest.json")
    else:
        shutil.copyfile(manifest_from, folder / "manifest.json")
    res = spawn_worker("python", folder / "config.json", folder / "manifest.json", folder / "python",
                       timeout_s=float(config["worker_timeout_s"]))
    if not res.ok:
        raise RuntimeError(f"the Python reference of {pair or 'the twin'} failed: {res.error}\n{res.stderr_tail}")
    return {"dir": folder, "config": config, "manifest": manifest_mod.read_manifest(folder / "manifest.json")}


def run_patched(base: dict, name: str, r_dir=None, model_dir=None):
    """The R worker (Rscript) of ``base`` with the patched twin ``r_dir`` or the patched pair folder ``model_dir``:
    (spawn result, worker folder)."""
    from parity.compare.stages import WorkerFolder
    from parity.run.workers import spawn_worker
    from python_impl.config import write_config

    out = base["dir"] / f"r-{name}"
    config_path = base["dir"] / "config.json"
    if model_dir is not None:  # the patched pair: a config of its own that names the copy
        config_path = base["dir"] / f"config-{name}.json"
        write_config(dict(base["config"], model=str(model_dir)), config_path)
    res = spawn_worker("r-rscript", config_path, base["dir"] / "manifest.json", out,
                       timeout_s=float(base["config"]["worker_timeout_s"]), r_dir=r_dir)
    return res, WorkerFolder(out, "r-rscript")


def run_catalog(names, work: Path, twin_base: dict | None = None, workers: int = 2) -> dict:
    """Run the mistakes ``names`` (and the unpatched twin, "control") ``workers`` at a time in ``work``:
    name -> (base, spawn result, worker folder). ``twin_base``: a finished ``make_base`` of the twin."""
    from concurrent.futures import ThreadPoolExecutor

    mistakes, _ = load_catalog()
    work = Path(work)
    twin_base = twin_base or make_base(work / "twin")
    pairs = sorted({mistakes[n].pair for n in names if mistakes[n].pair})
    with ThreadPoolExecutor(max_workers=workers) as pool:
        made = [pool.submit(make_base, work / f"pair-{p}", p, twin_base["dir"] / "manifest.json") for p in pairs]
        bases = {None: twin_base, **{p: f.result() for p, f in zip(pairs, made)}}
        futures = {"control": pool.submit(lambda: (twin_base, *run_patched(twin_base, "control")))}
        for name in sorted(names):
            m = mistakes[name]
            patched = apply_mistake(m, work / f"patched-{name}" / ("R" if m.pair is None else m.pair))
            kwargs = {"model_dir": patched} if m.pair else {"r_dir": patched}
            futures[name] = pool.submit(lambda b=bases[m.pair], n=name, k=kwargs: (b, *run_patched(b, n, **k)))
    return {name: f.result() for name, f in futures.items()}


def what_the_report_says(base: dict, res, cand) -> str:
    """The verdict a run would print for this patched worker against its Python reference."""
    from parity.compare import stages as compare

    if not res.ok:
        return f"FAILED at {res.phase}: {res.error}"
    ref = compare.WorkerFolder(base["dir"] / "python", "python")
    fd = compare.compare_pair(ref, cand, "strict", manifest=base["manifest"])["first_divergence"]
    if fd is None:
        return "PARITY (the mistake went unnoticed)"
    where = f", {fd['location']}" if fd.get("location") else ""
    return f"DIVERGED at stage {fd['stage']}{where}: {fd['summary']}"


def catalog_table(results: dict) -> str:
    """The catalogue as a Markdown table: mistake, where it is made, stage, what the report says."""
    mistakes, _ = load_catalog()
    lines = ["| mistake | made in | stage | what the report says |", "|---|---|---|---|"]
    for name, (base, res, cand) in results.items():
        if name == "control":
            continue
        m = mistakes[name]
        said = what_the_report_says(base, res, cand).replace("|", "/")
        where = f"parity/models/{m.pair}/model.R" if m.pair else "r_impl/R/" + m.patches[0]["file"]
        lines.append(f"| `{name}`: {m.description} | {where} | {m.stage} | {said} |")
    return "\n".join(lines)

