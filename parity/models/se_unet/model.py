"""Example pair: a U-Net whose blocks end in squeeze-and-excitation, with ``keras.ops`` in the graph and its own
loss (binary cross-entropy plus Tversky), written as a Keras user writes it (default initializers, Keras's own
layer names); twin of model.R. Width and depth from the config's ``base_filters`` and ``depth``; the SE ratio and
the Tversky weight from this pair's model.toml."""

import keras
from keras import layers, ops

# The tile values are in [0, 1]; the network sees them centred (in the graph, so a saved model needs no extra step).
CENTRE = 0.5
# Tversky's weight of false negatives (1 - this for false positives): tailings are the rare class.
TVERSKY_ALPHA = 0.7


def squeeze_excite(x, ratio):
    """Channel weights from the block's global mean (squeeze), two dense layers (excite), multiplied back."""
    channels = x.shape[-1]
    s = ops.mean(x, axis=[1, 2], keepdims=True)
    s = layers.Dense(max(1, channels // ratio), activation="relu")(s)
    s = layers.Dense(channels, activation="sigmoid")(s)
    return ops.multiply(x, s)


def conv_block(x, filters, ratio):
    """Two 3 x 3 ReLU convolutions, then squeeze-and-excitation."""
    x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    return squeeze_excite(x, ratio)


def build_model(config):
    """Encoder of SE blocks and max pooling, a bridge, a decoder of transposed convolutions, skip concatenation
    and SE blocks, and a sigmoid 1 x 1 convolution."""
    base, depth, ratio = config["base_filters"], config["depth"], config["se_ratio"]
    inputs = keras.Input(shape=(None, None, config["input_channels"]))
    x, skips = ops.subtract(inputs, CENTRE), []
    for level in range(depth):
        x = conv_block(x, base * 2 ** level, ratio)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = conv_block(x, base * 2 ** depth, ratio)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(base * 2 ** level, 2, strides=2, padding="same")(x)
        x = ops.concatenate([x, skips[level]], axis=-1)
        x = conv_block(x, base * 2 ** level, ratio)
    outputs = layers.Conv2D(1, 1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)


def loss(y_true, y_pred):
    """Per sample: mean binary cross-entropy plus 1 - Tversky index (smoothed by 1)."""
    axes = [1, 2, 3]
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=[1, 2])
    tp = ops.sum(ops.multiply(y_true, y_pred), axis=axes)
    fn = ops.sum(ops.multiply(y_true, ops.subtract(1.0, y_pred)), axis=axes)
    fp = ops.sum(ops.multiply(ops.subtract(1.0, y_true), y_pred), axis=axes)
    denominator = ops.add(ops.add(ops.add(tp, ops.multiply(TVERSKY_ALPHA, fn)),
                                  ops.multiply(1.0 - TVERSKY_ALPHA, fp)), 1.0)
    return ops.add(bce, ops.subtract(1.0, ops.divide(ops.add(tp, 1.0), denominator)))
