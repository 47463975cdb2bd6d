"""Training protocol of both twins; twin of r_impl/R/train.R.

Seeds through ``keras.utils.set_random_seed``, op determinism, fixed thread counts, batches in the order that
the manifest lists (no framework shuffling), one ``train_on_batch`` per manifest batch, metrics counted from
predictions after every epoch. Everything goes to ``out_dir`` in the formats of FORMATS.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from python_impl import artifacts, metrics, unet
from python_impl.augment import augment_batch
from python_impl.config import config_rules


def set_determinism(config: dict) -> dict:
    """Seed, thread counts and op determinism from ``config``; must run before TensorFlow runs any op.

    Returns what was set, for environment.json.
    """
    import keras
    import tensorflow as tf

    # Thread pools are created by the first op; setting them later raises RuntimeError.
    tf.config.threading.set_intra_op_parallelism_threads(int(config["threads_intra"]))
    tf.config.threading.set_inter_op_parallelism_threads(int(config["threads_inter"]))
    keras.utils.set_random_seed(int(config["seed"]))
    if config["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    return {"seed": int(config["seed"]), "threads_intra": int(config["threads_intra"]),
            "threads_inter": int(config["threads_inter"]), "op_determinism": bool(config["deterministic"])}


def batch_seeds(manifest: dict, epoch: int, positions):
    """Augmentation seeds (int32 pairs) of the train ``positions`` of one batch in ``epoch`` (0-based):
    rows ``positions`` of the manifest's ``augment_seeds[epoch]``."""
    return np.asarray(manifest["augment_seeds"][epoch], dtype=np.int32)[np.asarray(positions, dtype=np.int64)]


def split_metrics(model, images, masks, config: dict) -> dict:
    """Loss (``model.evaluate``) and counted metrics (``model.predict``) of one split with the current weights.

    ``images`` and ``masks`` are the split's float32 numpy arrays.
    """
    batch_size = int(config["batch_size"])
    loss = model.evaluate(images, masks, batch_size=batch_size, verbose=0)
    probabilities = model.predict(images, batch_size=batch_size, verbose=0)
    result = {"loss": float(loss)}
    threshold = config_rules(config)["class_threshold"]
    result.update(metrics.segmentation_metrics(metrics.confusion_counts(probabilities, masks, threshold)))
    return result


def train(config: dict, manifest: dict, data: dict, out_dir) -> dict:
    """Build, train and evaluate the U-Net; write the worker artifacts to ``out_dir``; return the timings.

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
    model = unet.build_unet(config)
    artifacts.save_json(unet.architecture_record(model), out_dir / "architecture.json")
    artifacts.save_weights_npz(model, out_dir / "weights_initial.npz")
    fixed = np.asarray(manifest["fixed_batch"], dtype=np.int64)
    artifacts.save_array(model.predict_on_batch(val_x[fixed]), out_dir / "forward_fixed.npy")
    unet.compile_unet(model, config)
    timings["build"] = time.time() - t

    epochs = int(config["epochs"])
    if len(manifest["batches"]) < epochs:
        raise ValueError(f"manifest lists batches for {len(manifest['batches'])} epochs, config wants {epochs}:"
                         " make the manifest from this config")
    n_batches = max((len(manifest["batches"][e]) for e in range(epochs)), default=0)
    losses = np.full((epochs, n_batches), np.nan, dtype=np.float32)
    history, timings["epochs"], timings["epoch_metrics"] = [], [], []
    fed = []  # batch_order.json: the tile ids fed, batch by batch, for the harness's batch-order check
    artifacts.log_progress(out_dir, "phase train")
    for epoch in range(epochs):
        t = time.time()
        batches = manifest["batches"][epoch]
        fed.append([])
        for b, positions in enumerate(batches):
            idx = np.asarray(positions, dtype=np.int64)
            fed[-1].append([int(manifest["train"][p]) for p in idx])
            x, y = train_x[idx], train_y[idx]
            if config["augment"]:
                x, y = augment_batch(x, y, batch_seeds(manifest, epoch, positions), config)
            # train_on_batch resets the metrics before the step, so the loss it returns is this batch's.
            losses[epoch, b] = model.train_on_batch(x, y)
            artifacts.log_progress(out_dir, f"epoch {epoch + 1}/{epochs} batch {b + 1}/{len(batches)} "
                                            f"loss {float(losses[epoch, b]):.4f} elapsed {time.time() - started:.1f}s")
        timings["epochs"].append(time.time() - t)
        t = time.time()
        history.append({"epoch": epoch + 1,
                        "train": split_metrics(model, train_x, train_y, config),
                        "val": split_metrics(model, val_x, val_y, config)})
        timings["epoch_metrics"].append(time.time() - t)
        v = history[-1]["val"]
        artifacts.log_progress(out_dir, f"epoch {epoch + 1}/{epochs} done val_loss {v['loss']:.4f} "
                                        f"val_iou {'None' if v['iou'] is None else format(v['iou'], '.4f')} "
                                        f"elapsed {time.time() - started:.1f}s")
    artifacts.save_array(losses, out_dir / "batch_losses.npy")
    artifacts.save_json({"manifest_sha256": manifest.get("manifest_sha256"), "batches": fed},
                        out_dir / "batch_order.json")
    artifacts.save_json({"epochs": history}, out_dir / "metrics.json")

    artifacts.log_progress(out_dir, "phase evaluation")
    t = time.time()
    probabilities = model.predict(val_x, batch_size=int(config["batch_size"]), verbose=0)
    artifacts.save_array(probabilities[..., 0], out_dir / "predictions_val.npy")
    timings["evaluation"] = time.time() - t

    artifacts.log_progress(out_dir, "phase save")
    t = time.time()
    artifacts.save_weights_npz(model, out_dir / "weights_final.npz")
    model.save(out_dir / "model.keras")
    timings["save"] = time.time() - t
    return timings
