"""Cropping and augmentation of a training batch, both from the manifest; twin of ``r_impl/R/augment.R``.

Crops (``crop_size`` > 0): each sample is cut to ``crop_size`` x ``crop_size`` at the manifest's offsets for its
position in the epoch (``crops``: row and column of the top-left pixel); a copy of values, no arithmetic.

As the original project: left-right and up-down flips (each with probability 1/2, so none, one or both),
then brightness, contrast and saturation jitter (ranges: ``augment_*`` in ``[rules]`` of ``parity/presets.toml``),
then clipping to [0, 1]. Every random choice is a TensorFlow stateless op (``tf.image.stateless_random_*``) whose seed derives
from the sample's int32 pair in the manifest (``augment_seeds``), split into five seeds with
``tf.random.experimental.stateless_split``. The R twin calls the same ops with the same seeds, so both
languages get the same bits. The mask gets the image's flips (they are applied to image and mask joined
along the channel axis) and no jitter.
"""

from __future__ import annotations

import numpy as np

from python_impl.config import config_rules


def augment_sample(image, mask, seed, rules: dict):
    """Augment one sample: image (H, W, C) and mask (H, W, 1) float32 tensors, seed a (2,) int32 tensor; the
    jitter ranges from ``rules``."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=5)
    channels = image.shape[-1]
    joined = tf.concat([image, mask], axis=-1)
    joined = tf.image.stateless_random_flip_left_right(joined, seed=seeds[0])
    joined = tf.image.stateless_random_flip_up_down(joined, seed=seeds[1])
    image, mask = joined[:, :, :channels], joined[:, :, channels:]
    contrast, saturation = rules["augment_contrast"], rules["augment_saturation"]
    image = tf.image.stateless_random_brightness(image, rules["augment_brightness_max_delta"], seed=seeds[2])
    image = tf.image.stateless_random_contrast(image, contrast[0], contrast[1], seed=seeds[3])
    if channels == 3:  # saturation needs RGB; greyscale input skips it (the seed is still drawn)
        image = tf.image.stateless_random_saturation(image, saturation[0], saturation[1], seed=seeds[4])
    return tf.clip_by_value(image, 0.0, 1.0), mask


def augment_batch(images, masks, seeds, config: dict):
    """Augment a batch when ``config["augment"]`` is true; otherwise return it unchanged.

    ``images`` (N, H, W, C) and ``masks`` (N, H, W, 1) float32; ``seeds`` (N, 2) int32, the manifest's
    ``augment_seeds`` for these samples' positions in the epoch. Returns float32 numpy arrays.
    """
    if not config.get("augment"):
        return images, masks
    import tensorflow as tf

    images = np.asarray(images, dtype=np.float32)
    masks = np.asarray(masks, dtype=np.float32)
    seeds = np.asarray(seeds, dtype=np.int32).reshape(-1, 2)
    if len(seeds) != len(images):
        raise ValueError(f"augment_batch: {len(images)} images but {len(seeds)} seed pairs")
    rules = config_rules(config)
    out_images, out_masks = np.empty_like(images), np.empty_like(masks)
    for i in range(len(images)):
        image, mask = augment_sample(tf.constant(images[i]), tf.constant(masks[i]), tf.constant(seeds[i]), rules)
        out_images[i], out_masks[i] = image.numpy(), mask.numpy()
    return out_images, out_masks


def crop_batch(images, masks, offsets, crop_size: int):
    """Cut every sample of a batch to ``crop_size`` x ``crop_size`` at ``offsets`` (N, 2): the 0-based row and
    column of its top-left pixel (the manifest's ``crops`` rows of these samples). Returns float32 numpy arrays;
    ``crop_size`` 0 returns the batch unchanged."""
    if not crop_size:
        return images, masks
    images, masks = np.asarray(images, dtype=np.float32), np.asarray(masks, dtype=np.float32)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    if len(offsets) != len(images):
        raise ValueError(f"crop_batch: {len(images)} images but {len(offsets)} crop offsets")
    size = images.shape[1]
    if offsets.min(initial=0) < 0 or offsets.max(initial=0) + crop_size > size:
        raise ValueError(f"crop_batch: offsets {offsets.tolist()} with crop {crop_size} leave the {size} x {size} "
                         "tiles; make the manifest from this config")
    cut = [(slice(r, r + crop_size), slice(c, c + crop_size)) for r, c in offsets]
    return (np.stack([images[i][rows, cols] for i, (rows, cols) in enumerate(cut)]),
            np.stack([masks[i][rows, cols] for i, (rows, cols) in enumerate(cut)]))
