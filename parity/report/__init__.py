"""Stage 6, report: every number of a run as ``results.json``, plots, ``report.md`` and ``report.html``.

Reads a run folder and its ``comparison.json`` (``parity.artifacts``); writes ``results.json``, ``plots/*.png``,
``report.md`` and a self-contained ``report.html``. Modules: ``build`` (results, rendering,
``tailings-parity report RUN``), ``plots`` (one figure per question, matplotlib's Agg backend).
"""
