"""No rule number is typed in code: the fixed rules live in ``[rules]`` of parity/presets.toml, read by both twins.

Every numeric literal of the code (Python's tokenizer; R's code with comments and strings removed) is compared
with the rule values; a hit outside ``ALLOWED`` fails naming the file, the line and the rule it looks like.
Then each twin is checked to really read its rules from the config: a changed rule changes what it computes.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import numpy as np

from parity.env import PROJECT_ROOT
from python_impl.config import load_config, load_rules

# Numbers that are rules when they appear in code, as written: an integer rule as an integer literal, a real one
# with a decimal point (3 channels are no geotiff_factor 3.0; 0, 1 and 4 are everywhere and not listed).
RULE_NUMBERS = {127: "jpeg_mask_threshold", 0.299: "luma", 0.587: "luma", 0.114: "luma",
                0.3: "augment_brightness_max_delta", 0.8: "augment_contrast/saturation",
                1.1: "augment_contrast/saturation", 0.5: "class_threshold", 3.0: "geotiff_factor",
                255.0: "jpeg_scale"}
# (file, number) -> why it is not a rule there.
ALLOWED = {
    ("parity/compare/regress.py", 0.5): "the default of --time-min-s (seconds), a regression threshold",
    ("parity/doctor/probes/probe.R", 0.5): "the doctor's own tiny fit: labels of random inputs, not a tailings rule",
    ("parity/doctor/probes/python_side.py", 0.5): "the same tiny fit on the Python side",
    ("parity/report/plots.py", 0.3): "figure layout",
    ("parity/report/plots.py", 0.5): "figure layout",
    ("parity/report/plots.py", 3.0): "line width of the reference curve",
    ("parity/report/plots.py", 0.8): "figure layout",
    ("parity/data/synthetic.py", 0.3): "synthetic scenes: reflectance of the made-up ground",
    ("parity/data/synthetic.py", 0.5): "synthetic scenes: shape of the made-up patches",
    ("parity/data/synthetic.py", 0.8): "synthetic scenes: shape of the made-up patches",
    ("parity/data/synthetic.py", 255.0): "writing a uint8 JPEG from [0, 1] values",
    ("parity/data/fixtures.py", 255.0): "a broken mask fixture that holds 0..255",
    ("r_impl/R/data.R", 255.0): "readJPEG's own fixed scale: its doubles are byte / 255 (jpeg_bytes undoes it)",
}
CODE_DIRS = ("python_impl", "r_impl/R", "parity")


def python_numbers(path: Path):
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.NUMBER:
            text = tok.string.rstrip("jJ")
            try:
                yield tok.start[0], int(text, 0) if re.fullmatch(r"0[xob]\w+|\d+", text) else float(text)
            except ValueError:
                continue


def r_numbers(path: Path):
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        code = re.sub(r'"(\\.|[^"\\])*"|\'(\\.|[^\'\\])*\'', '""', line).split("#", 1)[0]
        for m in re.finditer(r"(?<![\w.])(\d+\.\d*|\.\d+|\d+)L?(?![\w.])", code):
            text = m.group(1)
            yield lineno, float(text) if "." in text else int(text)


def rule_numbers_in_code() -> list[str]:
    hits = []
    for folder in CODE_DIRS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*")):
            rel = path.relative_to(PROJECT_ROOT).as_posix()
            if rel.startswith("parity/models/"):  # model pairs are a user's code: their numbers are theirs
                continue
            if path.suffix == ".py" and not path.name.startswith("test_") and path.name != "testing.py":
                numbers = python_numbers(path)
            elif path.suffix == ".R":
                numbers = r_numbers(path)
            else:
                continue
            for lineno, value in numbers:
                # 127 == 127.0 in Python: the type is compared too, so that 3 channels are no factor 3.0.
                rule = next((k for k in RULE_NUMBERS if k == value and type(k) is type(value)), None)
                if rule is not None and (rel, rule) not in ALLOWED:
                    hits.append(f"{rel}:{lineno}: {value!r} looks like the rule {RULE_NUMBERS[rule]} "
                                "(read it from config['rules'] / config$rules)")
    return hits


def test_no_rule_number_is_typed_in_code():
    hits = rule_numbers_in_code()
    assert not hits, "rule numbers typed in code:\n" + "\n".join(hits)


def test_rule_numbers_are_the_configs():
    rules = load_rules()
    assert {rules["jpeg_mask_threshold"], rules["class_threshold"], rules["geotiff_factor"], rules["jpeg_scale"],
            rules["augment_brightness_max_delta"], *rules["luma"], *rules["augment_contrast"]} <= set(RULE_NUMBERS)
    assert load_config("smoke")["rules"] == rules  # recorded in every run's config.json


def test_the_python_twin_reads_its_rules_from_the_config(tmp_path):
    from parity.data.synthetic import make_synthetic
    from python_impl.data import read_tile

    make_synthetic(tmp_path, count=1, size=16, seed=3)
    config = load_config("smoke", ["tile_size=16", "encoding=jpeg"])
    image, mask = read_tile(tmp_path, 0, config)
    halved = dict(config, rules=dict(config["rules"], jpeg_scale=2 * config["rules"]["jpeg_scale"],
                                     jpeg_mask_threshold=255))
    image2, mask2 = read_tile(tmp_path, 0, halved)
    assert np.allclose(image2 * 2, image, atol=1e-6) and not mask2.any() and mask.any()


def test_a_rule_typed_in_code_is_found(tmp_path, monkeypatch):
    import tests.test_rules_in_config as me

    fake = tmp_path / "python_impl"
    fake.mkdir()
    (fake / "metrics.py").write_text("def f(p):\n    return p > 0.5\n")
    monkeypatch.setattr(me, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(me, "CODE_DIRS", ("python_impl",))
    assert me.rule_numbers_in_code() == ["python_impl/metrics.py:2: 0.5 looks like the rule class_threshold "
                                         "(read it from config['rules'] / config$rules)"]
