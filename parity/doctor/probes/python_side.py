"""The Python side of ``tailings-parity doctor``: platform, TensorFlow, Keras and its config, devices, GPU
libraries and the smoke fit (twin of probe.R).

Run as ``python -m parity.doctor.probes.python_side`` with TP_DOCTOR_OUT, TP_DOCTOR_SECTIONS, TP_DOCTOR_WEIGHTS
set by parity/doctor.py.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import sys
from pathlib import Path

from parity.doctor.probes import SectionRecorder, env_seen


def tensorflow_section() -> dict:
    """Versions of TensorFlow and Keras, what ``tf.keras`` resolves to, and the Keras-related environment."""
    import tensorflow as tf
    import keras

    # One thread each way unless TensorFlow's own variables say otherwise (twin of probe.R), set before
    # TensorFlow's runtime starts (it cannot change afterwards).
    tf.config.threading.set_intra_op_parallelism_threads(int(os.environ.get("TF_NUM_INTRAOP_THREADS", "1")))
    tf.config.threading.set_inter_op_parallelism_threads(int(os.environ.get("TF_NUM_INTEROP_THREADS", "1")))
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


def mapped_libraries(pattern: str) -> dict:
    """Shared libraries this process has mapped (/proc/self/maps; Linux only): {file name: path}."""
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return {}
    paths = dict.fromkeys(line[line.index("/"):] for line in lines if "/" in line)
    return {os.path.basename(p): p for p in paths if re.match(pattern, os.path.basename(p))}


def cpu_flags() -> list[str] | None:
    """The instruction-set flags TensorFlow's wheels care about, from /proc/cpuinfo (None where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    words = set(line.partition(":")[2].split())
    return [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f") if f in words]


def platform_section() -> dict:
    """Twin of the "platform" section of probe.R: architecture, CPU flags, which NumPy and where else one lies."""
    import platform
    import site

    import numpy as np

    on_path = [p for p in sys.path if p and (Path(p) / "numpy" / "__init__.py").exists()]
    return {"python_machine": platform.machine(), "pointer_bits": 8 * struct.calcsize("P"),
            "cpu_flags": cpu_flags(), "numpy_file": np.__file__, "numpy_version": np.__version__,
            "numpy_on_path": on_path, "prefix": sys.prefix, "base_prefix": sys.base_prefix,
            "user_site": site.getusersitepackages(), "user_site_enabled": bool(site.ENABLE_USER_SITE),
            "pythonpath": os.environ.get("PYTHONPATH", ""), "libstdcxx": mapped_libraries(r"libstdc\+\+")}


def keras_config_section() -> dict:
    """Twin of the "keras_config" section of probe.R: what Keras computes with, and which keras.json it read."""
    import keras
    from keras.src.backend.config import keras_home

    home = keras_home()
    return {"backend": keras.config.backend(), "floatx": keras.config.floatx(), "epsilon": keras.config.epsilon(),
            "image_data_format": keras.config.image_data_format(), "keras_home": home,
            "keras_json": os.path.join(home, "keras.json"),
            "keras_json_exists": os.path.exists(os.path.join(home, "keras.json")),
            "env": env_seen(["KERAS_HOME", "KERAS_BACKEND", "TF_USE_LEGACY_KERAS"])}


def gpu_section() -> dict:
    """Twin of the "gpu" section of probe.R: the CUDA build, the CUDA libraries loaded, what XLA needs."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    growth = []
    for gpu in gpus:
        try:
            growth.append(tf.config.experimental.get_memory_growth(gpu))
        except Exception:  # noqa: BLE001 - recorded as unknown, the check says so
            growth.append(None)
    return {"build": dict(tf.sysconfig.get_build_info()), "gpus": len(gpus), "memory_growth": growth,
            "cuda_libraries": mapped_libraries(r"lib(cuda|cudart|cudnn|cublas|cufft|cusolver|cusparse|nvrtc"
                                               r"|nvJitLink)"),
            "libstdcxx": mapped_libraries(r"libstdc\+\+"), "ptxas": shutil.which("ptxas") or "",
            "env": env_seen(["LD_LIBRARY_PATH", "XLA_FLAGS", "TF_FORCE_GPU_ALLOW_GROWTH", "CUDA_VISIBLE_DEVICES"])}


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
    wanted = os.environ.get("TP_DOCTOR_SECTIONS", "platform,tensorflow,keras_config,devices,gpu,fit").split(",")
    rec = SectionRecorder("python", os.environ.get("TP_DOCTOR_OUT", "doctor-python.json"), wanted)
    rec.save()
    rec.run("platform", platform_section)
    rec.run("tensorflow", tensorflow_section)
    rec.run("keras_config", keras_config_section)
    rec.run("devices", devices_section, requires=("tensorflow",))
    rec.run("gpu", gpu_section, requires=("tensorflow",))
    rec.run("fit", lambda: fit_smoke(os.environ.get("TP_DOCTOR_WEIGHTS", "doctor-python-weights.npz")),
            requires=("tensorflow",))
    return 0


if __name__ == "__main__":
    sys.exit(main())
