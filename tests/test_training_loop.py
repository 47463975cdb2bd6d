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
import json, sys
import numpy as np
from python_impl import config as config_mod, train, unet

config = config_mod.load_config("smoke", ["tile_size=32", "batch_size=2", *sys.argv[1:]])
train.set_determinism(config)
rng = np.random.default_rng(7)
x = rng.random((5, 32, 32, 3), dtype=np.float32)
x = x[..., :int(config["input_channels"])]
y = (x[..., :1] > 0.5).astype(np.float32)
batches = [[0, 1], [2, 3], [4], [1, 2], [3, 4], [0]]

def fresh():
    return unet.compile_model(unet.build_unet(config), config, len(batches))

keras_model = fresh()  # Keras's way: the optimizer built inside the first step
keras_losses = [float(keras_model.train_on_batch(x[b], y[b])) for b in batches]
keras_pred = keras_model.predict(x, batch_size=2, verbose=0)
keras_fixed = keras_model.predict_on_batch(x[:4])

ours = unet.build_optimizer(fresh())
step = train.make_train_step(ours, x[:2], y[:2])
our_losses = [step(x[b], y[b]) for b in batches]
predict_tiles = train.make_predict(ours, x)
print(json.dumps({
    "losses": [keras_losses, our_losses],
    "weights": all(np.array_equal(a, b) for a, b in zip(keras_model.get_weights(), ours.get_weights())),
    "optimizer": [len(keras_model.optimizer.variables), len(ours.optimizer.variables),
                  all(np.array_equal(a.numpy(), b.numpy())
                      for a, b in zip(keras_model.optimizer.variables, ours.optimizer.variables))],
    "predictions": bool(np.array_equal(keras_pred, predict_tiles(x, 2))),
    "fixed": bool(np.array_equal(keras_fixed, predict_tiles(x[:4], 4))),
    "traces": step.tracing_count(),
}))
"""


# The smoke preset (Adam, BCE, constant rate, no batch norm), and the other branches of the step: batch norm,
# BCE + Dice, RMSprop with a cosine schedule, one input channel.
CASES = {"smoke": [], "rmsprop-cosine-dice-bn-grey": ["batch_norm=true", "loss=bce_dice", "optimizer=rmsprop",
                                                      "lr_schedule=cosine", "input_channels=1"]}


@pytest.fixture(scope="module", params=list(CASES))
def loops(request):
    child = subprocess.run([sys.executable, "-c", CHILD, *CASES[request.param]], cwd=PROJECT_ROOT,
                           env=compute_environment(),
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
    return json.loads(child.stdout.strip().splitlines()[-1])


def test_training_step_gives_train_on_batch_bits(loops):
    keras_losses, our_losses = loops["losses"]
    assert [v.hex() for v in our_losses] == [v.hex() for v in keras_losses]
    assert loops["weights"], "weights after the same batches differ from train_on_batch's"
    n_keras, n_ours, same = loops["optimizer"]
    assert n_keras == n_ours and same, "the optimizer's variables (moments, step count) differ"


def test_training_step_traces_once_for_every_batch_size(loops):
    assert loops["traces"] == 1


def test_predict_gives_model_predict_bits(loops):
    assert loops["predictions"], "make_predict differs from model.predict"
    assert loops["fixed"], "make_predict as one batch differs from predict_on_batch"
