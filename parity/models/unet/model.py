"""The built-in pair: the U-Net of the original project (python_impl/unet.py), built from the config's
``variant``, ``base_filters``, ``depth``, ``kernel_size``, ``l2`` and ``batch_norm``; twin of model.R."""

from python_impl.unet import build_unet


def build_model(config):
    """The uncompiled U-Net (``build_unet``)."""
    return build_unet(config)
