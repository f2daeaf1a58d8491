"""Time every derivative beyond the gradient: manual, jitted JAX and eager JAX, against one manual gradient.

    python benchmarks/bench_derivatives.py [--quick] [--out DIR] [--repeats 7]

Derivatives: the JVP, H v, G v, per-example gradients and the input gradient, each by hand
(``manual_backprop``), by the oracle (``oracle.jax_*``, jit-compiled, warm) and by the same JAX code
without jit (``jax.disable_jit``), on the notebook's network and on K = 5 networks of width D = 64 and 256
with N = 256 examples (relu, least squares). The baselines are one manual forward pass
(``compute_network_output``) and one manual gradient (``manual_gradients``). All methods of a case are
timed round-robin (``bench_gradients.time_round_robin``: medians of at least 7 blocks), so the ratios of
one case are fair even on a busy machine.

Writes ``derivatives.json``, ``derivatives.md`` (also printed) and ``derivatives.png`` into ``--out``
(default ``bench-out/``, git-ignored). The goals (manual JVP <= 1.5 forward passes; manual H v <= 4
gradients and no slower than jitted ``jax.jvp(jax.grad)``; per-example no slower than jitted
``jax.vmap(jax.grad)``) are judged in the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_gradients import fmt_time, machine, time_round_robin  # noqa: E402  (one timer for all benchmarks)
from manual_backprop import (  # noqa: E402
    compute_network_output,
    manual_ggn_vp,
    manual_gradients,
    manual_hvp,
    manual_input_gradient,
    manual_jvp,
    manual_per_example_gradients,
    random_network,
    udl_network,
)

DERIVATIVES = ("jvp", "hvp", "ggn", "per_example", "input")
VARIANTS = ("manual", "jax_jit", "jax_eager")


def make_cases(quick: bool):
    """``[(name, (all_weights, all_biases, net_input, y))]``: the notebook's network, then the grid."""
    weights, biases = udl_network()
    cases = [("notebook", (weights, biases, np.array([[1.2]]), np.array([[20.0]])))]
    for D, N in ((8, 4),) if quick else ((64, 256), (256, 256)):
        rng = np.random.default_rng(D)
        weights, biases = random_network([D] * 7, rng=rng)
        x, y = rng.standard_normal((D, N)), rng.standard_normal((D, N))
        cases.append((f"D{D}xN{N}", (weights, biases, x, y)))
    return cases


def callables(args):
    """Every method of one case: name -> zero-argument function."""
    import jax

    import oracle

    weights, biases, x, y = args
    rng = np.random.default_rng(1)
    vw = [rng.standard_normal(w.shape) for w in weights]
    vb = [rng.standard_normal(b.shape) for b in biases]
    calls = {
        "jvp": (manual_jvp, oracle.jax_jvp, (weights, biases, x, vw, vb)),
        "hvp": (manual_hvp, oracle.jax_hvp, (weights, biases, x, y, vw, vb)),
        "ggn": (manual_ggn_vp, oracle.jax_ggn_vp, (weights, biases, x, y, vw, vb)),
        "per_example": (manual_per_example_gradients, oracle.jax_per_example_gradients,
                        (weights, biases, x, y)),
        "input": (manual_input_gradient, oracle.jax_input_gradient, (weights, biases, x, y)),
    }

    def eager(function, arguments):
        def run():
            with jax.disable_jit():
                return function(*arguments)

        return run

    methods = {"forward": lambda: compute_network_output(x, weights, biases),
               "gradient": lambda: manual_gradients(weights, biases, x, y)}  # fmt: skip
    for name, (manual, jitted, arguments) in calls.items():
        methods[f"{name}/manual"] = lambda f=manual, a=arguments: f(*a)
        methods[f"{name}/jax_jit"] = lambda f=jitted, a=arguments: f(*a)
        methods[f"{name}/jax_eager"] = eager(jitted, arguments)
    return methods


def goals(stats: dict) -> list:
    """``[(goal, measured ratio, met)]`` for one case."""
    def t(name):
        return stats[name]["median_s"]

    return [
        ("manual JVP <= 1.5 manual forward passes", t("jvp/manual") / t("forward"), 1.5),
        ("manual H v <= 4 manual gradients", t("hvp/manual") / t("gradient"), 4.0),
        ("manual H v no slower than jitted jax.jvp(jax.grad)", t("hvp/manual") / t("hvp/jax_jit"), 1.0),
        ("manual per-example no slower than jitted vmap(grad)",
         t("per_example/manual") / t("per_example/jax_jit"), 1.0),
    ]


def run(args) -> dict:
    block = 0.005 if args.quick else args.block
    budget = 0.05 if args.quick else args.budget
    results = {"command": " ".join(["python", "benchmarks/bench_derivatives.py", *sys.argv[1:]]),
               "quick": args.quick, "machine": machine(), "cases": {}}  # fmt: skip
    for name, problem in make_cases(args.quick):
        started = time.perf_counter()
        stats = time_round_robin(callables(problem), block, args.repeats, budget)
        params = sum(w.size + b.size for w, b in zip(problem[0], problem[1], strict=True))
        gradient, forward = stats["gradient"]["median_s"], stats["forward"]["median_s"]
        results["cases"][name] = {
            "params": int(params), "batch": int(problem[2].shape[1]), "methods": stats,
            "ratio_to_gradient": {m: s["median_s"] / gradient for m, s in stats.items()},
            "ratio_to_forward": {m: s["median_s"] / forward for m, s in stats.items()},
            "goals": [{"goal": g, "ratio": r, "bound": b, "met": r <= b} for g, r, b in goals(stats)],
        }  # fmt: skip
        print(f"{name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return results


def markdown(results: dict) -> str:
    lines = []
    for name, case in results["cases"].items():
        m = case["methods"]
        lines += [f"**{name}** ({case['params']:,} parameters, batch {case['batch']}): forward pass "
                  f"{fmt_time(m['forward']['median_s'])}, gradient {fmt_time(m['gradient']['median_s'])}", "",
                  "| derivative | manual | jax jit | jax eager | manual / gradient | manual / forward | "
                  "manual / jax jit |", "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for d in DERIVATIVES:
            manual, jit, eager = (m[f"{d}/{v}"]["median_s"] for v in VARIANTS)
            gradient, forward = m["gradient"]["median_s"], m["forward"]["median_s"]
            lines.append(f"| {d} | {fmt_time(manual)} | {fmt_time(jit)} | {fmt_time(eager)} | "
                         f"{manual / gradient:.2f} | {manual / forward:.2f} | {manual / jit:.2f} |")
        lines += ["", "| goal | measured | met |", "|---|---:|---|"]
        lines += [f"| {g['goal']} | {g['ratio']:.2f} | {'yes' if g['met'] else 'no'} |"
                  for g in case["goals"]]
        lines.append("")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(results["cases"])
    fig, axes = plt.subplots(1, len(cases), figsize=(4.2 * len(cases), 3.8), sharey=True)
    axes = np.atleast_1d(axes)
    width = 0.27
    for ax, name in zip(axes, cases, strict=True):
        ratios = results["cases"][name]["ratio_to_gradient"]
        positions = np.arange(len(DERIVATIVES))
        for i, variant in enumerate(VARIANTS):
            ax.bar(positions + (i - 1) * width, [ratios[f"{d}/{variant}"] for d in DERIVATIVES], width,
                   label=variant.replace("_", " "))  # fmt: skip
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xticks(positions, DERIVATIVES, rotation=30)
        ax.set_title(name)
    axes[0].set_ylabel("time / one manual gradient")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and short timings (a smoke test)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "bench-out",
                        help="output folder (bench-out, git-ignored)")
    parser.add_argument("--repeats", type=int, default=7, help="minimum rounds per case (7)")
    parser.add_argument("--block", type=float, default=0.05, help="seconds per timed block (0.05)")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of extra rounds per case (1.0)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="NumPy's BLAS threads (1: on a busy 2-core machine OpenBLAS's second thread "
                             "stalls for milliseconds; 0: as is)")
    args = parser.parse_args(argv)
    if args.repeats < 7:
        parser.error("--repeats must be at least 7")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.blas_threads or None, user_api="blas"):
        results = run(args)
    results["blas_threads"] = args.blas_threads or "as is"
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, args.out / "derivatives.png")
    table = markdown(results)
    (args.out / "derivatives.md").write_text(table)
    (args.out / "derivatives.json").write_text(json.dumps(results, indent=1) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
