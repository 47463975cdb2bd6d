"""The model pair: a folder whose ``model.py`` and ``model.R`` each define ``build_model(config)``; twin of
``r_impl/R/pair.R``.

``build_model`` returns an uncompiled ``keras.Model`` from tiles (N, H, W, C) to probabilities (N, H, W, 1). An
optional ``loss(y_true, y_pred)``, defined in both files, is the compiled loss (else the config's ``loss``); an
optional ``model.toml`` adds the pair's own config keys (python_impl/config.py ``model_toml``). The harness
checks the folder before anything runs (``check_pair_folder``); what only Keras can tell (a model that is not a
model, an output of the wrong shape or outside [0, 1]) stops the worker at build, naming the file and the fix.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from python_impl.config import ConfigError, model_dir

FILES = ("model.py", "model.R")
# What a model.R must define for the harness: `build_model <- function(config)` (or `=`), at the start of a line.
R_BUILD = re.compile(r"^\s*build_model\s*(<-|=)\s*function\s*\(\s*config\s*\)", re.MULTILINE)
R_ANY_BUILD = re.compile(r"^\s*build_model\s*(<-|=)\s*function\s*\(([^)]*)\)", re.MULTILINE)
R_LOSS = re.compile(r"^\s*loss\s*(<-|=)\s*function\s*\(", re.MULTILINE)


class PairError(ValueError):
    """A model pair whose files or returned model break the pair contract (README: Your own model pair)."""


@dataclass
class Pair:
    """A loaded ``model.py``: its folder, ``build_model`` and ``loss`` (None: the config's loss)."""

    folder: Path
    build_model: Callable
    loss: Callable | None


def check_pair_folder(folder) -> Path:
    """Check a pair folder without running it: both files, ``build_model(config)`` defined in each with that one
    argument, ``loss`` in both or neither. Raises ConfigError (exit 2: nothing has run) naming the file and fix."""
    folder = Path(folder)
    for name in FILES:
        if not (folder / name).is_file():
            raise ConfigError(f"model pair {folder}: no {name}; a pair is a folder with model.py and model.R, each "
                              "defining build_model(config) (README: Your own model pair)")
    py_path, r_path = folder / "model.py", folder / "model.R"
    try:
        tree = ast.parse(py_path.read_text(), str(py_path))
    except SyntaxError as exc:
        raise ConfigError(f"{py_path}: line {exc.lineno}: {exc.msg}") from None
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    build = functions.get("build_model")
    if build is None:
        near = [n for n in functions if "build" in n.lower() or "model" in n.lower()]
        hint = f" (found {', '.join(near)})" if near else ""
        raise ConfigError(f"{py_path}: defines no function build_model(config){hint}; define "
                          "`def build_model(config):` returning the uncompiled keras.Model")
    args = [a.arg for a in build.args.posonlyargs + build.args.args]
    if len(args) != 1 or build.args.vararg or build.args.kwonlyargs:
        raise ConfigError(f"{py_path}: build_model({', '.join(args)}) must take one argument, the config dict: "
                          "`def build_model(config):`")
    r_text = r_path.read_text()
    if not R_BUILD.search(r_text):
        other = R_ANY_BUILD.search(r_text)
        what = (f"build_model <- function({other.group(2)}) must take one argument, the config list"
                if other else "defines no function build_model(config)")
        raise ConfigError(f"{r_path}: {what}; define `build_model <- function(config)` returning the uncompiled "
                          "keras Model")
    py_loss, r_loss = "loss" in functions, bool(R_LOSS.search(r_text))
    if py_loss != r_loss:
        has, lacks = ("model.py", "model.R") if py_loss else ("model.R", "model.py")
        raise ConfigError(f"model pair {folder}: {has} defines loss(y_true, y_pred) and {lacks} does not; define "
                          "it in both (the compiled loss) or in neither (the config's loss)")
    return folder


def load_pair(config: dict) -> Pair:
    """Import the ``model.py`` of the config's pair (once per process and folder) and return its functions."""
    folder = model_dir(config["model"])
    path = folder / "model.py"
    name = "tailings_parity_pair_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before exec: keras registers custom objects by module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise PairError(f"{path}: importing it raised {type(exc).__name__}: {exc}") from exc
    build = getattr(module, "build_model", None)
    if not callable(build):
        raise PairError(f"{path}: defines no function build_model(config)")
    loss = getattr(module, "loss", None)
    return Pair(folder, build, loss if callable(loss) else None)


def build_pair_model(pair: Pair, config: dict):
    """``pair.build_model(config)``, checked: a ``keras.Model`` with one 4-d input and one output (N, H, W, 1)."""
    import keras

    path = pair.folder / "model.py"
    try:
        model = pair.build_model(config)
    except Exception as exc:
        raise PairError(f"{path}: build_model raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, keras.Model):
        raise PairError(f"{path}: build_model returned a {type(model).__name__}, not a keras.Model; return "
                        "keras.Model(inputs, outputs), uncompiled")
    check_shapes(model, str(path))
    return model


def check_shapes(model, where: str) -> None:
    """One input (N, H, W, C) and one output (N, H, W, 1): what the harness feeds and scores."""
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        shapes = [tuple(t.shape) for t in model.inputs]
        raise PairError(f"{where}: the model's inputs are {shapes}; it must take one input of tiles (N, H, W, C)")
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 4 or model.outputs[0].shape[-1] != 1:
        shapes = [tuple(t.shape) for t in model.outputs]
        raise PairError(f"{where}: the model's outputs are {shapes}; it must give one output (N, H, W, 1) of "
                        "tailings probabilities (end with Conv2D(1, 1, activation='sigmoid'))")


def check_probabilities(probabilities, tiles_shape, where: str) -> None:
    """The output on the fixed batch: (N, H, W, 1) for tiles (N, H, W, C), finite, in [0, 1]."""
    import numpy as np

    p = np.asarray(probabilities)
    want = (*tuple(tiles_shape)[:3], 1)
    if p.shape != want:
        raise PairError(f"{where}: the model maps tiles {tuple(tiles_shape)} to {p.shape}; it must give {want}, "
                        "the tiles' height and width (use padding='same')")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise PairError(f"{where}: the model's output on the fixed batch is not a probability (min {np.nanmin(p):.4g}, "
                        f"max {np.nanmax(p):.4g}, {int(np.sum(~np.isfinite(p)))} not finite); end the model with "
                        "a sigmoid")


def load_saved(model_path, config: dict):
    """A saved ``model.keras`` of the config's pair, uncompiled (what predicting needs): the pair's ``model.py``
    is imported first, so that custom objects it registers with Keras are known."""
    import keras

    load_pair(config)
    return keras.models.load_model(model_path, compile=False)
