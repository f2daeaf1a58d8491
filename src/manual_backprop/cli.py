"""The command line: ``manual-backprop check`` (also ``python -m manual_backprop check``).

Parses arguments, runs ``three_way_check`` (or the grading commands of ``grading_cli``), prints, and returns
the exit code: 0 when everything agrees, 1 when something does not, 2 on a usage error, 130 on Ctrl-C.
Results go to stdout, errors to stderr; a traceback only with ``--verbose``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

import numpy as np

EXAMPLES = """\
examples:
  manual-backprop check                                  the notebook's network (K=5, D=6, x=1.2, y=20)
  manual-backprop check --depth 3 --width 8 --batch 4 --activation tanh
  manual-backprop check --fd forward --step 1e-6          the notebook's one-sided difference
  manual-backprop check --depth 4 --width 1024 --batch 64 --fd taylor
  manual-backprop check --json                            one JSON object on stdout
  manual-backprop check --notebook 7_2_Backpropagation.ipynb   grade the notebook's functions
  manual-backprop check --backward my_notebook.py:backward_pass
  manual-backprop check --forward 7_2_Backpropagation.ipynb:compute_network_output --timeout 5
  manual-backprop check --backward mypackage.grads:backward --batch 3
"""


class UsageError(Exception):
    """A mistake in the command line or in the function to grade: one line on stderr, exit 2."""


class _Version(argparse.Action):
    """``--version``: the installed metadata is read only when asked (its import costs startup time)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import version

        print(f"{parser.prog} {version('manual-backprop')}")
        parser.exit()


def _positive_int(minimum, maximum=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    return parse


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .activations import ACTIVATIONS
    from .derivative_check import DERIVATIVES
    from .three_way import FD_MODES
    from .validate import LOSSES

    parser = argparse.ArgumentParser(
        prog="manual-backprop",
        description="Backpropagation by hand, checked against jax.grad and finite "
        "differences (Understanding Deep Learning, notebook 7.2).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="{check,grade}")
    check = commands.add_parser(
        "check",
        help="check manual backprop (or your own backward pass) against jax.grad and finite differences",
        description="Check gradients three ways on the notebook's network (or one shaped by the options), or "
        "grade your own backward pass with --backward. Exit 0: all agree; 1: something does not; 2: usage "
        "error.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Defaults of the network's shape are filled in later (NETWORK_DEFAULTS), so that --backward, which
    # grades on its own battery of networks, can refuse them instead of ignoring them.
    check.add_argument("--depth", type=_positive_int(0), help="K, the number of hidden layers (5)")
    check.add_argument("--width", type=_positive_int(1), help="D, units per hidden layer (6)")
    check.add_argument("--input-dim", type=_positive_int(1), help="D_i (1)")
    check.add_argument(
        "--output-dim", type=_positive_int(1), help="D_o (1; 3 for softmax_cross_entropy)"
    )
    check.add_argument("--batch", type=_positive_int(1), default=1, help="N, columns of the input (1)")
    check.add_argument("--activation", choices=tuple(ACTIVATIONS), default="relu")
    check.add_argument("--loss", choices=LOSSES, help="least_squares (0.5 * sum((out - y)^2)); when grading, "
                       "the one your least_squares_loss or d_loss_d_output computes, if defined")
    check.add_argument("--seed", type=_positive_int(0, 2**32 - 1), default=0, help="the notebook's seed (0)")
    check.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    check.add_argument("--derivative", choices=("gradient", *DERIVATIVES), default="gradient",
                       help="which derivative to check three ways (gradient; see 'Beyond the gradient')")
    check.add_argument("--fd", choices=FD_MODES, help="finite-difference witness (central)")
    check.add_argument(
        "--step",
        type=_positive_float,
        default=None,
        help="finite-difference step (default: per dtype and method)",
    )
    check.add_argument(
        "--backward",
        metavar="FILE:NAME",
        help="grade your backward_pass(all_weights, all_biases, all_f, all_h, y) (.py, module or .ipynb)",
    )
    check.add_argument(
        "--forward",
        metavar="FILE:NAME",
        help="grade your compute_network_output(net_input, all_weights, all_biases) (.py, module or .ipynb)",
    )
    check.add_argument(
        "--notebook",
        metavar="NOTEBOOK.ipynb",
        help="run the notebook and grade every function it defines (compute_network_output, backward_pass)",
    )
    check.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                       help="time limit per call of your code, and per notebook cell (30)")
    check.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    check.add_argument("--memory", type=_positive_float, metavar="GIB",
                       help="memory limit of the worker that runs the graded code (half the machine's)")
    check.add_argument("--sandbox", action="store_true",
                       help="run the graded code under bubblewrap: read-only files, no network (Linux)")
    from .class_grading import add_grade_parser

    add_grade_parser(commands, _positive_int, _positive_float)
    check.add_argument(
        "--verbose", action="store_true", help="notebook-style side-by-side arrays; tracebacks on errors"
    )
    return parser


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
    from .limits import GIB, MAX_DEPTH, MEMORY_FRACTION, memory_estimate, memory_limit

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
    from .fd_limits import fd_cost
    from .tolerances import FD_BUDGET

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
    from .network import random_network, udl_network

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


def _run_three_way(args, out) -> int:
    from .jax_cache import use_compilation_cache
    from .progress import showing
    from .report import SCHEMA_VERSION
    from .three_way import three_way_check

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
        report = three_way_check(
            weights,
            biases,
            x,
            y,
            activation=args.activation,
            loss=args.loss,
            fd=args.fd,
            step=args.step,
            rng=args.seed,
        )
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


def _run_derivative(args, weights, biases, x, y, out) -> int:
    from .three_way import three_way_check

    if args.fd != "central" or args.step is not None or args.verbose:
        raise UsageError(f"--fd, --step and --verbose apply to the gradient; --derivative {args.derivative} "
                         "uses central differences with the kink rule")
    report = three_way_check(weights, biases, x, y, activation=args.activation, loss=args.loss,
                             derivative=args.derivative, rng=args.seed)
    if args.json:
        from .report import SCHEMA_VERSION

        print(json.dumps({"schema_version": SCHEMA_VERSION, "command": "check", "report": report.to_dict(),
                          "ok": report.ok}), file=out)  # fmt: skip
    else:
        print(report, file=out)
    return 0 if report.ok else 1


def _run_grading(args, out) -> int:
    from .grading_cli import run_grading

    shaping = ("depth", "width", "input_dim", "output_dim", "fd", "step")
    given = [f"--{name.replace('_', '-')}" for name in shaping if getattr(args, name) is not None]
    given += ["--derivative"] if args.derivative != "gradient" else []
    if given:
        raise UsageError(f"{' '.join(given)}: not used with --backward, --forward or --notebook, which grade "
                         "on a fixed battery of networks (--activation, --loss, --batch, --dtype, --seed and "
                         "--timeout shape it)")
    if args.notebook and (args.backward or args.forward):
        raise UsageError("--notebook grades every function the notebook defines; give it alone, or name one "
                         "function with --backward NOTEBOOK.ipynb:backward_pass")
    return run_grading(args, out)


def drop_current_folder() -> None:
    """As ``python -P``: the current folder off the import path, so that a local ``oracle.py`` (or one a
    graded notebook wrote) cannot stand in for our modules. Graded code runs in a worker, with its path."""
    try:
        here = os.path.realpath(os.getcwd())
    except OSError:  # the current folder was removed
        here = None
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.realpath(p) != here]


def main(argv: list[str] | None = None) -> int:
    drop_current_folder()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help, 2 for usage errors
        return int(exc.code or 0)
    if args.command not in ("check", "grade"):
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.command == "grade":
            from .class_grading import run_class

            return run_class(args, sys.stdout)
        if args.backward or args.forward or args.notebook:
            return _run_grading(args, sys.stdout)
        if args.timeout is not None:
            raise UsageError("--timeout applies to the graded code of --backward, --forward and --notebook")
        return _run_three_way(args, sys.stdout)
    except KeyboardInterrupt:  # Ctrl-C: stop at once, quietly (the shell's code for SIGINT)
        print("manual-backprop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `manual-backprop check | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (UsageError, ValueError, TypeError) as exc:
        if args.verbose and not isinstance(exc, UsageError):  # a usage error is ours to explain, in a line
            traceback.print_exc()
        print(f"manual-backprop: error: {exc}", file=sys.stderr)
        return 2
