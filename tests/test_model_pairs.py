"""Model pairs (python_impl/pair.py, r_impl/R/pair.R): a broken pair folder or model.toml is refused before anything
runs, one line naming the file, function or key and the fix, exit 2, nothing written; the shipped pairs are
well-formed; the config takes a pair's own keys in both languages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from parity.testing import cli_run, error_lines
from python_impl.config import MODELS_DIR

MINIMAL_PY = '''import keras
from keras import layers


def build_model(config):
    inputs = keras.Input(shape=(None, None, config["input_channels"]))
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    outputs = layers.Conv2D(1, 1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)
'''
MINIMAL_R = '''build_model <- function(config) {
  keras <- reticulate::import("keras")
  inputs <- keras$Input(shape = list(NULL, NULL, as.integer(config$input_channels)))
  x <- keras$layers$Conv2D(4L, 3L, padding = "same", activation = "relu")(inputs)
  outputs <- keras$layers$Conv2D(1L, 1L, activation = "sigmoid")(x)
  keras$Model(inputs, outputs)
}
'''


def make_pair(folder: Path, py: str = MINIMAL_PY, r: str = MINIMAL_R, toml: str | None = None) -> Path:
    """A pair folder with the given files (None: left out)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("model.py", py), ("model.R", r), ("model.toml", toml)):
        if text is not None:
            (folder / name).write_text(text)
    return folder


BROKEN = {
    "no model.R": (dict(r=None), "no model.R; a pair is a folder with model.py and model.R"),
    "no model.py": (dict(py=None), "no model.py"),
    "misspelt in Python": (dict(py=MINIMAL_PY.replace("def build_model", "def build_modle")),
                           "model.py: defines no function build_model(config) (found build_modle)"),
    "two arguments in Python": (dict(py=MINIMAL_PY.replace("build_model(config)", "build_model(config, extra)")),
                                "model.py: build_model(config, extra) must take one argument"),
    "misspelt in R": (dict(r=MINIMAL_R.replace("build_model <-", "buildModel <-")),
                      "model.R: defines no function build_model(config)"),
    "no argument in R": (dict(r=MINIMAL_R.replace("function(config)", "function()")),
                         "model.R: build_model <- function() must take one argument"),
    "Python syntax error": (dict(py="def build_model(config):\n    return (\n"), "model.py: line"),
    "loss in Python only": (dict(py=MINIMAL_PY + "\n\ndef loss(y_true, y_pred):\n    return y_pred\n"),
                            "model.py defines loss(y_true, y_pred) and model.R does not"),
    "model.toml key clashes": (dict(toml="[defaults]\nepochs = 3\n"),
                               "model.toml: key epochs is also a key of"),
    "model.toml rule without default": (dict(toml="[defaults]\nwidth = 3\n[schema]\nheight = {type = \"int\"}\n"),
                                        "[schema] has a rule for height, which its [defaults] does not define"),
    "model.toml not TOML": (dict(toml="[defaults\n"), "model.toml: not valid TOML"),
    "model.toml default breaks its rule": (
        dict(toml="[defaults]\nwidth = 0\n[schema]\nwidth = {type = \"int\", min = 1}\n"),
        "config key width = 0: must be >= 1"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_pair_is_refused_before_anything_runs(case, tmp_path, capsys):
    """`run --model DIR` with a broken pair: exit 2, one line naming the file/function/key and the fix, no run
    folder."""
    files, needle = BROKEN[case]
    pair = make_pair(tmp_path / "pair", **files)
    reports = tmp_path / "reports"
    rc, _, err = cli_run(["run", "--model", str(pair), "--reports-dir", str(reports)], capsys)
    lines = error_lines(err)
    assert rc == 2 and len(lines) == 1 and needle in lines[0], err
    assert not reports.exists() or not any(reports.iterdir())


def test_an_unknown_model_names_the_shipped_pairs(tmp_path, capsys):
    """A --model that is neither a folder nor a shipped pair: exit 2, the shipped pairs listed."""
    rc, _, err = cli_run(["run", "--model", "no-such-pair", "--reports-dir", str(tmp_path)], capsys)
    assert rc == 2 and "config key model = 'no-such-pair': no such model pair folder" in err, err
    assert "resunet, se_unet, unet" in err


def test_a_pair_key_is_a_config_key(tmp_path):
    """A pair's model.toml keys join the config (defaults, --set with its rule); another pair does not know them."""
    from python_impl.config import ConfigError, load_config

    pair = make_pair(tmp_path / "pair", toml="[defaults]\nwidth = 4\n[schema]\nwidth = {type = \"int\", min = 1}\n")
    config = load_config("smoke", [f"model={pair}", "width=8"])
    assert config["width"] == 8 and config["model"] == str(pair.resolve())
    with pytest.raises(ConfigError, match="config key width = 0: must be >= 1"):
        load_config("smoke", [f"model={pair}", "width=0"])
    with pytest.raises(ConfigError, match="unknown config key 'width'"):
        load_config("smoke", ["width=8"])
    assert load_config("smoke", ["model=se_unet"])["se_ratio"] == 4


@pytest.mark.parametrize("name", ["unet", "resunet", "se_unet"])
def test_shipped_pairs_are_well_formed(name):
    """Each shipped pair passes the harness's checks, and its keys do not clash with the presets'."""
    from python_impl.config import load_config
    from python_impl.pair import check_pair_folder

    assert check_pair_folder(MODELS_DIR / name) == MODELS_DIR / name
    assert load_config("smoke", [f"model={name}"])["model"] == name


def test_a_copied_pair_runs_from_its_own_folder(tmp_path):
    """A copy of a shipped pair is a user's folder: the config holds its absolute path."""
    from python_impl.config import load_config

    copy = shutil.copytree(MODELS_DIR / "se_unet", tmp_path / "my pair")
    assert load_config("smoke", [f"model={copy}"])["model"] == str(Path(copy).resolve())


@pytest.mark.heavy
def test_r_reads_a_pairs_keys_as_python_does(tmp_path):
    """R's load_config gives the pair's keys, their rules and the same clash message as Python's."""
    import subprocess

    from parity.env import R_IMPL_DIR

    pair = make_pair(tmp_path / "pair", toml="[defaults]\nwidth = 4\n[schema]\nwidth = {type = \"int\", min = 1}\n")
    clash = make_pair(tmp_path / "clash", toml="[defaults]\nepochs = 3\n")
    code = (f'.r_impl_dir <- "{R_IMPL_DIR}"; source(file.path(.r_impl_dir, "worker.R")); '
            f'source_r_impl(file.path(.r_impl_dir, "R")); '
            f'cat(load_config("smoke", c("model={pair}", "width=8"))$width, "\\n"); '
            f'cat(tryCatch(load_config("smoke", c("model={pair}", "width=0")), error = conditionMessage), "\\n"); '
            f'cat(tryCatch(load_config("smoke", c("model={clash}")), error = conditionMessage), "\\n")')
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=120)
    lines = out.stdout.splitlines()
    assert lines[0].strip() == "8", out.stdout + out.stderr
    assert "config key width = 0: must be >= 1" in lines[1]
    assert "model.toml: key epochs is also a key of" in lines[2]
