"""The notebook's network side by side: its own finite-difference cell, our finite differences today and at
0.1, and the three-way check, timed in one process in alternated rounds.

    python benchmarks/bench_small_network.py [--quick] [--out DIR] [--block SECONDS] [--repeats N]

The network is ``udl_network()`` (K = 5, D = 6, D_i = D_o = 1: 187 parameters) at ``net_input`` 1.2 and
``y`` 20, ReLU and least squares, float64. Timed, round-robin (``timing.time_round_robin``: each method
warmed up, blocks calibrated to ``--block`` seconds, one block of each per round, the order rotated every
round, the median per call over at least ``--repeats`` rounds):

- ``notebook_cell``: the notebook's finite-difference cell as written (``notebook_baseline``, its prints to
  a null sink), given the backprop gradients it compares against, as ``bench_gradients.py`` times it;
- ``fd_forward`` / ``fd_forward_v0_1``: ``numerical_gradients(..., method="forward")`` today and in
  manual-backprop 0.1.0 (``benchmarks/v0_1``, a frozen copy of that release's code);
- ``fd_notebook_step`` / ``fd_notebook_step_v0_1``: the same with the notebook's ``step=1e-6``;
- ``fd_central`` / ``fd_central_v0_1``: the default central differences, for reference;
- ``three_way_check``: ``three_way_check(W, B, x, y)`` warm (its JAX program compiled by the warm-up).

The goals of issue 17 are judged on the ratios, each taken within this one run: forward differences no
slower than 0.1's (both steps) and >= 60x faster than the notebook's cell; the three-way check <= 1 ms and
<= 0.07x the cell. Before timing, today's and 0.1's differences are compared bit for bit.

Writes ``small_network.json`` and ``small_network.md`` (also printed) into ``--out`` (default
``bench-out/``, git-ignored). ``--blas-threads`` (default 1) is set before NumPy loads: OpenBLAS's second
thread stalls on a busy machine, and these products are far too small to share.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GOALS = {"cell_over_fd_forward": 60.0, "three_way_over_cell": 0.07, "three_way_s": 1e-3}


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: short blocks, 3 rounds")
    parser.add_argument("--out", default=str(ROOT / "bench-out"), help="folder for the JSON and table")
    parser.add_argument("--block", type=float, default=None, help="seconds per timed block (0.05)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds at least (25)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of rounds at most (60)")
    parser.add_argument("--blas-threads", type=int, default=1, help="OPENBLAS_NUM_THREADS (1)")
    return parser.parse_args(argv)


def callables(np, quick: bool) -> tuple[dict, dict]:
    """The methods to time, as zero-argument callables, and what each one is (for the JSON)."""
    sys.path.insert(0, str(HERE))
    import notebook_baseline as nb
    from manual_backprop import numerical_gradients, three_way_check, udl_network
    from v0_1.finite_diff import numerical_gradients as then  # 0.1.0's, frozen

    weights, biases = udl_network()
    x, y = np.array([[1.2]]), np.array([[20.0]])
    _, all_f, all_h = nb.compute_network_output(x, weights, biases)
    backprop = nb.backward_pass(weights, biases, all_f, all_h, y)

    def cell():
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            nb.finite_difference_cell(weights, biases, x, y, *backprop)

    methods = {"notebook_cell": cell}
    what = {"notebook_cell": "the notebook's finite-difference cell as written (prints to a null sink)"}
    for name, kwargs in (("fd_forward", dict(method="forward")),
                         ("fd_notebook_step", dict(method="forward", step=1e-6)),
                         ("fd_central", dict(method="central"))):  # fmt: skip
        if quick and name == "fd_central":
            continue
        methods[name] = lambda kwargs=kwargs: numerical_gradients(weights, biases, x, y, **kwargs)
        methods[f"{name}_v0_1"] = lambda kwargs=kwargs: then(weights, biases, x, y, **kwargs)
        what[name] = f"numerical_gradients({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}), today"
        what[f"{name}_v0_1"] = "the same in manual-backprop 0.1.0 (benchmarks/v0_1)"
    methods["three_way_check"] = lambda: three_way_check(weights, biases, x, y)
    what["three_way_check"] = "three_way_check(W, B, x, y): manual, jax.grad (warm) and central differences"
    return methods, what


def same_bits(np, methods: dict) -> dict:
    """Whether today's differences equal 0.1's bit for bit, per pair."""
    out = {}
    for name in methods:
        if name.endswith("_v0_1"):
            now, then = methods[name[: -len("_v0_1")]](), methods[name]()
            out[name[: -len("_v0_1")]] = all(a.dtype == b.dtype and a.tobytes() == b.tobytes()
                                             for part_now, part_then in zip(now, then, strict=True)
                                             for a, b in zip(part_now, part_then, strict=True))  # fmt: skip
    return out


def machine(np) -> dict:
    blas = None
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_info

        blas = [{k: info.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                for info in threadpool_info()]  # fmt: skip
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(("OPENBLAS_", "OMP_NUM"))},
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def judge(stats: dict) -> tuple[dict, list]:
    """The ratios (one run's medians) and the goals, each met or not."""
    median = {name: entry["median_s"] for name, entry in stats.items()}
    cell = median["notebook_cell"]
    ratios = {"cell_over_fd_forward": cell / median["fd_forward"],
              "cell_over_fd_notebook_step": cell / median["fd_notebook_step"],
              "fd_forward_over_v0_1": median["fd_forward"] / median["fd_forward_v0_1"],
              "fd_notebook_step_over_v0_1": median["fd_notebook_step"] / median["fd_notebook_step_v0_1"],
              "cell_over_fd_forward_v0_1": cell / median["fd_forward_v0_1"],
              "three_way_over_cell": median["three_way_check"] / cell}  # fmt: skip
    if "fd_central" in median:
        ratios["fd_central_over_v0_1"] = median["fd_central"] / median["fd_central_v0_1"]
    fast, light = GOALS["cell_over_fd_forward"], GOALS["three_way_over_cell"]
    goals = [
        ("forward differences / 0.1's", ratios["fd_forward_over_v0_1"], "<=", 1.0),
        ("... at the notebook's step 1e-6", ratios["fd_notebook_step_over_v0_1"], "<=", 1.0),
        ("notebook cell / forward differences", ratios["cell_over_fd_forward"], ">=", fast),
        ("... at the notebook's step 1e-6", ratios["cell_over_fd_notebook_step"], ">=", fast),
        ("three_way_check / notebook cell", ratios["three_way_over_cell"], "<=", light),
        ("three_way_check, seconds", median["three_way_check"], "<=", GOALS["three_way_s"]),
    ]  # fmt: skip
    return ratios, [{"goal": g, "value": v, "op": op, "bound": b,
                     "met": bool(v <= b if op == "<=" else v >= b)} for g, v, op, b in goals]  # fmt: skip


def fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.0f} us"


def markdown(results: dict) -> str:
    lines = ["| method | median | IQR / median | vs the notebook's cell |", "|---|---:|---:|---:|"]
    cell = results["timings"]["notebook_cell"]["median_s"]
    for name, entry in results["timings"].items():
        lines.append(f"| {name} | {fmt_time(entry['median_s'])} | {entry['spread']:.2f} | "
                     f"{cell / entry['median_s']:.1f}x |")
    lines += ["", "| goal | measured | bound | met |", "|---|---:|---:|:-:|"]
    for goal in results["goals"]:
        value = fmt_time(goal["value"]) if "seconds" in goal["goal"] else f"{goal['value']:.3g}"
        bound = fmt_time(goal["bound"]) if "seconds" in goal["goal"] else f"{goal['bound']:g}"
        met = "yes" if goal["met"] else "NO"
        lines.append(f"| {goal['goal']} | {value} | {goal['op']} {bound} | {met} |")
    load = results["machine"]["load_average_at_start"], results["load_average_at_end"]
    rounds = min(e["repeats"] for e in results["timings"].values())
    lines += ["", f"Bit-identical to 0.1: {results['same_bits_as_v0_1']}; rounds: {rounds}; load average "
              f"(1, 5, 15 min) at start {load[0]}, at end {load[1]}; {results['duration_s']:.0f} s."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    if args.blas_threads:  # before NumPy loads OpenBLAS
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.blas_threads)
    import numpy as np

    sys.path.insert(0, str(HERE))
    from timing import time_round_robin

    block = args.block if args.block is not None else (0.005 if args.quick else 0.05)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 25)
    budget = args.budget if args.budget is not None else (0.0 if args.quick else 60.0)
    methods, what = callables(np, args.quick)
    results = {"network": "udl_network(), net_input [[1.2]], y [[20.0]], relu, least_squares, float64",
               "quick": args.quick, "block_s": block, "min_repeats": repeats, "machine": machine(np),
               "methods": what, "same_bits_as_v0_1": same_bits(np, methods)}  # fmt: skip
    results["timings"] = time_round_robin(methods, block, repeats, budget)
    results["ratios"], results["goals"] = judge(results["timings"])
    results["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    results["duration_s"] = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "small_network.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out / "small_network.md").write_text(table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
