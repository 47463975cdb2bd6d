"""The artifact layer: one reader of run and worker folders, one module of float differences, the contract.

Everything after the workers (comparison, report, plots, regressions) reads run folders through here.
Modules: ``contract`` (the worker files that ``parity/FORMATS.md`` lists, parsed from that file: the contract is
written once), ``folder`` (``WorkerFolder``, ``RunFolder``), ``diffs`` (bit, ULP and relative differences).
"""
