"""The README tells the truth: its examples run, and what they print is what the README shows.

The convention (stated in the README's "Development" section):

- Every ```` ```python ```` block runs, in a fresh Python process, in a scratch folder shared by the whole
  README (so a later example can import a file an earlier one wrote). If a ```` ```text ```` block follows it
  (blank lines aside), the process's stdout must equal that block exactly.
- A ```` ```python ```` block whose first line is ``# file: NAME.py`` is not run: it is written to the
  scratch folder as ``NAME.py``, for the examples after it (``--backward NAME.py:backward_pass``). One whose
  first line is ``# file: NAME.ipynb`` is written as a Jupyter notebook, its code cells separated by lines
  ``# %%`` (the percent format of Jupytext and VS Code), for ``--notebook NAME.ipynb``.
- A ```` ```console ```` block holds commands after ``$ `` and, below each, what it prints on stdout.
  ``manual-backprop`` runs as ``python -m manual_backprop``, ``python`` as this interpreter. Blocks in other
  languages (``bash``: installing, long benchmarks) are not run.
- In shown output (``text`` or ``console``), a line ``...`` stands for any number of lines; the other lines
  must appear exactly, in order, and contiguously between two ``...``. One exception inside a line: a
  number in e-notation below 1e-6 in absolute value (``1.33e-15``: a rounding error, whose last figures
  depend on the BLAS kernel and the JAX version) matches any number below 1e-6 written the same way.

Each example is one test, named by its line in README.md; a failure prints a diff, README against actual.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
FILE_MARK = re.compile(r"^# file: (\S+\.(?:py|ipynb))\b")
CELL_MARK = re.compile(r"^# %%.*$", re.M)
TIMEOUT = 300


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # of the opening fence, 1-based
    end: int  # offset just after the closing fence


def blocks(markdown: str) -> list[Block]:
    return [Block(m.group(1), m.group(2), markdown.count("\n", 0, m.start()) + 1, m.end())
            for m in FENCE.finditer(markdown)]


@dataclass(frozen=True)
class Example:
    kind: str  # "python" or "console"
    line: int
    code: str
    expected: str | None  # python: the exact stdout (None: not compared); console: unused


def examples(markdown: str) -> tuple[dict[str, str], list[Example]]:
    """The README's files (name -> source) and its examples, in order."""
    found, files = blocks(markdown), {}
    out = []
    for i, block in enumerate(found):
        if block.language == "python":
            mark = FILE_MARK.match(block.text)
            if mark:
                files[mark.group(1)] = block.text
                continue
            following = found[i + 1] if i + 1 < len(found) else None
            expected = None
            if (following is not None and following.language == "text"
                    and markdown[block.end:markdown.find("```", block.end)].strip() == ""):
                expected = following.text
            out.append(Example("python", block.line, block.text, expected))
        elif block.language == "console":
            out.append(Example("console", block.line, block.text, None))
    return files, out


FILES, EXAMPLES = examples(README.read_text())


def commands(console: str) -> list[tuple[str, list[str]]]:
    """``(command, shown output lines)`` for each ``$ `` line of a console block."""
    out = []
    for line in console.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        elif out:
            out[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"a console block must start with a '$ ' command line, got {line!r}")
    return out


ROUNDING = 1e-6  # figures below this are rounding errors: machine-dependent, compared as "below 1e-6"
NUMBER = re.compile(r"[-+]?\d\.\d+e[-+]\d+")


def same_line(shown: str, actual: str) -> bool:
    """Equal, but that e-notation figures both below ``ROUNDING`` match (the text around them must not)."""
    if shown == actual:
        return True
    shown_numbers, actual_numbers = NUMBER.findall(shown), NUMBER.findall(actual)
    if NUMBER.sub("#", shown) != NUMBER.sub("#", actual) or len(shown_numbers) != len(actual_numbers):
        return False
    return all(a == b or (abs(float(a)) < ROUNDING and abs(float(b)) < ROUNDING)
               for a, b in zip(shown_numbers, actual_numbers, strict=True))


def _same(shown: list[str], actual: list[str]) -> bool:
    return len(shown) == len(actual) and all(map(same_line, shown, actual))


def matches(shown: list[str], actual: list[str]) -> bool:
    """Shown lines against actual ones, ``...`` standing for any run of lines (a glob over lines)."""
    chunks, chunk = [], []
    for line in shown:
        if line == "...":
            chunks.append(chunk)
            chunk = []
        else:
            chunk.append(line)
    chunks.append(chunk)
    if len(chunks) == 1:
        return _same(shown, actual)
    first, *middle, last = chunks
    if not _same(first, actual[: len(first)]) or (last and not _same(last, actual[len(actual) - len(last):])):
        return False
    position, end = len(first), len(actual) - len(last)
    if end < position:
        return False
    for chunk in middle:
        for start in range(position, end - len(chunk) + 1):
            if _same(chunk, actual[start:start + len(chunk)]):
                position = start + len(chunk)
                break
        else:
            return False
    return True


def diff(expected: list[str], actual: list[str], where: str) -> str:
    lines = difflib.unified_diff(expected, actual, f"{where} (README)", "actual stdout", lineterm="", n=2)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """One folder for the whole README, holding its ``# file:`` blocks."""
    folder = tmp_path_factory.mktemp("readme")
    for name, source in FILES.items():
        if name.endswith(".ipynb"):
            write_ipynb(folder / name, source)
        else:
            (folder / name).write_text(source)
    return folder


def write_ipynb(path: Path, source: str) -> None:
    """The block as a notebook: one code cell per ``# %%`` section (the ``# file:`` line left out)."""
    import nbformat

    cells = [part.strip("\n") for part in CELL_MARK.split(source.split("\n", 1)[1])]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells if c.strip()])
    path.write_text(nbformat.writes(notebook), encoding="utf-8")


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # The environment as the test process has it (PYTHONPATH included), so a source checkout works too.
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd,
                          env=dict(os.environ))


def test_the_readme_has_checked_examples():
    kinds = [e.kind for e in EXAMPLES]
    assert kinds.count("python") >= 2 and kinds.count("console") >= 2
    assert sum(e.expected is not None for e in EXAMPLES) >= 1
    assert {"my_backprop.py"} <= set(FILES)


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.kind == "python"],
                         ids=lambda e: f"README.md:{e.line}")
def test_python_example_prints_what_the_readme_shows(example, scratch):
    script = scratch / f"readme_line_{example.line}.py"
    script.write_text(example.code)
    done = _run([sys.executable, script.name], scratch)
    assert done.returncode == 0, f"README.md:{example.line} failed:\n{done.stderr[-4000:]}"
    if example.expected is not None:
        expected, actual = example.expected.splitlines(), done.stdout.splitlines()
        if not matches(expected, actual):
            pytest.fail("\n" + diff(expected, actual, f"README.md:{example.line}"), pytrace=False)


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.kind == "console"],
                         ids=lambda e: f"README.md:{e.line}")
def test_console_example_prints_the_lines_the_readme_shows(example, scratch):
    for command, shown in commands(example.code):
        argv = shlex.split(command, comments=True)
        if argv[0] == "manual-backprop":
            argv = [sys.executable, "-m", "manual_backprop", *argv[1:]]
        elif argv[0] == "python":
            argv = [sys.executable, *argv[1:]]
        done = _run(argv, scratch)
        actual = done.stdout.splitlines()
        if not matches(shown, actual):
            pytest.fail(f"\n$ {command}  (exit {done.returncode}; README's '...' stands for any lines)\n"
                        + diff(shown, actual, f"README.md:{example.line}")
                        + f"\nstderr:\n{done.stderr[-2000:]}", pytrace=False)


@pytest.mark.parametrize(("shown", "actual", "ok"), [
    (["a", "b"], ["a", "b"], True),
    (["a", "b"], ["a", "b", "c"], False),
    (["a", "...", "c"], ["a", "b", "b2", "c"], True),
    (["a", "...", "c"], ["a", "c"], True),
    (["a", "...", "c"], ["a", "b", "c", "d"], False),
    (["a", "...", "c", "..."], ["a", "b", "c", "d"], True),
    (["...", "b", "...", "d"], ["a", "b", "c", "d"], True),
    (["a", "...", "d", "b", "...", "e"], ["a", "b", "d", "e"], False),
    (["a", "...", "a"], ["a"], False),
])
def test_ellipsis_matching(shown, actual, ok):
    assert matches(shown, actual) is ok


@pytest.mark.parametrize(("shown", "actual", "ok"), [
    ("Omega_0    6x1    1.33e-15   3.60e-09  ok", "Omega_0    6x1    2.66e-15   3.60e-09  ok", True),
    ("Omega_0    6x1    1.33e-15   3.60e-09  ok", "Omega_0    6x1    1.33e-15   3.60e-09  FAIL", False),
    ("Omega_0    6x1    1.33e-15  ok", "Omega_0    6x1    2.00e-06  ok", False),  # not rounding any more
    ("beta_5     1x1   -1.81e+01  ok", "beta_5     1x1   -1.82e+01  ok", False),  # a value, exactly
    ("x 1.33e-15", "x  1.33e-15", False),  # spacing counts
    ("[ -2.243   2.474 ]", "[ -2.243  2.474 ]", False),
])
def test_rounding_figures_match_any_rounding_figure(shown, actual, ok):
    assert same_line(shown, actual) is ok
