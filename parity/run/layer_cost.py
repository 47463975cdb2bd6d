"""What the forward stage's layer recording costs at a preset, side by side with a training step of the same model.

``python -m parity.run.layer_cost PRESET [PAIR]``: builds the preset's model (synthetic inputs of its size; the data
do not change the cost), times ``save_layer_outputs`` on a fixed batch of 4 tiles (twice) and three training steps of
``batch_size`` samples at the training side, and prints the bytes the recording wrote. A worker's training is
``epochs x batches`` such steps, so the ratio of the two says what the recording adds to it (parity/BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def layer_cost(preset: str, model: str = "unet") -> dict:
    """Seconds of the recording (two calls), its bytes, and seconds of one training step, at ``preset``."""
    import numpy as np

    from python_impl import artifacts, pair as pair_mod, train, unet
    from python_impl.config import load_config

    config = load_config(preset, ["data=synthetic", f"model={model}"])
    train.set_determinism(config)
    size = int(config["tile_size"])
    side = int(config["crop_size"]) or size
    channels = int(config["input_channels"])
    rng = np.random.default_rng(0)
    fixed = rng.random((int(config["rules"]["fixed_batch_size"]), size, size, channels), dtype=np.float32)
    pair = pair_mod.load_pair(config)
    train.seed_everything(config)
    net = pair_mod.build_pair_model(pair, config)
    out = Path(tempfile.mkdtemp())
    record = []
    for _ in range(2):
        t = time.perf_counter()
        artifacts.save_layer_outputs(net, fixed, config, out)
        record.append(time.perf_counter() - t)
    nbytes = sum(p.stat().st_size for p in out.iterdir())
    bs = int(config["batch_size"])
    x = rng.random((bs, side, side, channels), dtype=np.float32)
    y = (rng.random((bs, side, side, 1)) > 0.9).astype(np.float32)
    unet.compile_model(net, config, 100, pair.loss)
    unet.build_optimizer(net)
    step = train.make_train_step(net, x, y)
    step(x, y)  # traced
    t = time.perf_counter()
    for _ in range(3):
        step(x, y)
    per_step = (time.perf_counter() - t) / 3
    return {"preset": preset, "model": model, "recording_s": record, "recording_bytes": nbytes,
            "train_step_s": per_step, "batch_size": bs, "side": side}


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print(json.dumps(layer_cost(*sys.argv[1:3])))
