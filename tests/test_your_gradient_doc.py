"""docs/your-gradient.md tells the truth: its examples run and print what it shows (test_readme's rules)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from test_readme import _run, commands, diff, examples, matches

PAGE = Path(__file__).resolve().parents[1] / "docs" / "your-gradient.md"
FILES, EXAMPLES = examples(PAGE.read_text())


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    folder = tmp_path_factory.mktemp("your_gradient")
    for name, source in FILES.items():
        (folder / name).write_text(source)
    return folder


def test_the_page_shows_the_three_styles_and_the_command():
    assert sum(e.expected is not None for e in EXAMPLES) == 3
    assert any(e.kind == "console" for e in EXAMPLES) and {"model.py", "test_my_gradient.py"} <= set(FILES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: f"your-gradient.md:{e.line}")
def test_each_example_prints_what_the_page_shows(example, scratch):
    if example.kind == "python":
        script = scratch / f"line_{example.line}.py"
        script.write_text(example.code)
        done = _run([sys.executable, script.name], scratch)
        assert done.returncode == 0, done.stderr[-3000:]
        shown, actual = (example.expected or "").splitlines(), done.stdout.splitlines()
        if example.expected is not None and not matches(shown, actual):
            pytest.fail("\n" + diff(shown, actual, "page"), pytrace=False)
        return
    for command, shown in commands(example.code):
        argv = shlex.split(command)
        argv = [sys.executable, "-m", "manual_backprop", *argv[1:]] if argv[0] == "manual-backprop" else argv
        done = _run(argv, scratch)
        if not matches(shown, done.stdout.splitlines()):
            pytest.fail("\n" + diff(shown, done.stdout.splitlines(), "page") + done.stderr[-2000:],
                        pytrace=False)
