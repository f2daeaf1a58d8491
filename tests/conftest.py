"""Shared fixtures: one seeded RNG, and a reproducible Hypothesis profile (no example database)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# CI runs the same examples every time: derandomized, no database, no deadline (JAX compiles per shape).
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")

# The tests' shared material (zoo/, published_style, template_generations, the helpers) lives here, beside
# the folders that mirror the package's subpackages: importable from every one of them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

SEED = 20240607


@pytest.fixture
def rng():
    """The one seeded generator of a test: ``np.random.default_rng``, never the legacy global stream."""
    return np.random.default_rng(SEED)


@pytest.fixture
def published(tmp_path):
    """A solved notebook in the published template's style (see ``published_style``)."""
    from published_style import published_cells, write_notebook

    return write_notebook(tmp_path / "7_2_Backpropagation.ipynb", published_cells())
