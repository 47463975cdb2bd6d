"""``tailings-parity sweep``: a grid of config values x seeds x languages, each cell an ordinary parity run.

Reads the presets (``parity/presets.toml``) and, on ``--resume``, a sweep folder's ``sweep_plan.json`` and its
run folders. Writes a sweep folder ``reports/sweep-<UTC>-<preset>-<hash>/`` (layout in ``parity/FORMATS.md``):
``sweep_plan.json`` (the cells and their resolved configs, fixed when the sweep starts), ``cells/<cell>/<run-id>/``
(one ordinary run folder per cell and seed, with its report), ``sweep.json`` (per cell the verdict, validation
IoU and loss per language over seeds, R/Python time ratio, resubmitted and failed jobs; the best cell),
``sweep.md``, ``sweep.html`` and ``plots/``. The jobs (one per cell, seed and language) run on the executors of
``parity/run/executor.py``: a Dask LocalCluster by default, a running scheduler with ``--scheduler``.

Modules: ``sweep`` (the command: plan, jobs, resume, sweep.json), ``render`` (sweep.md, sweep.html, heatmaps).
"""
