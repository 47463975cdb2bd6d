"""The artifact layer: one reader of run and worker folders, one module of float differences, the contract.

Everything after the workers (comparison, report, plots, regressions) reads run folders through here.
Modules: ``contract`` (every worker file, declared once; ``parity/FORMATS.md`` shows it as a table), ``folder`` (``WorkerFolder``, ``RunFolder``), ``diffs`` (bit, ULP and relative differences).
"""
