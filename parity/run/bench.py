"""``tailings-parity bench``: how fast the workers train, against what a user would write and what the machine can do.

In one invocation, for a preset and workers: (a) a plain ``model.fit`` of the same model, tiles, batch size,
epochs and threads in Python, the reference a user would write, once after each repeat of the workers (so that
a machine that slows down or speeds up during the bench affects both alike); (b) every worker's phases, repeated (a normal
``run`` with ``--repeats``: medians, min, max); (c) the machine's peak, measured in the same invocation by a
TensorFlow float32 matmul probe with the same threads. Writes ``bench.json`` into the run folder (the run's
report then shows it) and prints a table; ``--json FILE`` writes the same document to FILE.

Training FLOPs are counted from the model's layers (``model_flops``): 2 x multiply-adds of every convolution
and transposed convolution per sample for the forward pass, and 3 x that per trained sample (forward, plus the
gradients with respect to inputs and to weights, each about one forward). Pooling, batch norm, activations and
the optimizer are not counted (a few percent), so the utilisation is a slight underestimate.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

SCHEMA = "tailings-parity/bench"
PROBE_N = 2048


# ---------------------------------------------------------------------------------------------- children

def model_flops(model) -> int:
    """Forward FLOPs of one sample: 2 x multiply-adds of the convolutions and transposed convolutions."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "Conv2DTranspose"):
            continue
        kh, kw = layer.kernel_size
        c_in = int(layer.input.shape[-1])
        c_out = int(layer.filters)
        if kind == "Conv2D":
            h, w = int(layer.output.shape[1]), int(layer.output.shape[2])
        else:  # each input pixel is spread over a kh x kw patch of every output channel
            h, w = int(layer.input.shape[1]), int(layer.input.shape[2])
        total += 2 * h * w * kh * kw * c_in * c_out
    return total


def plain_fit(config_path: str, manifest_path: str) -> dict:
    """The reference a user would write: load the training tiles, build and compile the same model, time
    ``model.fit`` over the same epochs and batch size, with the run's threads (seconds of the fit alone). With
    ``crop_size`` > 0 it fits the first epoch's crops every epoch: samples of the size the workers train on."""
    import keras

    from python_impl import augment, config as config_mod, data, manifest as manifest_mod, train, unet
    from python_impl import pair as pair_mod

    config = config_mod.read_config(config_path)
    manifest = manifest_mod.read_manifest(manifest_path)
    threads = train.set_determinism(config)
    images, masks = data.load_tiles(manifest["data_dir"], manifest["train"], config)
    crop = int(config["crop_size"])
    images, masks = augment.crop_batch(images, masks, manifest["crops"][0] if crop else None, crop)
    steps = train.total_steps(manifest, int(config["epochs"]))
    pair = pair_mod.load_pair(config)
    train.seed_everything(config)
    model = unet.compile_model(pair_mod.build_pair_model(pair, config), config, steps, pair.loss)
    t = time.perf_counter()
    model.fit(images, masks, batch_size=int(config["batch_size"]), epochs=int(config["epochs"]), shuffle=True,
              verbose=0)
    seconds = time.perf_counter() - t
    # FLOPs need the sample's side, which a model may leave open: count them on a clone at the side trained on.
    side = crop or int(config["tile_size"])
    sized = keras.models.clone_model(model, input_tensors=keras.Input((side, side, int(config["input_channels"]))))
    return {"seconds": seconds, "samples": len(images) * int(config["epochs"]), "forward_flops": model_flops(sized),
            "threads": threads}


def matmul_probe(config_path: str) -> dict:
    """Peak float32 FLOP/s of TensorFlow's matmul on this machine with the run's threads (best of 5)."""
    import tensorflow as tf

    from python_impl import config as config_mod, train

    threads = train.set_determinism(config_mod.read_config(config_path))
    a = tf.random.stateless_uniform((PROBE_N, PROBE_N), seed=(1, 2))
    b = tf.random.stateless_uniform((PROBE_N, PROBE_N), seed=(3, 4))
    tf.linalg.matmul(a, b).numpy()  # warm-up: thread pools, kernels
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return {"n": PROBE_N, "seconds": best, "flops_per_s": 2.0 * PROBE_N ** 3 / best, "threads": threads}


def _run_child(kind: str, run_dir: Path, timeout_s: float) -> dict:
    """One measurement in a fresh Python process (its own threads, nothing else of the harness loaded)."""
    from parity.env import compute_environment
    from parity.process import run_child
    from parity.errors import RunError

    cmd = [sys.executable, "-m", "parity.run.bench", "--child", kind, str(run_dir / "config.json"),
           str(run_dir / "manifest.json")]
    child = run_child(cmd, compute_environment(), timeout_s)
    lines = [ln for ln in child.stdout.splitlines() if ln.startswith("{")]
    if child.returncode != 0 or not lines:
        tail = "\n".join((child.stderr or "").strip().splitlines()[-8:])
        raise RunError(f"the {kind} measurement failed (exit status {child.returncode})\n{tail}",
                       fix="run `tailings-parity doctor`")
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------------------------- ratios

def _median(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def bench_document(run_dir: Path, plain: list[dict], probe: dict, timing: dict) -> dict:
    """bench.json: ratios, utilisation, and every measurement they come from."""
    per = timing["per_impl"]
    med = lambda impl, phase: (per.get(impl, {}).get(phase) or {}).get("median")  # noqa: E731
    plain_s = _median([p["seconds"] for p in plain])
    ratios = {"training_over_plain_fit": {}, "r_over_python_training": {}, "r_over_python_data": {},
              "metrics_over_training": {}}
    utilisation, flops_per_s = {}, {}
    work = plain[0]["forward_flops"] * 3 * plain[0]["samples"] if plain else None
    for impl in per:
        train_s = med(impl, "epochs")
        if train_s and plain_s:
            ratios["training_over_plain_fit"][impl] = train_s / plain_s
        if train_s and med(impl, "epoch_metrics") is not None:
            ratios["metrics_over_training"][impl] = med(impl, "epoch_metrics") / train_s
        if impl != "python" and train_s and med("python", "epochs"):
            ratios["r_over_python_training"][impl] = train_s / med("python", "epochs")
        if impl != "python" and med(impl, "data") is not None and med("python", "data"):
            ratios["r_over_python_data"][impl] = med(impl, "data") / med("python", "data")
        if train_s and work:
            flops_per_s[impl] = work / train_s
            utilisation[impl] = flops_per_s[impl] / probe["flops_per_s"]
    if plain_s and work:
        flops_per_s["plain_fit"] = work / plain_s
        utilisation["plain_fit"] = flops_per_s["plain_fit"] / probe["flops_per_s"]
    return {"schema": SCHEMA, "version": 1, "run": run_dir.name, "ratios": ratios, "utilisation": utilisation,
            "training_flops_per_s": flops_per_s, "probe": probe, "plain_fit": plain,
            "plain_fit_median_s": plain_s, "training_flops": work,
            "phases": {impl: {p: (per[impl].get(p) or {}) for p in ("start_to_ready", "data", "epochs",
                                                                     "epoch_metrics", "evaluation", "total")}
                       for impl in per}}


def format_bench(doc: dict) -> str:
    """The table that `bench` prints."""
    lines = [f"bench of run {doc['run']}: matmul probe {doc['probe']['flops_per_s'] / 1e9:.1f} GFLOP/s "
             f"({doc['probe']['threads']['threads_intra']} threads); plain model.fit {doc['plain_fit_median_s']:.2f} s"]
    lines.append(f"{'worker':<10} {'phase':<14} {'median':>8} {'min':>8} {'max':>8}")
    for impl, phases in doc["phases"].items():
        for phase, s in phases.items():
            if s.get("median") is not None:
                lines.append(f"{impl:<10} {phase:<14} {s['median']:8.2f} {s['min']:8.2f} {s['max']:8.2f}")
    lines.append("ratios:")
    for name, per in doc["ratios"].items():
        for impl, value in per.items():
            lines.append(f"  {name:<26} {impl:<10} {value:6.3f}")
    lines.append("utilisation (training FLOP/s / matmul probe FLOP/s):")
    for impl, value in doc["utilisation"].items():
        lines.append(f"  {impl:<10} {value:6.1%}  ({doc['training_flops_per_s'][impl] / 1e9:.1f} GFLOP/s)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- command

def add_arguments(parser) -> None:
    """Options of ``tailings-parity bench``."""
    from parity.run.workers import IMPLS

    parser.add_argument("--preset", default="ci", help="preset of parity/presets.toml (default: ci)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set epochs=2 (repeatable)")
    parser.add_argument("--impls", default=",".join(IMPLS), help="workers to time (the first is the reference)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each worker and of the plain fit (default 3)")
    parser.add_argument("--data", default=None, help="dataset folder (overrides the preset's data)")
    parser.add_argument("--model", default=None, metavar="PAIR",
                        help="model pair: a folder with model.py and model.R, or a shipped pair (default: unet)")
    parser.add_argument("--reports-dir", default=None, help="where the run folder goes (default: reports/)")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write bench.json to FILE")
    parser.add_argument("--verbose", action="store_true",
                        help="print every worker's progress line (per batch) instead of one line per worker")


def main(args) -> int:
    """``tailings-parity bench``: exit 0 when measured, 1 when a measurement failed, 2 on bad input."""
    from parity.errors import ParityError, RunError
    from parity.report.timing import timing_summary
    from parity.run import runner
    from python_impl.config import load_config

    impls = runner.parse_impls(args.impls)
    if args.repeats < 1:
        raise runner.UsageError(f"--repeats {args.repeats}: must be at least 1")
    config = load_config(args.preset, list(args.overrides) + runner.model_override(getattr(args, "model", None)))
    if args.data is not None:
        config["data"] = str(Path(args.data).resolve())
    runner.check_run_inputs(config)
    printer = runner.Printer(verbose=args.verbose)
    try:
        timeout = float(config["worker_timeout_s"])
        plain = []

        def plain_fit(run_dir, repeat):  # after each repeat's workers: drift of the machine hits both alike
            printer(f"plain model.fit {repeat}/{args.repeats}")
            plain.append(_run_child("plain-fit", run_dir, timeout))

        run_dir = runner.run_parity(config, impls, repeats=args.repeats, reports_dir=args.reports_dir,
                                    printer=printer, command=["tailings-parity", "bench"] + sys.argv[2:],
                                    after_repeat=plain_fit)
        printer("matmul probe")
        probe = _run_child("probe", run_dir, 300)
        from parity.artifacts.folder import RunFolder

        doc = bench_document(run_dir, plain, probe, timing_summary(run_dir, RunFolder(run_dir).worker_records()))
    except ParityError as exc:  # a measurement that failed is exit 1, whatever its kind
        raise RunError(str(exc)) from None
    (run_dir / "bench.json").write_text(json.dumps(doc, indent=1) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
    from parity.report.build import build_report

    build_report(run_dir)  # the report now shows the bench's ratios beside the run's own
    print(format_bench(doc))
    print(f"report: {run_dir / 'report.html'}")
    return 0


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--child":
    kind, config_path, manifest_path = sys.argv[2:5]
    result = plain_fit(config_path, manifest_path) if kind == "plain-fit" else matmul_probe(config_path)
    print(json.dumps(result), flush=True)
    import os

    os._exit(0)  # the result is printed: skip TensorFlow's teardown at exit (about 1 s)
