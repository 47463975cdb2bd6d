"""A whole run folder compared: the reference against every candidate, repeats, seeds; writes comparison.json.

Reads the run folder through ``parity.artifacts`` (config, harness record, manifest, worker folders) and the
stage comparison of ``parity.compare.stages``; writes ``comparison.json`` beside them.
"""

from __future__ import annotations

from pathlib import Path

from parity.artifacts.folder import RunFolder, WorkerFolder
from parity.compare import stages
from parity.errors import CompareError


THREAD_KEYS = ("threads_intra", "threads_inter")


def name_thread_differences(doc: dict, workers: list[WorkerFolder]) -> None:
    """Where a diverged pair ran with different TensorFlow thread counts, say so in its first divergence: the
    thread count changes how float sums are split, so it is the likely cause of a difference on the CPU."""
    env = {w.name: (w.json("environment.json") or {}) for w in workers}
    for pair in doc["pairs"]:
        fd = pair.get("first_divergence")
        a, b = env.get(pair["reference"], {}), env.get(pair["candidate"], {})
        # Only where both recorded their threads: a missing environment.json is its own failure, not a cause.
        diff = [f"{k} {a[k]} vs {b[k]}" for k in THREAD_KEYS if k in a and k in b and a[k] != b[k]]
        if fd and diff:
            fd["summary"] += (f" (the workers ran with different thread settings: {', '.join(diff)}: the likely "
                              "cause; run both with the same threads_intra/threads_inter)")
    doc.update(stages.verdict_of(doc))


def compare_run(run_dir: Path | str, mode: str | None = None) -> dict:
    """Compare the workers of a run folder and write ``comparison.json``; returns the document."""
    run = RunFolder(run_dir)
    harness = run.harness
    mode = mode or harness.get("mode") or run.config.get("mode", "strict")
    tolerances = {k: tuple(v) for k, v in (harness.get("tolerances") or {}).items()}
    recs = run.worker_records()
    if not recs:
        raise CompareError("no worker folders", where=str(run.path / "workers"),
                           fix="the run stopped before its workers: run it again")
    seed0 = recs[0].get("seed")
    main = [run.worker(r["key"], r["impl"]) for r in recs if r.get("seed") == seed0 and r.get("repeat", 1) == 1]
    repeats: dict[str, list[WorkerFolder]] = {}
    for r in recs:
        if r.get("seed") == seed0:
            repeats.setdefault(r["impl"], []).append(run.worker(r["key"]))
    groups = None
    if mode == "statistical":
        groups = {}
        for r in recs:
            if r.get("repeat", 1) == 1:
                groups.setdefault(r["impl"], []).append(run.worker(r["key"], r["impl"]))
    doc = stages.compare_workers(main, mode, tolerances, run.manifest,
                                 repeats={k: v for k, v in repeats.items() if len(v) > 1},
                                 statistical_groups=groups, rules=run.config.get("rules"))
    doc["worker_keys"] = {w.name: str(w.path.name) for w in main}
    name_thread_differences(doc, main)
    stages.write_comparison(doc, run.path / "comparison.json")
    return doc
