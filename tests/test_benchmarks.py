"""Smoke test of the benchmark harness: ``--quick`` on tiny sizes writes a valid JSON, a table and plots.

No time is asserted here (timings live in benchmarks/RESULTS.md); only that the harness runs end to end,
into a temporary folder (never over the committed benchmarks/results).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
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


def test_cold_processes_import_only_what_their_method_needs(quick_run):
    out, _ = quick_run
    cold = json.loads((out / "results.json").read_text())["cases"]["notebook"]["cold"]
    for method in ("manual", "jax_jit"):
        assert cold[method]["median_s"] > 0 and cold[method]["repeats"] >= 7, method
        assert cold[method]["page_faults_per_call"] >= 0
        assert cold[method]["imported"]["matplotlib"] is False
    assert cold["manual"]["imported"] == {"jax": False, "torch": False, "manual_backprop": True,
                                          "matplotlib": False}
    assert cold["jax_jit"]["imported"]["manual_backprop"] is False  # the oracle stands alone
    ratios = json.loads((out / "results.json").read_text())["ratios"]["notebook"]
    assert {"cold_manual_over_jax_jit", "manual_cold_over_warm"} <= set(ratios)
    assert "| notebook |" in (out / "results.md").read_text().split("## Cold process")[1]


def test_records_the_kernel_and_the_environment_that_steers_it(quick_run):
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    machine = results["machine"]
    assert all("architecture" in blas for blas in machine["blas"])
    assert all(k.startswith(("OPENBLAS_", "MALLOC_", "OMP_NUM_THREADS", "XLA_FLAGS")) for k in machine["env"])
    assert machine["libc"] is not None and results["wall_s"] > 0
    assert f"Duration of the run: {results['wall_s']:.0f} s" in (out / "results.md").read_text()


def test_torch_is_a_peer_when_installed_and_a_note_when_not(quick_run):
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    entry = results["cases"]["notebook"]["methods"]["torch_eager"]
    if importlib.util.find_spec("torch") is None:
        assert entry == {"skipped": "skipped: torch is not installed (pip install '.[peers]')"}
        assert "torch is not installed (pip install '.[peers]')" in (out / "results.md").read_text()
        assert "torch_eager" not in results["cases"]["notebook"]["cold"]
    else:
        assert entry["median_s"] > 0
        assert results["cases"]["notebook"]["cold"]["torch_eager"]["imported"]["jax"] is False


def test_writes_to_the_ignored_bench_out_by_default(monkeypatch):
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0 and "bench-out/" in done.stdout
    assert "/bench-out/" in (ROOT / ".gitignore").read_text().splitlines()
    spec = importlib.util.spec_from_file_location("bench_gradients", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_gradients", bench)  # dataclasses look their module up there
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts benchmarks/ first; undo it after
    spec.loader.exec_module(bench)
    assert bench.parse_args([]).out == ROOT / "bench-out"


SMALL = ROOT / "benchmarks" / "bench_small_network.py"


def test_small_network_side_by_side_quick_run(tmp_path):
    """``bench_small_network.py --quick``: every method timed, the goals judged, today's forward differences
    equal to 0.1's bit for bit (the speed-up changed no number). No time is asserted."""
    done = subprocess.run([sys.executable, str(SMALL), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "small_network.json").read_text())
    assert results["quick"] is True and results["machine"]["load_average_at_start"] is not None
    assert set(results["timings"]) == {"notebook_cell", "fd_forward", "fd_forward_v0_1", "fd_notebook_step",
                                       "fd_notebook_step_v0_1", "three_way_check"}
    for name, entry in results["timings"].items():
        assert entry["median_s"] > 0 and entry["repeats"] >= 3, name
    assert len(results["goals"]) == 6 and all(isinstance(goal["met"], bool) for goal in results["goals"])
    assert results["same_bits_as_v0_1"] == {"fd_forward": True, "fd_notebook_step": True}
    table = (tmp_path / "small_network.md").read_text()
    assert "| three_way_check |" in table and table in done.stdout


def _frozen_copy():
    """(the v0_1 package, its modules as git shows them at the pinned commit, or None: no git or history)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import v0_1
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    if shutil.which("git") is None:
        return v0_1, None
    shown = [subprocess.run(["git", "show", f"{v0_1.COMMIT}:src/manual_backprop/{module}.py"],
                            capture_output=True, cwd=ROOT) for module in v0_1.MODULES]  # fmt: skip
    return v0_1, None if any(s.returncode for s in shown) else [s.stdout for s in shown]


FROZEN, RELEASED = _frozen_copy()


@pytest.mark.skipif(RELEASED is None, reason="no git, or the pinned commit is not in this clone's history")
def test_the_frozen_0_1_copy_is_that_release_byte_for_byte():
    """benchmarks/v0_1 holds 0.1.0's modules as they were at the pinned commit (where history is there)."""
    for module, released in zip(FROZEN.MODULES, RELEASED, strict=True):
        assert (ROOT / "benchmarks" / "v0_1" / f"{module}.py").read_bytes() == released, module
