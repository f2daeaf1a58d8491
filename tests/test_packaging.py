"""Packaging: one version everywhere, the declared licence and its file, the changelog, typing markers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import manual_backprop
import oracle

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text()


def _pyproject_version() -> str:
    return re.search(r'^version = "([^"]+)"$', PYPROJECT, re.M).group(1)


def test_one_version_for_both_packages_and_the_command_line():
    version = _pyproject_version()
    assert manual_backprop.__version__ == version
    assert oracle.__version__ == version
    done = subprocess.run([sys.executable, "-m", "manual_backprop", "--version"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"manual-backprop {version}\n"


def test_the_version_is_written_only_in_pyproject():
    sources = [p for p in (ROOT / "src").rglob("*.py")]
    written = [p for p in sources if re.search(r'__version__\s*=\s*["\']\d', p.read_text())]
    assert written == []


def test_licence_is_the_spdx_form_with_a_matching_file():
    assert re.search(r'^license = "MIT"$', PYPROJECT, re.M)
    assert "License ::" not in PYPROJECT  # the classifier is deprecated alongside the SPDX expression
    assert re.search(r'"setuptools>=(\d+)', PYPROJECT) and int(
        re.search(r'"setuptools>=(\d+)', PYPROJECT).group(1)) >= 77
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License\n")
    assert "Copyright (c) 2026 the manual-backprop developers" in licence


def test_changelog_starts_with_this_release():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)
    assert releases and releases[0] == _pyproject_version()


def test_both_packages_are_typed_and_ship_the_marker():
    for package in ("manual_backprop", "oracle"):
        assert (ROOT / "src" / package / "py.typed").is_file()
        assert re.search(rf'^{package} = \[.*"py\.typed".*\]$', PYPROJECT, re.M), package


def test_importing_the_package_or_its_command_line_is_cheap():
    # The flat API is imported on first use: the command line starts (and answers Ctrl-C) before NumPy,
    # JAX or any check is loaded, and ``import manual_backprop`` loads none of them either.
    import subprocess
    import sys

    heavy = "('numpy', 'jax', 'manual_backprop.maths.backprop')"
    probe = ("import sys, manual_backprop, manual_backprop.cli.command; "
             f"print(sorted(m for m in {heavy} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    from manual_backprop import check_backward, udl_network  # and the names resolve on first use

    assert check_backward.__module__ == "manual_backprop.grading.backward" and callable(udl_network)
