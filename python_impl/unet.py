"""The U-Net of the original project, built from the config; twin of r_impl/R/unet.R.

Two block layouts (config ``variant``), generalised by ``base_filters`` and ``depth``:
- ``paper-r``: Conv2D(f, 3, same, relu, L2) twice per level; Conv2DTranspose(f, 2, strides 2, same, L2, linear);
  Concatenate([skip, up]). With base 64 and depth 2 this is the R original (10 convolutions of 3 x 3).
- ``paper-python``: Conv2D(f, 3, same) -> BatchNormalization -> ReLU twice per level; Concatenate([up, skip]).
  With base 64, depth 3 and greyscale input this is the Python original.
``batch_norm`` switches BN on or off in either layout; ``l2`` > 0 puts an L2 penalty on every convolution kernel
except the output's. Every layer has an explicit name (FORMATS.md) and every initializer the seed
``config seed + index of the layer in build order``, so that both languages make the same weights.
"""

from __future__ import annotations

from python_impl.config import check_config


class _Builder:
    """Counts layers in build order so that each gets the seed ``seed + index``."""

    def __init__(self, config: dict):
        self.config = config
        self.index = 0

    def next_seed(self) -> int:
        seed = int(self.config["seed"]) + self.index
        self.index += 1
        return seed

    def regularizer(self):
        import keras

        l2 = float(self.config["l2"])
        return keras.regularizers.L2(l2) if l2 > 0 else None

    def conv(self, x, filters: int, name: str, activation: str | None):
        import keras

        seed = self.next_seed()
        return keras.layers.Conv2D(
            filters, int(self.config["kernel_size"]), padding="same", activation=activation,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
            bias_initializer=keras.initializers.Zeros(),
            kernel_regularizer=self.regularizer(), name=name)(x)

    def block(self, x, filters: int, prefix: str):
        """Two 3 x 3 convolutions, each with ReLU (after BN when batch_norm is on)."""
        import keras

        for k in (1, 2):
            if self.config["batch_norm"]:
                x = self.conv(x, filters, f"{prefix}_conv{k}", None)
                self.next_seed()  # BN has no random initializer; the index still counts the layer
                x = keras.layers.BatchNormalization(name=f"{prefix}_bn{k}")(x)
                self.next_seed()
                x = keras.layers.Activation("relu", name=f"{prefix}_relu{k}")(x)
            else:
                x = self.conv(x, filters, f"{prefix}_conv{k}", "relu")
        return x


def build_unet(config: dict):
    """Build the U-Net described by ``config`` (uncompiled ``keras.Model`` named ``unet``); the config is checked
    against ``[schema]`` first (variant, tile_size a multiple of 2^depth, ...)."""
    import keras

    config = check_config(config)
    b = _Builder(config)
    size, depth, base = int(config["tile_size"]), int(config["depth"]), int(config["base_filters"])
    # Trained on crops, validated on whole tiles: the same weights at two sizes, so the side is left open.
    size = None if int(config["crop_size"]) else size
    inputs = keras.Input(shape=(size, size, int(config["input_channels"])), name="input")
    x, skips = inputs, []
    for level in range(1, depth + 1):
        x = b.block(x, base * 2 ** (level - 1), f"enc{level}")
        skips.append(x)
        b.next_seed()
        x = keras.layers.MaxPooling2D(pool_size=2, name=f"enc{level}_pool")(x)
    x = b.block(x, base * 2 ** depth, "bridge")
    for level in range(1, depth + 1):
        filters = base * 2 ** (depth - level)
        seed = b.next_seed()
        up = keras.layers.Conv2DTranspose(
            filters, 2, strides=2, padding="same", activation=None,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
            bias_initializer=keras.initializers.Zeros(),
            kernel_regularizer=b.regularizer(), name=f"dec{level}_up")(x)
        skip = skips[depth - level]
        b.next_seed()
        pair = [skip, up] if config["variant"] == "paper-r" else [up, skip]
        x = keras.layers.Concatenate(axis=-1, name=f"dec{level}_concat")(pair)
        x = b.block(x, filters, f"dec{level}")
    seed = b.next_seed()
    outputs = keras.layers.Conv2D(
        1, 1, padding="same", activation="sigmoid",
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        bias_initializer=keras.initializers.Zeros(), name="output")(x)
    return keras.Model(inputs, outputs, name="unet")


def make_optimizer(config: dict, steps: int):
    """The optimizer named in the config, with its learning rate (``lr_schedule`` "cosine": Keras's CosineDecay
    from it to 0 over ``steps`` training steps) and Keras defaults otherwise."""
    import keras

    lr = float(config["learning_rate"])
    if config["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=int(steps))
    return {"rmsprop": keras.optimizers.RMSprop, "adam": keras.optimizers.Adam,
            "sgd": keras.optimizers.SGD}[config["optimizer"]](learning_rate=lr)


def bce_dice(y_true, y_pred):
    """Binary cross-entropy plus 1 - Dice, per sample: mean BCE of the sample's pixels plus
    1 - (2 sum(y p) + 1) / (sum(y) + sum(p) + 1). Dice counts the overlap relative to the tailings' area, so
    about 9% positive pixels cannot be fitted by predicting background everywhere. Keras ops in the order the
    R twin writes them (the same graph, the same bits)."""
    from keras import losses, ops

    axes = [1, 2, 3]
    bce = ops.mean(losses.binary_crossentropy(y_true, y_pred), axis=[1, 2])
    overlap = ops.add(ops.multiply(2.0, ops.sum(ops.multiply(y_true, y_pred), axis=axes)), 1.0)
    total = ops.add(ops.add(ops.sum(y_true, axis=axes), ops.sum(y_pred, axis=axes)), 1.0)
    return ops.add(bce, ops.subtract(1.0, ops.divide(overlap, total)))


def make_loss(config: dict):
    """The loss named in the config: Keras's BinaryCrossentropy for "bce", ``bce_dice`` for "bce_dice"."""
    import keras

    return keras.losses.BinaryCrossentropy() if config["loss"] == "bce" else bce_dice


def load_unet(model_path):
    """Load a saved U-Net (``model.keras``) with this twin's ``bce_dice`` for the loss of that name: Keras saves
    a loss function by name only, so whoever loads the model must say what the name computes."""
    import keras

    return keras.models.load_model(model_path, custom_objects={"bce_dice": bce_dice})


def compile_model(model, config: dict, steps: int, loss=None):
    """Compile with the config's optimizer (``steps``: the training steps, for the LR schedule) and ``loss`` (a
    model pair's own loss function) or else the config's; returns the model.

    No compiled metrics: the metrics are counted from predictions (metrics.py), so ``train_on_batch`` and
    ``evaluate`` return the loss alone. ``jit_compile=False`` because "auto" lets Keras choose XLA by device,
    and XLA fuses and reorders float operations outside op determinism: both twins must run the same graph.
    """
    import keras

    model.compile(optimizer=make_optimizer(config, steps), loss=loss or make_loss(config), jit_compile=False)
    return model


def build_optimizer(model):
    """Create the compiled optimizer's slot variables (Adam's moments, RMSprop's velocities) now; returns the model.

    Keras builds them inside the first ``train_on_batch`` (or ``fit``) step, and a ``tf.function`` that creates
    variables is traced twice: once to create them, once more without. Built beforehand, the training step is
    traced once. Same zeros, same numbers.
    """
    model.optimizer.build(model.trainable_variables)
    return model


def _inbound_names(node) -> list:
    """Names of the layers whose outputs a layer's call takes, in argument order (``keras_history`` of each
    input tensor in the functional config)."""
    if isinstance(node, dict):
        if "keras_history" in node:
            return [node["keras_history"][0]]
        return [name for value in node.values() for name in _inbound_names(value)]
    if isinstance(node, (list, tuple)):
        return [name for value in node for name in _inbound_names(value)]
    return []


def architecture_record(model) -> dict:
    """Layer list (every operation of the graph, in its topological order) with normalised configs, the wiring
    (each layer's inputs, in order) and parameter counts (architecture.json)."""
    wiring = {cfg["name"]: _inbound_names(cfg.get("inbound_nodes") or []) for cfg in model.get_config()["layers"]}
    layers = []
    # operations: the layers and the keras.ops calls of the graph (a pair's ops.mean is a node as a layer is).
    for layer in model.operations:
        cfg = layer.get_config()
        keep = {k: cfg[k] for k in ("filters", "kernel_size", "strides", "padding", "activation", "pool_size",
                                    "axis", "use_bias") if k in cfg}
        for k, v in list(keep.items()):
            if isinstance(v, tuple):
                keep[k] = list(v)
        if cfg.get("kernel_regularizer"):
            keep["l2"] = float(cfg["kernel_regularizer"]["config"]["l2"])
        if "batch_shape" in cfg:
            keep["batch_shape"] = list(cfg["batch_shape"])
        layers.append({"name": layer.name, "class_name": type(layer).__name__, "config": keep,
                       "inputs": wiring.get(layer.name, []),
                       "params": int(layer.count_params()) if hasattr(layer, "count_params") else 0})
    trainable = sum(int(v.numpy().size) for v in model.trainable_weights)
    return {"layers": layers, "total_params": int(model.count_params()), "trainable_params": trainable}


def compiled_record(model) -> dict:
    """What ``compile_model`` set (compiled.json): the optimizer's and the loss's class and ``get_config()``
    (without their generated ``name``), and Keras's compile flags."""
    def record(obj) -> dict:
        if not hasattr(obj, "get_config"):  # a loss function (bce_dice): its name says what it computes
            return {"class_name": "function", "config": {"function": obj.__name__}}
        return {"class_name": type(obj).__name__,
                "config": {k: v for k, v in obj.get_config().items() if k != "name"}}

    flags = model.get_compile_config()
    return {"optimizer": record(model.optimizer), "loss": record(model.loss),
            **{k: flags.get(k) for k in ("jit_compile", "run_eagerly", "steps_per_execution")}}
