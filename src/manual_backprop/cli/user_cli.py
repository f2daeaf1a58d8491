"""The command line's check of any user's gradient or VJP: ``--gradient`` / ``--vjp`` with an ``.npz``.

    manual-backprop check --gradient model.py:loss_fn,grad_fn --params params.npz
    manual-backprop check --vjp layers.py:affine_forward,affine_backward --inputs inputs.npz

The user's file is loaded once, in a worker process (``load_pair``, through ``grading.isolation``): the
command never runs the user's code itself; every call of ``loss_fn``, ``grad_fn``, ``forward`` or
``backward`` goes to the worker with plain arrays and comes back as plain data (so the witness is finite
differences of the user's loss: ``jax.grad`` of an array-API loss needs ``check_gradient`` from Python).
Parameters come from an ``.npz`` whose keys are the leaves' names (``W1``, ``[0]``, ``layers[0].W``:
``pytree.tree_from_names``); inputs are taken in the file's order (``arr_0``, ``arr_1``, ... as
``np.savez`` writes them). Exit 0 when the report is ok, 1 when it is not (or the user's
code raised), 2 for a usage error; ``--json`` prints one JSON object.
"""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np

from ..compare.pytree import tree_from_names
from ..compare.report import SCHEMA_VERSION
from ..grading.isolation import Session, session_options
from ..usercode import describe_exception, stdout_to_stderr

NETWORK_OPTIONS = ("depth", "width", "input_dim", "output_dim", "fd", "step", "backward", "forward",
                   "notebook", "timeout")


def load_pair(session, spec: str, option: str, arguments: tuple[str, ...]):
    """``FILE.py:first,second`` (or ``MODULE:first,second``) -> the two functions, the file loaded once in
    ``session``'s worker (proxies); a ValueError naming ``option`` when a part is missing or not a
    function."""
    target, sep, names = spec.rpartition(":") if isinstance(spec, str) else ("", "", "")
    parts = names.split(",")
    if not sep or len(parts) != 2 or not all(p.strip() for p in parts):
        names = "forward,backward" if option == "--vjp" else "loss_fn,grad_fn"
        raise ValueError(f"{option} {spec!r}: expected FILE.py:{names} (two names, a comma between them)")
    first, second = (p.strip() for p in parts)
    loaded = session.load(f"{target}:{first}", option=option, arguments=arguments)
    other = loaded.namespace.get(second)
    if not callable(other):
        what = "has no" if other is None else f"has a {type(other).__name__} for"
        raise ValueError(f"{option}: {target} {what} {second!r}")
    return loaded.function, other


def read_npz(path: str, option: str) -> dict:
    """The arrays of an ``.npz`` file, by name, in the file's order; ValueError naming ``option``."""
    if not os.path.isfile(path):
        raise ValueError(f"{option}: no such file {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: np.array(data[name]) for name in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{option}: cannot read {path!r} as .npz ({exc})") from None
    if not arrays:
        raise ValueError(f"{option}: {path!r} holds no arrays")
    return arrays


def _in_order(arrays: dict) -> tuple:
    """Inputs in positional order: ``arr_<i>`` or ``[<i>]`` keys by number, other keys in the file's order."""
    for pattern in (r"arr_(\d+)", r"\[(\d+)\]"):
        numbers = [int(m.group(1)) if (m := re.fullmatch(pattern, k)) else -1 for k in arrays]
        if min(numbers) >= 0:
            return tuple(arrays[k] for _, k in sorted(zip(numbers, arrays, strict=True)))
    return tuple(arrays.values())


# Options of the notebook's network whose defaults are values, not None: given only when changed.
_DEFAULTS = {"activation": "relu", "output_activation": None, "reduction": "sum", "l2": 0.0, "loss": None,
             "dtype": "float64", "batch": 1, "strict": False, "verbose": False, "derivative": "gradient"}


def _refuse_others(args) -> None:
    if not (args.gradient or args.vjp):
        needs = "--gradient FILE.py:loss_fn,grad_fn" if args.params else "--vjp FILE.py:forward,backward"
        raise ValueError(f"{'--params' if args.params else '--inputs'} goes with {needs}")
    given = [f"--{name.replace('_', '-')}" for name in NETWORK_OPTIONS
             if getattr(args, name, None) is not None]
    given += [f"--{name.replace('_', '-')}" for name, default in _DEFAULTS.items()
              if getattr(args, name, default) != default]
    if args.gradient and args.vjp:
        given.append("--vjp")
    if given:
        raise ValueError(f"{' '.join(given)}: not used with --gradient or --vjp, which check your own "
                         "function on your own arrays (give one of them, with --params or --inputs, and "
                         "--seed, --json)")
    if args.gradient and (args.params is None or args.inputs is not None):
        raise ValueError("--gradient FILE.py:loss_fn,grad_fn needs --params FILE.npz (and no --inputs)")
    if args.vjp and (args.inputs is None or args.params is not None):
        raise ValueError("--vjp FILE.py:forward,backward needs --inputs FILE.npz (and no --params)")


def run_user_check(args, out=None) -> int:
    """Run the check the options ask for, print the report (or one JSON object), return the exit code."""
    from ..checks.user_check import check_gradient
    from ..checks.vjp_check import check_vjp

    out = sys.stdout if out is None else out
    _refuse_others(args)
    with Session(**session_options(args)) as session:
        if args.gradient:
            params = tree_from_names(read_npz(args.params, "--params"))
            loss_fn, grad_fn = load_pair(session, args.gradient, "--gradient", ("params",))

            def run():
                return check_gradient(loss_fn, grad_fn, params, seed=args.seed)
        else:
            inputs = _in_order(read_npz(args.inputs, "--inputs"))
            forward, backward = load_pair(session, args.vjp, "--vjp",
                                          tuple(f"x{i}" for i in range(len(inputs))))

            def run():
                return check_vjp(forward, backward, inputs, seed=args.seed)
        try:
            with stdout_to_stderr():  # what the user's code prints must not spoil our stdout (--json)
                report = run()
        except (ValueError, TypeError):
            raise
        except Exception as exc:  # noqa: BLE001 (the user's function raised or its worker died: exit 1)
            error = f"your code raised {describe_exception(exc)}"
            print(f"manual-backprop: {error}", file=sys.stderr)
            if args.json:  # still exactly one JSON document on stdout
                print(json.dumps({"schema_version": SCHEMA_VERSION, "command": "check", "ok": False,
                                  "error": error}), file=out)  # fmt: skip
            return 1
    if args.json:
        print(json.dumps({"schema_version": SCHEMA_VERSION, "command": "check", "report": report.to_dict(),
                          "ok": report.ok}, allow_nan=False), file=out)  # fmt: skip
    else:
        print(report, file=out)
    return 0 if report.ok else 1
