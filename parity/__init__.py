"""tailings-parity: the harness that trains the Python and R twins and compares what they did."""

__version__ = "0.1.0"
