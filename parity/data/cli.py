"""``tailings-parity data``: check a dataset, compare the R and Python readers on it, or write synthetic tiles.

    tailings-parity data check ../shared/data/tailings [--encoding both] [--strict] [--json]
    tailings-parity data compare ../shared/data/tailings [--encoding both] [--tile-size 0] [--json]
    tailings-parity data synth /tmp/tiles [--count 24 --size 64 --seed 7]

Exit status: 0 ok; 1 a bad tile or a stray file in strict mode, two files of one tile id (always), a tile that
differs between R and Python, or a dataset that cannot be used at all; 2 a usage error.
"""

from __future__ import annotations

import json
import sys

from parity.errors import RunError


def add_arguments(parser) -> None:
    """Register the ``check``, ``compare`` and ``synth`` actions."""
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    check = sub.add_parser("check", help="validate every tile; list each tile's status")
    check.add_argument("path", help="dataset folder (img/ + mask/ and/or img_tiff/ + mask_tiff/)")
    check.add_argument("--encoding", choices=["geotiff", "jpeg", "both"], default="both")
    check.add_argument("--expected-size", type=int, default=None,
                       help="tile side in pixels (default: the most common size in the dataset)")
    check.add_argument("--strict", action="store_true",
                       help="exit 1 naming the first bad tile or stray file (duplicates always exit 1)")
    check.add_argument("--json", action="store_true", help="print the per-tile results as JSON")
    compare = sub.add_parser("compare", help="read every tile in R and in Python; compare bit for bit")
    compare.add_argument("path", help="dataset folder")
    compare.add_argument("--encoding", choices=["geotiff", "jpeg", "both"], default="both")
    compare.add_argument("--tile-size", type=int, default=0, help="resize to this side first (0 = keep)")
    compare.add_argument("--channels", type=int, choices=[1, 3], default=3, help="input_channels (1 = greyscale)")
    compare.add_argument("--json", action="store_true", help="print the per-tile report as JSON")
    synth = sub.add_parser("synth", help="write synthetic tiles (both encodings)")
    synth.add_argument("out", help="output folder")
    synth.add_argument("--count", type=int, default=None, help="tiles (default: config synthetic_count)")
    synth.add_argument("--size", type=int, default=None, help="side in pixels (default: config synthetic_size)")
    synth.add_argument("--seed", type=int, default=None, help="seed (default: config synthetic_seed)")


def _check(args) -> int:
    from parity.data.check import account_files, check_dataset, format_files, format_results

    results = check_dataset(args.path, args.encoding, args.expected_size)
    # Every file of the tile folders accounted for: a stray file is a warning (an error with --strict), two
    # files of one tile id an error naming both.
    files = account_files(args.path, args.encoding)
    if args.json:
        print(json.dumps(results, indent=1))
        for line in format_files(files):  # stdout stays the per-tile JSON; the files go to stderr
            print(line, file=sys.stderr)
    else:
        print("\n".join([format_results(results), *format_files(files)]))
        if files["stray"] or files["duplicates"]:
            print(f"{len(files['stray'])} stray file(s), {len(files['duplicates'])} tile(s) with two or more files")
    if files["stray"] and not args.strict:
        names = ", ".join(s["file"] for s in files["stray"][:5]) + (" ..." if len(files["stray"]) > 5 else "")
        print(f"warning: {len(files['stray'])} stray file(s) in {args.path}, not read by any run: {names} "
              "(--strict makes this an error)", file=sys.stderr)
    if files["duplicates"]:
        dup, more = files["duplicates"][0], len(files["duplicates"]) - 1
        raise RunError(f"duplicate tile {dup['tile']} in {args.path}: {dup['reason']}"
                       + (f" (and {more} more tile(s) with two or more files, listed above)" if more else ""),
                       fix="keep one, remove or rename the other(s)")
    if files["stray"] and args.strict:
        first = files["stray"][0]
        raise RunError(f"stray file {first['file']} in {args.path}: {first['reason']}",
                       fix="rename it as a tile, move it out of the tile folders, or run without --strict")
    bad = [r for r in results if not r["ok"]]
    if args.strict and bad:
        first = bad[0]
        raise RunError(f"tile {first['tile']} ({first['encoding']}, {first['image_file']}): "
                       f"{'; '.join(first['problems'])}", fix="fix or remove the tile, or run without --strict to "
                                                              "leave it out")
    if len(bad) == len(results):
        raise RunError(f"no usable tile in {args.path}")
    return 0


def _compare(args) -> int:
    from parity.data.compare import compare_dataset, format_report, parity_ok
    from parity.data.check import check_dataset

    check_dataset(args.path, args.encoding)  # a folder without tiles stops here with a clear message
    report = compare_dataset(args.path, args.encoding, args.tile_size, args.channels)
    print(json.dumps(report, indent=1) if args.json else format_report(report))
    return 0 if parity_ok(report) else 1


def _synth(args) -> int:
    from parity.data.synthetic import make_synthetic
    from python_impl.config import load_config

    defaults = load_config("smoke")
    ids = make_synthetic(args.out, args.count or defaults["synthetic_count"], args.size or defaults["synthetic_size"],
                         defaults["synthetic_seed"] if args.seed is None else args.seed)
    print(f"wrote {len(ids)} synthetic tiles to {args.out}")
    return 0


def main(args) -> int:
    """Run the chosen action; bad data ends in a one-line message and exit 1, never a traceback."""
    actions = {"check": _check, "compare": _compare, "synth": _synth}
    if not getattr(args, "data_command", None):
        print("usage: tailings-parity data {check,compare,synth} ... (see tailings-parity data -h)", file=sys.stderr)
        return 2
    try:
        return actions[args.data_command](args)
    except (ValueError, OSError) as exc:  # a file that cannot be read: one line, exit 1 (cli.main prints it)
        raise RunError(str(exc)) from None
