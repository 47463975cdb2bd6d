"""The health check of an R TensorFlow set-up (``tailings-parity doctor``), beside the flow.

Reads nothing of a run; starts three probes (``probes/``: Python, Rscript host, rpy2 embedded) in child
processes with time limits and writes nothing but its table or ``--json`` to standard output.
Modules: ``checks`` (the checks, the known messages and their fixes, the command), ``probes`` (what each probe records).
"""
