"""check_gradient on a ~5,000-parameter two-layer net, beside torch gradcheck and jax check_grads.

All three check the same hand-written gradient of the same loss (softmax cross-entropy averaged over 64
rows, plus L2, dict parameters W1 (40, 100), b1, W2 (100, 10), b2: 5,110 parameters, float64):

- ``check_gradient(loss_fn, grad_fn, params)``: with the loss in NumPy (finite differences alone), and
  array-API generic (finite differences and jax.grad);
- ``torch.autograd.gradcheck`` on a ``torch.autograd.Function`` whose backward is the hand-written
  gradient (the way to put one's own gradient before gradcheck); optional: skipped without torch;
- ``jax.test_util.check_grads`` on a ``jax.custom_vjp`` whose backward calls the hand-written gradient
  (``jax.pure_callback``), order 1, reverse mode.

Each runs on the right gradient and on a bug (db2 not divided by N); the table gives the time (the first
call in the process, which imports and compiles, and the median of the next ``--repeats``), the verdict on
each, and what the failure message names.

    python benchmarks/bench_user_gradient.py [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from zoo.hand_written import two_layer_grads, two_layer_loss, two_layer_loss_numpy  # noqa: E402

D, H, C, N = 40, 100, 10, 64
KEYS = ("W1", "b1", "W2", "b2")


def problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {"W1": 0.2 * rng.standard_normal((D, H)), "b1": 0.1 * rng.standard_normal(H),
              "W2": 0.2 * rng.standard_normal((H, C)), "b2": 0.1 * rng.standard_normal(C)}  # fmt: skip
    return params, rng.standard_normal((N, D)), rng.integers(0, C, N)


def timed(fn, repeats: int):
    start = time.perf_counter()
    result = fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return result, first, statistics.median(times) if times else first


def ours(loss, params, X, y, bug):
    from manual_backprop import check_gradient

    def run():
        report = check_gradient(lambda p: loss(p, X, y), lambda p: two_layer_grads(p, X, y, bug=bug), params)
        return report.ok, ", ".join(report.failing) or "-"

    return run


def torch_gradcheck(params, X, y, bug, fast: bool):
    import torch

    class Manual(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *tensors):
            p = dict(zip(KEYS, (t.detach().numpy() for t in tensors), strict=True))
            ctx.p = p
            return torch.tensor(two_layer_loss_numpy(p, X, y), dtype=torch.float64)

        @staticmethod
        def backward(ctx, g):
            grads = two_layer_grads(ctx.p, X, y, bug=bug)
            return tuple(g * torch.from_numpy(np.asarray(grads[k])) for k in KEYS)

    inputs = tuple(torch.tensor(params[k], dtype=torch.float64, requires_grad=True) for k in KEYS)

    def run():
        try:
            return torch.autograd.gradcheck(Manual.apply, inputs, fast_mode=fast), "-"
        except Exception as exc:  # gradcheck raises GradcheckError on a mismatch
            return False, str(exc).splitlines()[0][:70]

    return run


def jax_check_grads(params, X, y, bug):
    import jax
    import jax.numpy as jnp
    from jax.test_util import check_grads

    jax.config.update("jax_enable_x64", True)  # this benchmark's own process: float64 throughout

    @jax.custom_vjp
    def loss(p):
        return two_layer_loss(p, jnp.asarray(X), y)

    def fwd(p):
        return loss(p), p

    def bwd(p, g):
        shapes = {k: jax.ShapeDtypeStruct(v.shape, jnp.float64) for k, v in p.items()}
        grads = jax.pure_callback(lambda q: two_layer_grads({k: np.asarray(v) for k, v in q.items()}, X, y,
                                                            bug=bug), shapes, p)
        return ({k: g * v for k, v in grads.items()},)

    loss.defvjp(fwd, bwd)
    point = {k: jnp.asarray(v) for k, v in params.items()}

    def run():
        try:
            check_grads(loss, (point,), order=1, modes=["rev"])
            return True, "-"
        except AssertionError as exc:
            return False, " ".join(str(exc).split())[:70]

    return run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    params, X, y = problem()
    count = sum(v.size for v in params.values())
    tools = {
        "check_gradient, NumPy loss (finite differences)":
            lambda bug: ours(two_layer_loss_numpy, params, X, y, bug),
        "check_gradient, array-API loss (finite differences + jax)":
            lambda bug: ours(two_layer_loss, params, X, y, bug),
        "jax.test_util.check_grads (custom_vjp, order 1, rev)":
            lambda bug: jax_check_grads(params, X, y, bug),
    }
    try:
        import torch

        torch.set_num_threads(1)
        tools["torch.autograd.gradcheck"] = lambda bug: torch_gradcheck(params, X, y, bug, False)
        tools["torch.autograd.gradcheck(fast_mode=True)"] = \
            lambda bug: torch_gradcheck(params, X, y, bug, True)
    except ImportError:
        print("torch not installed: torch.autograd.gradcheck skipped", file=sys.stderr)
    rows = []
    for name, make in tools.items():
        (right_ok, _), first, median = timed(make(None), args.repeats)
        (bug_ok, named), _, _ = timed(make("sum"), 0)
        rows.append({"tool": name, "first_s": first, "median_s": median, "right_passes": bool(right_ok),
                     "bug_caught": not bug_ok, "bug_message": named})
        print(f"{name}: {median:.3f} s", file=sys.stderr, flush=True)
    large = large_net(args.repeats)
    if args.json:
        print(json.dumps({"parameters": count, "rows": rows, "large": large}, indent=1))
        return 0
    print(f"{count:,} parameters, float64; bug: db2 not divided by N (only b2 wrong)\n")
    print("| tool | first call | median | right passes | bug caught | what the failure names |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['tool']} | {r['first_s']:.2f} s | {r['median_s']:.2f} s | {r['right_passes']} | "
              f"{r['bug_caught']} | {r['bug_message']} |")
    print(f"\n{large['parameters']:,} parameters (784-256-10, NumPy loss): the coordinate sweep would take "
          "about "
          f"{large['estimate_s']:.0f} s, so check_gradient differences each leaf along 2 directions: "
          f"{large['median_s']:.2f} s (median), right passes: {large['right_passes']}, bug caught at "
          f"{large['bug_message']}")
    return 0


def large_net(repeats: int) -> dict:
    """The directional fallback: a 784-256-10 net (203,530 parameters), the NumPy loss."""
    from manual_backprop import check_gradient
    from manual_backprop.fd.user_fd import sweep_seconds

    rng = np.random.default_rng(1)
    params = {"W1": 0.05 * rng.standard_normal((784, 256)), "b1": 0.1 * rng.standard_normal(256),
              "W2": 0.05 * rng.standard_normal((256, 10)), "b2": 0.1 * rng.standard_normal(10)}  # fmt: skip
    X, y = rng.standard_normal((64, 784)), rng.integers(0, 10, 64)

    def run(bug=None):
        report = check_gradient(lambda p: two_layer_loss_numpy(p, X, y),
                                lambda p: two_layer_grads(p, X, y, bug=bug), params)
        return report

    right, _, median = timed(run, repeats)
    wrong = run("sum")
    start = time.perf_counter()
    two_layer_loss_numpy(params, X, y)
    one = time.perf_counter() - start
    return {"parameters": right.parameters, "fd": right.fd, "median_s": median, "right_passes": right.ok,
            "estimate_s": sweep_seconds(right.parameters, one), "bug_message": ", ".join(wrong.failing)}


if __name__ == "__main__":
    sys.exit(main())
