"""Smoke test of the derivatives benchmark: ``--quick`` writes a JSON with every method, a table and a plot.

No time is asserted (timings live in benchmarks/RESULTS.md): only that the harness runs end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("threadpoolctl")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_derivatives.py"


def test_quick_run_writes_json_table_and_plot(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "derivatives.json").read_text())
    assert results["quick"] is True and set(results["cases"]) == {"notebook", "D8xN4"}
    notebook = results["cases"]["notebook"]
    assert notebook["params"] == 187
    for derivative in ("jvp", "hvp", "ggn", "per_example", "input"):
        for variant in ("manual", "jax_jit", "jax_eager"):
            entry = notebook["methods"][f"{derivative}/{variant}"]
            assert entry["median_s"] > 0 and entry["repeats"] >= 7
    assert len(notebook["goals"]) == 4 and all(isinstance(g["met"], bool) for g in notebook["goals"])
    table = (tmp_path / "derivatives.md").read_text()
    assert "| hvp |" in table and table in done.stdout
    png = tmp_path / "derivatives.png"
    assert png.stat().st_size > 1000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
