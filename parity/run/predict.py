"""``tailings-parity predict``: a run's saved model, loaded by the chosen language, predicts a folder of tiles.

Reads ``RUN/config.json`` (reading rules, tile size, channels, batch size, threads) and the model
``RUN/workers/<key>/model.keras`` (by default the chosen language's own worker, else the reference's); writes
into ``--out`` per tile ``prob_<id>.tif`` and ``class_<id>.tif`` with the input's CRS and transform
(``python_impl/predict.py``; ``r_impl/R/predict.R`` reads the tiles with terra and writes the same files
through rasterio) and ``predictions.json``. JPEG
input has no georeference: the outputs have none, with a notice. ``r-rpy2`` runs the R twin inside a Python
process through rpy2, ``r-rscript`` with R as host, like the workers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from parity.env import PROJECT_ROOT, R_IMPL_DIR, r_environment
from parity.process import run_child


def predict_command(impl: str, spec: Path) -> list[str]:
    """The command line that predicts with ``impl`` in a fresh process."""
    if impl == "python":
        return [sys.executable, "-m", "python_impl.predict", str(spec)]
    if impl == "r-rpy2":
        return [sys.executable, "-m", "parity.run.predict", "--embedded-r", str(spec)]
    return ["Rscript", "--vanilla", str(R_IMPL_DIR / "predict.R"), str(spec)]


def check_has_tiles(data_dir: Path, encoding: str) -> None:
    """UsageError (exit 2, nothing written) when ``data_dir`` holds no tile image of ``encoding``."""
    from parity.errors import UsageError
    from python_impl.data import ENCODINGS, list_tiles

    if not list_tiles(data_dir, encoding):
        folder, pattern = ENCODINGS[encoding][:2]
        raise UsageError(f"no {encoding} tile images ({folder}/{pattern.format('<id>')})", where=f"--data {data_dir}",
                         fix="give a folder laid out as in data/README.md" +
                             ("" if encoding == "jpeg" else ", or --encoding jpeg for img/img_<id>.jpeg tiles"))


def choose_model(run_dir: Path, impl: str, model_of: str | None) -> Path:
    """``workers/<model_of or impl>/model.keras``, else the first worker's; UsageError when the run has none."""
    from parity.errors import UsageError

    for key in [k for k in (model_of, impl) if k] + sorted(p.name for p in (run_dir / "workers").glob("*")):
        path = run_dir / "workers" / key / "model.keras"
        if path.is_file():
            return path
    raise UsageError("no saved model.keras in the run's worker folders", where=str(run_dir),
                     fix="give a finished run folder (tailings-parity run)")


def run_prediction(run_dir: Path, impl: str, data_dir: Path, out_dir: Path, *, encoding: str | None = None,
                   model_of: str | None = None, timeout_s: float = 1800) -> dict:
    """Predict ``data_dir`` with ``impl``; returns predictions.json. Raises RunError when the child fails."""
    from parity.errors import RunError

    out_dir.mkdir(parents=True, exist_ok=True)
    spec = out_dir / "predict_spec.json"
    spec.write_text(json.dumps({"model": str(choose_model(run_dir, impl, model_of)), "data_dir": str(data_dir),
                                "config": str(run_dir / "config.json"), "out_dir": str(out_dir),
                                "encoding": encoding}))
    child = run_child(predict_command(impl, spec), dict(r_environment(python=sys.executable),
                                                        PYTHONPATH=str(PROJECT_ROOT)), timeout_s)
    if child.returncode != 0 or not (out_dir / "predictions.json").is_file():
        tail = "\n".join((child.stdout + child.stderr).strip().splitlines()[-8:])
        raise RunError(f"{impl} could not predict (exit status {child.returncode}):\n{tail}",
                       fix="run `tailings-parity doctor`")
    record = json.loads((out_dir / "predictions.json").read_text())
    # jsonlite writes an empty named list as [], not {}.
    record["tiles"], record["skipped"] = dict(record["tiles"] or {}), dict(record["skipped"] or {})
    return record


def add_arguments(parser) -> None:
    """Options of ``tailings-parity predict``."""
    from parity.run.workers import IMPLS

    parser.add_argument("--run", required=True, help="a finished run folder (reports/<run-id>)")
    parser.add_argument("--impl", required=True, choices=IMPLS, help="the language that loads the model and predicts")
    parser.add_argument("--data", required=True, help="folder of tiles (img_tiff/ or img/; masks not needed)")
    parser.add_argument("--out", required=True, help="folder for prob_<id>.tif, class_<id>.tif, predictions.json")
    parser.add_argument("--encoding", choices=("geotiff", "jpeg"), default=None,
                        help="which images to read (default: the run's encoding)")
    parser.add_argument("--model-of", default=None, help="use this worker's saved model (default: --impl's own)")


def main(args) -> int:
    """``tailings-parity predict``: exit 0 when every readable tile was predicted, 1 on failure, 2 on bad input."""

    from parity.errors import RunError, UsageError

    run_dir, data_dir = Path(args.run), Path(args.data)
    if not (run_dir / "config.json").exists():
        raise UsageError(f"--run {run_dir}: no such run folder")
    if not data_dir.exists():
        raise UsageError(f"--data {data_dir}: no such folder")
    encoding = args.encoding or json.loads((run_dir / "config.json").read_text())["encoding"]
    check_has_tiles(data_dir, encoding)
    record = run_prediction(run_dir.resolve(), args.impl, data_dir.resolve(), Path(args.out).resolve(),
                            encoding=args.encoding, model_of=args.model_of)
    if not record["tiles"]:
        reasons = "; ".join(f"tile {tile}: {why}" for tile, why in list(record["skipped"].items())[:3])
        raise RunError(f"none of the {len(record['skipped'])} tile(s) of {args.data} could be read ({reasons})",
                       fix="`tailings-parity data check` names each broken file")
    print(f"{args.impl}: {len(record['tiles'])} tiles predicted, {len(record['skipped'])} skipped -> {args.out}")
    for tile, why in record["skipped"].items():
        print(f"  skipped tile {tile}: {why}")
    if record.get("notice"):
        print(f"notice: {record['notice']}")
    return 0


def _embedded_main(spec: str) -> int:
    """r-rpy2: start R in this Python process through rpy2, source the R twin and run its run_predict()."""
    from parity.env import prepare_embedded_r

    prepare_embedded_r()
    import rpy2.robjects as ro

    ro.globalenv[".r_impl_dir"] = str(R_IMPL_DIR)
    ro.r["source"](str(R_IMPL_DIR / "worker.R"))
    ro.globalenv["source_r_impl"](str(R_IMPL_DIR / "R"))
    ro.globalenv["run_predict"](spec)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m parity.run.predict --embedded-r")
    parser.add_argument("--embedded-r", required=True)
    sys.exit(_embedded_main(parser.parse_args().embedded_r))
