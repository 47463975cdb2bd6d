"""Stage 5, comparison: worker folders compared stage by stage, and two runs compared for regressions.

Reads only run and worker folders (``parity.artifacts``); writes ``comparison.json``. Never reaches into a live
model. Modules: ``stages`` (the ten stages between two workers, statistical mode), ``run`` (a whole run folder:
reference, candidates, repeats, seeds), ``regress`` (``tailings-parity regress RUN_A RUN_B``).
"""
