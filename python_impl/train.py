"""Training protocol of both twins; twin of r_impl/R/train.R.

Seeds through ``keras.utils.set_random_seed``, op determinism, thread counts from the config, batches in the
order that the manifest lists (no framework shuffling), cut to the manifest's crops when ``crop_size`` > 0, one
training step per manifest batch (what ``train_on_batch`` runs, traced once: ``make_train_step``). Metrics, lean:
after every epoch one forward pass over the validation tiles (loss from those predictions with the compiled
loss, counted metrics); the training split's loss per epoch is the mean of the epoch's batch losses; the
training split's counted metrics once, at the end (evaluation phase). Everything goes to ``out_dir`` in the
formats of FORMATS.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from python_impl import artifacts, metrics, pair as pair_mod, unet
from python_impl.augment import augment_batch, crop_batch
from python_impl.config import config_rules


def available_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota (v2 cpu.max or v1
    cpu.cfs_quota_us), rounded up; at least 1. The R twin reads the same files."""
    import math
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    for quota_file, period_file in (("/sys/fs/cgroup/cpu.max", None),
                                    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")):
        try:
            fields = Path(quota_file).read_text().split()
            quota, period = fields[0], (fields[1] if period_file is None else Path(period_file).read_text().split()[0])
        except (OSError, IndexError):
            continue
        if quota not in ("max", "-1"):
            cores = min(cores, math.ceil(int(quota) / int(period)))
        break
    return max(1, cores)


def resolve_threads(config: dict) -> dict:
    """``threads_intra`` and ``threads_inter`` as numbers: ``"auto"`` is ``available_cores()``."""
    return {key: available_cores() if str(config[key]) == "auto" else int(config[key])
            for key in ("threads_intra", "threads_inter")}


def set_determinism(config: dict) -> dict:
    """Seed, thread counts and op determinism from ``config``; must run before TensorFlow runs any op.

    Returns what was set, for environment.json.
    """
    import keras
    import tensorflow as tf

    threads = resolve_threads(config)
    # Thread pools are created by the first op; setting them later raises RuntimeError.
    tf.config.threading.set_intra_op_parallelism_threads(threads["threads_intra"])
    tf.config.threading.set_inter_op_parallelism_threads(threads["threads_inter"])
    keras.utils.set_random_seed(int(config["seed"]))
    if config["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    return {"seed": int(config["seed"]), **threads, "threads_setting": [str(config["threads_intra"]),
                                                                        str(config["threads_inter"])],
            "available_cores": available_cores(), "op_determinism": bool(config["deterministic"])}


def seed_everything(config: dict) -> None:
    """Seed Python's, NumPy's and TensorFlow's generators from the config (``keras.utils.set_random_seed``), as the
    R twin does before it builds the model (with R's ``set.seed`` too)."""
    import keras

    keras.utils.set_random_seed(int(config["seed"]))


def batch_seeds(manifest: dict, epoch: int, positions):
    """Augmentation seeds (int32 pairs) of the train ``positions`` of one batch in ``epoch`` (0-based):
    rows ``positions`` of the manifest's ``augment_seeds[epoch]``."""
    return np.asarray(manifest["augment_seeds"][epoch], dtype=np.int32)[np.asarray(positions, dtype=np.int64)]


def batch_crops(manifest: dict, epoch: int, positions):
    """Crop offsets (row, column) of the train ``positions`` of one batch in ``epoch`` (0-based): rows
    ``positions`` of the manifest's ``crops[epoch]``."""
    return np.asarray(manifest["crops"][epoch], dtype=np.int64)[np.asarray(positions, dtype=np.int64)]


def total_steps(manifest: dict, epochs: int) -> int:
    """Training steps (batches) of the first ``epochs`` epochs of the manifest: the length of the LR schedule."""
    return sum(len(manifest["batches"][e]) for e in range(epochs))


def mean_loss(losses) -> float:
    """Mean of batch losses, summed left to right in float64 (the R twin's loop; numpy's pairwise sum and R's
    long-double sum could differ in the last bit)."""
    total = 0.0
    for value in losses:
        total += float(value)
    return total / len(losses)


def make_train_step(model, x, y):
    """``train_batch(x, y)``: one optimizer step of ``model`` on one batch, returning the batch's loss; ``x`` and ``y``
    are a first batch, for the shape of a sample.

    What ``train_on_batch`` runs (Keras's ``train_step``, metrics reset before it so that the loss returned is
    this batch's), as one ``tf.function`` over batches of any size: ``train_on_batch`` traces the step for the
    first batch's size and again for a last, smaller batch (as long as the first trace). Same
    graph, same numbers. ``jit_compile=False`` as in ``unet.compile_model``; ``autograph=False`` as Keras's own
    wrapper (``do_not_convert``).
    """
    import tensorflow as tf

    spec = tuple(tf.TensorSpec((None, *a.shape[1:]), tf.float32) for a in (x, y))
    step = tf.function(model.train_step, input_signature=[spec], jit_compile=False, autograph=False)

    def train_batch(x, y) -> float:
        model.reset_metrics()
        return float(step((x, y))["loss"])

    train_batch.tracing_count = step.experimental_get_tracing_count  # for tests/test_training_loop.py
    return train_batch


def make_predict(model, x):
    """``predict_tiles(x, batch_size)``: the model's probabilities (float32 numpy (N, H, W, 1)) for the tiles ``x``
    (float32 numpy, N first), ``batch_size`` at a time, as ``model.predict`` gives them; ``x`` here: tiles of
    the size it will see.

    Keras's ``predict_step`` as one ``tf.function``: ``model.predict`` builds a tf.data pipeline at every call,
    and ``predict_on_batch`` traces a second
    graph. Same graph, same numbers (``jit_compile=False``, as training: where Keras's "auto" would pick XLA, on a
    GPU without op determinism, ``model.predict`` could differ).
    """
    import tensorflow as tf

    spec = tf.TensorSpec((None, *x.shape[1:]), tf.float32)
    step = tf.function(model.predict_step, input_signature=[spec], jit_compile=False, autograph=False)

    def predict_tiles(x, batch_size: int) -> np.ndarray:
        # At least one tile: the config's rules give every split one (an empty batch fails in TensorFlow's conv).
        return np.concatenate([step(x[k:k + batch_size]).numpy() for k in range(0, len(x), batch_size)])

    return predict_tiles


def split_metrics(model, probabilities, masks, config: dict) -> dict:
    """Loss and counted metrics of one split from its predictions (``make_predict``) with the current weights.

    The loss is the compiled loss (binary cross-entropy plus the L2 terms) of all the split's predictions at
    once, ``model.compute_loss``: what ``evaluate`` returns for one batch, without a second forward pass.
    ``probabilities`` and ``masks`` are float32 numpy arrays (N, H, W, 1).
    """
    loss = model.compute_loss(y=masks, y_pred=probabilities, training=False)
    result = {"loss": float(loss)}
    threshold = config_rules(config)["class_threshold"]
    result.update(metrics.segmentation_metrics(metrics.confusion_counts(probabilities, masks, threshold)))
    return result


def train(config: dict, manifest: dict, data: dict, out_dir) -> dict:
    """Build the config's model pair, train and evaluate it; write the worker artifacts to ``out_dir``; return the
    timings.

    ``data`` is ``{"train": {"images", "masks"}, "val": {"images", "masks"}}`` in manifest order (NHWC float32).
    """
    out_dir = Path(out_dir)
    timings = {}
    started = time.time()
    # The hand-over to Keras as float32 numpy: a no-op here; the R twin converts its reader's R arrays, once.
    t = time.time()
    train_x, train_y = (np.asarray(data["train"][k], dtype=np.float32) for k in ("images", "masks"))
    val_x, val_y = (np.asarray(data["val"][k], dtype=np.float32) for k in ("images", "masks"))
    timings["handover"] = time.time() - t

    artifacts.log_progress(out_dir, "phase build")
    t = time.time()
    pair = pair_mod.load_pair(config)
    seed_everything(config)  # the pair's default initializers draw from these seeds, in both languages
    model = pair_mod.build_pair_model(pair, config)
    artifacts.save_json(unet.architecture_record(model), out_dir / "architecture.json")
    artifacts.save_weights_npz(model, out_dir / "weights_initial.npz")
    fixed = np.asarray(manifest["fixed_batch"], dtype=np.int64)
    predict_tiles = make_predict(model, val_x)
    # forward_fixed: the fixed batch as one batch; forward_layers: every layer's output on it.
    forward = predict_tiles(val_x[fixed], len(fixed))
    pair_mod.check_probabilities(forward, val_x[fixed].shape, str(pair.folder / "model.py"))
    artifacts.save_array(forward, out_dir / "forward_fixed.npy")
    artifacts.save_layer_outputs(model, val_x[fixed], config, out_dir)
    epochs = int(config["epochs"])
    if len(manifest["batches"]) < epochs:
        raise ValueError(f"manifest lists batches for {len(manifest['batches'])} epochs, config wants {epochs}:"
                         " make the manifest from this config")
    crop_size = int(config["crop_size"])
    if int(manifest.get("crop_size", 0)) != crop_size:
        raise ValueError(f"manifest crop_size {manifest.get('crop_size', 0)}, config crop_size {crop_size}: make the "
                         "manifest from this config")
    unet.compile_model(model, config, total_steps(manifest, epochs), pair.loss)
    unet.build_optimizer(model)  # the training step then traces once (unet.build_optimizer)
    # compiled.json: the optimizer and loss this very model trains with, for the architecture stage.
    artifacts.save_json(unet.compiled_record(model), out_dir / "compiled.json")
    timings["build"] = time.time() - t

    n_batches = max((len(manifest["batches"][e]) for e in range(epochs)), default=0)
    losses = np.full((epochs, n_batches), np.nan, dtype=np.float32)
    history, timings["epochs"], timings["epoch_metrics"] = [], [], []
    batch_size = int(config["batch_size"])
    # batch_order.json: the tile ids fed, batch by batch, and a digest of every sample as fed (after crop and
    # augmentation), for the harness's batch-order check
    fed, samples = [], []
    train_batch = None  # make_train_step, at the first batch
    artifacts.log_progress(out_dir, "phase train")
    for epoch in range(epochs):
        t = time.time()
        batches = manifest["batches"][epoch]
        fed.append([])
        samples.append([])
        for b, positions in enumerate(batches):
            idx = np.asarray(positions, dtype=np.int64)
            fed[-1].append([int(manifest["train"][p]) for p in idx])
            x, y = train_x[idx], train_y[idx]
            if crop_size:
                x, y = crop_batch(x, y, batch_crops(manifest, epoch, positions), crop_size)
            if config["augment"]:
                x, y = augment_batch(x, y, batch_seeds(manifest, epoch, positions), config)
            samples[-1].append(artifacts.fed_digests(x, y))
            train_batch = train_batch or make_train_step(model, x, y)
            losses[epoch, b] = train_batch(x, y)
            artifacts.log_progress(out_dir, f"epoch {epoch + 1}/{epochs} batch {b + 1}/{len(batches)} "
                                            f"loss {float(losses[epoch, b]):.4f} elapsed {time.time() - started:.1f}s")
        timings["epochs"].append(time.time() - t)
        t = time.time()
        # The epoch's one forward pass, over the validation tiles; after the last epoch it is the final one.
        val_probabilities = predict_tiles(val_x, batch_size)
        history.append({"epoch": epoch + 1, "train": {"loss": mean_loss(losses[epoch, :len(batches)])},
                        "val": split_metrics(model, val_probabilities, val_y, config)})
        timings["epoch_metrics"].append(time.time() - t)
        v = history[-1]["val"]
        artifacts.log_progress(out_dir, f"epoch {epoch + 1}/{epochs} done val_loss {v['loss']:.4f} "
                                        f"val_iou {'None' if v['iou'] is None else format(v['iou'], '.4f')} "
                                        f"elapsed {time.time() - started:.1f}s")
    artifacts.save_array(losses, out_dir / "batch_losses.npy")
    artifacts.save_json({"manifest_sha256": manifest.get("manifest_sha256"), "batches": fed, "samples": samples},
                        out_dir / "batch_order.json")

    artifacts.log_progress(out_dir, "phase evaluation")
    t = time.time()
    artifacts.save_array(val_probabilities[..., 0], out_dir / "predictions_val.npy")
    # The training split's counted metrics, once, with the final weights.
    train_probabilities = predict_tiles(train_x, batch_size)
    final = {"train": split_metrics(model, train_probabilities, train_y, config), "val": history[-1]["val"]}
    artifacts.save_json({"epochs": history, "final": final}, out_dir / "metrics.json")
    timings["evaluation"] = time.time() - t

    artifacts.log_progress(out_dir, "phase save")
    t = time.time()
    artifacts.save_weights_npz(model, out_dir / "weights_final.npz")
    model.save(out_dir / "model.keras")
    timings["save"] = time.time() - t
    return timings
