"""Time and accuracy of every gradient method, on the notebook's network and a grid of larger ones.

    python benchmarks/bench_gradients.py [--quick] [--out DIR] [--methods ...] [--sizes ...] [--no-cold]

Every method goes through the shared signature ``(all_weights, all_biases, net_input, y) -> gradients``
(the matmul-only bound and the notebook's cell aside). Timing: each method is warmed up, then timed in
blocks of ``number`` calls (doubled until a block lasts ``--block`` seconds, as ``timeit`` autorange
does); the methods of one case are timed round-robin, one block each per round, for at least 7 rounds,
so that a burst of machine noise hits every method of the case alike and the ratios stay honest. The
median block (per call) is reported, with the spread (quartiles, min, max) and the page faults per call.

Cold processes: the gradient methods (manual, jitted JAX, PyTorch when installed) are timed again, each in
a fresh process that imports only NumPy and the one library (``cold.py``), as a user's training script
does. There the allocator starts cold: glibc can hand a call's temporaries back to the OS and take them
again, zeroed, on the next call, which the harness's own process (JAX, matplotlib, every other method
loaded) hides. Both settings are reported, with their ratios.

Outputs, in ``--out`` (default: the git-ignored ``bench-out/``; ``--out benchmarks/results`` refreshes the
committed record): ``results.md`` (the Markdown tables, also printed
on stdout), ``results.json`` (every figure, the machine), and PNG plots: time against parameter count
per method (log-log), the notebook network's methods as bars, and the error of forward and central
differences against the JAX gradient as a function of the step (the V of truncation against rounding).
Progress goes to stderr, one line per case.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

STARTED = time.perf_counter()  # the whole run's duration, imports included, goes into the JSON
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import notebook_baseline  # noqa: E402  (kept beside this script, never in the library)
from manual_backprop import (  # noqa: E402
    compute_network_output,
    default_step,
    manual_gradients,
    numerical_gradients,
    random_network,
    udl_network,
)
from manual_backprop.fd.fd_limits import fd_cost  # noqa: E402  (the cost model the check itself uses)
from timing import time_round_robin  # noqa: E402  (shared with cold.py)

NOTEBOOK_STEP = 1e-6  # the notebook's delta_fd
FD_MAX_MACS = 1e10  # full finite differences only below this many multiply-adds (seconds, not minutes)
LOOP_MAX_EVALS = 5e5  # the notebook's loop only below this many layer evaluations (two passes per parameter)
ACCURACY_STEPS = tuple(10.0 ** -e for e in range(2, 13))

METHODS = {
    "manual": "manual_gradients (forward + backward by hand)",
    "jax_jit": "oracle.jax_gradients (jax.grad, jit, warm)",
    "jax_eager": "jax.grad without jit (jax.disable_jit)",
    "fd_central": "numerical_gradients, central, default step",
    "fd_forward": "numerical_gradients, forward, step 1e-6 (the notebook's)",
    "notebook_cell": "the notebook's finite-difference cell as written (prints to a null sink)",
    "directional": "directional_check of the manual gradient (3 directions)",
    "forward_pass": "compute_network_output alone",
    "matmul_bound": "lower bound: only backprop's matrix products, preallocated",
    "torch_eager": "peer: PyTorch autograd, eager, CPU, float64 (optional: pip install '.[peers]')",
}
COLD_METHODS = ("manual", "jax_jit", "torch_eager")  # also timed in a fresh process each (cold.py)
TORCH_MISSING = "skipped: torch is not installed (pip install '.[peers]')"


# ------------------------------------------------------------------------------------------------ cases


@dataclass
class Case:
    name: str
    K: int
    D: int
    N: int
    D_i: int
    D_o: int
    all_weights: list = field(repr=False)
    all_biases: list = field(repr=False)
    net_input: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)

    @property
    def params(self) -> int:
        return sum(w.size + b.size for w, b in zip(self.all_weights, self.all_biases, strict=False))

    @property
    def args(self):
        return self.all_weights, self.all_biases, self.net_input, self.y


def notebook_case(K: int = 5, name: str = "notebook") -> Case:
    all_weights, all_biases = udl_network(K=K)
    return Case(name, K, 6, 1, 1, 1, all_weights, all_biases, np.array([[1.2]]), np.array([[20.0]]))


def grid_case(D: int, N: int, K: int = 5, seed: int = 0) -> Case:
    rng = np.random.default_rng(seed)
    all_weights, all_biases = random_network([D] * (K + 2), rng=rng)
    net_input = rng.standard_normal((D, N))
    y = rng.standard_normal((D, N))
    return Case(f"D{D}xN{N}", K, D, N, D, D, all_weights, all_biases, net_input, y)


def make_cases(quick: bool) -> list[Case]:
    if quick:
        return [notebook_case(), grid_case(16, 1), grid_case(16, 8)]
    cases = [notebook_case(), notebook_case(K=20, name="K20")]
    cases += [grid_case(D, N) for D in (64, 256, 1024) for N in (1, 256, 1024)]
    return cases


def loop_evaluations(case: Case) -> float:
    return 2.0 * case.params * len(case.all_weights)


# ---------------------------------------------------------------------------------------------- methods


def _jax_eager(all_weights, all_biases, net_input, y):
    import jax

    from oracle import jax_gradients

    with jax.disable_jit():
        return jax_gradients(all_weights, all_biases, net_input, y)


def _matmul_bound(case: Case):
    """Only the matrix products backprop needs, preallocated: W h, then W^T delta and delta h^T."""
    weights = case.all_weights
    outputs = [np.empty((w.shape[0], case.N)) for w in weights]
    dl_dweights = [np.empty_like(w) for w in weights]
    deltas = [np.empty((w.shape[1], case.N)) for w in weights]
    inputs = [case.net_input] + outputs[:-1]

    def bound():
        h = case.net_input
        for omega, out in zip(weights, outputs, strict=False):
            h = np.matmul(omega, h, out=out)
        delta = outputs[-1]
        for layer in reversed(range(len(weights))):
            np.matmul(delta, inputs[layer].T, out=dl_dweights[layer])
            if layer > 0:
                delta = np.matmul(weights[layer].T, delta, out=deltas[layer])

    return bound


def _directional(case: Case):
    from manual_backprop.fd.directional import directional_check

    gradients = manual_gradients(*case.args)
    return lambda: directional_check(*case.args, gradients)


def _notebook_cell(case: Case):
    nb = notebook_baseline
    _, all_f, all_h = nb.compute_network_output(case.net_input, case.all_weights, case.all_biases)
    backprop = nb.backward_pass(case.all_weights, case.all_biases, all_f, all_h, case.y)

    def cell():
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            nb.finite_difference_cell(*case.args, *backprop)

    return cell


def method_callable(method: str, case: Case):
    """A zero-argument callable timing ``method`` on ``case``, or a string saying why it is skipped."""
    args = case.args
    if method == "manual":
        return lambda: manual_gradients(*args)
    if method == "jax_jit":
        from oracle import jax_gradients

        return lambda: jax_gradients(*args)
    if method == "jax_eager":
        return lambda: _jax_eager(*args)
    if method in ("fd_central", "fd_forward"):
        central = method == "fd_central"
        macs = fd_cost(case.all_weights, case.N, "central" if central else "forward")
        if macs > FD_MAX_MACS:
            return f"skipped: finite differences beyond {FD_MAX_MACS:.0e} multiply-adds (would take minutes)"
        if central:
            return lambda: numerical_gradients(*args)
        return lambda: numerical_gradients(*args, method="forward", step=NOTEBOOK_STEP)
    if method == "notebook_cell":
        if case.N != 1:
            return "n/a: the notebook's cell is for one example"
        evaluations = loop_evaluations(case)
        if evaluations > LOOP_MAX_EVALS:
            return (f"skipped: the notebook's loop beyond {LOOP_MAX_EVALS:.0e} layer evaluations "
                    "(would take minutes)")
        return _notebook_cell(case)
    if method == "directional":
        try:
            return _directional(case)
        except ImportError:
            return "pending: manual_backprop.fd.directional not available"
    if method == "forward_pass":
        return lambda: compute_network_output(case.net_input, case.all_weights, case.all_biases)
    if method == "matmul_bound":
        return _matmul_bound(case)
    if method == "torch_eager":
        try:
            from peers import torch_gradients
        except ImportError:
            return TORCH_MISSING
        return lambda: torch_gradients(*args)
    raise ValueError(f"unknown method {method!r}")


# ----------------------------------------------------------------------------------------------- timing


def peak_memory(fn) -> int:
    """Peak bytes NumPy allocated during one call (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ----------------------------------------------------------------------------------------- cold process


def cold_timings(case: Case, methods, block: float, repeats: int, budget: float,
                 blas_threads: int | None) -> dict:
    """Each method timed in a fresh process importing only NumPy and its one library (``cold.py``)."""
    env = dict(os.environ)
    if blas_threads is not None:  # the child cannot be limited from here: set it before its BLAS starts
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(blas_threads)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        arrays = {f"W{k}": w for k, w in enumerate(case.all_weights)}
        arrays.update({f"B{k}": b for k, b in enumerate(case.all_biases)}, x=case.net_input, y=case.y)
        path = Path(folder) / "case.npz"
        np.savez(path, **arrays)
        for method in methods:
            command = [sys.executable, str(HERE / "cold.py"), method, str(path), "--block", str(block),
                       "--repeats", str(repeats), "--budget", str(budget)]
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                out[method] = {"skipped": "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]}
            else:
                out[method] = json.loads(done.stdout)
    return out


# --------------------------------------------------------------------------------------------- accuracy


def accuracy_sweep(case: Case, activation: str = "relu", steps=ACCURACY_STEPS) -> dict:
    """Error of forward and central differences against jax.grad, as a function of an absolute step h.

    With ReLU and least squares the loss is piecewise quadratic in each parameter, so a central difference
    has no truncation error at all (only rounding, and kinks at large h); a smooth activation shows its V.
    """
    from oracle import jax_gradients

    kw = {"activation": activation}
    exact_w, exact_b = jax_gradients(*case.args, **kw)
    exact = np.concatenate([g.ravel() for g in exact_w + exact_b])
    scale = float(np.max(np.abs(exact))) or 1.0
    curves = {}
    for method in ("forward", "central"):
        errors = []
        for h in steps:
            fd_w, fd_b = numerical_gradients(*case.args, method=method, step=h, **kw)
            fd = np.concatenate([g.ravel() for g in fd_w + fd_b])
            errors.append(float(np.max(np.abs(fd - exact)) / scale))
        curves[method] = errors
    return {
        "case": case.name,
        "activation": activation,
        "params": case.params,
        "steps": list(steps),
        "error": curves,
        "metric": "max |fd - jax| / max |jax| over all entries",
        "default_steps": {m: default_step(np.float64, m) for m in ("forward", "central")},
        "notebook_step": NOTEBOOK_STEP,
    }


# ---------------------------------------------------------------------------------------- check timings


def check_timings(quick: bool) -> dict:
    """three_way_check of the notebook network (warm), and the cold `manual-backprop check` process."""
    out = {}
    try:
        from manual_backprop.checks.three_way import three_way_check
    except ImportError:
        return {"pending": "manual_backprop.checks.three_way not available"}
    case = notebook_case()
    stats = time_round_robin({"three_way_check": lambda: three_way_check(*case.args)},
                             block=0.02 if quick else 0.05, min_repeats=7, budget=0.5 if quick else 2.0)
    out["three_way_check_warm"] = stats["three_way_check"]
    if quick:
        return out
    # Not the console script beside the interpreter: in a shared environment it can be another checkout's.
    command = [sys.executable, "-m", "manual_backprop", "check"]
    commands = {"import_jax": [sys.executable, "-c", "import jax"], "cli_check": command}
    times = {name: [] for name in commands}
    for _ in range(5):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        out[name] = {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values),
                     "repeats": len(values), "command": " ".join(commands[name])}
    out["cli_over_import_jax"] = out["cli_check"]["median_s"] / out["import_jax"]["median_s"]
    return out


# ---------------------------------------------------------------------------------------------- machine


def machine() -> dict:
    import jax
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        import torch

        torch_info = {"version": torch.__version__, "threads": torch.get_num_threads()}
    except ImportError:
        torch_info = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "libc": " ".join(platform.libc_ver()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jax_devices": [str(d) for d in jax.devices()],
        "torch": torch_info,
        # "architecture" is the kernel OpenBLAS chose (SkylakeX, Haswell, ...): it moves the ratios
        "blas": [{k: info.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer",
                                            "architecture")} for info in threadpool_info()],
        # what steers the kernel and the allocator, exactly as set for this run ({} when none is)
        "env": {k: v for k, v in sorted(os.environ.items())
                if k.startswith(("OPENBLAS_", "MALLOC_", "OMP_NUM_THREADS", "XLA_FLAGS"))},
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# ----------------------------------------------------------------------------------------------- report


def fmt_time(seconds) -> str:
    if seconds is None:
        return "-"
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= factor:
            return f"{seconds / factor:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _median(results: dict, case: str, method: str):
    entry = results["cases"].get(case, {}).get("methods", {}).get(method, {})
    return entry.get("median_s")


def ratios(results: dict) -> dict:
    """Per case: manual / jax_jit, manual / matmul_bound, notebook cell / fd_forward."""
    out = {}
    for case in results["cases"]:
        row = {}
        manual, jit = _median(results, case, "manual"), _median(results, case, "jax_jit")
        bound, cell = _median(results, case, "matmul_bound"), _median(results, case, "notebook_cell")
        fd_forward = _median(results, case, "fd_forward")
        directional = _median(results, case, "directional")
        if manual and jit:
            row["manual_over_jax_jit"] = manual / jit
        if manual and bound:
            row["manual_over_bound"] = manual / bound
        if cell and fd_forward:
            row["cell_over_fd_forward"] = cell / fd_forward
        if manual and directional:
            row["directional_in_manual_gradients"] = directional / manual
        torch_ = _median(results, case, "torch_eager")
        if manual and torch_:
            row["manual_over_torch"] = manual / torch_
        cold = results["cases"][case].get("cold", {})
        cold_manual, cold_jit, cold_torch = (cold.get(m, {}).get("median_s") for m in COLD_METHODS)
        if cold_manual and cold_jit:
            row["cold_manual_over_jax_jit"] = cold_manual / cold_jit
        if cold_manual and cold_torch:
            row["cold_manual_over_torch"] = cold_manual / cold_torch
        if cold_manual and manual:
            row["manual_cold_over_warm"] = cold_manual / manual
        out[case] = row
    return out


def _cell(entry: dict, key: str = "median_s") -> str:
    """A time (or a page-fault count), else why there is none ("skipped", "failed", "-")."""
    if key not in entry:
        return entry.get("skipped", "-").split(":")[0]
    return fmt_time(entry[key]) if key.endswith("_s") else f"{entry[key]:.0f}"


def _ratio(row: dict, key: str) -> str:
    return f"{row[key]:.2f}" if key in row else "-"


def markdown(results: dict) -> str:
    methods = results["methods"]
    lines = ["## Time per call (median; spread = interquartile range / median)", ""]
    lines.append("| case | params | " + " | ".join(methods) + " |")
    lines.append("|---|---:|" + "---:|" * len(methods))
    for name, case in results["cases"].items():
        cells = []
        for m in methods:
            entry = case["methods"].get(m, {})
            if "median_s" in entry:
                cells.append(f"{fmt_time(entry['median_s'])} ±{100 * entry['spread']:.0f}%")
            else:
                cells.append(entry.get("skipped", "-").split(":")[0])
        lines.append(f"| {name} | {case['params']:,} | " + " | ".join(cells) + " |")
    reasons = sorted({entry["skipped"].split(": ", 1)[1] for case in results["cases"].values()
                      for entry in case["methods"].values() if ": " in entry.get("skipped", "")})
    if reasons:
        lines += ["", "Not timed: " + "; ".join(reasons) + "."]
    lines += ["", "## Ratios (one run)", "",
              "| case | manual / jax_jit | manual / matmul bound | notebook cell / fd_forward | "
              "directional / manual |", "|---|---:|---:|---:|---:|"]
    for name, row in results["ratios"].items():
        cells = [row.get(k) for k in ("manual_over_jax_jit", "manual_over_bound", "cell_over_fd_forward",
                                      "directional_in_manual_gradients")]
        lines.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:.2f}" for c in cells) + " |")
    if any("cold" in case for case in results["cases"].values()):
        lines += ["", "## Cold process: each method alone in a fresh process, against the warm harness", "",
                  "Time per call, median. *warm*: in the harness's process (every method and JAX loaded); "
                  "*cold*: a fresh process that imports NumPy and the one library (`cold.py`), as a "
                  "training script does. Faults: minor page faults per call.", "",
                  "| case | manual warm | manual cold | cold / warm | faults warm | faults cold | "
                  "jax_jit cold | torch cold | manual / jax_jit warm | manual / jax_jit cold | "
                  "manual / torch warm | manual / torch cold |",
                  "|---|" + "---:|" * 11]
        for name, case in results["cases"].items():
            cold, row = case.get("cold", {}), results["ratios"].get(name, {})
            manual_warm, manual_cold = case["methods"].get("manual", {}), cold.get("manual", {})
            cells = [_cell(manual_warm), _cell(manual_cold), _ratio(row, "manual_cold_over_warm"),
                     _cell(manual_warm, "page_faults_per_call"), _cell(manual_cold, "page_faults_per_call"),
                     _cell(cold.get("jax_jit", {})), _cell(cold.get("torch_eager", {}))]
            cells += [_ratio(row, key) for key in ("manual_over_jax_jit", "cold_manual_over_jax_jit",
                                                    "manual_over_torch", "cold_manual_over_torch")]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    checks = results.get("checks", {})
    if checks:
        lines += ["", "## Checks", ""]
        if "pending" in checks:
            lines.append(f"- {checks['pending']}")
        if "three_way_check_warm" in checks:
            lines.append(f"- `three_way_check`, notebook network, warm: "
                         f"{fmt_time(checks['three_way_check_warm']['median_s'])}")
        if "cli_check" in checks:
            lines.append(f"- `{checks['cli_check']['command']}`, cold process: "
                         f"{fmt_time(checks['cli_check']['median_s'])}; `python -c \"import jax\"`: "
                         f"{fmt_time(checks['import_jax']['median_s'])}; ratio "
                         f"{checks['cli_over_import_jax']:.2f}")
    memory = {name: case["fd_peak_bytes"] for name, case in results["cases"].items()
              if case.get("fd_peak_bytes")}
    if memory:
        lines += ["", "## Peak NumPy memory of one fd_forward call (tracemalloc)", ""]
        lines += [f"- {name}: {bytes_ / 2**20:.2f} MiB" for name, bytes_ in memory.items()]
    for sweep in results.get("accuracy", []):
        lines += ["", f"## Finite-difference error against jax.grad, {sweep['case']}, {sweep['activation']} "
                  f"({sweep['metric']})", "",
                  "| h | " + " | ".join(f"{h:.0e}" for h in sweep["steps"]) + " |",
                  "|---|" + "---:|" * len(sweep["steps"])]
        for method, errors in sweep["error"].items():
            lines.append(f"| {method} | " + " | ".join(f"{e:.1e}" for e in errors) + " |")
    m = results["machine"]
    blas = ", ".join(f"{b['internal_api']} {b['version']} ({b.get('architecture') or '?'} kernels, "
                     f"{b['num_threads']} threads)" for b in m["blas"])
    torch_ = f", PyTorch {m['torch']['version']}" if m.get("torch") else ""
    env = ", ".join(f"{k}={v}" for k, v in m.get("env", {}).items()) or "none set"
    load = " to ".join(f"{m[k][0]:.1f}" for k in ("load_average_at_start", "load_average_at_end") if m.get(k))
    lines += ["", f"Machine: {m['cpu']}, {m['cores']} cores; {blas}; NumPy {m['numpy']}, JAX {m['jax']}"
              f"{torch_}, Python {m['python']}, {m.get('libc', '')}; variables: {env}; "
              f"load average (1 min) {load or '?'}."]
    if "wall_s" in results:
        lines.append(f"Duration of the run: {results['wall_s']:.0f} s (`{results['command']}`).")
    return "\n".join(lines) + "\n"


def plots(results: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    def _legend_outside(fig, axes) -> None:
        """One legend for all panels, right of the last one: a legend inside would cover the curves."""
        handles = {}
        for ax in axes:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(label, handle)
        fig.tight_layout()
        axes[-1].legend(handles.values(), handles.keys(), fontsize=7, loc="center left",
                        bbox_to_anchor=(1.02, 0.5), frameon=False)

    def _save(fig, path: Path) -> str:
        fig.savefig(path, dpi=80, bbox_inches="tight")  # "tight": the legends outside the axes stay in
        plt.close(fig)
        return path.name

    written = []
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(results["methods"])}
    batches = sorted({case["N"] for case in results["cases"].values()})
    fig, axes = plt.subplots(1, len(batches), figsize=(4.2 * len(batches), 3.6), squeeze=False, sharey=True)
    for ax, n in zip(axes[0], batches, strict=False):
        chosen = {k: v for k, v in results["cases"].items() if v["N"] == n}
        for method in results["methods"]:
            points = sorted((c["params"], c["methods"][method]["median_s"]) for c in chosen.values()
                            if "median_s" in c["methods"].get(method, {}))
            if points:
                ax.plot(*zip(*points, strict=False), marker="o", ms=3, label=method, color=colors[method])
        ax.set(xscale="log", yscale="log", xlabel="parameters", title=f"N = {n}")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels collide
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel("seconds per call")
    _legend_outside(fig, axes[0])
    written.append(_save(fig, out / "time_vs_params.png"))

    notebook = results["cases"].get("notebook")
    if notebook:
        names = [m for m in results["methods"] if "median_s" in notebook["methods"].get(m, {})]
        values = [notebook["methods"][m]["median_s"] * 1e6 for m in names]
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.barh(names, values)
        ax.set(xscale="log", xlabel="microseconds per call", title="the notebook's network (K=5, D=6, N=1)")
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.3g}", va="center", fontsize=7)
        ax.invert_yaxis()
        fig.tight_layout()
        written.append(_save(fig, out / "notebook_methods.png"))

    sweeps = results.get("accuracy", [])
    if sweeps:
        fig, axes = plt.subplots(1, len(sweeps), figsize=(4.0 * len(sweeps), 3.4), squeeze=False)
        for ax, sweep in zip(axes[0], sweeps, strict=False):
            for method, errors in sweep["error"].items():
                line, = ax.plot(sweep["steps"], np.maximum(errors, 1e-17), marker="o", ms=3, label=method)
                ax.axvline(sweep["default_steps"][method], color=line.get_color(), ls=":",
                           label=f"default {method} step")
            ax.axvline(sweep["notebook_step"], color="grey", ls="--", label="notebook step 1e-6")
            ax.set(xscale="log", yscale="log", xlabel="step h", ylabel="max error / max |gradient|",
                   title=f"{sweep['case']}, {sweep['activation']} ({sweep['params']:,} parameters)")
            ax.grid(True, alpha=0.3)
        _legend_outside(fig, axes[0])
        written.append(_save(fig, out / "fd_error_vs_step.png"))
    return written


# ------------------------------------------------------------------------------------------------- main


def run(args) -> dict:
    methods = args.methods or list(METHODS)
    cases = [c for c in make_cases(args.quick) if not args.sizes or c.name in args.sizes]
    block = 0.005 if args.quick else args.block
    budget = 0.05 if args.quick else args.budget
    results = {"command": " ".join(["python", "benchmarks/bench_gradients.py", *sys.argv[1:]]),
               "quick": args.quick, "blas_threads": args.blas_threads,
               "machine": machine(), "methods": methods,
               "method_descriptions": {m: METHODS[m] for m in methods},
               "cases": {}}
    started = time.perf_counter()
    for i, case in enumerate(cases, 1):
        case_start = time.perf_counter()
        callables, entry = {}, {"K": case.K, "D": case.D, "N": case.N, "D_i": case.D_i, "D_o": case.D_o,
                                "params": case.params, "methods": {}}
        for method in methods:
            fn = method_callable(method, case)
            if isinstance(fn, str):
                entry["methods"][method] = {"skipped": fn}
            else:
                callables[method] = fn
        if "fd_forward" in callables:
            entry["fd_peak_bytes"] = peak_memory(callables["fd_forward"])
        for method, stats in time_round_robin(callables, block, args.repeats, budget).items():
            entry["methods"][method] = stats
        cold = [m for m in COLD_METHODS if m in callables and (not args.quick or i == 1)]
        if cold and not args.no_cold:
            entry["cold"] = cold_timings(case, cold, block, args.repeats, budget, args.blas_threads)
        results["cases"][case.name] = entry
        summary = ", ".join(f"{m} {fmt_time(s['median_s'])}" for m, s in entry["methods"].items()
                            if "median_s" in s)
        elapsed = time.perf_counter() - case_start
        print(f"[{i}/{len(cases)}] {case.name} ({case.params:,} params, {elapsed:.1f} s): {summary}",
              file=sys.stderr, flush=True)
    results["ratios"] = ratios(results)
    if not args.no_accuracy:
        small = grid_case(16 if args.quick else 64, 1)
        results["accuracy"] = [accuracy_sweep(notebook_case()), accuracy_sweep(small),
                               accuracy_sweep(small, activation="tanh")]
        print(f"accuracy sweeps done ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    if not args.no_checks:
        results["checks"] = check_timings(args.quick)
        print(f"check timings done ({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    results["total_s"] = time.perf_counter() - started
    return results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and short timings (a smoke test)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "bench-out",
                        help="output folder (bench-out/, git-ignored; benchmarks/results is the committed "
                        "record, refreshed with --out benchmarks/results)")
    parser.add_argument("--methods", nargs="+", choices=tuple(METHODS), help="methods to time (all)")
    parser.add_argument("--sizes", nargs="+", help="case names to run, e.g. notebook K20 D64xN1 (all)")
    parser.add_argument("--repeats", type=int, default=7, help="minimum rounds per case (7)")
    parser.add_argument("--block", type=float, default=0.05, help="seconds per timed block (0.05)")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds of extra rounds per case (1.5)")
    parser.add_argument("--blas-threads", type=int,
                        help="limit every method to this many threads: NumPy's BLAS, PyTorch's intra-op "
                        "pool, XLA's Eigen pool (as is); for a machine shared with other work")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the step sweep")
    parser.add_argument("--from-json", type=Path, help="re-render results.md and the plots from this JSON")
    parser.add_argument("--no-cold", action="store_true",
                        help="skip the fresh-process timings of manual, jax_jit and torch_eager")
    parser.add_argument("--no-checks", action="store_true",
                        help="skip three_way_check and the cold CLI timing")
    args = parser.parse_args(argv)
    if args.repeats < 7:
        parser.error("--repeats must be at least 7")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from threadpoolctl import threadpool_limits

    if args.from_json:  # render the tables and plots again from a saved run, timing nothing
        results = json.loads(args.from_json.read_text())
    else:
        if args.blas_threads is not None:  # before JAX or torch is imported, so that they read it
            os.environ["OMP_NUM_THREADS"] = str(args.blas_threads)
            if args.blas_threads == 1:
                os.environ["XLA_FLAGS"] = " ".join(filter(None, [
                    os.environ.get("XLA_FLAGS"), "--xla_cpu_multi_thread_eigen=false",
                    "intra_op_parallelism_threads=1"]))
        with threadpool_limits(limits=args.blas_threads, user_api="blas"):
            results = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.from_json:
        results["wall_s"] = time.perf_counter() - STARTED  # all of it: imports, every case, the checks
        if hasattr(os, "getloadavg"):
            results["machine"]["load_average_at_end"] = list(os.getloadavg())
    results["plots"] = plots(results, args.out)
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(table)
    print(f"wrote {args.out / 'results.json'}, results.md and {', '.join(results['plots'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
