"""The README is for users: short, every command in it valid against the real CLI, every `make` target real, and
no measurement diary (measurements live in parity/BENCHMARKS.md).

Fast tier: it builds the argument parser (``parity.cli.build_parser``), which imports each subcommand's module for
its options only; no TensorFlow, rpy2, R or worker is started.
"""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from parity.cli import COMMANDS, RENAMED, build_parser
from parity.env import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
MAKEFILE = PROJECT_ROOT / "Makefile"
MAX_LINES = 300

# Code blocks whose lines are commands a user types (```python and ```r hold programs, not command lines).
COMMAND_BLOCK = re.compile(r"^```(?:sh|text)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
ANY_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`([^`\n]+)`")
# <run-id>, <run-a>: placeholders a user fills in; any word stands for them when parsing.
PLACEHOLDER = re.compile(r"<([^<>\s]+)>")
MAKE_TARGET = re.compile(r"(?:^|[\s;&(])make\s+([A-Za-z][\w-]*)")
DIARY_MARKERS = [re.compile(p, re.IGNORECASE) for p in
                 (r"fresh clone at [0-9a-f]{7}", r"page faults?\b", r"tried and dropped")]


def _text() -> str:
    return README.read_text(encoding="utf-8")


def _without_blocks(text: str) -> str:
    return ANY_BLOCK.sub("", text)


def _command_lines() -> list[str]:
    """Every `tailings-parity ...` line of the sh/text blocks and every inline `tailings-parity ...` span."""
    text = _text()
    found = []
    for block in COMMAND_BLOCK.findall(text):
        # A command continued with a trailing backslash is one command, as the shell reads it.
        block = re.sub(r"\\[ \t]*(#[^\n]*)?\n", " ", block)
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if line.startswith("tailings-parity "):
                found.append(line.split(" #", 1)[0].strip())
    for span in INLINE_CODE.findall(_without_blocks(text)):
        if span.startswith("tailings-parity "):
            found.append(span.strip())
    return found


def _argv(line: str) -> list[str]:
    return shlex.split(PLACEHOLDER.sub(lambda m: m.group(1), line))[1:]


def test_readme_is_a_few_screens():
    """The README stays a user's guide; measurements and their history go to parity/BENCHMARKS.md."""
    n = len(_text().splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines, at most {MAX_LINES}: move detail to parity/BENCHMARKS.md " \
                           "or parity/FORMATS.md"


COMMAND_LINES = _command_lines()


def test_readme_shows_commands():
    """The extraction below found the README's commands (a README without any would pass vacuously)."""
    assert len(COMMAND_LINES) >= 10, COMMAND_LINES


@pytest.mark.parametrize("line", COMMAND_LINES)
def test_every_readme_command_parses(line, capsys):
    """Each command line of the README parses with the real CLI's parser: no unknown option, no missing argument,
    no bad choice. A bare `tailings-parity NAME` in prose only has to name a real subcommand."""
    argv = _argv(line)
    if len(argv) == 1 and not argv[0].startswith("-"):
        assert argv[0] in COMMANDS, f"README names `tailings-parity {argv[0]}`, which is not a subcommand"
        return
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        err = capsys.readouterr().err.strip().splitlines()
        pytest.fail(f"README command does not parse (exit {exc.code}): {line}\n  {err[-1] if err else ''}")
    assert args.command, line
    # A subcommand whose module failed to import accepts any arguments; that would prove nothing.
    assert not getattr(args, "_import_error", None), f"{args.command}: {args._import_error}"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of a parser and of its nested subparsers (``data check --strict``)."""
    found = {s for a in parser._actions for s in a.option_strings}
    for sub in _subparsers(parser).values():
        found |= _options(sub)
    return found


def _option_mentions() -> list[tuple[str, str]]:
    """(subcommand, option) for every inline `--option ...` span in a `### <subcommand>...` section."""
    sections = re.split(r"^### ", _without_blocks(_text()), flags=re.MULTILINE)[1:]
    found = []
    for section in sections:
        heading, _, body = section.partition("\n")
        names = [w for w in re.findall(r"[a-z-]+", heading.split(":")[0]) if w in COMMANDS]
        for span in INLINE_CODE.findall(body):
            if span.startswith("--"):
                found += [(names, tok.split("=", 1)[0]) for tok in span.split() if tok.startswith("--")]
    return [(" ".join(n), opt) for n, opt in found if n]


def test_options_named_in_command_sections_exist():
    """An option the README mentions in a command's section (`--resume ...` under sweep) is an option of that
    command (or, in a section about two commands, of one of them)."""
    mentions = _option_mentions()
    assert mentions, "no inline options found: the README's command sections changed shape"
    subs = _subparsers(build_parser())
    unknown = [f"{names}: {opt}" for names, opt in mentions
               if not any(opt in _options(subs[n]) for n in names.split())]
    assert not unknown, f"README mentions options the CLI lacks: {', '.join(unknown)}"


def test_every_command_has_an_example():
    """House style: an example in the README for every command (the old name `compare` excepted)."""
    shown = {_argv(line)[0] for line in COMMAND_LINES if _argv(line)}
    missing = sorted(set(COMMANDS) - set(RENAMED) - shown)
    assert not missing, f"no README example for: {', '.join(missing)}"


def _makefile_targets() -> set[str]:
    targets = set()
    for line in MAKEFILE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z][\w.-]*(?:\s+[A-Za-z][\w.-]*)*)\s*:(?!=)", line)
        if m:
            targets.update(m.group(1).split())
    return targets


def test_make_targets_named_in_readme_exist():
    """Every `make X` of the README's code (blocks and inline spans) is a target of the Makefile."""
    text = _text()
    code = ANY_BLOCK.findall(text) + INLINE_CODE.findall(_without_blocks(text))
    named = {t for chunk in code for line in chunk.splitlines()
             for t in MAKE_TARGET.findall(line.split(" #", 1)[0])}
    assert {"demo", "test"} <= named, f"the two commands are missing: {sorted(named)}"
    missing = sorted(named - _makefile_targets())
    assert not missing, f"README names make targets the Makefile lacks: {', '.join(missing)}"


def test_readme_has_no_measurement_diary():
    """Commit-by-commit measurements, page faults and what was tried belong in parity/BENCHMARKS.md."""
    text = _text()
    hits = [f"line {text[:m.start()].count(chr(10)) + 1}: {m.group(0)!r}"
            for rx in DIARY_MARKERS for m in rx.finditer(text)]
    assert not hits, "measurement diary in README.md (move it to parity/BENCHMARKS.md): " + "; ".join(hits)


def test_readme_points_to_the_benchmark_record():
    """The headline figures link to the record that carries their machine, versions and history."""
    assert "parity/BENCHMARKS.md" in _text()
    assert (PROJECT_ROOT / "parity" / "BENCHMARKS.md").is_file()
