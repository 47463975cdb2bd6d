"""The workers' training loop against Keras's own: ``make_train_step`` and ``make_predict`` (both twins) run what
``train_on_batch`` and ``model.predict`` run, and must give the same bits, with the step traced once.

Real TensorFlow in a child process (thread pools and op determinism are set once per process): two copies of
the smoke U-Net from the same seeds, one trained with ``train_on_batch`` and read with ``model.predict``, the
other with the workers' functions, over batches of unequal size (a last, smaller batch is what made
``train_on_batch`` trace again). The R twin's functions are held to Python's bit for bit by the smoke run
(``test_twins.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from parity.env import PROJECT_ROOT, compute_environment

pytestmark = pytest.mark.heavy

CHILD = r"""
import json
import numpy as np
from python_impl import config as config_mod, train, unet

config = config_mod.load_config("smoke", ["tile_size=32", "batch_size=2"])
train.set_determinism(config)
rng = np.random.default_rng(7)
x = rng.random((5, 32, 32, 3), dtype=np.float32)
y = (x[..., :1] > 0.5).astype(np.float32)
batches = [[0, 1], [2, 3], [4], [1, 2], [3, 4], [0]]

def fresh():
    model = unet.compile_unet(unet.build_unet(config), config, len(batches))
    return unet.build_optimizer(model)

keras_model = fresh()
keras_losses = [float(keras_model.train_on_batch(x[b], y[b])) for b in batches]
keras_pred = keras_model.predict(x, batch_size=2, verbose=0)
keras_fixed = keras_model.predict_on_batch(x[:4])

ours = fresh()
step = train.make_train_step(ours, x[:2], y[:2])
our_losses = [step(x[b], y[b]) for b in batches]
predict_tiles = train.make_predict(ours, x)
print(json.dumps({
    "losses": [keras_losses, our_losses],
    "weights": all(np.array_equal(a, b) for a, b in zip(keras_model.get_weights(), ours.get_weights())),
    "predictions": bool(np.array_equal(keras_pred, predict_tiles(x, 2))),
    "fixed": bool(np.array_equal(keras_fixed, predict_tiles(x[:4], 4))),
    "traces": step.tracing_count(),
}))
"""


@pytest.fixture(scope="module")
def loops():
    child = subprocess.run([sys.executable, "-c", CHILD], cwd=PROJECT_ROOT, env=compute_environment(),
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_training_step_gives_train_on_batch_bits(loops):
    keras_losses, our_losses = loops["losses"]
    assert [v.hex() for v in our_losses] == [v.hex() for v in keras_losses]
    assert loops["weights"], "weights after the same batches differ from train_on_batch's"


def test_training_step_traces_once_for_every_batch_size(loops):
    assert loops["traces"] == 1


def test_predict_gives_model_predict_bits(loops):
    assert loops["predictions"], "make_predict differs from model.predict"
    assert loops["fixed"], "make_predict as one batch differs from predict_on_batch"
