"""Grading a user's backward pass: calling it safely on the battery, checking structure and mutation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt

from ..compare.compare import compare_gradients
from ..compare.gradient_forms import as_gradient_array
from ..compare.report import BackwardReport, CaseResult
from ..fd.finite_diff import numerical_gradients
from ..maths.activations import get_activation, other_side_at_kink
from ..maths.backprop import backward as backward_by_hand
from ..maths.backprop import forward
from ..maths.losses import loss_gradient
from ..objective import objective_name, parse_objective
from ..user_globals import globals_note, network_globals
from ..usercode import DEFAULT_TIMEOUT, call_user, describe_exception, safe_repr
from ..validate import check_target
from .battery import Case, flipped_at_kink, make_battery, make_notebook_battery
from .context import read_context
from .conventions import FORMULAS
from .diagnose import case_context, diagnose_case, first_wrong_layer
from .story import Seen, attach, tell


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


SCRATCH = ("all_f", "all_h")  # the forward pass's lists: the caller does not reuse them after the call


def _mutations(originals, passed) -> list[tuple[str, str]]:
    """(argument name, what changed) for every argument the call changed, in order."""
    found = []
    for name, orig, given in zip(
        ("all_weights", "all_biases", "all_f", "all_h", "y"), originals, passed, strict=False
    ):
        if name == "y":
            if not np.array_equal(orig, given[0]):
                found.append((name, "y was modified in place"))
            continue
        array_list, list_object = given
        if len(list_object) != len(orig) or any(
            a is not b for a, b in zip(list_object, array_list, strict=False)
        ):
            found.append((name, f"{name} (the list) was modified"))
            continue
        for k, (o, g) in enumerate(zip(orig, array_list, strict=False)):
            if not np.array_equal(o, g):
                found.append((name, f"{name}[{k}] was modified in place"))
                break
    return found


def _same_result(a, b) -> bool:
    return all(np.shape(x) == np.shape(y) and np.array_equal(x, y, equal_nan=True)
               for pa, pb in zip(a, b, strict=True) for x, y in zip(pa, pb, strict=True))


def _views(result, passed) -> str | None:
    """The first returned gradient that is a view of an argument (it changes when the caller's does)."""
    arrays = [(f"{name}[{k}]", a) for name, part in zip(("all_weights", "all_biases", "all_f", "all_h"),
                                                        passed, strict=False) for k, a in enumerate(part)]
    for p, part in zip(("all_dl_dweights", "all_dl_dbiases"), result, strict=True):
        for k, gradient in enumerate(part):
            for name, array in arrays:
                if isinstance(gradient, np.ndarray) and np.shares_memory(gradient, array):
                    return f"{p}[{k}] is a view of {name}: it changes whenever the caller's {name} does"
    return None


def _plain_pair(value):
    """A badly shaped result kept for the function-level story (lists that grow from call to call), where
    it is a plain pair of plain lists or tuples (builtin ``len`` cannot raise there); else None."""
    if type(value) in (list, tuple) and len(value) == 2 and all(type(p) in (list, tuple) for p in value):
        return [list(value[0]), list(value[1])]
    return None


def _call_once(backward, originals, timeout, globals_seen: set):
    passed = [[a.copy() for a in part] for part in originals[:4]] + [originals[4].copy()]
    lists = [list(p) for p in passed[:4]]
    call = call_user(backward, (*lists, passed[4]), timeout=timeout,
                     globals_to_set=network_globals(originals[0]))
    globals_seen.update(call.globals_set)
    return call, passed, lists


def _call(backward, originals, timeout, globals_seen: set):
    """Call ``backward`` through ``call_user`` on fresh copies of ``originals`` (all_weights, all_biases,
    all_f, all_h, y) with the case's network globals: ``(result, error_kind, error, note)``, error_kind None,
    "exception", "timeout", "exit", "structure" or "mutation"; the globals set join ``globals_seen``.

    Changing the caller's parameters or ``y`` fails the case (the notebook reuses them); changing ``all_f``
    or ``all_h`` is a ``note``, unless the change reaches what the function returns: a second call on fresh
    copies returns other gradients, or a returned gradient is a view of an argument."""
    call, passed, lists = _call_once(backward, originals, timeout, globals_seen)
    if not call.ok:
        return None, {"raised": "exception"}.get(call.status, call.status), call.error, None
    reading = call_user(_read_result, (call.value, len(originals[0])), timeout=timeout)
    if not reading.ok:
        if isinstance(reading.exception, _Structure):
            return _plain_pair(call.value), "structure", reading.exception.args[0], None
        why = describe_exception(reading.exception) if reading.exception is not None else reading.error
        return None, "structure", f"returned an object that could not be read: {why}", None
    states = [(p, lst) for p, lst in zip(passed[:4], lists, strict=False)] + [(passed[4],)]
    changed = _mutations(originals, states)
    fatal = [text for name, text in changed if name not in SCRATCH]
    if fatal:
        return reading.value, "mutation", f"{fatal[0]}: the notebook reuses it in its next cells", None
    view = _views(reading.value, passed[:4])
    if view:
        return reading.value, "mutation", view, None
    if not changed:
        return reading.value, None, None, None
    what = changed[0][1]
    again, _, _ = _call_once(backward, originals, timeout, globals_seen)
    second = call_user(_read_result, (again.value, len(originals[0])), timeout=timeout) if again.ok else None
    if second is None or not second.ok or not _same_result(reading.value, second.value):
        return reading.value, "mutation", (f"{what}, and a second call on fresh copies returned other "
                                           "gradients: the change reaches what it returns"), None
    return reading.value, None, None, f"{what}: harmless for the gradient here, but the caller's copy changed"


def _other_side(case: Case, forward_pass, act, loss: str, target):
    """The gradient with the other one-sided derivative at every unit exactly on its kink (ReLU'(0) = 1,
    leaky ReLU'(0) = 0.01), or None where no unit sits on a kink (or the activation is smooth)."""
    if not act.kinked or not any((f == 0).any() for f in forward_pass[1][:-1]):
        return None
    net_output, all_f, all_h = forward_pass
    delta = loss_gradient(loss, net_output, target)
    return backward_by_hand(case.weights, all_f, all_h, delta, act._replace(slope=flipped_at_kink(act)))


def _grade_case(backward, case: Case, activation: str, loss: str, oracle, history: list, timeout=None,
                globals_seen=None, lists: str = "K+2", indicator=None) -> CaseResult:
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
    common = dict(name=case.name, sizes=case.sizes, batch=int(case.net_input.shape[1]), group=case.group,
                  witnesses_agree=witness.ok, kinks_excluded=witness.excluded)  # fmt: skip
    handed_h = all_h[:-1] if lists == "K+1" else all_h  # as the user's own forward pass makes them
    result, error_kind, error, note = _call(backward, (case.weights, case.biases, all_f, handed_h, case.y),
                                            timeout, set() if globals_seen is None else globals_seen)
    if error_kind not in (None, "mutation"):
        history.append(Seen(case.name, expected, result, None, None, error_kind))
        return CaseResult(**common, ok=False, error_kind=error_kind, error=error, comparison=None,
                          first_wrong_layer=None, diagnoses=())  # fmt: skip
    notes = (note,) if note else ()
    comparison = compare_gradients(expected, result, dtype=dtype, label="yours vs jax")
    if not comparison.ok:  # at a kink any one-sided derivative is a valid subgradient: the other side too
        other = _other_side(case, forward_pass, act, loss, target)
        if other is not None:
            sided = compare_gradients(other, result, dtype=dtype, label="yours vs the other one-sided a'(0)")
            if sided.ok:
                comparison, notes = sided, (*notes, kink_note(act, indicator))
    diagnoses, ctx = (), None
    if not comparison.ok:
        seen_pass = (forward_pass[0], all_f, handed_h)  # the diagnoses speak of the lists the user had
        ctx = case_context(case.weights, seen_pass, act, loss, target, expected, dtype, case.biases)
        diagnoses = diagnose_case(result, comparison, ctx, [(s.name, s.expected) for s in history])
    history.append(Seen(case.name, expected, result, ctx, comparison, error_kind))
    return CaseResult(**common, ok=comparison.ok and error is None, error_kind=error_kind, error=error,
                      comparison=comparison, first_wrong_layer=first_wrong_layer(comparison.rows),
                      diagnoses=diagnoses, notes=notes)  # fmt: skip


def kink_note(act, indicator=None) -> str:
    """The note of a gradient that takes the other one-sided derivative at a kink (a valid subgradient),
    naming the user's own ``context.Indicator`` where the namespace has one, else the mask it implies."""
    at_zero, other = other_side_at_kink(act.derivative)
    sides = {"relu": ("f >= 0", "ReLU"), "leaky_relu": ("f > 0", "leaky ReLU")}.get(act.name, ("", act.name))
    who = indicator.describe() if indicator is not None else f"your mask uses {sides[0]}"
    return (f"{who}, so {sides[1]}'(0) = {other:g} where a pre-activation is exactly 0; jax.nn takes "
            f"{at_zero:g}; both are valid subgradients")


def _check_arguments(backward, dtype, timeout, cases, lists):
    if not callable(backward):
        raise TypeError(f"backward must be a function, got {type(backward).__name__}")
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"dtype must be float64 or float32, got {dtype}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0 or timeout == float("inf")):
        raise ValueError(f"timeout must be a finite number of seconds > 0 (or None), got {timeout!r}")
    if lists not in ("auto", "K+1", "K+2"):
        raise ValueError(f"lists must be 'auto', 'K+1' or 'K+2', got {lists!r}")
    if cases is None:
        return None
    if isinstance(cases, (str, bytes)) or not isinstance(cases, Iterable):
        raise TypeError(f"cases must be a list of battery Case objects (see make_battery), got "
                        f"{type(cases).__name__}")
    cases = list(cases)
    wrong = [type(case).__name__ for case in cases if not isinstance(case, Case)]
    if wrong:
        raise TypeError(f"cases must be a list of battery Case objects (see make_battery), got a {wrong[0]}")
    if not cases:
        raise ValueError("cases is empty: nothing to grade (pass None for the standard battery)")
    return cases


def check_backward(
    backward: Callable,
    *,
    activation: str = "relu",
    loss: str | None = None,
    batch: int = 1,
    dtype: npt.DTypeLike = np.float64,
    seed: int = 0,
    cases: Iterable[Case] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    loss_source: str | None = None,
    strict: bool | None = None,
    lists: str = "auto",
    namespace: dict | None = None,
    hints: str = "python",
    output_activation: str | None = None,
    reduction: str = "sum",
    l2: float = 0.0,
) -> BackwardReport:
    """Grade ``backward(all_weights, all_biases, all_f, all_h, y) -> (all_dl_dweights, all_dl_dbiases)``.

    It is called with the notebook's positional signature on every case of the battery (or the given
    ``cases``), with fresh copies of the arrays, and graded against ``jax.grad`` (finite differences as a
    second witness). Each call goes through ``usercode.call_user``: ``timeout`` seconds (None: no limit),
    the network globals it reads (``K``, ``D``, ``D_i``, ``D_o``) set to the case's and put back after,
    stdout to stderr, process state put back. This runs the function in this process: it trusts the code
    (to grade untrusted code, use ``manual-backprop check --notebook`` or ``grade``).

    The function's own namespace (``namespace``, else ``backward.__globals__``) is the context (see
    ``context``): ``loss=None`` takes the least-squares convention of its ``least_squares_loss`` /
    ``d_loss_d_output`` (else "least_squares"; an explicit ``loss`` wins); ``lists="auto"`` hands ``all_h``
    in the layout its ``compute_network_output`` makes ("K+1" or "K+2"; default "K+2", the notebook's "K+1"
    in a notebook); its ``indicator_function`` names the kink convention. At a kink either one-sided
    derivative is accepted. ``strict=None``: in a notebook only the notebook's task counts toward ``ok``
    (the other cases are reported "beyond the notebook"); elsewhere, or with ``strict=True``, every case.
    ``batch`` > 1 grades the full battery on that batch. ``hints``: "python" or "cli", the language of hints.
    ``output_activation``, ``reduction`` ("sum" or "mean") and ``l2`` describe an objective other than the
    notebook's (see ``objective``); the report's header always states the one graded against.
    """
    from oracle import jax_gradients  # the JAX import is paid only by the checks that need it

    dtype = np.dtype(dtype)
    cases = _check_arguments(backward, dtype, timeout, cases, lists)
    if namespace is None:
        namespace = getattr(backward, "__globals__", None)
    found = read_context(namespace, loss=loss is None, lists=lists == "auto")
    notes = [found.loss_note] if loss is None and found.loss_note else []
    if loss is None:
        loss, loss_source = found.loss or "least_squares", loss_source or found.loss_source
    loss = objective_name(loss, output_activation, reduction, l2)
    if lists == "auto":
        lists = found.lists or ("K+1" if found.notebook else "K+2")
    strict = (not found.notebook or batch != 1) if strict is None else bool(strict)
    if cases is None:
        cases = (make_battery(activation, loss, batch, dtype, seed) if batch != 1 or not found.notebook
                 else make_notebook_battery(activation, loss, dtype, seed))
    history = []  # every call, for the function-level story
    seen: set = set()
    results = tuple(_grade_case(backward, case, activation, loss, jax_gradients, history, timeout, seen,
                                lists, found.indicator) for case in cases)
    counted = {case.name for case in cases if strict or case.group == "task"}
    examples = _one_example(backward, [c for c in cases if c.name in counted], results, activation, loss,
                            jax_gradients, timeout, lists)
    story = tell([seen_case for seen_case in history if seen_case.name in counted], loss, hints=hints,
                 function=backward, examples=examples)
    if story is not None and story.codes == ("loss_convention",) and loss_source and found.loss_source:
        story = _own_convention(story, parse_objective(loss).base)
    name = getattr(backward, "__qualname__", None) or safe_repr(backward)
    note = globals_note(getattr(backward, "__name__", None) or name, seen)
    notes += ([note] if note else []) + case_notes(results)
    header = tuple(line for line in found.header() if line != loss_source and line != found.loss_source)
    return BackwardReport(name, activation, loss, int(batch), dtype.name, attach(results, story),
                          loss_source=loss_source, notes=tuple(notes), story=story, strict=strict,
                          context=header)


def _one_example(backward, cases, results, activation, loss, oracle, timeout, lists) -> list:
    """The first failing case of a batch graded again on its first example alone (``Seen`` calls): the
    chain reads a batch-1 call, where the bias gradient is the user's own delta."""
    by_name = {result.name: result for result in results}
    for case in cases:
        result = by_name[case.name]
        if not result.ok and result.comparison is not None and case.net_input.shape[1] > 1:
            y = case.y[:1] if np.ndim(case.y) == 1 else case.y[:, :1]
            column = dataclasses.replace(case, name=f"{case.name}, example 0", y=y,
                                         net_input=case.net_input[:, :1])
            seen: list = []
            _grade_case(backward, column, activation, loss, oracle, seen, timeout, set(), lists)
            return seen
    return []


def _own_convention(story, loss: str):
    """The other-convention story when the convention came from the user's own loss: not a choice of
    grading then, but a backward pass that disagrees with the user's own loss by a factor of 2."""
    other = "least_squares" if loss == "sum_of_squares" else "sum_of_squares"
    text = (f"this is the gradient of {FORMULAS[other]}, but your own loss is {FORMULAS[loss]}: your "
            f"backward pass is {'half' if other == 'least_squares' else 'twice'} the gradient of your loss "
            "(the factor 2 of d_loss_d_output)")
    return dataclasses.replace(story, text=text, texts=())


def case_notes(results) -> list[str]:
    """The report's notes from its cases' notes: each text once, with the cases it came from."""
    where: dict[str, list[str]] = {}
    for case in results:
        for text in case.notes:
            where.setdefault(text, []).append(case.name)
    notes = []
    for text, names in where.items():
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        shown = ", ".join(f"'{n}'" for n in names[:3]) + more
        notes.append(f"{text} (case{'s' if len(names) > 1 else ''} {shown})")
    return notes
