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

from ..grading.interrupt import STDOUT_LINE, run_interruptibly
from .usage import (
    ParseError,
    Parser,
    UsageError,
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


class _Version(argparse.Action):
    """``--version``: the installed metadata is read only when asked (its import costs startup time)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from importlib.metadata import version

        print(f"{parser.prog} {version('manual-backprop')}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    from ..checks.derivative_check import DERIVATIVES
    from ..checks.three_way import FD_MODES
    from ..maths.activations import ACTIVATIONS
    from ..validate import LOSSES

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
    graded notebook wrote) cannot stand in for our modules; the command line's first step."""
    try:
        here = os.path.realpath(os.getcwd())
    except OSError:  # the current folder was removed
        here = None
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.realpath(p) != here]


def main(argv: list[str] | None = None) -> int:
    """The command; its exit code (``EXIT_CODES``). Ctrl-C: 130 and one line. As the program (``argv``
    None) it owns SIGINT from its first line; called with ``argv`` (a test, a notebook) it leaves SIGINT
    alone, so that interrupting a Jupyter kernel does not end the kernel."""
    drop_current_folder()  # as ``python -P``: a local oracle.py is not ours
    words = sys.argv[1:] if argv is None else list(argv)
    if "--json" in words:  # Ctrl-C under --json: still one JSON document on stdout
        command = "grade" if "grade" in words else "check"
        STDOUT_LINE[:] = [(json.dumps({"schema_version": 1, "command": command, "ok": False,
                                       "error": "interrupted", "exit_code": 130}) + "\n").encode()]
    if argv is not None:
        return run_interruptibly(lambda: _main(list(argv)), own_sigint=False)
    return run_interruptibly(lambda: _main(sys.argv[1:]))


def _main(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help and --version
        return int(exc.code or 0)
    except ParseError as exc:  # one line: the mistake, a close match where there is one, or where to look
        command = next((word for word in argv if word in exc.commands), "check")
        hint = option_hint(parser, argv) or f" ({exc.parser.prog} --help lists the options)"
        return _usage_error(f"{exc}{hint}", "--json" in argv, command, exc.parser.prog)
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
        from .three_way_cli import run_three_way

        return run_three_way(args, sys.stdout)
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
        from ..compare.report import SCHEMA_VERSION

        print(json.dumps({"schema_version": SCHEMA_VERSION, "command": command, "ok": False,
                          "error": message, "exit_code": 2}))  # fmt: skip
    return 2
