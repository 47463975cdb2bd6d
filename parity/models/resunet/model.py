"""Example pair: a residual U-Net with batch normalisation and dropout, written as a Keras user writes it
(default initializers, Keras's own layer names); twin of model.R. Depth and width come from the config's
``depth`` and ``base_filters``, the dropout rate from this pair's model.toml."""

import keras
from keras import layers


def residual_block(x, filters, dropout):
    """Two 3 x 3 convolutions with batch normalisation, added to a 1 x 1 projection of the block's input."""
    shortcut = layers.Conv2D(filters, 1, padding="same")(x)
    y = layers.Conv2D(filters, 3, padding="same")(x)
    y = layers.BatchNormalization()(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(filters, 3, padding="same")(y)
    y = layers.BatchNormalization()(y)
    y = layers.Add()([shortcut, y])
    y = layers.Activation("relu")(y)
    if dropout > 0:
        y = layers.Dropout(dropout)(y)
    return y


def build_model(config):
    """Encoder of residual blocks and max pooling, a bridge, a decoder of upsampling, skip concatenation and
    residual blocks, and a sigmoid 1 x 1 convolution."""
    base, depth = config["base_filters"], config["depth"]
    inputs = keras.Input(shape=(None, None, config["input_channels"]))
    x, skips = inputs, []
    for level in range(depth):
        x = residual_block(x, base * 2 ** level, config["dropout"])
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = residual_block(x, base * 2 ** depth, config["dropout"])
    for level in reversed(range(depth)):
        x = layers.UpSampling2D(2)(x)
        x = layers.Concatenate()([x, skips[level]])
        x = residual_block(x, base * 2 ** level, 0.0)
    outputs = layers.Conv2D(1, 1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs)
