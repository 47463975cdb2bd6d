"""Stages 2-4, model, training and artifacts: a run folder made, the twins' workers run, their models cross-loaded.

Reads the config (``parity/presets.toml``) and the data stage's manifest; writes ``reports/<run-id>/`` with
``config.json``, ``harness.json`` and one ``workers/<key>/`` folder per worker run (``parity/FORMATS.md``).
Modules: ``runner`` (``tailings-parity run``), ``workers`` (one worker process with a time limit),
``crossload`` (each saved model loaded by the other language, through ``python_impl/crossload.py`` and
``r_impl/R/crossload.R``).
"""
