"""The twin contract as code: python_impl/<stage>.py and r_impl/R/<stage>.R define the same public functions
with the same argument names in the same order.

Python is read with ``ast`` and R with R's own ``parse()`` (``r_impl/tests/list_functions.R``); nothing is run.
A function that exists in one language only must be on ``ONE_LANGUAGE`` with the language reason beside it.
A drift fails naming the file, the function and the argument.
"""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from parity.env import PROJECT_ROOT, R_IMPL_DIR, run_rscript

pytestmark = pytest.mark.heavy

PY_DIR = PROJECT_ROOT / "python_impl"
# (stage, function) -> why it exists in one language only. Keep it short: every entry is a place the twins differ.
ONE_LANGUAGE = {
    ("artifacts", "py_module"): "R: a Python module imported once (reticulate::import costs ~1 ms a call; Python caches)",
    ("artifacts", "py_attr"): "R: a module's function looked up once (reticulate's `$` wraps it in R at each call)",
    ("artifacts", "row_sha256"): "R: array_sha256 of every tile in one call (reticulate calls a tile otherwise)",
    ("artifacts", "is_instance"): "R: Python's isinstance (reticulate exports no such call)",
    ("config", "models_dir"): "R: the shipped pairs' folder (Python has MODELS_DIR)",
    ("pair", "check_pair_folder"): "Python: the harness checks a pair's files before any worker runs",
    ("config", "project_root"): "R: sourced files do not know their own path (Python has PROJECT_ROOT)",
    ("config", "config_error"): "R: signals a condition of class config_error (Python raises ConfigError)",
    ("data", "data_error"): "R: signals a condition of class data_error (Python raises DataError)",
    ("data", "geotiff_rast"): "R: terra's SpatRaster without georeferencing (rasterio reads the pixels alone)",
    ("data", "kept_cells"): "R: resizing and [row, col] order as one index into terra's flat values",
    ("data", "read_jpeg"): "R: readJPEG that refuses a truncated file (libjpeg only prints; Pillow raises)",
    ("data", "jpeg_bytes"): "R: the bytes back from readJPEG's doubles, byte / 255 (Pillow gives bytes)",
    ("data", "to_numpy"): "R: R doubles to a float32 NumPy array, the one rounding (Python arrays already are)",
    ("data", "dump_tiles"): "R: writes what the R reader read for `tailings-parity data compare` (r_impl/dump_tiles.R)",
    ("predict", "read_georeference"): "R: a GeoTIFF's stored transform via rasterio (terra recomputes the pixel size)",
    ("metrics", "metric_ratio"): "R: Python's private _ratio (R has no private functions)",
    ("train", "take_rows"): "R: Python's x[positions] on a NumPy array, through reticulate",
    ("unet", "unet_builder"): "R: Python's private _Builder class (R has no classes of that kind)",
    ("worker", "import_in_background"): "R: TensorFlow imports on a Python thread while R loads terra (3-4 s each)",
    ("worker", "report_failure"): "Python: the error line the r-rpy2 entry shares (R's worker_main writes its own)",
    ("worker", "main"): "Python: the command line of `python -m python_impl.worker` (R's is worker_main in r_impl/worker.R)",
}


def python_functions(path: Path) -> list[tuple[str, list[str]]]:
    """Public module-level functions of a Python file with their argument names, in order."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            a = node.args
            out.append((node.name, [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]))
    return out


def r_functions(r_dir: Path) -> dict[str, list[tuple[str, list[str]]]]:
    """Top-level functions of every .R file of ``r_dir`` with their argument names (R's parse(), nothing runs)."""
    files = sorted(r_dir.glob("*.R"))
    result = run_rscript(R_IMPL_DIR / "tests" / "list_functions.R", files, timeout_s=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return {Path(f).stem: [(x["name"], list(x["args"])) for x in fs] for f, fs in json.loads(result.stdout).items()}


def contract_drifts(r_dir: Path) -> list[str]:
    """Every difference between the twins' files, functions and argument lists; [] when they keep the contract."""
    py = {p.stem: python_functions(p) for p in sorted(PY_DIR.glob("*.py")) if p.stem != "__init__"}
    r = r_functions(r_dir)
    drifts = []
    for stage in sorted(set(py) | set(r)):
        if stage not in r:
            drifts.append(f"python_impl/{stage}.py has no twin r_impl/R/{stage}.R")
            continue
        if stage not in py:
            drifts.append(f"r_impl/R/{stage}.R has no twin python_impl/{stage}.py")
            continue
        py_args, r_args = dict(py[stage]), dict(r[stage])
        for name in sorted(set(py_args) | set(r_args)):
            if (stage, name) in ONE_LANGUAGE:
                continue
            if name not in r_args:
                drifts.append(f"r_impl/R/{stage}.R: function {name}() of python_impl/{stage}.py is missing")
            elif name not in py_args:
                drifts.append(f"python_impl/{stage}.py: function {name}() of r_impl/R/{stage}.R is missing")
            elif py_args[name] != r_args[name]:
                k = next((i for i, (a, b) in enumerate(zip(py_args[name], r_args[name])) if a != b),
                         min(len(py_args[name]), len(r_args[name])))
                pa = py_args[name][k] if k < len(py_args[name]) else "(none)"
                ra = r_args[name][k] if k < len(r_args[name]) else "(none)"
                drifts.append(f"r_impl/R/{stage}.R: {name}() argument {k + 1} is {ra!r}, python_impl/{stage}.py "
                              f"has {pa!r} (Python: {', '.join(py_args[name])}; R: {', '.join(r_args[name])})")
        for (s, name), why in ONE_LANGUAGE.items():
            if s == stage and name in py_args and name in r_args:
                drifts.append(f"{stage}: {name}() is on ONE_LANGUAGE ({why}) but exists in both: remove the entry")
    return drifts


def test_twins_keep_the_same_functions_and_arguments():
    drifts = contract_drifts(R_IMPL_DIR / "R")
    assert not drifts, "the twins drifted:\n" + "\n".join(drifts)


def test_a_renamed_r_argument_is_named(tmp_path):
    r_dir = tmp_path / "R"
    shutil.copytree(R_IMPL_DIR / "R", r_dir)
    path = r_dir / "metrics.R"
    path.write_text(path.read_text().replace("confusion_counts <- function(probabilities, masks, threshold)",
                                             "confusion_counts <- function(probs, masks, threshold)"))
    drifts = contract_drifts(r_dir)
    assert drifts == ["r_impl/R/metrics.R: confusion_counts() argument 1 is 'probs', python_impl/metrics.py has "
                      "'probabilities' (Python: probabilities, masks, threshold; R: probs, masks, threshold)"]


@pytest.mark.parametrize("name", ["unet", "resunet", "se_unet"])
def test_a_model_pair_keeps_the_twin_contract(name):
    """A shipped pair's model.py and model.R define the same functions with the same arguments, as the twins do."""
    from python_impl.config import MODELS_DIR

    folder = MODELS_DIR / name
    py = dict(python_functions(folder / "model.py"))
    r = dict(r_functions(folder)["model"])
    assert py == r, f"parity/models/{name}: model.py {py} vs model.R {r}"
