"""The README and the docs tell the truth: their examples run, and print what the pages show.

The convention (stated in docs/development.md), for ``README.md`` and every page ``docs/*.md`` (scanned,
so a new page is covered as soon as it exists):

- Every ```` ```python ```` block runs, in a fresh Python process, in a scratch folder of its page (so a
  later example can import a file an earlier one wrote). If a ```` ```text ```` block follows it (blank
  lines aside), the process's stdout must equal that block exactly.
- A ```` ```python ```` block whose first line is ``# file: NAME.py`` is not run: it is written to the
  scratch folder as ``NAME.py``, for the examples after it (``--backward NAME.py:backward_pass``). One whose
  first line is ``# file: NAME.ipynb`` is written as a Jupyter notebook, its code cells separated by lines
  ``# %%`` (the percent format of Jupytext and VS Code), for ``--notebook NAME.ipynb``. A page's folder
  also holds the files the other pages define (the README's first, then the pages' in name order; the
  page's own win), so a page can use ``no_mask.py`` without repeating it.
- A ```` ```console ```` block holds commands after ``$ `` and, below each, what it prints on stdout.
  ``manual-backprop`` runs as ``python -m manual_backprop``, ``python`` as this interpreter. Blocks in other
  languages (``bash``: installing, long benchmarks) are not run.
- In shown output (``text`` or ``console``), a line ``...`` stands for any number of lines; the other lines
  must appear exactly, in order, and contiguously between two ``...``. One exception inside a line: a
  number in e-notation below 1e-6 in absolute value (``1.33e-15``: a rounding error, whose last figures
  depend on the BLAS kernel and the JAX version) matches any number below 1e-6 written the same way.

Each example is one test, named by its page and line; a failure prints a diff, page against actual. The
examples are marked ``slow`` (each is a fresh Python; together they take minutes). Also here: the README
stays short and its links work on the package index (absolute only), and the site builds strictly when
MkDocs is installed.
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
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
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
    """A page's files (name -> source) and its examples, in order."""
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


def name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


FOUND = {name(page): examples(page.read_text()) for page in PAGES}
EVERY_FILE: dict[str, str] = {}  # what a page does not define itself: the README's first, then the pages'
for _files, _ in FOUND.values():
    for _name, _source in _files.items():
        EVERY_FILE.setdefault(_name, _source)
EXAMPLES = [(page, example) for page, (_, found) in FOUND.items() for example in found]


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
    lines = difflib.unified_diff(expected, actual, f"{where} (shown)", "actual stdout", lineterm="", n=2)
    return "\n".join(lines)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """``scratch(page)``: the page's folder, holding its ``# file:`` blocks and the other pages' files."""
    folders: dict[str, Path] = {}

    def folder_of(page: str) -> Path:
        if page not in folders:
            folder = tmp_path_factory.mktemp(page.replace("/", "_").removesuffix(".md"))
            for file_name, source in {**EVERY_FILE, **FOUND[page][0]}.items():
                if file_name.endswith(".ipynb"):
                    write_ipynb(folder / file_name, source)
                else:
                    (folder / file_name).write_text(source)
            folders[page] = folder
        return folders[page]

    return folder_of


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


def test_the_pages_have_checked_examples():
    kinds = [e.kind for _, e in EXAMPLES]
    assert kinds.count("python") >= 2 and kinds.count("console") >= 2
    assert sum(e.expected is not None for _, e in EXAMPLES) >= 1
    readme = [e.kind for e in FOUND["README.md"][1]]
    assert "python" in readme and "console" in readme  # the README's own examples are checked too
    assert {"my_backprop.py", "no_mask.py"} <= set(EVERY_FILE)


def _id(item) -> str:
    page, example = item
    return f"{page}:{example.line}"


@pytest.mark.slow
@pytest.mark.parametrize("item", [item for item in EXAMPLES if item[1].kind == "python"], ids=_id)
def test_python_example_prints_what_the_page_shows(item, scratch):
    page, example = item
    folder = scratch(page)
    script = folder / f"example_line_{example.line}.py"
    script.write_text(example.code)
    done = _run([sys.executable, script.name], folder)
    assert done.returncode == 0, f"{page}:{example.line} failed:\n{done.stderr[-4000:]}"
    if example.expected is not None:
        expected, actual = example.expected.splitlines(), done.stdout.splitlines()
        if not matches(expected, actual):
            pytest.fail("\n" + diff(expected, actual, f"{page}:{example.line}"), pytrace=False)


@pytest.mark.slow
@pytest.mark.parametrize("item", [item for item in EXAMPLES if item[1].kind == "console"], ids=_id)
def test_console_example_prints_the_lines_the_page_shows(item, scratch):
    page, example = item
    for command, shown in commands(example.code):
        argv = shlex.split(command, comments=True)
        if argv[0] == "manual-backprop":
            argv = [sys.executable, "-m", "manual_backprop", *argv[1:]]
        elif argv[0] == "python":
            argv = [sys.executable, *argv[1:]]
        done = _run(argv, scratch(page))
        actual = done.stdout.splitlines()
        if not matches(shown, actual):
            pytest.fail(f"\n$ {command}  (exit {done.returncode}; the page's '...' stands for any lines)\n"
                        + diff(shown, actual, f"{page}:{example.line}")
                        + f"\nstderr:\n{done.stderr[-2000:]}", pytrace=False)


# ------------------------------------------------------------------------- the README on the package index

LINK = re.compile(r"\]\(([^)\s]+)\)")
LAYOUT = re.compile(r"^## Layout\n.*?(?=^## )", re.S | re.M)


def test_the_readme_links_only_absolutely():
    # On the package index the README is the project's description: a relative link there is dead.
    relative = [target for target in LINK.findall(README.read_text())
                if not target.startswith(("https://", "http://", "#"))]
    assert relative == [], "name the page as docs/NAME.md instead of linking to it"


def test_the_readme_is_short():
    text = LAYOUT.sub("", README.read_text())  # the Layout list is the house's map, counted apart
    assert len(text.encode()) <= 12_000, "keep the README about 10 kB: move the details to docs/"


def test_every_docs_page_the_readme_names_exists_or_is_expected():
    named = set(re.findall(r"`docs/([\w-]+\.md)`", README.read_text()))
    coming = {"in-the-notebook.md", "untrusted-code.md", "your-gradient.md", "chain.md"}  # other branches
    missing = {page for page in named if not (ROOT / "docs" / page).exists()} - coming
    assert missing == set()


@pytest.mark.slow
def test_the_docs_build_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]


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
