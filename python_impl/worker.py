"""One training run in this process, everything written to a worker folder; twin of r_impl/R/worker.R.

Run by the spawner (parity/run/workers.py) as ``python -m python_impl.worker --config C --manifest M --out DIR``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

IMPL = "python"


def check_python() -> str:
    """Return this Python's path; raise RuntimeError naming it and the fix when TensorFlow or Keras is missing."""
    import importlib.util

    missing = [m for m in ("tensorflow", "keras") if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"the Python {sys.executable} cannot import {', '.join(missing)}: run the worker with "
                           "the project's venv (make setup), or run `tailings-parity doctor`")
    return sys.executable


def run_worker(config_path, manifest_path, out_dir, launched_at: float | None = None) -> dict:
    """Train once as the config and manifest say; write the worker files to ``out_dir``; return the timings.

    ``launched_at`` (epoch seconds, when the spawner started this process) gives ``start_to_ready``.
    """
    import numpy as np

    from python_impl import artifacts, config as config_mod, data, manifest as manifest_mod, train

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    impl = os.environ.get("TAILINGS_PARITY_IMPL", IMPL)
    artifacts.log_progress(out_dir, f"phase start pid {os.getpid()}")
    check_python()
    manifest = manifest_mod.read_manifest(manifest_path)
    # The config's rules ([schema]), those that name the data counted on the manifest's tiles: a worker run by
    # hand refuses a bad config as `run` does, before it trains.
    n_tiles = sum(len(manifest[split]) for split in ("train", "val", "test"))
    config = config_mod.check_config(config_mod.read_config(config_path), n_tiles)
    # Libraries load at start-up in both languages; the readers first, as R's twin does (it loads terra while
    # TensorFlow imports on a Python thread).
    data.prepare_readers(train.resolve_threads(config)["threads_intra"], config["encoding"])
    threads = train.set_determinism(config)["threads_intra"]  # before any TensorFlow op
    ready = time.time()
    timings = {"start_to_ready": ready - (launched_at if launched_at else started)}

    artifacts.log_progress(out_dir, "phase data")
    t = time.time()
    manifest_mod.check_files(manifest)  # refuse a tile changed since the manifest was made, by name
    splits = {}
    hashes = {}
    for split in ("train", "val"):
        images, masks = data.load_tiles(manifest["data_dir"], manifest[split], config)
        splits[split] = {"images": images, "masks": masks}
        for k, tile_id in enumerate(manifest[split]):
            hashes[str(tile_id)] = {"image": artifacts.array_sha256(images[k]),
                                    "mask": artifacts.array_sha256(masks[k, :, :, 0])}
    artifacts.save_json(hashes, out_dir / "input_hashes.json")
    np.savez(out_dir / "inputs_val.npz", images=splits["val"]["images"], masks=splits["val"]["masks"][..., 0])
    timings["data"] = time.time() - t

    timings.update(train.train(config, manifest, splits, out_dir))
    timings["total"] = time.time() - (launched_at if launched_at else started)
    artifacts.save_json(timings, out_dir / "timings.json")
    artifacts.save_json({"peak_rss_mb": artifacts.peak_memory_mb()}, out_dir / "memory.json")
    artifacts.save_json(artifacts.environment_record(config, impl), out_dir / "environment.json")
    artifacts.log_progress(out_dir, "phase done")
    return timings


def main(argv: list[str] | None = None) -> int:
    """Command line of the Python worker; exit 0 on success, 1 with a one-line error otherwise."""
    parser = argparse.ArgumentParser(prog="python -m python_impl.worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    for name in ("config", "manifest"):
        if not Path(getattr(args, name)).is_file():
            print(f"error: --{name} {getattr(args, name)}: no such file", file=sys.stderr)
            return 2
    launched = os.environ.get("TAILINGS_PARITY_LAUNCHED_AT")
    try:
        run_worker(args.config, args.manifest, args.out, float(launched) if launched else None)
    except Exception as exc:  # recorded: the spawner turns this line into a failed result
        if os.environ.get("TAILINGS_PARITY_DEBUG"):
            raise
        return report_failure(exc)
    return 0


def report_failure(exc: BaseException) -> int:
    """The worker's last line for the spawner, ``error: ...``, and its exit status: 2 for a config mistake (one
    line naming the key, as ``run`` says it), 1 for any other failure (the r-rpy2 worker's too)."""
    from python_impl.config import ConfigError

    if isinstance(exc, ConfigError):
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    status = main()
    # Every file is written and closed: leave without the interpreter's teardown of TensorFlow, which adds to every
    # worker's wall time and does nothing for the results.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
