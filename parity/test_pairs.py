"""Model pairs end to end: the shipped example pairs and the README's minimal pair give PARITY across the three
workers through the ``parity_run`` fixture (the project's pytest plugin); what only Keras can tell about a pair (a
build_model that raises, a return value that is no model, an output of the wrong shape or not a probability)
stops the worker at build, naming the file and the fix."""

from __future__ import annotations

import json
import re

import pytest

from parity.env import PROJECT_ROOT
from parity.testing import worker_inputs
from tests.test_model_pairs import MINIMAL_PY, MINIMAL_R, make_pair

ALL = "python,r-rpy2,r-rscript"


@pytest.mark.slow
@pytest.mark.parametrize("pair", ["resunet", "se_unet"])
def test_example_pair_parity(parity_run, pair):
    """Each example pair is bit-identical across the three workers: every stage, every layer's output."""
    result = parity_run(model=pair, preset="smoke", impls=ALL, overrides=["epochs=2"])
    assert result.verdict.startswith("PARITY"), result.first_divergence
    forward = [s for p in result.comparison["pairs"] for s in p["stages"] if s["stage"] == "forward"]
    assert len(forward) == 2 and all(s["verdict"] == "identical" and s["details"]["layers_differ"] == 0
                                     and len(s["details"]["layers"]) > 20 for s in forward), forward


def readme_pair(folder):
    """The pair of README.md's "Your own model pair", written from the README's code blocks alone."""
    text = (PROJECT_ROOT / "README.md").read_text()
    blocks = dict(re.findall(r"^```(?:python|r)\n# my_pair/(model\.(?:py|R))\n(.*?)^```", text, re.M | re.S))
    assert set(blocks) == {"model.py", "model.R"}, "README.md lost its minimal pair"
    folder.mkdir()
    for name, code in blocks.items():
        (folder / name).write_text(code)
    return folder


@pytest.mark.slow
def test_readme_pair_works_on_the_first_try(parity_run, tmp_path):
    """The README's minimal pair, copied as it stands, gives PARITY across the three workers."""
    result = parity_run(model=str(readme_pair(tmp_path / "my_pair")), preset="smoke", impls=ALL)
    assert result.verdict.startswith("PARITY"), result.first_divergence


BUILD_ERRORS = {
    "python returns no model": ("python", dict(py=MINIMAL_PY.replace("return keras.Model(inputs, outputs)",
                                                                     "return outputs")),
                                "model.py: build_model returned a KerasTensor, not a keras.Model"),
    "r raises": ("r-rscript", dict(r=MINIMAL_R.replace("keras <- reticulate::import(\"keras\")",
                                                       "stop(\"no such layer\")")),
                 "model.R: build_model raised: no such layer"),
    "python two outputs channels": ("python", dict(py=MINIMAL_PY.replace("Conv2D(1, 1", "Conv2D(2, 1")),
                                    "it must give one output (N, H, W, 1)"),
    "python not a probability": ("python", dict(py=MINIMAL_PY.replace("activation=\"sigmoid\"",
                                                                      "activation=\"linear\"")),
                                 "not a probability"),
    "r returns no model": ("r-rscript", dict(r=MINIMAL_R.replace("keras$Model(inputs, outputs)", "outputs")),
                           "model.R: build_model returned a"),
    "python output smaller": ("python", dict(py=MINIMAL_PY.replace("padding=\"same\", activation=\"relu\"",
                                                                   "padding=\"valid\", activation=\"relu\"")),
                              "use padding='same'"),
}
DEFAULT_TIER = ("python returns no model", "r raises")


@pytest.mark.heavy
@pytest.mark.parametrize("case", [c if c in DEFAULT_TIER else pytest.param(c, marks=pytest.mark.slow)
                                  for c in BUILD_ERRORS])
def test_what_only_keras_can_tell_fails_at_build(case, tmp_path):
    """The worker fails in phase build with one line naming the pair's file and the fix; nothing trains."""
    from parity.run.workers import spawn_worker

    impl, files, needle = BUILD_ERRORS[case]
    pair = make_pair(tmp_path / "pair", **files)
    config, manifest, _ = worker_inputs(tmp_path, [f"model={pair}", "threads_intra=1", "threads_inter=1"])
    res = spawn_worker(impl, config, manifest, tmp_path / "out", timeout_s=300)
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert not res.ok and status["phase"] == "build" and needle in (res.error or ""), (res.error, status)
    assert not (tmp_path / "out" / "batch_losses.npy").exists()
