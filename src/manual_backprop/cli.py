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

from .interrupt import run_interruptibly
from .usage import (
    ParseError,
    Parser,
    non_negative_float,
    option_hint,
    positive_float,
    positive_int,
    target_problem,
)

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
  manual-backprop check --gradient model.py:loss_fn,grad_fn --params params.npz
  manual-backprop check --vjp layers.py:affine_forward,affine_backward --inputs inputs.npz
"""
EXIT_CODES = (  # the README's table is this one (tests/test_cli_edges.py compares them)
    (0, "everything agrees; grading: every case of every graded function passes"),
    (1, "something does not agree; grading: a case fails, or the notebook lacks a function"),
    (2, "usage error: an option, a file or a name that cannot be used (one line on stderr)"),
    (130, "interrupted (Ctrl-C)"),
)
EPILOG = EXAMPLES + "\nexit codes:\n" + "".join(f"  {code:<4} {meaning}\n" for code, meaning in EXIT_CODES)


class UsageError(Exception):
    """A mistake in the command line or in the function to grade: one line on stderr, exit 2."""


class _Version(argparse.Action):
    """``--version``: the installed metadata is read only when asked (its import costs startup time)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import version

        print(f"{parser.prog} {version('manual-backprop')}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    from .activations import ACTIVATIONS
    from .derivative_check import DERIVATIVES
    from .three_way import FD_MODES
    from .validate import LOSSES

    parser = Parser(
        prog="manual-backprop",
        description="Backpropagation by hand, checked against jax.grad and finite "
        "differences (Understanding Deep Learning, notebook 7.2).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="{check,grade}")
    check = commands.add_parser(
        "check",
        help="check manual backprop (or your own backward pass) against jax.grad and finite differences",
        description="Check gradients three ways on the notebook's network (or one shaped by the options), or "
        "grade your own backward pass with --backward. Exit 0: all agree; 1: something does not; 2: usage "
        "error; 130: Ctrl-C.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Defaults of the network's shape are filled in later (NETWORK_DEFAULTS), so that --backward, which
    # grades on its own battery of networks, can refuse them instead of ignoring them.
    check.add_argument("--depth", type=positive_int(0), help="K, the number of hidden layers (5)")
    check.add_argument("--width", type=positive_int(1), help="D, units per hidden layer (6)")
    check.add_argument("--input-dim", type=positive_int(1), help="D_i (1)")
    check.add_argument(
        "--output-dim", type=positive_int(1), help="D_o (1; 3 for softmax_cross_entropy)"
    )
    check.add_argument("--batch", type=positive_int(1), default=1, help="N, columns of the input (1)")
    check.add_argument("--activation", choices=tuple(ACTIVATIONS), default="relu")
    check.add_argument("--loss", choices=LOSSES, help="least_squares (0.5 * sum((out - y)^2)); when grading, "
                       "the one your least_squares_loss or d_loss_d_output computes, if defined")
    check.add_argument("--output-activation", choices=tuple(ACTIVATIONS), metavar="NAME",
                       help="an activation on the output too (a sigmoid network with a quadratic cost)")
    check.add_argument("--reduction", choices=("sum", "mean"), default="sum",
                       help="the loss summed (the notebook's) or averaged over the batch")
    check.add_argument("--l2", type=non_negative_float, default=0.0, metavar="L2",
                       help="an L2 penalty (l2 / 2) sum ||Omega_k||^2 on the weights (0)")
    check.add_argument("--seed", type=positive_int(0, 2**32 - 1), default=0, help="the notebook's seed (0)")
    check.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    check.add_argument("--derivative", choices=("gradient", *DERIVATIVES), default="gradient",
                       help="which derivative to check three ways (gradient; see 'Beyond the gradient')")
    check.add_argument("--fd", choices=FD_MODES, help="finite-difference witness (central)")
    check.add_argument(
        "--step",
        type=positive_float,
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
    check.add_argument("--strict", action="store_true",
                       help="with --notebook: count the cases beyond the notebook's task (other input "
                            "and output sizes, batches, exact kinks) toward the verdict; --backward and "
                            "--forward on a .py file or module always count every case")
    check.add_argument("--gradient", metavar="FILE.py:LOSS,GRAD",
                       help="check your own grad_fn(params) against loss_fn(params) (with --params FILE.npz)")
    check.add_argument("--params", metavar="FILE.npz", help="the parameters for --gradient, by leaf name")
    check.add_argument("--vjp", metavar="FILE.py:FORWARD,BACKWARD",
                       help="check your own layer's backward(dout, cache) (with --inputs FILE.npz)")
    check.add_argument("--inputs", metavar="FILE.npz", help="the layer's inputs for --vjp, in order")
    check.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                       help="time limit per call of your code, and per notebook cell (30)")
    check.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    from .class_grading import add_grade_parser, add_worker_options

    add_worker_options(check, positive_float)  # --memory, --sandbox
    add_grade_parser(commands, positive_int, positive_float)
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
    from .three_way import three_way_check

    if args.fd != "central" or args.step is not None or args.verbose:
        raise UsageError(f"--fd, --step and --verbose apply to the gradient; --derivative {args.derivative} "
                         "uses central differences with the kink rule")
    report = three_way_check(weights, biases, x, y, activation=args.activation, loss=args.loss,
                             derivative=args.derivative, rng=args.seed, **_objective(args))
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


def main(argv: list[str] | None = None) -> int:
    """The command; its exit code (``EXIT_CODES``). Ctrl-C: 130 and one line. As the program (``argv``
    None) it owns SIGINT from its first line; called with ``argv`` (a test, a notebook) it leaves SIGINT
    alone, so that interrupting a Jupyter kernel does not end the kernel."""
    from .isolation import drop_current_folder  # as ``python -P``: a local oracle.py is not ours

    drop_current_folder()
    if argv is not None:
        return run_interruptibly(lambda: _main(list(argv)), own_sigint=False)
    return run_interruptibly(lambda: _main(sys.argv[1:]))


def _main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help and --version
        return int(exc.code or 0)
    except ParseError as exc:
        exc.parser.print_usage(sys.stderr)
        command = next((word for word in argv if word in exc.commands), "check")
        return _usage_error(f"{exc}{option_hint(parser, argv)}", "--json" in argv, command, exc.parser.prog)
    if args.command not in ("check", "grade"):
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.command == "grade":
            from .class_grading import run_class

            return run_class(args, sys.stdout)
        if args.gradient or args.vjp or args.params or args.inputs:
            from .user_cli import run_user_check

            return run_user_check(args, sys.stdout)
        if args.backward or args.forward or args.notebook:
            problem = target_problem(args.notebook, args.backward, args.forward)
            if problem:
                raise UsageError(problem)
            return _run_grading(args, sys.stdout)
        if args.timeout is not None:
            raise UsageError("--timeout applies to the graded code of --backward, --forward and --notebook")
        return _run_three_way(args, sys.stdout)
    except BrokenPipeError:  # `manual-backprop check | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (UsageError, ValueError, TypeError) as exc:
        if args.verbose and not isinstance(exc, UsageError):  # a usage error is ours to explain, in a line
            traceback.print_exc()
        return _usage_error(str(exc), args.json, args.command)


def _usage_error(message: str, as_json: bool, command: str, prog: str = "manual-backprop") -> int:
    """One line on stderr and, with --json, the error as the one JSON object on stdout; exit 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    if as_json:
        from .report import SCHEMA_VERSION

        print(json.dumps({"schema_version": SCHEMA_VERSION, "command": command, "ok": False,
                          "error": message, "exit_code": 2}))  # fmt: skip
    return 2
