"""The Python side of ``tailings-parity doctor``: TensorFlow, Keras, devices and the smoke fit (twin of probe.R).

Run as ``python -m parity.doctor.probes.python_side`` with TP_DOCTOR_OUT, TP_DOCTOR_SECTIONS, TP_DOCTOR_WEIGHTS
set by parity/doctor.py.
"""

from __future__ import annotations

import os
import sys

from parity.doctor.probes import SectionRecorder, env_seen


def tensorflow_section() -> dict:
    """Versions of TensorFlow and Keras, what ``tf.keras`` resolves to, and the Keras-related environment."""
    import tensorflow as tf
    import keras

    # One thread each way, set before TensorFlow's runtime starts (it cannot change afterwards).
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        tf_keras_version, tf_keras_error = tf.keras.__version__, None
    except Exception as exc:  # noqa: BLE001 - legacy Keras requested without tf_keras fails here
        tf_keras_version, tf_keras_error = None, f"{type(exc).__name__}: {exc}"
    import importlib.util

    return {"tensorflow": tf.__version__, "keras": keras.__version__, "backend": keras.backend.backend(),
            "tf_keras_version": tf_keras_version, "tf_keras_error": tf_keras_error,
            "tf_keras_installed": importlib.util.find_spec("tf_keras") is not None,
            "executable": sys.executable,
            "env": env_seen(["TF_USE_LEGACY_KERAS", "KERAS_BACKEND", "CUDA_VISIBLE_DEVICES",
                             "TF_ENABLE_ONEDNN_OPTS"])}


def devices_section() -> dict:
    """The physical devices TensorFlow sees."""
    import tensorflow as tf

    return {"devices": [{"name": d.name, "type": d.device_type} for d in tf.config.list_physical_devices()]}


def fit_smoke(weights_file: str) -> dict:
    """Twin of the "fit" section of probe.R: same data, layers, seeds and settings; weights saved to .npz."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(42)
    tf.config.experimental.enable_op_determinism()
    dims = (8, 8, 8, 1)
    values = (np.arange(int(np.prod(dims))) % 17) / 16
    x = values.reshape(dims).astype("float32")
    y = (x > 0.5).astype("float32")
    inputs = keras.Input(shape=(8, 8, 1), name="input")
    hidden = keras.layers.Conv2D(filters=2, kernel_size=(3, 3), padding="same", activation="relu",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed=1),
                                 bias_initializer="zeros", name="conv1")(inputs)
    outputs = keras.layers.Conv2D(filters=1, kernel_size=(1, 1), activation="sigmoid",
                                  kernel_initializer=keras.initializers.GlorotUniform(seed=2),
                                  bias_initializer="zeros", name="output")(hidden)
    model = keras.Model(inputs, outputs, name="doctor_smoke")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy")
    history = model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    losses = [float(v) for v in history.history["loss"]]
    arrays = {v.path: np.asarray(v) for v in model.weights}
    np.savez(weights_file, **arrays)
    return {"ok": len(losses) == 2 and all(np.isfinite(losses)), "losses": losses, "weights": weights_file,
            "variables": list(arrays)}


def main() -> int:
    """Run the wanted sections; the JSON file is the result, the exit status is 0 unless Python itself broke."""
    wanted = os.environ.get("TP_DOCTOR_SECTIONS", "tensorflow,devices,fit").split(",")
    rec = SectionRecorder("python", os.environ.get("TP_DOCTOR_OUT", "doctor-python.json"), wanted)
    rec.save()
    rec.run("tensorflow", tensorflow_section)
    rec.run("devices", devices_section, requires=("tensorflow",))
    rec.run("fit", lambda: fit_smoke(os.environ.get("TP_DOCTOR_WEIGHTS", "doctor-python-weights.npz")),
            requires=("tensorflow",))
    return 0


if __name__ == "__main__":
    sys.exit(main())
