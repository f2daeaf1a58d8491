"""The house's rules, checked: subpackages that are the architecture, every module listed in the layout of
docs/development.md in import order, imports only downward (between subpackages and within them), the
oracle independent of manual_backprop, each module short and saying its one job first."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "manual_backprop"
# Top to bottom: a subpackage may import those below it, never those above; "" is the package's root.
LAYERS = ("cli", "grading", "checks", "fd", "compare", "maths", "")
DEVELOPMENT = (ROOT / "docs" / "development.md").read_text()
LAYOUT = re.search(r"## Layout\n.*?```\n(.*?)```", DEVELOPMENT, re.S).group(1)
ORDER = [path[:-3].replace("/", ".") for path in re.findall(r"^  ([\w/]+\.py) ", LAYOUT, re.M)]
MODULES = sorted(".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py")
                 if p.stem not in ("__init__", "__main__"))
PACKAGES = sorted(".".join(p.parent.relative_to(PACKAGE).parts) for p in PACKAGE.rglob("__init__.py")
                  if p.parent != PACKAGE)


def _path(module: str) -> Path:
    return PACKAGE.joinpath(*module.split(".")).with_suffix(".py")


def _layer(module: str) -> str:
    return module.split(".")[0] if "." in module else ""


def imported(module: str) -> set[str]:
    """The modules of manual_backprop that ``module`` imports (relative imports resolved)."""
    here = module.split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(_path(module).read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = here[: len(here) - node.level + 1] + (node.module.split(".") if node.module else [])
        elif node.module and node.module.startswith("manual_backprop"):
            base = node.module.split(".")[1:]
        else:
            continue
        dotted = ".".join(base)
        for alias in node.names:  # ``from ..fd import finite_diff`` imports a module by name
            candidate = f"{dotted}.{alias.name}" if dotted else alias.name
            names.add(candidate if candidate in MODULES else dotted)
    return {name for name in names if name in MODULES}


def test_every_module_is_listed_once_in_the_layout():
    assert sorted(ORDER) == MODULES
    assert len(ORDER) == len(set(ORDER))


def test_the_layout_lists_the_subpackages_top_down():
    layers = [LAYERS.index(_layer(module)) for module in ORDER]
    assert layers == sorted(layers), "cli, grading, checks, fd, compare, maths, then the root, in order"


@pytest.mark.parametrize("module", MODULES)
def test_a_module_imports_only_the_modules_below_it(module):
    below = set(ORDER[ORDER.index(module) + 1:])
    upward = imported(module) - below
    assert not upward, f"{module} imports {sorted(upward)}, listed above it in docs/development.md"
    higher = [name for name in imported(module) if LAYERS.index(_layer(name)) < LAYERS.index(_layer(module))]
    assert not higher, f"{module} imports {higher} from a subpackage above its own"


@pytest.mark.parametrize("package", PACKAGES)
def test_a_subpackage_says_its_job_and_what_it_may_import(package):
    source = (PACKAGE.joinpath(*package.split(".")) / "__init__.py").read_text()
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring and docstring.splitlines()[0].strip(), f"{package} has no one-line docstring"
    assert "Imports" in docstring, f"{package}'s docstring says what it may import"


def test_the_oracle_imports_nothing_of_manual_backprop():
    for path in (SRC / "oracle").glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0]
        modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not any(name.startswith("manual_backprop") for name in modules), path.name


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_a_module_is_short_and_says_its_job_first(path):
    source = path.read_text()
    assert len(source.splitlines()) <= 400, f"{path.name}: one job per module, short enough to read at once"
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring and docstring.splitlines()[0].strip(), f"{path.name} has no one-line docstring"


def test_the_root_holds_few_modules_and_the_tests_mirror_the_subpackages():
    assert len(list(PACKAGE.glob("*.py"))) <= 12
    folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert {layer for layer in LAYERS if layer} <= folders
