"""The one config: presets and rules from ``parity/presets.toml`` plus overrides; twin of ``r_impl/R/config.R``."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRESETS_PATH = PROJECT_ROOT / "parity" / "presets.toml"


class ConfigError(ValueError):
    """A preset or an override that does not exist or does not fit its key's type."""


def presets_path() -> Path:
    """Path of the presets file that both languages read."""
    return PRESETS_PATH


def load_rules(path: Path | str = PRESETS_PATH) -> dict:
    """The fixed rules (``[rules]`` of the presets file): reading, augmentation, metrics and harness constants."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    if "rules" not in doc:
        raise ConfigError(f"{path}: no [rules] table; restore it from git (both languages read their rules there)")
    return dict(doc["rules"])


def config_rules(config: dict) -> dict:
    """The rules of a resolved config (``config["rules"]``), or those of the presets file for a hand-made one."""
    return config.get("rules") or load_rules()


def list_presets(path: Path | str = PRESETS_PATH) -> list[str]:
    """Names of the presets defined in ``path``."""
    with open(path, "rb") as f:
        return list(tomllib.load(f)["presets"])


def coerce_value(key: str, text: str, like):
    """Turn the text of an override into the type of the default value ``like``."""
    if isinstance(like, bool):
        low = text.strip().lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"override {key}={text!r}: expected true or false")
    try:
        if isinstance(like, int):
            return int(text)
        if isinstance(like, float):
            return float(text)
    except ValueError:
        raise ConfigError(f"override {key}={text!r}: expected a {type(like).__name__}") from None
    return text


def load_config(preset: str = "smoke", overrides: dict | list | None = None,
                path: Path | str = PRESETS_PATH) -> dict:
    """Resolve ``[defaults]`` + ``[presets.<preset>]`` + ``overrides`` into one flat dict.

    ``overrides`` is a dict or a list of ``"key=value"`` strings (as given to ``--set``); values given as text
    take the type of the default. The result names its preset under ``"preset"``.
    """
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    if preset not in doc["presets"]:
        raise ConfigError(f"unknown preset {preset!r}; presets in {path}: {', '.join(doc['presets'])}")
    config = dict(doc["defaults"])
    for key, value in doc["presets"][preset].items():
        if key not in config:
            raise ConfigError(f"preset {preset!r} sets {key!r}, which [defaults] in {path} does not define")
        config[key] = value
    if isinstance(overrides, (list, tuple)):
        pairs = {}
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r}: expected key=value")
            key, text = item.split("=", 1)
            pairs[key.strip()] = text
        overrides = pairs
    for key, value in (overrides or {}).items():
        if key == "rules" or key.startswith("rules."):
            raise ConfigError(f"override {key!r}: the [rules] of {path} are fixed, not settings; change them there "
                              "only to change what both languages compute")
        if key not in config:
            raise ConfigError(f"unknown config key {key!r}; keys: {', '.join(sorted(config))}")
        config[key] = coerce_value(key, value, config[key]) if isinstance(value, str) else value
    # Integers written as floats in TOML stay floats (learning_rate); integer keys stay int.
    for key in ("learning_rate", "l2", "split_train", "split_val"):
        config[key] = float(config[key])
    config["preset"] = preset
    config["rules"] = dict(doc["rules"])  # recorded in config.json: what every worker applies
    return config


def write_config(config: dict, path: Path | str) -> None:
    """Write a resolved config as the run folder's ``config.json`` (what every worker reads)."""
    Path(path).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def read_config(path: Path | str) -> dict:
    """Read a resolved ``config.json``."""
    return json.loads(Path(path).read_text())
