"""The ``tailings-parity`` command: one dispatcher, each subcommand in its own module.

Each module named in ``COMMANDS`` exposes ``add_arguments(parser)`` and ``main(args) -> int``; it is imported
only when its subcommand runs, so ``tailings-parity doctor`` works even where TensorFlow does not.
Exit status: 0 success, 1 the thing checked failed, 2 a usage error. Library code raises ``ParityError``
subclasses (``parity/errors.py``) or the twins' own errors; ``main`` prints them as one ``error:`` line.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS = {
    "doctor": ("parity.doctor.checks", "health check of R + reticulate + rpy2 + TensorFlow"),
    "data": ("parity.data.cli", "check, compare (R vs Python) or synthesise tailings tiles"),
    "run": ("parity.run.runner", "train the twins, compare them, write a report under reports/"),
    "sweep": ("parity.sweep.sweep", "a grid of config values x seeds x languages as parallel jobs (Dask), one run per cell"),
    "report": ("parity.report.build", "rebuild the report of a run folder without training"),
    "regress": ("parity.compare.regress", "compare two runs: regressions in metrics and timing"),
    "compare": ("parity.compare.regress", "old name of `regress` (kept working, with a notice)"),
    "predict": ("parity.run.predict", "predict tiles with a run's saved model, in Python or R: GeoTIFFs"),
    "bench": ("parity.run.bench", "time the workers against a plain model.fit and the machine's matmul peak"),
    "worker": ("parity.run.workers", "run one worker (python | r-rpy2 | r-rscript); used by `run`"),
}

# old name -> new name: still dispatched, with a notice on stderr.
RENAMED = {"compare": "regress"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="tailings-parity",
        description="Train the same Keras U-Net from Python and from R, compare them stage by stage, report.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        try:
            importlib.import_module(module).add_arguments(p)
        except Exception as exc:  # one broken subcommand must not take the others (e.g. doctor) down
            p.set_defaults(_import_error=f"{type(exc).__name__}: {exc}")
            p.add_argument("rest", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        # No arguments: the embedded default parity run.
        argv = ["run"]
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    if getattr(args, "_import_error", None):
        print(f"tailings-parity {args.command}: cannot load {args._module}: {args._import_error}\n"
              f"fix: run `make setup` (or `bash parity/setup.sh`), then `tailings-parity doctor`", file=sys.stderr)
        return 1
    if args.command in RENAMED:
        print(f"notice: `tailings-parity {args.command}` is now `tailings-parity {RENAMED[args.command]}` "
              "(the comparison stage is parity/compare/); the old name still works", file=sys.stderr)
    return dispatch(importlib.import_module(args._module).main, args)


def dispatch(command_main, args: argparse.Namespace) -> int:
    """Run a subcommand's ``main(args)``; an error it raises is printed here, as one ``error:`` line (what,
    where, fix; no traceback), and becomes the exit status (2 for usage and config mistakes, else 1)."""
    try:
        return int(command_main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the one place an error reaches the user
        # Imported here: the twins' errors need NumPy, which `doctor` must not (it checks whether NumPy works).
        from parity.errors import exit_status, user_errors

        if not isinstance(exc, user_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exit_status(exc)
