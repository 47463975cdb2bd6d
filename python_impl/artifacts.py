"""What a worker writes to its folder (FORMATS.md "Worker output"); twin of r_impl/R/artifacts.R."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np


def model_weights(model) -> dict:
    """Every variable of ``model`` in model order, keyed ``<layer name>/<variable name>``, as float32 arrays."""
    weights = {}
    for layer in model.layers:
        for variable in layer.weights:
            weights[f"{layer.name}/{variable.name}"] = np.asarray(variable.numpy(), dtype=np.float32)
    return weights


def save_weights_npz(model, path) -> None:
    """Write ``model_weights(model)`` to ``path`` (.npz, one array per variable)."""
    np.savez(path, **model_weights(model))


def save_json(obj, path) -> None:
    """Write ``obj`` as indented JSON (the one JSON writer of both languages: R calls Python's json too)."""
    Path(path).write_text(json.dumps(obj, indent=2) + "\n")


def save_array(array, path) -> None:
    """Write ``array`` as float32 .npy in C order."""
    np.save(path, np.ascontiguousarray(np.asarray(array, dtype=np.float32)))


def array_sha256(array) -> str:
    """SHA-256 of the float32 C-order bytes of ``array`` (input_hashes.json)."""
    # .data: the array's own memory, hashed without the copy that tobytes() makes.
    return hashlib.sha256(np.ascontiguousarray(np.asarray(array, dtype=np.float32)).data).hexdigest()


def fed_digests(x, y) -> list:
    """``[image, mask]`` digests (the first 16 hex digits of ``array_sha256``) of every row of a batch as fed to
    the training step, after crop and augmentation (batch_order.json ``samples``)."""
    return [[array_sha256(x[k])[:16], array_sha256(y[k])[:16]] for k in range(len(x))]


def layer_outputs(model, x) -> tuple[list, list]:
    """Every operation of ``model`` after its inputs, in graph order, and its output on the tiles ``x`` (one
    batch, inference mode): (operations, float32 arrays). An operation without one output of its own (a layer
    called twice) is left out."""
    import keras

    ops, outputs = [], []
    for op in model.operations:
        if isinstance(op, keras.layers.InputLayer):
            continue
        try:
            out = op.output
        except (AttributeError, ValueError):  # shared: one output per call
            continue
        if isinstance(out, keras.KerasTensor):
            ops.append(op)
            outputs.append(out)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    values = keras.Model(inputs, outputs)(x, training=False)
    return ops, [np.asarray(v, dtype=np.float32) for v in values]


def save_layer_outputs(model, x, config: dict, out_dir) -> None:
    """forward_layers.json and forward_layers.npz: per operation of the graph (``layer_outputs``) its place, name,
    class, shape and the sha256 of its output; the output itself when it has at most ``layer_full_max`` values,
    else ``layer_sample`` values at evenly spaced positions of its C-order values ([rules])."""
    from python_impl.config import config_rules

    rules = config_rules(config)
    full_max, n_sample = int(rules["layer_full_max"]), int(rules["layer_sample"])
    place = {op.name: k for k, op in enumerate(model.operations)}
    ops, values = layer_outputs(model, x)
    records, arrays = [], {}
    for op, value in zip(ops, values):
        key = f"layer_{place[op.name]:04d}"
        flat = np.ascontiguousarray(value).reshape(-1)
        stored = "full" if flat.size <= full_max else "sample"
        arrays[key] = value if stored == "full" else flat[np.linspace(0, flat.size - 1, n_sample).astype(np.int64)]
        records.append({"index": place[op.name], "key": key, "name": op.name, "class_name": type(op).__name__,
                        "shape": list(value.shape), "sha256": array_sha256(value), "stored": stored})
    np.savez(Path(out_dir) / "forward_layers.npz", **arrays)
    save_json({"full_max": full_max, "sample": n_sample, "layers": records}, Path(out_dir) / "forward_layers.json")


def peak_memory_mb() -> float | None:
    """Peak resident memory of this process (VmHWM of /proc/self/status) in MiB; None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def log_progress(out_dir, line: str) -> None:
    """Append ``line`` to progress.log and print it to stdout, flushed (the spawner streams it)."""
    with open(Path(out_dir) / "progress.log", "a") as f:
        f.write(line + "\n")
    print(line, flush=True)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def op_determinism_enabled() -> bool:
    """Whether TensorFlow's op determinism is on (TensorFlow exposes the query only in its private config)."""
    from tensorflow.python.framework import config as tf_config

    return bool(tf_config.is_op_determinism_enabled())


def environment_record(config: dict, impl: str) -> dict:
    """Versions, threads, determinism flags and devices as this worker's language sees them."""
    import keras
    import tensorflow as tf

    from python_impl.train import available_cores

    rpy2_version = None
    if "rpy2" in sys.modules:
        rpy2_version = getattr(sys.modules["rpy2"], "__version__", None)
    return {
        "impl": impl,
        "language": "python",
        "r_version": None,
        "reticulate_version": None,
        "rpy2_version": rpy2_version,
        "python_version": sys.version,
        "python_executable": sys.executable,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "numpy_version": np.__version__,
        "threads_intra": tf.config.threading.get_intra_op_parallelism_threads(),
        "threads_inter": tf.config.threading.get_inter_op_parallelism_threads(),
        "threads_setting": [str(config["threads_intra"]), str(config["threads_inter"])],
        "available_cores": available_cores(),
        "op_determinism": op_determinism_enabled(),
        "seed": int(config["seed"]),
        "jit_compile": False,
        # Unset and set-but-empty both become null, as in the R twin (Sys.getenv cannot tell them apart).
        "env": {k: os.environ.get(k) or None for k in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS",
                                               "TF_DETERMINISTIC_OPS", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES",
                                               "GLIBC_TUNABLES", "R_VSIZE")},
        "devices": [f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()],
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),  # the R twin records R's own Sys.info(): formats differ by language
    }
