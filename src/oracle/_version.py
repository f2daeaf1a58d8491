"""The version: one source of truth, ``version`` in pyproject.toml (installed: the package's metadata).

The package's ``__version__`` calls ``version()`` on first access, so that ``import`` does not pay for
``importlib.metadata`` (tens of milliseconds of imports).
"""

from __future__ import annotations

import re
from pathlib import Path


def version() -> str:
    """The version in pyproject.toml, read there in a source checkout (editable or on ``PYTHONPATH``, where
    installed metadata can be stale or another checkout's), else from the installed package's metadata."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        if re.search(r'^name = "manual-backprop"$', text, re.M):
            found = re.search(r'^version = "([^"]+)"$', text, re.M)
            if found:
                return found.group(1)
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("manual-backprop")
    except PackageNotFoundError:  # neither installed nor a checkout: say so rather than guess
        return "0+unknown"
