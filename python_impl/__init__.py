"""The reference implementation of the tailings U-Net in Python Keras.

Every module here has a twin in ``r_impl/R/`` with the same stage name, the same function names, the same
argument names in the same order, and the same defaults (read from ``parity/presets.toml``).
"""
