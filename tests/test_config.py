"""Config mistakes (``--set tile_size=90``, ``epochs=-1``, ``batch_size=0``, ...) stop ``run`` and ``worker`` with
one line naming the key, the value and the rule, exit 2, nothing written; the workers and R's ``load_config``
apply the same rules (``[schema]`` of parity/presets.toml); every preset passes them."""

from __future__ import annotations

import json

import pytest

from parity.env import R_IMPL_DIR
from parity.testing import cli_run as _cli
from parity.testing import error_lines as _error_lines
from parity.testing import make_tiles as _tiles
from parity.testing import worker_inputs as _worker_inputs


@pytest.mark.parametrize("overrides, line", [
    (["tile_size=90"], "error: config key tile_size = 90: must be a multiple of 2^depth = 4 (depth = 2)"),
    (["epochs=-1"], "error: config key epochs = -1: must be >= 1"),
    (["batch_size=0"], "error: config key batch_size = 0: must be >= 1"),
    (["batch_size=100"], "error: config key batch_size = 100: must be <= the training tiles, 17 (split_train 0.7 "
                         "and split_val 0.2 of 24 usable tiles)"),
    (["learning_rate=0"], "error: config key learning_rate = 0.0: must be > 0.0"),
    (["learning_rate=nan"], "error: config key learning_rate = nan: must be a finite number"),
    (["threads_intra=0"], "error: config key threads_intra = 0: must be >= 1"),
    (["threads_inter=two"], "error: config key threads_inter = 'two': must be an integer or 'auto'"),
    (["split_train=0.9", "split_val=0.2"], "error: config key split_val = 0.2: split_train + split_val must be "
                                           "<= 1.0 (split_train = 0.9)"),
    (["split_val=0.01"], "error: config key split_val = 0.01: leaves 0 validation tiles, needs at least 1 "
                         "(split_train 0.7 and split_val 0.01 of 24 usable tiles)"),
    (["variant=unet++"], "error: config key variant = 'unet++': must be one of 'paper-r', 'paper-python'"),
    (["optimizer=adamw"], "error: config key optimizer = 'adamw': must be one of 'rmsprop', 'adam', 'sgd'"),
    (["encoding=png"], "error: config key encoding = 'png': must be one of 'geotiff', 'jpeg'"),
    (["mode=fast"], "error: config key mode = 'fast': must be one of 'strict', 'tolerance', 'statistical'"),
    (["input_channels=4"], "error: config key input_channels = 4: must be one of 1, 3"),
    (["seed=-3"], "error: config key seed = -3: must be >= 0"),
    (["data=/no/such/tiles"], "error: config key data = '/no/such/tiles': must be 'synthetic' or an existing "
                              "folder (no folder /no/such/tiles); pass --data DIR, set TAILINGS_DATA, or use the "
                              "smoke preset"),
])
def test_a_config_mistake_is_one_line_exit_2_and_writes_nothing(overrides, line, capsys, tmp_path):
    argv = ["run", "--reports-dir", str(tmp_path / "reports")]
    for item in overrides:
        argv += ["--set", item]
    rc, out, err = _cli(argv, capsys)
    assert (rc, _error_lines(err)) == (2, [line])
    assert "DIVERGED" not in out and not (tmp_path / "reports").exists()


def test_relations_with_the_data_are_checked_on_the_counted_tiles(tmp_path, capsys):
    """A real folder: 8 tiles of which tile 3 is broken leave 7, so 5 training tiles at split_train 0.7."""
    data = _tiles(tmp_path / "tiles", broken="narrow_geotiff")
    rc, _, err = _cli(["run", "--data", str(data), "--set", "batch_size=6", "--set", "tile_size=32",
                       "--reports-dir", str(tmp_path / "reports")], capsys)
    assert (rc, _error_lines(err)) == (2, ["error: config key batch_size = 6: must be <= the training tiles, 5 "
                                           "(split_train 0.7 and split_val 0.2 of 7 usable tiles)"])
    assert not (tmp_path / "reports").exists()


def test_statistical_seeds_are_checked_too(tmp_path, capsys):
    rc, _, err = _cli(["run", "--mode", "statistical", "--seeds", "5,-1", "--reports-dir", str(tmp_path)], capsys)
    assert (rc, _error_lines(err)) == (2, ["error: config key seed = -1: must be >= 0"])
    assert not any(tmp_path.iterdir())


def test_threads_take_an_integer_or_auto_and_every_key_has_a_rule():
    import tomllib

    from python_impl.config import PRESETS_PATH, load_config

    assert load_config("smoke", ["threads_intra=2", "threads_inter=auto"])["threads_intra"] == 2
    assert load_config("smoke", ["threads_intra=auto"])["threads_intra"] == "auto"
    doc = tomllib.loads(PRESETS_PATH.read_text())
    known = {"type", "auto", "choices", "min", "max", "above", "below", "multiple_of", "sum_max", "leaves",
             "folder_or", "at_most", "pair"}
    assert set(doc["schema"]) == set(doc["defaults"]), "every key of [defaults] needs its rule in [schema]"
    for key, rule in doc["schema"].items():
        assert set(rule) <= known and rule["type"] in ("int", "float", "number", "bool", "string"), (key, rule)


def test_worker_command_checks_the_config_it_reads(tmp_path, capsys):
    """`tailings-parity worker` with a hand-edited config.json: one line, exit 2, no output folder."""
    config_path, manifest_path, _ = _worker_inputs(tmp_path, [])
    config = json.loads(config_path.read_text())
    config["epochs"] = -1
    config_path.write_text(json.dumps(config))
    out = tmp_path / "out"
    rc, _, err = _cli(["worker", "--impl", "python", "--config", str(config_path), "--manifest",
                       str(manifest_path), "--out", str(out)], capsys)
    assert (rc, _error_lines(err)) == (2, ["error: config key epochs = -1: must be >= 1"])
    assert not out.exists()
    config["epochs"], config["batch_size"] = 1, 9  # 8 tiles leave 6 for training
    config_path.write_text(json.dumps(config))
    rc, _, err = _cli(["worker", "--impl", "r-rscript", "--config", str(config_path), "--manifest",
                       str(manifest_path), "--out", str(out)], capsys)
    assert (rc, _error_lines(err)) == (2, ["error: config key batch_size = 9: must be <= the training tiles, 6 "
                                           "(split_train 0.7 and split_val 0.2 of 8 usable tiles)"])
    assert not out.exists()


@pytest.mark.heavy
def test_r_load_config_applies_the_same_rules_word_for_word(tmp_path):
    """R's load_config / check_config (r_impl/R/config.R), called directly, refuse what Python's refuse, with the
    same message; R is started without TensorFlow (config.R needs RcppTOML only)."""
    from parity.env import run_rscript
    from python_impl.config import ConfigError, check_config, load_config

    cases = [["tile_size=90"], ["epochs=-1"], ["batch_size=0"], ["learning_rate=-0.0001"], ["threads_intra=0"],
             ["threads_inter=auto"], ["split_train=1"], ["split_train=0.9", "split_val=0.2"], ["l2=-1e-05"],
             ["variant=paper-julia"], ["epochs=many"], ["deterministic=maybe"], ["depth=3", "tile_size=100"],
             ["worker_timeout_s=0"], ["crop_size=128"], ["crop_size=30"], ["loss=dice"], ["lr_schedule=step"],
             ["crop_size=32"]]
    counted = [(24, ["batch_size=100"]), (24, ["split_train=0.01"]), (3, ["batch_size=4"]), (24, [])]

    def python_says(overrides, n_tiles=None):
        try:
            check_config(load_config("smoke", overrides), n_tiles)
            return "accepted"
        except ConfigError as exc:
            return str(exc)

    # R's side is an R file (r_impl/tests/config_cases.R): one line per case, as python_says.
    cases_json = tmp_path / "cases.json"
    cases_json.write_text(json.dumps([[n, o] for n, o in [(None, c) for c in cases] + counted]))
    result = run_rscript(R_IMPL_DIR / "tests" / "config_cases.R", [cases_json], timeout_s=120)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = [python_says(c) for c in cases] + [python_says(o, n) for n, o in counted]
    assert result.stdout.splitlines() == expected
    # accepted: threads auto, a crop of 32 from 64, and 24 tiles
    assert [e for e in expected if not e.startswith("config key ")] == ["accepted"] * 3
    assert "config key crop_size = 128: must be <= tile_size (tile_size = 64)" in expected




def test_every_preset_passes_its_own_rules():
    """Each preset of parity/presets.toml resolves to a config that check_config accepts (tailings: a crop that
    fits its tiles, a loss and a schedule the twins know)."""
    from python_impl.config import check_config, list_presets, load_config

    presets = list_presets()
    assert {"smoke", "ci", "tailings", "paper-r", "paper-python"} <= set(presets)
    for preset in presets:
        config = check_config(load_config(preset))
        assert config["crop_size"] <= config["tile_size"], preset
    tailings = load_config("tailings")
    assert (tailings["crop_size"], tailings["loss"], tailings["lr_schedule"]) == (224, "bce_dice", "cosine")
