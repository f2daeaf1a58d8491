"""Typed imports: mypy, run on a user's three-line script, reports a misuse and passes a right use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy")

SRC = Path(__file__).resolve().parents[1] / "src"

HEADER = ("import numpy as np\nfrom manual_backprop import manual_gradients, udl_network\n"
          "W, B = udl_network()\n")


def mypy(tmp_path: Path, source: str, cache: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "user.py"
    script.write_text(HEADER + source)
    # This checkout's packages (as an installed one: errors inside them are not the user's to see).
    environment = dict(os.environ, MYPYPATH=str(SRC))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir", str(cache),
         "--no-color-output", str(script)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env=environment,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cache(request, tmp_path_factory) -> Path:
    """mypy's cache, kept between runs (the first run analyses NumPy and JAX: some seconds); a fresh one
    where pytest's cache is turned off (``-p no:cacheprovider``)."""
    kept = getattr(request.config, "cache", None)
    return Path(kept.mkdir("mypy")) if kept is not None else tmp_path_factory.mktemp("mypy")


@pytest.mark.parametrize(
    "misuse, message",
    [
        ('grads = manual_gradients(W, B, np.ones((1, 1)), np.ones((1, 1)), activaton="relu")\n',
         'Unexpected keyword argument "activaton" for "manual_gradients"'),
        ("grads = manual_gradients(W, B)\n", 'Missing positional arguments "net_input", "y"'),
    ],
)
def test_mypy_reports_a_misuse(tmp_path, cache, misuse, message):
    done = mypy(tmp_path, misuse, cache)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "user.py:4: error:" in done.stdout and message in done.stdout, done.stdout


def test_mypy_passes_a_right_use(tmp_path, cache):
    right = "dW, dB = manual_gradients(W, B, np.ones((1, 1)), np.ones((1, 1)), activation='tanh')\n"
    done = mypy(tmp_path, right, cache)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Success")

