"""The one config: presets and rules from ``parity/presets.toml`` plus overrides; twin of ``r_impl/R/config.R``."""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PRESETS_PATH = PROJECT_ROOT / "parity" / "presets.toml"
MODELS_DIR = PROJECT_ROOT / "parity" / "models"  # the model pairs shipped with the project, by name


class ConfigError(ValueError):
    """A preset, an override or a config value that does not exist or breaks its key's rule in ``[schema]``."""


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


# Counts of the data that a rule of [schema] may name; known once the tiles are counted (check_config's n_tiles).
COUNTS = {"n_tiles": "usable tiles", "n_train": "training tiles", "n_val": "validation tiles"}
# Keys of a resolved config that are no settings: the preset's name and the fixed rules.
RESOLVED_KEYS = ("preset", "rules")


def shipped_pairs() -> list[str]:
    """Names of the model pairs in ``parity/models/``."""
    return sorted(p.name for p in MODELS_DIR.iterdir() if (p / "model.py").is_file()) if MODELS_DIR.is_dir() else []


def model_dir(value) -> Path:
    """The model pair folder that config ``model`` names: a pair of ``parity/models/`` by name, or a folder
    (absolute, or relative to the working folder); a ConfigError naming the value and the fix otherwise."""
    text = str(value)
    if text and "/" not in text and (MODELS_DIR / text / "model.py").is_file():
        return MODELS_DIR / text
    if text and Path(text).is_dir():
        return Path(text).resolve()
    raise ConfigError(f"config key model = {_show(value)}: no such model pair folder; give a folder with model.py "
                      f"and model.R (README: Your own model pair) or a shipped pair: {', '.join(shipped_pairs())}")


def model_toml(value) -> dict:
    """The ``[defaults]`` and ``[schema]`` of the pair's ``model.toml`` (both empty without one): the pair's own
    config keys and their rules; a ConfigError names a broken file."""
    path = model_dir(value) / "model.toml"
    if not path.is_file():
        return {"defaults": {}, "schema": {}}
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    other = sorted(set(doc) - {"defaults", "schema"})
    if other:
        raise ConfigError(f"{path}: [{other[0]}] is not a table of a model.toml; it has [defaults] and [schema]")
    defaults, schema = dict(doc.get("defaults") or {}), dict(doc.get("schema") or {})
    extra = sorted(set(schema) - set(defaults))
    if extra:
        raise ConfigError(f"{path}: [schema] has a rule for {extra[0]}, which its [defaults] does not define")
    return {"path": path, "defaults": defaults, "schema": schema}


def load_schema(path: Path | str = PRESETS_PATH, model=None) -> dict:
    """The rule of every key of ``[defaults]`` (``[schema]`` of the presets file) and, with ``model``, of the
    pair's ``model.toml``; a key without a rule gets the type of its default. A pair key that is also a key of
    the presets file is a ConfigError naming both."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    schema = dict(doc.get("schema") or {})
    extra = sorted(set(schema) - set(doc["defaults"]))
    if extra:
        raise ConfigError(f"{path}: [schema] has rules for {', '.join(extra)}, which [defaults] does not define")
    defaults = dict(doc["defaults"])
    if model is not None:
        pair = model_toml(model)
        clash = sorted(k for k in pair["defaults"] if k in defaults or k in RESOLVED_KEYS)
        if clash:
            raise ConfigError(f"{pair['path']}: key {clash[0]} is also a key of {path}; rename the pair's key "
                              f"(for example {Path(pair['path']).parent.name}_{clash[0]})")
        schema.update(pair["schema"])
        defaults.update(pair["defaults"])
    names = {bool: "bool", int: "int", float: "float", str: "string"}
    for key, value in defaults.items():
        schema.setdefault(key, {"type": names.get(type(value), "string")})
    return schema


def split_sizes(n_tiles: int, split_train: float, split_val: float) -> tuple[int, int, int]:
    """(n_train, n_val, n_test): rounded shares of ``n_tiles``; the test split takes the rest (never negative).

    Rounding is half to even in both languages (Python's round, R's round)."""
    n_train = min(n_tiles, int(round(n_tiles * split_train)))
    n_val = min(n_tiles - n_train, int(round(n_tiles * split_val)))
    return n_train, n_val, n_tiles - n_train - n_val


def _show(value) -> str:
    """A config value as the error messages of both twins write it: 'text', true/false, 12, 0.001."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)


def _fail(key: str, value, rule: str):
    raise ConfigError(f"config key {key} = {_show(value)}: {rule}")


def _typed(key: str, value, rule: dict):
    """``value`` in the type of its rule (whole floats of int keys become int), or a ConfigError."""
    kind = rule.get("type", "string")
    if rule.get("auto") and value == "auto":
        return value
    also = " or 'auto'" if rule.get("auto") else ""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int":
        if not number or (isinstance(value, float) and not value.is_integer()):
            _fail(key, value, f"must be an integer{also}")
        return int(value)
    if kind in ("float", "number"):
        if not number or not math.isfinite(value):
            _fail(key, value, f"must be a finite number{also}")
        return float(value) if kind == "float" else value
    if kind == "bool":
        if not isinstance(value, bool):
            _fail(key, value, "must be true or false")
        return value
    if not isinstance(value, str):
        _fail(key, value, f"must be a text{also}")
    return value


def check_config(config: dict, n_tiles: int | None = None) -> dict:
    """Check ``config`` against the rules of ``[schema]`` in the presets file; return it with every value in its
    key's type (int keys int, float keys float).

    Keys go in sorted order, three passes: each value alone (type, choices, bounds), then the relations between
    keys (tile_size a multiple of 2^depth, crop_size <= tile_size, split_train + split_val <= 1), then, with
    ``n_tiles`` (the usable tiles of the run's data), the rules that name the data (batch_size <= the training
    tiles; each split gets a tile). The first broken rule raises ConfigError naming the key, the value and the rule:
    ``config key batch_size = 0: must be >= 1``. Twin of check_config in r_impl/R/config.R (the same messages).
    """
    schema = load_schema(model=config.get("model"))
    unknown = sorted(k for k in config if k not in schema and k not in RESOLVED_KEYS)
    if unknown:
        raise ConfigError(f"config key {unknown[0]}: not a setting; keys: {', '.join(sorted(schema))}")
    missing = sorted(k for k in schema if k not in config)
    if missing:
        raise ConfigError(f"config key {missing[0]}: missing; write the config with load_config (it fills in "
                          "the defaults of parity/presets.toml)")
    out = dict(config)
    keys = sorted(schema)
    for key in keys:
        rule, value = schema[key], _typed(key, out[key], schema[key])
        out[key] = value
        if value == "auto" and rule.get("auto"):
            continue
        if "choices" in rule and value not in rule["choices"]:
            _fail(key, value, "must be one of " + ", ".join(_show(c) if isinstance(c, str) else str(c)
                                                              for c in rule["choices"]))
        for bound, holds, word in (("min", lambda v, b: v >= b, ">="), ("max", lambda v, b: v <= b, "<="),
                                   ("above", lambda v, b: v > b, ">"), ("below", lambda v, b: v < b, "<")):
            b = rule.get(bound)
            if b is not None and not isinstance(b, str) and not holds(value, b):
                _fail(key, value, f"must be {word} {_show(b)}")
    for key in keys:
        rule, value = schema[key], out[key]
        if value == "auto" and rule.get("auto"):
            continue
        if "multiple_of" in rule:
            other = rule["multiple_of"].split("^", 1)[1]
            step = 2 ** out[other]
            if value % step != 0:
                _fail(key, value, f"must be a multiple of 2^{other} = {step} ({other} = {out[other]})")
        if "sum_max" in rule:
            other, limit = rule["sum_max"]["with"], rule["sum_max"]["max"]
            if out[other] + value > limit:
                _fail(key, value, f"{other} + {key} must be <= {_show(limit)} ({other} = {_show(out[other])})")
        if "at_most" in rule and value > out[rule["at_most"]]:
            other = rule["at_most"]
            _fail(key, value, f"must be <= {other} ({other} = {_show(out[other])})")
    if n_tiles is None:
        return out
    n_train, n_val, _ = split_sizes(int(n_tiles), out["split_train"], out["split_val"])
    counts = {"n_tiles": int(n_tiles), "n_train": n_train, "n_val": n_val}
    context = (f"split_train {_show(out['split_train'])} and split_val {_show(out['split_val'])} of "
               f"{int(n_tiles)} usable tiles")
    # The splits first: a split without tiles explains any bound by those tiles.
    for key in keys:
        rule, value = schema[key], out[key]
        if "leaves" in rule:
            count, least = rule["leaves"]["count"], rule["leaves"]["min"]
            if counts[count] < least:
                _fail(key, value, f"leaves {counts[count]} {COUNTS[count]}, needs at least {least} ({context})")
    for key in keys:
        rule, value = schema[key], out[key]
        if value == "auto" and rule.get("auto"):
            continue
        for bound, holds, word in (("min", lambda v, b: v >= b, ">="), ("max", lambda v, b: v <= b, "<=")):
            b = rule.get(bound)
            if isinstance(b, str) and not holds(value, counts[b]):
                _fail(key, value, f"must be {word} the {COUNTS[b]}, {counts[b]} ({context})")
    return out


def coerce_value(key: str, text: str, rule: dict):
    """Turn the text of an override into the type of its key's ``rule`` (``[schema]``); a ConfigError names the
    key, the text and the type expected."""
    kind = rule.get("type", "string")
    word = text.strip()
    if rule.get("auto") and word.lower() == "auto":
        return "auto"
    also = " or 'auto'" if rule.get("auto") else ""
    if kind == "bool":
        if word.lower() in ("true", "1", "yes", "on"):
            return True
        if word.lower() in ("false", "0", "no", "off"):
            return False
        _fail(key, text, "must be true or false")
    if kind == "int" or (kind == "number" and re.fullmatch(r"[+-]?[0-9]+", word)):
        if not re.fullmatch(r"[+-]?[0-9]+", word):  # as R's twin: digits only (int() would take "1_000")
            _fail(key, text, f"must be an integer{also}")
        return int(word)
    if kind in ("float", "number"):
        try:
            return float(word)
        except ValueError:
            _fail(key, text, f"must be a finite number{also}")
    return text


def load_config(preset: str = "smoke", overrides: dict | list | None = None,
                path: Path | str = PRESETS_PATH) -> dict:
    """Resolve ``[defaults]`` + ``[presets.<preset>]`` + ``overrides`` into one flat dict, checked against
    ``[schema]`` (check_config; a broken rule raises ConfigError naming the key, the value and the rule).

    ``overrides`` is a dict or a list of ``"key=value"`` strings (as given to ``--set``); values given as text
    take the type of their key's rule. The result names its preset under ``"preset"``.
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
    # The model pair first: its model.toml adds the keys that the other overrides may set.
    if "model" in (overrides or {}):
        config["model"] = str(overrides["model"]).strip()
    folder = model_dir(config["model"])
    if folder.parent != MODELS_DIR:
        config["model"] = str(folder)  # a folder of the user's, absolute: the workers run elsewhere
    config.update(model_toml(config["model"])["defaults"])
    schema = load_schema(path, config["model"])
    for key, value in (overrides or {}).items():
        if key == "rules" or key.startswith("rules."):
            raise ConfigError(f"override {key!r}: the [rules] of {path} are fixed, not settings; change them there "
                              "only to change what both languages compute")
        if key not in config:
            raise ConfigError(f"unknown config key {key!r}; keys: {', '.join(sorted(config))}")
        if key != "model":  # set above, resolved
            config[key] = coerce_value(key, value, schema[key]) if isinstance(value, str) else value
    config = check_config(config)  # types too: integers written as floats in TOML stay floats (learning_rate)
    config["preset"] = preset
    config["rules"] = dict(doc["rules"])  # recorded in config.json: what every worker applies
    return config


def write_config(config: dict, path: Path | str) -> None:
    """Write a resolved config as the run folder's ``config.json`` (what every worker reads)."""
    Path(path).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def read_config(path: Path | str) -> dict:
    """Read a resolved ``config.json``."""
    return json.loads(Path(path).read_text())
