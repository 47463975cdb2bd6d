"""The config rules of python_impl/config.py, each on its own: check_config against a schema written here (every
kind of rule: type, auto, choices, bounds, relations, the bounds that name the data), coerce_value on the texts of
``--set``, and the errors of load_config, load_rules and load_schema, word for word (R's twin prints the same
words: tests/test_config.py compares the two on the real presets).

Fast: no TensorFlow, no R, no worker.
"""

from __future__ import annotations

import json
import math

import pytest

from python_impl import config as cfg
from python_impl.config import ConfigError

# One key of each kind of rule of [schema] (parity/presets.toml).
SCHEMA = {
    "batch_size": {"type": "int", "min": 1, "max": "n_train"},
    "channels": {"type": "int", "choices": [1, 3]},
    "crop_size": {"type": "int", "min": 0, "at_most": "tile_size"},
    "depth": {"type": "int", "min": 1, "max": 4},
    "device": {"type": "string", "auto": True, "choices": ["cpu", "gpu"]},
    "eval_tiles": {"type": "int", "min": "n_val"},
    "flag": {"type": "bool"},
    "learning_rate": {"type": "float", "above": 0.0, "below": 1.0},
    "momentum": {"type": "float", "auto": True, "min": 0.0},
    "name": {"type": "string"},
    "optimizer": {"type": "string", "choices": ["adam", "sgd"]},
    "prefetch": {"type": "int", "auto": True, "at_most": "batch_size"},
    "split_train": {"type": "float", "above": 0.0, "below": 1.0, "leaves": {"count": "n_train", "min": 1}},
    "split_val": {"type": "float", "above": 0.0, "below": 1.0, "sum_max": {"with": "split_train", "max": 1.0},
                  "leaves": {"count": "n_val", "min": 1}},
    "threads": {"type": "int", "min": 1, "max": "n_tiles", "auto": True},
    "tile_size": {"type": "int", "min": 16, "multiple_of": "2^depth"},
    "timeout": {"type": "number", "above": 0},
}
GOOD = {"batch_size": 4, "channels": 3, "crop_size": 32, "depth": 2, "device": "auto", "eval_tiles": 2,
        "flag": True, "learning_rate": 0.001, "momentum": 0.9, "name": "x", "optimizer": "adam", "prefetch": 2,
        "split_train": 0.7, "split_val": 0.2, "threads": "auto", "tile_size": 64, "timeout": 30}
# 10 usable tiles at split_train 0.7 and split_val 0.2: 7 training, 2 validation tiles.
CONTEXT_10 = "(split_train 0.7 and split_val 0.2 of 10 usable tiles)"


@pytest.fixture
def check(monkeypatch):
    """check_config against SCHEMA instead of the presets file's [schema]."""
    monkeypatch.setattr(cfg, "load_schema", lambda *args, **kwargs: SCHEMA)

    def run(n_tiles=None, **changes):
        return cfg.check_config(dict(GOOD, **changes), n_tiles)
    return run


def message(run, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as err:
        run(*args, **kwargs)
    return str(err.value)


def test_a_good_config_passes_and_comes_back_typed(monkeypatch, check):
    """Whole floats of int keys become int, ints of float keys float, a number key keeps what it was given,
    "auto" stays; the config given is not changed."""
    given = dict(GOOD, depth=2.0, tile_size=64.0, learning_rate=1 / 2, momentum=1, timeout=2.5)
    out = cfg.check_config(given)
    assert (out["depth"], out["tile_size"]) == (2, 64) and type(out["depth"]) is type(out["tile_size"]) is int
    assert out["learning_rate"] == 0.5 and out["momentum"] == 1.0 and type(out["momentum"]) is float
    assert out["timeout"] == 2.5 and type(check(timeout=30)["timeout"]) is int
    assert out["threads"] == "auto" and out["device"] == "auto"
    assert type(given["depth"]) is float and type(given["momentum"]) is int
    assert check(n_tiles=10) == GOOD


@pytest.mark.parametrize("key, value, line", [
    ("depth", 0, "config key depth = 0: must be >= 1"),
    ("depth", 5, "config key depth = 5: must be <= 4"),
    ("learning_rate", 0.0, "config key learning_rate = 0.0: must be > 0.0"),
    ("learning_rate", 1.0, "config key learning_rate = 1.0: must be < 1.0"),
    ("learning_rate", "fast", "config key learning_rate = 'fast': must be a finite number"),
    ("learning_rate", math.nan, "config key learning_rate = nan: must be a finite number"),
    ("learning_rate", math.inf, "config key learning_rate = inf: must be a finite number"),
    ("learning_rate", True, "config key learning_rate = true: must be a finite number"),
    ("momentum", "x", "config key momentum = 'x': must be a finite number or 'auto'"),
    ("momentum", -0.5, "config key momentum = -0.5: must be >= 0.0"),
    ("timeout", 0, "config key timeout = 0: must be > 0"),
    ("timeout", "1", "config key timeout = '1': must be a finite number"),
    ("depth", 2.5, "config key depth = 2.5: must be an integer"),
    ("depth", "2", "config key depth = '2': must be an integer"),
    ("depth", False, "config key depth = false: must be an integer"),
    ("threads", 0, "config key threads = 0: must be >= 1"),
    ("threads", "many", "config key threads = 'many': must be an integer or 'auto'"),
    ("flag", 1, "config key flag = 1: must be true or false"),
    ("flag", "true", "config key flag = 'true': must be true or false"),
    ("name", 3, "config key name = 3: must be a text"),
    ("name", None, "config key name = null: must be a text"),
    ("name", [1, 2], "config key name = [1, 2]: must be a text"),
    ("device", 3, "config key device = 3: must be a text or 'auto'"),
    ("device", "tpu", "config key device = 'tpu': must be one of 'cpu', 'gpu'"),
    ("optimizer", "adamw", "config key optimizer = 'adamw': must be one of 'adam', 'sgd'"),
    ("channels", 4, "config key channels = 4: must be one of 1, 3"),
    ("split_train", 0.0, "config key split_train = 0.0: must be > 0.0"),
])
def test_one_broken_rule_is_one_line(check, key, value, line):
    """Each kind of single-key rule, with the value shown as both twins show it ('text', true, 12, 0.001)."""
    assert message(check, **{key: value}) == line


@pytest.mark.parametrize("changes", [{"depth": 1}, {"depth": 4}, {"momentum": 0.0}, {"threads": 1},
                                     {"device": "gpu"}, {"channels": 1}, {"flag": False}, {"crop_size": 64},
                                     {"split_train": 0.5, "split_val": 0.5}, {"timeout": 1e-9}])
def test_inclusive_bounds_and_choices_accept_their_edge(check, changes):
    """min and max include their bound, choices their values; at_most and sum_max allow equality."""
    out = check(**changes)
    assert {k: out[k] for k in changes} == changes


def test_relations_between_keys(check):
    """multiple_of, at_most and sum_max, each with its message."""
    assert message(check, tile_size=90) == "config key tile_size = 90: must be a multiple of 2^depth = 4 (depth = 2)"
    assert message(check, tile_size=36, depth=3) == (
        "config key tile_size = 36: must be a multiple of 2^depth = 8 (depth = 3)")
    assert message(check, crop_size=128) == "config key crop_size = 128: must be <= tile_size (tile_size = 64)"
    assert message(check, split_train=0.7, split_val=0.4) == (
        "config key split_val = 0.4: split_train + split_val must be <= 1.0 (split_train = 0.7)")
    assert message(check, prefetch=8) == "config key prefetch = 8: must be <= batch_size (batch_size = 4)"


def test_single_key_rules_come_before_relations_and_keys_go_in_sorted_order(check):
    """The first pass checks every key alone, so a broken bound of a later key beats a relation of an earlier
    one; within a pass, the first key in sorted order is named."""
    assert message(check, crop_size=128, timeout=0) == "config key timeout = 0: must be > 0"
    assert message(check, depth=0, channels=4) == "config key channels = 4: must be one of 1, 3"
    assert message(check, tile_size=90, crop_size=128) == (
        "config key crop_size = 128: must be <= tile_size (tile_size = 90)")


def test_auto_skips_the_rules_of_its_key(check):
    """"auto" is no number: no bound, choice or data count applies to it (3 tiles: 2 training, 1 validation)."""
    small = {"n_tiles": 3, "batch_size": 2, "eval_tiles": 1}
    assert check(**small, threads="auto", device="auto", momentum="auto", prefetch="auto")["threads"] == "auto"
    assert message(check, **small, threads=4) == (
        "config key threads = 4: must be <= the usable tiles, 3 (split_train 0.7 and split_val 0.2 of 3 usable "
        "tiles)")


def test_rules_that_name_the_data_wait_for_the_tile_count(check):
    """Without n_tiles no count is known: a bound by the training tiles is not checked yet."""
    assert check(batch_size=100)["batch_size"] == 100
    assert message(check, n_tiles=10, batch_size=8) == (
        f"config key batch_size = 8: must be <= the training tiles, 7 {CONTEXT_10}")
    assert check(n_tiles=10, batch_size=7)["batch_size"] == 7
    assert message(check, n_tiles=10, eval_tiles=1) == (
        f"config key eval_tiles = 1: must be >= the validation tiles, 2 {CONTEXT_10}")
    assert message(check, n_tiles=10, threads=11) == (
        f"config key threads = 11: must be <= the usable tiles, 10 {CONTEXT_10}")
    assert check(n_tiles=10, threads=10)["threads"] == 10


def test_each_split_must_get_a_tile_and_that_comes_first(check):
    """With 2 tiles at 0.7/0.2 the validation split gets round(0.4) = 0 tiles: named before the batch size that
    the missing tiles also break; with 1 tile at split_train 0.3 the training split gets none."""
    assert message(check, n_tiles=2, batch_size=4) == (
        "config key split_val = 0.2: leaves 0 validation tiles, needs at least 1 (split_train 0.7 and split_val "
        "0.2 of 2 usable tiles)")
    assert message(check, n_tiles=1, split_train=0.3, split_val=0.2) == (
        "config key split_train = 0.3: leaves 0 training tiles, needs at least 1 (split_train 0.3 and split_val "
        "0.2 of 1 usable tiles)")
    assert check(n_tiles=3, batch_size=2, eval_tiles=1)["batch_size"] == 2  # 2 training, 1 validation


def test_unknown_and_missing_keys(check):
    """A key the schema lacks is named with the known keys; a missing key is named with the fix; the resolved
    config's own keys (preset, rules) are allowed."""
    with pytest.raises(ConfigError) as err:
        cfg.check_config(dict(GOOD, zz_top=1, aa_key=2))
    assert str(err.value) == f"config key aa_key: not a setting; keys: {', '.join(sorted(SCHEMA))}"
    partial = {k: v for k, v in GOOD.items() if k not in ("name", "depth")}
    with pytest.raises(ConfigError) as err:
        cfg.check_config(partial)
    assert str(err.value) == ("config key depth: missing; write the config with load_config (it fills in the "
                              "defaults of parity/presets.toml)")
    assert cfg.check_config(dict(GOOD, preset="smoke", rules={"x": 1}))["preset"] == "smoke"


@pytest.mark.parametrize("n_tiles, shares, sizes", [
    (10, (0.7, 0.2), (7, 2, 1)),
    (24, (0.7, 0.2), (17, 5, 2)),   # 16.8 -> 17, 4.8 -> 5
    (5, (0.5, 0.5), (2, 2, 1)),     # 2.5 -> 2 twice: half to even (R's round too)
    (7, (0.5, 0.5), (4, 3, 0)),     # 3.5 -> 4, then 3.5 -> 4 capped by the 3 left
    (4, (0.9, 0.5), (4, 0, 0)),     # 3.6 -> 4: nothing left for validation, never negative
    (0, (0.7, 0.2), (0, 0, 0)),
])
def test_split_sizes(n_tiles, shares, sizes):
    """Split sizes counted by hand: rounded half to even, validation capped by what is left, never negative."""
    assert cfg.split_sizes(n_tiles, *shares) == sizes


@pytest.mark.parametrize("rule, text, value", [
    ({"type": "bool"}, "true", True), ({"type": "bool"}, " Yes ", True), ({"type": "bool"}, "ON", True),
    ({"type": "bool"}, "1", True), ({"type": "bool"}, "False", False), ({"type": "bool"}, "no", False),
    ({"type": "bool"}, "off", False), ({"type": "bool"}, "0", False),
    ({"type": "int"}, " 12 ", 12), ({"type": "int"}, "+3", 3), ({"type": "int"}, "-4", -4),
    ({"type": "int", "auto": True}, "AUTO", "auto"), ({"type": "int", "auto": True}, "7", 7),
    ({"type": "number"}, "3", 3), ({"type": "number"}, "-7", -7), ({"type": "number"}, "2.5", 2.5),
    ({"type": "number"}, "1e-3", 0.001),
    ({"type": "float"}, "1", 1.0), ({"type": "float"}, "1e-3", 0.001), ({"type": "float"}, " -2.5 ", -2.5),
    ({"type": "string"}, " a b ", " a b "), ({}, "text", "text"), ({"type": "string", "auto": True}, "Auto", "auto"),
])
def test_coerce_value_types_the_text_of_set(rule, text, value):
    """The text of --set in its key's type: booleans in words, integers in digits only, numbers as given."""
    got = cfg.coerce_value("k", text, rule)
    assert got == value and type(got) is type(value)


def test_coerce_value_keeps_nan_for_check_config_to_refuse():
    """nan is a float to coerce_value; check_config refuses it."""
    assert math.isnan(cfg.coerce_value("k", "nan", {"type": "float"}))


@pytest.mark.parametrize("rule, text, line", [
    ({"type": "bool"}, "maybe", "config key k = 'maybe': must be true or false"),
    ({"type": "bool"}, " yes please ", "config key k = ' yes please ': must be true or false"),
    ({"type": "int"}, "1_000", "config key k = '1_000': must be an integer"),
    ({"type": "int"}, "1.5", "config key k = '1.5': must be an integer"),
    ({"type": "int"}, "", "config key k = '': must be an integer"),
    ({"type": "int", "auto": True}, "many", "config key k = 'many': must be an integer or 'auto'"),
    ({"type": "float"}, "fast", "config key k = 'fast': must be a finite number"),
    ({"type": "float", "auto": True}, "x", "config key k = 'x': must be a finite number or 'auto'"),
    ({"type": "number"}, "ten", "config key k = 'ten': must be a finite number"),
])
def test_coerce_value_names_the_key_the_text_and_the_type(rule, text, line):
    """A text that is not of its key's type is named with the key and the type."""
    with pytest.raises(ConfigError) as err:
        cfg.coerce_value("k", text, rule)
    assert str(err.value) == line


def test_load_rules_and_config_rules(tmp_path):
    """The rules of a presets file; a file without [rules] is named with the fix; a resolved config carries its
    own rules, a hand-made one gets the presets file's."""
    path = tmp_path / "presets.toml"
    path.write_text("[rules]\nclass_threshold = 0.25\n[defaults]\nepochs = 1\n")
    assert cfg.load_rules(path) == {"class_threshold": 0.25}
    path.write_text("[defaults]\nepochs = 1\n")
    with pytest.raises(ConfigError) as err:
        cfg.load_rules(path)
    assert str(err.value) == f"{path}: no [rules] table; restore it from git (both languages read their rules there)"
    assert cfg.config_rules({"rules": {"class_threshold": 0.25}}) == {"class_threshold": 0.25}
    assert cfg.config_rules({"epochs": 1}) == cfg.load_rules() and "class_threshold" in cfg.load_rules()
    assert cfg.config_rules({"rules": {}}) == cfg.load_rules()


def test_load_schema_fills_in_the_type_of_each_default(tmp_path):
    """A key without a rule gets the type of its default (a list or table: string); a rule for a key that
    [defaults] lacks is an error naming it."""
    path = tmp_path / "presets.toml"
    path.write_text('[defaults]\na = 1\nb = 1.5\nc = true\nd = "x"\ne = [1, 2]\nf = 3\n'
                    '[schema]\na = {type = "int", min = 0}\n')
    assert cfg.load_schema(path) == {"a": {"type": "int", "min": 0}, "b": {"type": "float"}, "c": {"type": "bool"},
                                     "d": {"type": "string"}, "e": {"type": "string"}, "f": {"type": "int"}}
    path.write_text('[defaults]\na = 1\n[schema]\nz = {type = "int"}\ny = {type = "int"}\n')
    with pytest.raises(ConfigError) as err:
        cfg.load_schema(path)
    assert str(err.value) == f"{path}: [schema] has rules for y, z, which [defaults] does not define"


def test_list_presets_in_file_order(tmp_path):
    """Presets in the order of the file; smoke first in the project's."""
    path = tmp_path / "presets.toml"
    path.write_text("[presets.b]\n[presets.a]\nepochs = 2\n")
    assert cfg.list_presets(path) == ["b", "a"]
    assert cfg.list_presets()[0] == "smoke" and cfg.presets_path() == cfg.PRESETS_PATH


def test_load_config_errors_say_what_and_where(tmp_path):
    """Each error of load_config, word for word: preset, override, rules, key, value."""
    path = cfg.PRESETS_PATH
    with pytest.raises(ConfigError) as err:
        cfg.load_config("nope")
    assert str(err.value) == f"unknown preset 'nope'; presets in {path}: {', '.join(cfg.list_presets())}"
    with pytest.raises(ConfigError) as err:
        cfg.load_config("smoke", ["epochs"])
    assert str(err.value) == "override 'epochs': expected key=value"
    for key in ("rules", "rules.class_threshold"):
        with pytest.raises(ConfigError) as err:
            cfg.load_config("smoke", {key: "0.3"})
        assert str(err.value) == (f"override {key!r}: the [rules] of {path} are fixed, not settings; change them "
                                  "there only to change what both languages compute")
    with pytest.raises(ConfigError) as err:
        cfg.load_config("smoke", ["epoch=3"])
    assert str(err.value).startswith("unknown config key 'epoch'; keys: ")
    assert "epochs" in str(err.value).split("keys: ", 1)[1].split(", ")
    with pytest.raises(ConfigError) as err:
        cfg.load_config("smoke", ["epochs=0"])
    assert str(err.value) == "config key epochs = 0: must be >= 1"
    with pytest.raises(ConfigError) as err:
        cfg.load_config("smoke", ["epochs=two"])
    assert str(err.value) == "config key epochs = 'two': must be an integer"
    own = tmp_path / "presets.toml"
    own.write_text("[rules]\nx = 1\n[defaults]\nepochs = 1\n[presets.p]\nepoch = 2\n")
    with pytest.raises(ConfigError) as err:
        cfg.load_config("p", path=own)
    assert str(err.value) == f"preset 'p' sets 'epoch', which [defaults] in {own} does not define"
    with pytest.raises(ConfigError) as err:
        cfg.load_config("q", path=own)
    assert str(err.value) == f"unknown preset 'q'; presets in {own}: p"


def test_load_config_resolves_defaults_preset_and_overrides():
    """[defaults], then the preset, then the overrides in order (text takes its key's type, other values are
    kept); the result names its preset and carries the rules."""
    import tomllib

    doc = tomllib.loads(cfg.PRESETS_PATH.read_text())
    smoke = cfg.load_config("smoke")
    for key, value in doc["presets"]["smoke"].items():
        assert smoke[key] == value, key
    assert smoke["preset"] == "smoke" and smoke["rules"] == doc["rules"]
    assert set(doc["defaults"]) <= set(smoke)
    got = cfg.load_config("smoke", [" epochs =3", "epochs=2", "learning_rate=1", "deterministic=no"])
    assert (got["epochs"], got["learning_rate"], got["deterministic"]) == (2, 1.0, False)
    assert type(got["learning_rate"]) is float
    assert cfg.load_config("smoke", {"epochs": 4, "batch_size": "3"})["batch_size"] == 3
    assert cfg.load_config("smoke", {"epochs": 4})["epochs"] == 4
    assert cfg.load_config("smoke", ["data=a=b"])["data"] == "a=b"  # split at the first "=" only
    assert cfg.load_config("smoke", None) == smoke == cfg.load_config("smoke", []) == cfg.load_config()


def test_write_and_read_config(tmp_path):
    """config.json: sorted keys, indented, a final newline; read back equal."""
    config = {"b": 1, "a": [1.5, "x"], "rules": {"z": True}}
    path = tmp_path / "config.json"
    cfg.write_config(config, path)
    assert path.read_text() == json.dumps(config, indent=2, sort_keys=True) + "\n"
    assert path.read_text().index('"a"') < path.read_text().index('"b"')
    assert cfg.read_config(path) == config


# ---------------------------------------------------------------------------------------------- model pairs

def _pair_folder(path, toml: str | None = None):
    """A model pair folder (model.py, model.R and, when given, model.toml)."""
    path.mkdir(parents=True)
    (path / "model.py").write_text("")
    (path / "model.R").write_text("")
    if toml is not None:
        (path / "model.toml").write_text(toml)
    return path


def test_model_dir_a_shipped_name_or_a_folder(tmp_path, monkeypatch):
    """A pair by shipped name, or by folder (absolute or relative); anything else named with the shipped pairs."""
    assert cfg.model_dir("unet") == cfg.MODELS_DIR / "unet"
    own = _pair_folder(tmp_path / "mine")
    assert cfg.model_dir(str(own)) == own.resolve()
    monkeypatch.chdir(tmp_path)
    assert cfg.model_dir("mine") == own.resolve()  # relative to the working folder
    for value in ("nope", "a/b", "resunet/"):  # a text with a slash is a folder, never a shipped name
        with pytest.raises(ConfigError) as err:
            cfg.model_dir(value)
        assert str(err.value) == (f"config key model = '{value}': no such model pair folder; give a folder with "
                                  "model.py and model.R (README: Your own model pair) or a shipped pair: "
                                  f"{', '.join(cfg.shipped_pairs())}")


def test_shipped_pairs_are_the_folders_with_a_model_py(tmp_path, monkeypatch):
    """The shipped pairs are the folders of parity/models/ with a model.py, sorted."""
    assert {"unet", "resunet", "se_unet"} <= set(cfg.shipped_pairs())
    _pair_folder(tmp_path / "b")
    _pair_folder(tmp_path / "a")
    (tmp_path / "c").mkdir()
    monkeypatch.setattr(cfg, "MODELS_DIR", tmp_path)
    assert cfg.shipped_pairs() == ["a", "b"]
    monkeypatch.setattr(cfg, "MODELS_DIR", tmp_path / "none")
    assert cfg.shipped_pairs() == []


def test_model_toml_of_a_pair(tmp_path):
    """Without model.toml a pair adds no keys; its [defaults] and [schema] otherwise; a broken file is named."""
    assert cfg.model_toml(str(_pair_folder(tmp_path / "plain"))) == {"defaults": {}, "schema": {}}
    good = _pair_folder(tmp_path / "good", '[defaults]\ndropout = 0.1\n[schema]\ndropout = {type = "float"}\n')
    assert cfg.model_toml(str(good)) == {"path": good.resolve() / "model.toml", "defaults": {"dropout": 0.1},
                                         "schema": {"dropout": {"type": "float"}}}
    cases = {
        "bad": ("[defaults\n", "not valid TOML ("),
        "other": ("[defaults]\n[zz]\n[extra]\n",
                  "[extra] is not a table of a model.toml; it has [defaults] and [schema]"),
        "rule": ('[defaults]\na = 1\n[schema]\nz = {type = "int"}\nb = {type = "int"}\n',
                 "[schema] has a rule for b, which its [defaults] does not define"),
    }
    for name, (toml, words) in cases.items():
        folder = _pair_folder(tmp_path / name, toml)
        with pytest.raises(ConfigError) as err:
            cfg.model_toml(str(folder))
        assert str(err.value).startswith(f"{folder.resolve() / 'model.toml'}: {words}"), name
    assert cfg.model_toml(str(_pair_folder(tmp_path / "empty", ""))) == {
        "path": (tmp_path / "empty").resolve() / "model.toml", "defaults": {}, "schema": {}}


def test_load_schema_adds_the_keys_of_a_pair(tmp_path):
    """A pair's keys join the schema; a key it shares with the presets file or the resolved config is refused."""
    presets = tmp_path / "presets.toml"
    presets.write_text('[defaults]\nepochs = 1\n[schema]\nepochs = {type = "int", min = 1}\n')
    pair = _pair_folder(tmp_path / "p", '[defaults]\nrate = 0.5\nname = "x"\n[schema]\nrate = {type = "float"}\n')
    assert cfg.load_schema(presets, str(pair)) == {"epochs": {"type": "int", "min": 1}, "rate": {"type": "float"},
                                                   "name": {"type": "string"}}
    assert cfg.load_schema(presets) == {"epochs": {"type": "int", "min": 1}}
    for key in ("epochs", "preset"):
        clash = _pair_folder(tmp_path / f"clash_{key}", f"[defaults]\n{key} = 2\n")
        with pytest.raises(ConfigError) as err:
            cfg.load_schema(presets, str(clash))
        assert str(err.value) == (f"{clash.resolve() / 'model.toml'}: key {key} is also a key of {presets}; rename "
                                  f"the pair's key (for example clash_{key}_{key})")


def test_load_config_with_a_pair_of_ones_own(tmp_path, monkeypatch):
    """``--set model=FOLDER``: the folder recorded absolute (the workers run elsewhere), the pair's defaults in the
    config, its keys settable and typed by its rules; a shipped pair keeps its name."""
    pair = _pair_folder(tmp_path / "mine", '[defaults]\nrate = 0.5\n[schema]\nrate = {type = "float", min = 0.0}\n')
    monkeypatch.chdir(tmp_path)
    config = cfg.load_config("smoke", [" model = mine ", "rate=1"])
    assert config["model"] == str(pair.resolve()) and config["rate"] == 1.0 and type(config["rate"]) is float
    assert cfg.load_config("smoke", {"model": "mine"})["rate"] == 0.5
    with pytest.raises(ConfigError) as err:
        cfg.load_config("smoke", ["model=mine", "rate=-1"])
    assert str(err.value) == "config key rate = -1.0: must be >= 0.0"
    with pytest.raises(ConfigError) as err:
        cfg.load_config("smoke", ["rate=1"])  # the U-Net has no such key
    assert str(err.value).startswith("unknown config key 'rate'; keys: ")
    assert cfg.load_config("smoke", ["model=resunet"])["model"] == "resunet"
    assert cfg.load_config("smoke")["model"] == "unet"
