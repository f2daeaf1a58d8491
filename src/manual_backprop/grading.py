"""Grading a user's backward pass: calling it safely on the battery, checking structure and mutation."""

from __future__ import annotations

import traceback

import numpy as np

from .activations import get_activation
from .backprop import forward
from .battery import Case, make_battery
from .compare import compare_gradients
from .diagnose import case_context, diagnose_case, first_wrong_layer
from .finite_diff import numerical_gradients
from .report import BackwardReport, CaseResult
from .story import Seen, attach, tell
from .validate import check_target


def _user_line(exc: BaseException, function) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    filename = getattr(getattr(function, "__code__", None), "co_filename", None)
    mine = [f for f in frames if f.filename == filename] or frames[-1:]
    if not mine:
        return ""
    frame = mine[-1]
    return f" (at {frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}: {(frame.line or '').strip()})"


def _structure_error(result, n_layers: int) -> str | None:
    expected = f"expected a pair (all_dl_dweights, all_dl_dbiases) of lists of {n_layers} arrays (K+1)"
    if result is None:
        return f"returned None; {expected}"
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        size = f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""
        return f"returned a {type(result).__name__}{size}; {expected}"
    for name, part in zip(("all_dl_dweights", "all_dl_dbiases"), result, strict=False):
        if not isinstance(part, (list, tuple)):
            return f"{name} is a {type(part).__name__}; expected a list (or tuple) of {n_layers} arrays"
        if len(part) != n_layers:
            return f"{name} has {len(part)} entries; expected {n_layers}, one per layer"
    return None


def _mutation(originals, passed) -> str | None:
    for name, orig, given in zip(
        ("all_weights", "all_biases", "all_f", "all_h", "y"), originals, passed, strict=False
    ):
        if name == "y":
            if not np.array_equal(orig, given[0]):
                return "y was modified in place"
            continue
        array_list, list_object = given
        if len(list_object) != len(orig) or any(
            a is not b for a, b in zip(list_object, array_list, strict=False)
        ):
            return f"{name} (the list) was modified"
        for k, (o, g) in enumerate(zip(orig, array_list, strict=False)):
            if not np.array_equal(o, g):
                return f"{name}[{k}] was modified in place"
    return None


def _call(backward, originals):
    """Call ``backward`` on fresh copies of ``originals`` (all_weights, all_biases, all_f, all_h, y):
    ``(result, error_kind, error)``, error_kind None, "exception", "structure" or "mutation"."""
    passed = [[a.copy() for a in part] for part in originals[:4]] + [originals[4].copy()]
    lists = [list(p) for p in passed[:4]]
    try:
        result = backward(lists[0], lists[1], lists[2], lists[3], passed[4])
    except (Exception, SystemExit) as exc:  # the user's bug is a failed case, never our crash
        message = f"raised {type(exc).__name__}: {str(exc).strip()}{_user_line(exc, backward)}"
        return None, "exception", message
    mutated = _mutation(
        originals, [(p, lst) for p, lst in zip(passed[:4], lists, strict=False)] + [(passed[4],)]
    )
    structure = _structure_error(result, len(originals[0]))
    if structure:
        return result, "structure", structure
    return result, ("mutation" if mutated else None), mutated


def _grade_case(backward, case: Case, activation: str, loss: str, oracle, history: list) -> CaseResult:
    act = get_activation(activation)
    dtype = case.weights[0].dtype
    target = check_target(case.y, loss, case.sizes[-1], case.net_input.shape[1], dtype)
    forward_pass = forward(case.weights, case.biases, case.net_input, act)
    _, all_f, all_h = forward_pass
    expected = oracle(case.weights, case.biases, case.net_input, case.y, activation=activation, loss=loss)
    # Second witness: finite differences agree with the oracle (kinks excluded).
    fd_w, fd_b, (k_w, k_b) = numerical_gradients(
        case.weights, case.biases, case.net_input, case.y, activation=activation, loss=loss, return_kinks=True
    )
    include = ([~k for k in k_w], [~k for k in k_b])
    witness = compare_gradients(expected, (fd_w, fd_b), dtype=dtype, kind="central", include=include)
    common = dict(name=case.name, sizes=case.sizes, batch=int(case.net_input.shape[1]),
                  witnesses_agree=witness.ok, kinks_excluded=witness.excluded)  # fmt: skip
    result, error_kind, error = _call(backward, (case.weights, case.biases, all_f, all_h, case.y))
    if error_kind in ("exception", "structure"):
        history.append(Seen(case.name, expected, result, None, None, error_kind))
        return CaseResult(**common, ok=False, error_kind=error_kind, error=error, comparison=None,
                          first_wrong_layer=None, diagnoses=())  # fmt: skip
    comparison = compare_gradients(expected, result, dtype=dtype, label="yours vs jax")
    diagnoses, ctx = (), None
    if not comparison.ok:
        ctx = case_context(case.weights, forward_pass, act, loss, target, expected, dtype, case.biases)
        diagnoses = diagnose_case(result, comparison, ctx, [(s.name, s.expected) for s in history])
    history.append(Seen(case.name, expected, result, ctx, comparison, error_kind))
    return CaseResult(**common, ok=comparison.ok and error is None, error_kind=error_kind, error=error,
                      comparison=comparison, first_wrong_layer=first_wrong_layer(comparison.rows),
                      diagnoses=diagnoses)  # fmt: skip


def check_backward(
    backward,
    *,
    activation: str = "relu",
    loss: str = "least_squares",
    batch: int = 1,
    dtype=np.float64,
    seed: int = 0,
    cases=None,
) -> BackwardReport:
    """Grade ``backward(all_weights, all_biases, all_f, all_h, y) -> (all_dl_dweights, all_dl_dbiases)``.

    It is called with the notebook's positional signature on every case of ``make_battery(activation,
    loss, batch, dtype, seed)`` (or the given ``cases``), with fresh copies of the arrays, and graded
    against ``jax.grad`` (finite differences as a second witness). Nothing the function does (raising,
    returning junk, changing its inputs) escapes as an exception: each is a failed case with a message.
    """
    from oracle import jax_gradients  # the JAX import is paid only by the checks that need it

    if not callable(backward):
        raise TypeError(f"backward must be a function, got {type(backward).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"dtype must be float64 or float32, got {dtype}")
    cases = make_battery(activation, loss, batch, dtype, seed) if cases is None else list(cases)
    if not cases:
        raise ValueError("cases is empty: nothing to grade (pass None for the standard battery)")
    history = []  # every call, for the function-level story
    results = tuple(_grade_case(backward, case, activation, loss, jax_gradients, history) for case in cases)
    story = tell(history, loss)
    name = getattr(backward, "__qualname__", None) or repr(backward)
    return BackwardReport(name, activation, loss, int(batch), dtype.name, attach(results, story), story=story)
