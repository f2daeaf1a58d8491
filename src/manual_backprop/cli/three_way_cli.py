"""The command's three-way check: the network from the options, the check (or a derivative's), printing.

``manual-backprop check`` without a graded function builds the notebook's network in the shape the options
ask (its seed, input 1.2 and target 20), refuses sizes beyond memory or depth before any work, announces
long work on stderr, and prints the report, its headline and its verdict (or one JSON document).
"""

from __future__ import annotations

import json
import sys

import numpy as np

from .usage import UsageError

NETWORK_DEFAULTS = {"depth": 5, "width": 6, "input_dim": 1, "fd": "central"}


def _fill_defaults(args):
    """The three-way check's defaults; a softmax over one output is constant, so it gets 3 by default."""
    args.loss = args.loss or "least_squares"
    for name, value in NETWORK_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.output_dim is None:
        args.output_dim = 3 if args.loss == "softmax_cross_entropy" else 1
    elif args.output_dim == 1 and args.loss == "softmax_cross_entropy":
        raise UsageError("--output-dim 1 with softmax_cross_entropy: a softmax over one output is constant "
                         "and every gradient is 0; use --output-dim 2 or more")
    if args.fd == "taylor" and args.step is not None:
        raise UsageError("--step does not apply to --fd taylor, which sweeps its own steps")


def _check_size(args) -> None:
    """Refuse, before any work, a network too deep to compile or too large for memory (see ``limits``)."""
    from ..limits import GIB, MAX_DEPTH, MEMORY_FRACTION, memory_estimate, memory_limit

    if args.depth > MAX_DEPTH:
        raise UsageError(
            f"--depth {args.depth}: deeper than {MAX_DEPTH} layers, the check would sit silent for minutes "
            f"while XLA compiles jax.grad's unrolled layers (about 6 s at depth {MAX_DEPTH} on 2 cores, "
            f"growing faster than the depth); use --depth {MAX_DEPTH} or less (from Python, "
            "manual_gradients has no limit)"
        )
    sizes = _sizes(args)
    estimate = memory_estimate(sizes, args.batch, args.derivative)
    limit = memory_limit()
    if limit is not None and estimate.total > limit:
        raise UsageError(
            f"network {'-'.join(map(str, sizes))}, batch {args.batch}: the check would need about "
            f"{estimate.total / GIB:,.1f} GiB (parameters {estimate.parameters / GIB:,.1f}, activations "
            f"{estimate.activations / GIB:,.1f}, working {estimate.working / GIB:,.1f}), over the limit of "
            f"{limit / GIB:,.1f} GiB ({MEMORY_FRACTION:.0%} of this machine's "
            f"{limit / MEMORY_FRACTION / GIB:,.1f} GiB); use a smaller --width, --depth, --input-dim, "
            "--output-dim or --batch"
        )


def _sizes(args) -> list[int]:
    """The layer sizes (D_i, D_1, ..., D_K, D_o) the options ask for."""
    return [args.input_dim, *[args.width] * args.depth, args.output_dim]


def _announce(args, weights, x) -> str:
    """The line on stderr before the work: the network, the method, and a switch to directional."""
    from ..fd.fd_limits import fd_cost
    from ..tolerances import FD_BUDGET

    parameters = sum(w.size + w.shape[0] for w in weights)
    head = (
        f"checking network {'-'.join(map(str, _sizes(args)))} ({parameters:,} parameters), batch "
        f"{args.batch}, {args.dtype}, {args.activation}, {args.loss}: "
    )
    if args.derivative != "gradient":
        return head + f"{args.derivative} by hand, by JAX and by central differences"
    if args.fd in ("directional", "taylor"):
        return head + f"manual backprop, jax.grad and the {args.fd} check"
    cost = fd_cost(weights, x.shape[1], args.fd)
    if cost > FD_BUDGET:
        return head + (
            f"manual backprop, jax.grad and the directional check (a full {args.fd} finite-difference "
            f"check would cost {cost:.1e} multiply-adds, past the budget of {FD_BUDGET:.1e}: switched to "
            "directional)"
        )
    return head + f"manual backprop, jax.grad and {args.fd} finite differences"


def _feedback(args) -> bool:
    """Progress on stderr: only for a person watching (stderr a terminal) and never with --json."""
    return not args.json and _stderr_is_terminal()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


def _network(args):
    """The notebook's construction (its seed and draw order) for the shape asked, input 1.2, target 20."""
    from ..maths.network import random_network, udl_network

    if args.depth >= 1:
        weights, biases = udl_network(
            seed=args.seed, K=args.depth, D=args.width, D_i=args.input_dim, D_o=args.output_dim
        )
    else:
        weights, biases = random_network([args.input_dim, args.output_dim], rng=args.seed)
    rng = np.random.default_rng(args.seed)
    x = np.full((args.input_dim, args.batch), 1.2)
    x[:, 1:] += rng.standard_normal((args.input_dim, args.batch - 1))
    if args.loss in ("least_squares", "sum_of_squares"):
        y = np.full((args.output_dim, args.batch), 20.0)
    elif args.loss == "binary_cross_entropy":
        y = rng.uniform(size=(args.output_dim, args.batch))
    else:
        y = np.zeros((args.output_dim, args.batch))
        y[rng.integers(0, args.output_dim, args.batch), np.arange(args.batch)] = 1
    dtype = np.dtype(args.dtype)
    return (
        [w.astype(dtype) for w in weights],
        [b.astype(dtype) for b in biases],
        x.astype(dtype),
        y.astype(dtype),
    )


def _print_arrays(report, out):
    np.set_printoptions(precision=3)
    grads = report.gradients
    for part, label in ((1, "Bias"), (0, "Weight")):
        for layer in range(len(grads["manual"][part])):
            print("-" * 47, file=out)
            for who, title in (("manual", "backprop"), ("jax", "jax.grad"), ("fd", "finite differences")):
                if who in grads:
                    print(f"{label} {layer}, derivatives from {title}:", file=out)
                    print(np.asarray(grads[who][part][layer]), file=out)


def run_three_way(args, out) -> int:
    from ..checks.three_way import three_way_check
    from ..compare.report import SCHEMA_VERSION
    from ..grading.jax_cache import use_compilation_cache
    from ..progress import showing

    use_compilation_cache()
    _fill_defaults(args)
    _check_size(args)
    weights, biases, x, y = _network(args)
    feedback = _feedback(args)
    if feedback:
        print(_announce(args, weights, x), file=sys.stderr, flush=True)
    if args.derivative != "gradient":
        with showing(feedback):
            return _run_derivative(args, weights, biases, x, y, out)
    with showing(feedback):
        report = three_way_check(weights, biases, x, y, activation=args.activation, loss=args.loss,
                                 fd=args.fd, step=args.step, rng=args.seed, **_objective(args))
    if args.json:
        document = {"schema_version": SCHEMA_VERSION, "command": "check",
                    "output": report.net_output.tolist(), "loss": report.loss_value,
                    "report": report.to_dict(), "ok": report.ok}  # fmt: skip
        print(json.dumps(document), file=out)
        return 0 if report.ok else 1
    print(report.headline(), file=out)
    if args.verbose and report.gradients is not None and args.fd not in ("directional", "taylor"):
        _print_arrays(report, out)
    print(report, file=out)
    print(report.verdict(), file=out)
    return 0 if report.ok else 1


def _objective(args) -> dict:
    """The objective's conventions given on the command line (see ``objective``)."""
    return dict(output_activation=args.output_activation, reduction=args.reduction, l2=args.l2)


def _run_derivative(args, weights, biases, x, y, out) -> int:
    from ..checks.three_way import three_way_check

    if args.fd != "central" or args.step is not None or args.verbose:
        raise UsageError(f"--fd, --step and --verbose apply to the gradient; --derivative {args.derivative} "
                         "uses central differences with the kink rule")
    report = three_way_check(weights, biases, x, y, activation=args.activation, loss=args.loss,
                             derivative=args.derivative, rng=args.seed, **_objective(args))
    if args.json:
        from ..compare.report import SCHEMA_VERSION

        print(json.dumps({"schema_version": SCHEMA_VERSION, "command": "check", "report": report.to_dict(),
                          "ok": report.ok}), file=out)  # fmt: skip
    else:
        print(report, file=out)
    return 0 if report.ok else 1
