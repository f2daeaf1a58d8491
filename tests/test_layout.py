"""The house's rules, checked: every module listed in the README's Layout, imports only downward (no
circles), the oracle independent of manual_backprop, each module short and saying its one job first."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "manual_backprop"
LAYOUT = re.search(r"## Layout\n.*?```\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
ORDER = re.findall(r"^  (\w+)\.py ", LAYOUT, re.M)  # top to bottom: each may import only those below it
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))


def _imports(path: Path, package_level: int = 1) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == package_level:
            names.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_every_module_is_listed_once_in_the_readme_layout():
    assert sorted(ORDER) == MODULES
    assert len(ORDER) == len(set(ORDER))


@pytest.mark.parametrize("module", MODULES)
def test_a_module_imports_only_the_modules_below_it(module):
    below = set(ORDER[ORDER.index(module) + 1:])
    upward = (_imports(PACKAGE / f"{module}.py") & set(MODULES)) - below
    assert not upward, f"{module}.py imports {sorted(upward)}, listed above it in the README's Layout"


def test_the_oracle_imports_nothing_of_manual_backprop():
    for path in (ROOT / "src" / "oracle").glob("*.py"):
        assert not any(name.startswith("manual_backprop") for name in _imports(path, 0)), path.name


@pytest.mark.parametrize("path", sorted((ROOT / "src").glob("*/*.py")), ids=lambda p: p.name)
def test_a_module_is_short_and_says_its_job_first(path):
    source = path.read_text()
    assert len(source.splitlines()) <= 420, f"{path.name}: one job per module, short enough to read at once"
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring and docstring.splitlines()[0].strip(), f"{path.name} has no one-line docstring"
