"""Smoke test of the benchmark harness: ``--quick`` on tiny sizes writes a valid JSON, a table and plots.

No time is asserted here (timings live in benchmarks/RESULTS.md); only that the harness runs end to end.
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
SCRIPT = ROOT / "benchmarks" / "bench_gradients.py"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


def test_writes_valid_json_with_every_method(quick_run):
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    assert results["quick"] is True
    assert results["machine"]["cores"] >= 1 and results["machine"]["numpy"]
    notebook = results["cases"]["notebook"]
    assert notebook["params"] == 187  # K=5, D=6, D_i=D_o=1: the notebook's network
    for method in results["methods"]:
        entry = notebook["methods"][method]
        assert "median_s" in entry or "skipped" in entry or "pending" in str(entry), method
    for method in ("manual", "jax_jit", "fd_forward", "matmul_bound"):
        entry = notebook["methods"][method]
        assert entry["median_s"] > 0 and entry["repeats"] >= 7
        assert entry["min_s"] <= entry["median_s"] <= entry["max_s"]
    assert set(results["ratios"]["notebook"]) >= {"manual_over_jax_jit", "manual_over_bound"}
    for sweep in results["accuracy"]:
        assert len(sweep["steps"]) == len(sweep["error"]["forward"]) == len(sweep["error"]["central"])
        assert all(e >= 0 for e in sweep["error"]["central"])


def test_writes_markdown_and_nonempty_plots(quick_run):
    out, done = quick_run
    table = (out / "results.md").read_text()
    assert "| notebook | 187 |" in table and table in done.stdout
    for name in ("time_vs_params.png", "notebook_methods.png", "fd_error_vs_step.png"):
        png = out / name
        assert png.exists() and png.stat().st_size > 1000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
