"""Mutation score of the comparison, the metrics and the config against the fast tier (``make mutation``).

mutmut (``pip install -e .[dev]``) mutates a copy of the project in a temporary folder, never this working tree:
the files git knows (tracked and untracked, less the ignored) are copied there, mutmut runs in it, and for each
mutant it runs the fast-tier tests that reach the mutated function (``[tool.mutmut]`` of pyproject.toml: what is
mutated, which test files, the fast-tier markers). The score of a module is its killed mutants (a timeout counts
as killed) over its mutants less the equivalent ones (``parity/mutation_equivalent.toml``: each with why no test can
kill it); a mutant that no test reaches counts as survived.

mutmut leaves decorated functions alone; the stages of ``parity/compare/stages.py`` are declared with
``@stage(...)``, so in the copy each is registered by a call after its function instead (the same registry, in
the same order), which lets their bodies be mutated too.

    python -m parity.mutation                    # the score per module, the surviving mutants
    python -m parity.mutation --min 0.9          # ... and exit 1 when a module scores below 90 % (make mutation)
    python -m parity.mutation --tests-from REV   # the same code against the tests of git revision REV
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES_FILE = "parity/compare/stages.py"
# Mutants that behave as the code does (no test can tell them apart), each with the reason: left out of the score.
EQUIVALENT_FILE = Path(__file__).resolve().parent / "mutation_equivalent.toml"
# mutmut's exit codes of a mutant's test run (mutmut/stats.py); a timeout is a kill: the mutant changed behaviour.
KILLED = {1, 3, 36, -24, 24, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}
SKIPPED = {34}


def project_files(root: Path) -> list[str]:
    """The files git knows in ``root``: tracked, and untracked but not ignored (new tests before their commit)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True,
                         capture_output=True).stdout.decode()
    return [name for name in out.split("\0") if name and (root / name).is_file()]


def copy_project(root: Path, dest: Path) -> None:
    """Copy the project's files from ``root`` into ``dest`` (mutmut writes only below ``dest``); without git (an
    unpacked archive), every file but the environments, caches and outputs."""
    if not (root / ".git").exists():
        shutil.copytree(root, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", ".rlib", ".cache", "reports", "mutants", "__pycache__", "*.egg-info", ".pytest_cache"))
        return
    for name in project_files(root):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)


def tests_from(root: Path, rev: str, dest: Path) -> None:
    """Replace the test files of the copy in ``dest`` with those of git revision ``rev``."""
    for path in list((dest / "tests").glob("*.py")) + list((dest / "parity").glob("test_*.py")):
        path.unlink()
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "--", "tests", "parity"], cwd=root,
                           check=True, capture_output=True, text=True).stdout.split()
    for name in names:
        if (name.startswith("tests/") and name.endswith(".py")) or name.startswith("parity/test_"):
            blob = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=root, check=True, capture_output=True).stdout
            (dest / name).write_bytes(blob)


def undecorate_stages(path: Path) -> int:
    """Move each top-level ``@stage(...)`` decorator of ``path`` to a registering call right after its function
    (``f = stage(...)(f)``), so that mutmut mutates the function; returns how many were moved."""
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    moves = []
    for node in ast.parse(text).body:
        if not isinstance(node, ast.FunctionDef) or len(node.decorator_list) != 1:
            continue
        deco = node.decorator_list[0]
        if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name) and deco.func.id == "stage":
            moves.append((deco.lineno, deco.end_lineno, node.end_lineno, node.name,
                          ast.get_source_segment(text, deco)))
    for start, end, func_end, name, call in reversed(moves):
        lines.insert(func_end, f"{name} = {call}({name})\n")
        # the decorator's lines (its comment after the closing parenthesis goes with it)
        del lines[start - 1:end]
    path.write_text("".join(lines))
    return len(moves)


def select_existing_tests(dest: Path) -> None:
    """Keep in the copy's ``[tool.mutmut]`` only the test files that the copy has (``--tests-from`` an older
    revision may lack new ones)."""
    pyproject = dest / "pyproject.toml"
    text = pyproject.read_text()
    wanted = tomllib.loads(text)["tool"]["mutmut"]["pytest_add_cli_args_test_selection"]
    kept = [name for name in wanted if (dest / name).exists()]
    text = re.sub(r"(?ms)^pytest_add_cli_args_test_selection = \[.*?\]$",
                  lambda _: f"pytest_add_cli_args_test_selection = {json.dumps(kept)}", text)
    pyproject.write_text(text)


def scores(dest: Path, equivalent: dict | None = None) -> dict:
    """Per mutated module: counts of killed, survived, no tests, skipped and equivalent (``equivalent``: mutant
    name -> why), the score over the others, and the names of those not killed."""
    equivalent = equivalent or {}
    out = {}
    for meta in sorted((dest / "mutants").rglob("*.py.meta")):
        module = str(meta.relative_to(dest / "mutants"))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        row = {"total": len(codes), "killed": 0, "survived": 0, "no_tests": 0, "skipped": 0, "other": 0,
               "equivalent": 0, "not_killed": [], "equivalent_killed": []}
        for name, code in sorted(codes.items()):
            key = ("killed" if code in KILLED else "survived" if code in SURVIVED else
                   "no_tests" if code in NO_TESTS else "skipped" if code in SKIPPED else "other")
            if name in equivalent:
                if key == "killed":  # listed as equivalent, yet a test told it apart: the list is out of date
                    row["equivalent_killed"].append(name)
                key = "equivalent"
            row[key] += 1
            if key not in ("killed", "skipped", "equivalent"):
                row["not_killed"].append(name)
        scored = row["total"] - row["skipped"] - row["equivalent"]
        row["score"] = row["killed"] / scored if scored else None
        if row["total"]:
            out[module] = row
    return out


def main(argv=None) -> int:
    """Copy, transform, run mutmut, print the scores; exit 0 when every module scores at least ``--min``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to copy the project (default: a new temporary folder, kept for `mutmut show`)")
    parser.add_argument("--tests-from", default=None, metavar="REV",
                        help="run against the test files of git revision REV (the score before new tests)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2, help="mutants run at once")
    parser.add_argument("--min", type=float, default=0.0, help="exit 1 when a module scores below this share")
    args = parser.parse_args(argv)
    dest = args.workdir or Path(tempfile.mkdtemp(prefix="tailings-mutation-"))
    dest.mkdir(parents=True, exist_ok=True)
    if (dest / "mutants").exists():
        shutil.rmtree(dest / "mutants")
    copy_project(ROOT, dest)
    if args.tests_from:
        tests_from(ROOT, args.tests_from, dest)
    select_existing_tests(dest)
    undecorate_stages(dest / STAGES_FILE)
    mutmut = Path(sys.executable).parent / "mutmut"
    env = dict(os.environ, TAILINGS_PARITY_FAST_TIER="1")
    run = subprocess.run([str(mutmut), "run", "--max-children", str(args.max_children)], check=False, cwd=dest, env=env)
    if run.returncode != 0:
        print(f"mutmut run failed (exit {run.returncode}) in {dest}", file=sys.stderr)
        return 1
    equivalent = tomllib.loads(EQUIVALENT_FILE.read_text()) if EQUIVALENT_FILE.is_file() else {}
    table = scores(dest, equivalent)
    (dest / "mutation-scores.json").write_text(json.dumps(table, indent=1) + "\n")
    print(f"\n{'module':<32} {'mutants':>7} {'killed':>6} {'survived':>8} {'no tests':>8} {'equivalent':>10} "
          f"{'score':>7}")
    for module, row in table.items():
        score = "n/a" if row["score"] is None else f"{row['score']:.1%}"
        print(f"{module:<32} {row['total']:>7} {row['killed']:>6} {row['survived']:>8} {row['no_tests']:>8} "
              f"{row['equivalent']:>10} {score:>7}")
    for module, row in table.items():
        if row["not_killed"]:
            print(f"\nnot killed in {module} (see one: cd {dest} && mutmut show NAME):")
            print("\n".join(f"  {name}" for name in row["not_killed"]))
        if row["equivalent_killed"]:
            print(f"\nkilled, yet listed in {EQUIVALENT_FILE.name} (remove them):")
            print("\n".join(f"  {name}" for name in row["equivalent_killed"]))
    print(f"\nscores: {dest / 'mutation-scores.json'}")
    low = [m for m, row in table.items() if row["score"] is not None and row["score"] < args.min]
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
