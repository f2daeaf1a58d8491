"""Grading a user's backward pass: calling it safely on the battery, checking structure and mutation."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from .activations import get_activation
from .backprop import forward
from .battery import Case, make_battery
from .compare import compare_gradients
from .diagnose import case_context, diagnose_case, first_wrong_layer
from .finite_diff import numerical_gradients
from .report import BackwardReport, CaseResult
from .story import Seen, attach, tell
from .user_globals import globals_note, network_globals
from .usercode import DEFAULT_TIMEOUT, call_user, describe_exception, safe_repr
from .validate import as_gradient_array, check_target


class _Structure(Exception):
    """What the function returned is not a pair of lists of K+1 entries (our message, not the user's bug)."""


def _read_result(result, n_layers: int):
    """``[all_dl_dweights, all_dl_dbiases]`` as two lists, each entry a plain ndarray where it converts
    (else as returned, for ``compare_gradients`` to name); ``_Structure`` when the pair's shape is off.
    Runs inside ``call_user``: the user's objects (``len``, iteration, ``__array__``) may do anything."""
    expected = f"expected a pair (all_dl_dweights, all_dl_dbiases) of lists of {n_layers} arrays (K+1)"
    if result is None:
        raise _Structure(f"returned None; {expected}")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        size = f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""
        raise _Structure(f"returned a {type(result).__name__}{size}; {expected}")
    parts = []
    for name, part in zip(("all_dl_dweights", "all_dl_dbiases"), result, strict=True):
        if not isinstance(part, (list, tuple)):
            raise _Structure(f"{name} is a {type(part).__name__}; expected a list (or tuple) of {n_layers} "
                             "arrays")
        if len(part) != n_layers:
            raise _Structure(f"{name} has {len(part)} entries; expected {n_layers}, one per layer")
        parts.append([_as_array(item) for item in part])
    return parts


def _as_array(item):
    array, message = as_gradient_array(item)
    return item if message else array


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


def _plain_pair(value):
    """A badly shaped result kept for the function-level story (lists that grow from call to call), where
    it is a plain pair of plain lists or tuples (builtin ``len`` cannot raise there); else None."""
    if type(value) in (list, tuple) and len(value) == 2 and all(type(p) in (list, tuple) for p in value):
        return [list(value[0]), list(value[1])]
    return None


def _call(backward, originals, timeout, globals_seen: set):
    """Call ``backward`` through ``call_user`` on fresh copies of ``originals`` (all_weights, all_biases,
    all_f, all_h, y) with the case's network globals: ``(result, error_kind, error)``, error_kind None,
    "exception", "timeout", "exit", "structure" or "mutation"; the globals set join ``globals_seen``."""
    passed = [[a.copy() for a in part] for part in originals[:4]] + [originals[4].copy()]
    lists = [list(p) for p in passed[:4]]
    call = call_user(backward, (*lists, passed[4]), timeout=timeout,
                     globals_to_set=network_globals(originals[0]))
    globals_seen.update(call.globals_set)
    if not call.ok:
        return None, {"raised": "exception"}.get(call.status, call.status), call.error
    reading = call_user(_read_result, (call.value, len(originals[0])), timeout=timeout)
    if not reading.ok:
        if isinstance(reading.exception, _Structure):
            return _plain_pair(call.value), "structure", reading.exception.args[0]
        why = describe_exception(reading.exception) if reading.exception is not None else reading.error
        return None, "structure", f"returned an object that could not be read: {why}"
    mutated = _mutation(
        originals, [(p, lst) for p, lst in zip(passed[:4], lists, strict=False)] + [(passed[4],)]
    )
    return reading.value, ("mutation" if mutated else None), mutated


def _grade_case(backward, case: Case, activation: str, loss: str, oracle, history: list, timeout=None,
                globals_seen=None) -> CaseResult:
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
    result, error_kind, error = _call(backward, (case.weights, case.biases, all_f, all_h, case.y), timeout,
                                      set() if globals_seen is None else globals_seen)
    if error_kind not in (None, "mutation"):
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
    backward: Callable,
    *,
    activation: str = "relu",
    loss: str = "least_squares",
    batch: int = 1,
    dtype: npt.DTypeLike = np.float64,
    seed: int = 0,
    cases: Iterable[Case] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    loss_source: str | None = None,
) -> BackwardReport:
    """Grade ``backward(all_weights, all_biases, all_f, all_h, y) -> (all_dl_dweights, all_dl_dbiases)``.

    It is called with the notebook's positional signature on every case of ``make_battery(activation,
    loss, batch, dtype, seed)`` (or the given ``cases``), with fresh copies of the arrays, and graded
    against ``jax.grad`` (finite differences as a second witness). Each call goes through
    ``usercode.call_user``: ``timeout`` seconds (None: no limit), the network globals it reads (``K``, ``D``,
    ``D_i``, ``D_o``) set to the case's, stdout to stderr, process state put back. Nothing the function does
    (raising, hanging, ``sys.exit``, returning junk, changing its inputs) escapes: each is a failed case with
    a message. ``loss_source``: the report's header line saying where the loss came from (see
    ``conventions.LossConvention.header``).
    """
    from oracle import jax_gradients  # the JAX import is paid only by the checks that need it

    if not callable(backward):
        raise TypeError(f"backward must be a function, got {type(backward).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"dtype must be float64 or float32, got {dtype}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0 or timeout == float("inf")):
        raise ValueError(f"timeout must be a finite number of seconds > 0 (or None), got {timeout!r}")
    if cases is not None:
        if isinstance(cases, (str, bytes)) or not isinstance(cases, Iterable):
            raise TypeError(f"cases must be a list of battery Case objects (see make_battery), got "
                            f"{type(cases).__name__}")
        cases = list(cases)
        wrong = [type(case).__name__ for case in cases if not isinstance(case, Case)]
        if wrong:
            raise TypeError(f"cases must be a list of battery Case objects (see make_battery), got a "
                            f"{wrong[0]}")
    cases = make_battery(activation, loss, batch, dtype, seed) if cases is None else cases
    if not cases:
        raise ValueError("cases is empty: nothing to grade (pass None for the standard battery)")
    history = []  # every call, for the function-level story
    seen: set = set()
    results = tuple(_grade_case(backward, case, activation, loss, jax_gradients, history, timeout, seen)
                    for case in cases)
    story = tell(history, loss)
    name = getattr(backward, "__qualname__", None) or safe_repr(backward)
    note = globals_note(getattr(backward, "__name__", None) or name, seen)
    return BackwardReport(name, activation, loss, int(batch), dtype.name, attach(results, story),
                          loss_source=loss_source, notes=(note,) if note else (), story=story)
