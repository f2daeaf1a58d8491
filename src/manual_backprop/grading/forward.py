"""Grading a user's forward pass, ``compute_network_output(net_input, all_weights, all_biases)``.

It is called (through ``usercode.call_user``) on every case of the battery with fresh copies of the arrays,
and what it returns, ``(net_output, all_f, all_h)``, is compared with ``backprop.forward`` quantity by
quantity in the order they are computed: all_h[0], all_f[0], all_h[1], ..., all_f[K], the output. Both
list conventions are accepted: ``all_h`` of K+1 entries h_0..h_K with the output in ``all_f[K]`` (the
published notebook's), or K+2 entries with the output last (this project's). The first wrong quantity
is matched against known mistakes (``PATTERNS``): its inputs are right, so the mistake is at that step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..compare import display
from ..maths.activations import ACTIVATIONS, get_activation
from ..maths.backprop import forward
from ..tolerances import agree, gradient_scale, tolerance_for
from ..user_globals import globals_note, network_globals
from ..usercode import DEFAULT_TIMEOUT, call_user, describe_exception
from .battery import Case, make_battery, make_notebook_battery
from .context import LIST_LAYOUTS as CONVENTIONS  # the two list layouts a forward pass may return
from .context import is_notebook

# The named mistakes, each recognised by recomputing it from the right inputs of the first wrong quantity.
PATTERNS = {
    "bias_missing": "bias missing: all_f[{k}] = Omega_{k} h_{k} without + beta_{k}",
    "no_matmul": "no matrix product: Omega_{k} * h_{k} is elementwise; use np.matmul(all_weights[{k}], "
                 "all_h[{k}]) (or @)",
    "activation_before_weights": "activation applied before the weights: a(h_{k}) went into layer {k} "
                                 "(the layer is f = beta + Omega h, then h = a(f))",
    "wrong_layer_order": "the weights and biases of layer {j} used at layer {k} (wrong layer order)",
    "activation_stored_in_f": "all_f[{k}] holds the activation a(f_{k}); all_f keeps the pre-activations",
    "activation_after_last": "activation after the last layer: the output is f_K = beta_K + Omega_K h_K, "
                             "with no activation",
    "activation_missing": "{activation} missing: all_h[{n}] = all_f[{k}]; use all_h[{n}] = "
                          "{activation}(all_f[{k}])",
    "other_activation": "the {other} activation used where the network's is {activation}",
    "hidden_as_output": "the output is the last hidden layer h_K, not f_K = beta_K + Omega_K h_K",
    "input_not_h0": "all_h[0] is not the input net_input",
}


class _Structure(Exception):
    """What the function returned is not (net_output, all_f, all_h) of the right lengths (our message)."""


@dataclass(frozen=True)
class ForwardCaseResult:
    """The grade of one case. ``error_kind``: None, "exception", "timeout", "exit", "structure",
    "mutation" or "values"; ``first_wrong`` the first wrong quantity ("all_f[2]"), at ``layer``;
    ``pattern`` the key of ``PATTERNS`` that explains it (None: none fits) and ``diagnosis`` its text."""

    name: str
    sizes: tuple
    batch: int
    ok: bool
    convention: str | None = None
    error_kind: str | None = None
    error: str | None = None
    first_wrong: str | None = None
    layer: int | None = None
    pattern: str | None = None
    diagnosis: str | None = None
    max_error: float | None = None
    group: str = "task"  # "task": counts toward the verdict; "beyond": beyond the notebook's task

    @property
    def summary(self) -> str:
        if self.ok:
            return "-"
        if self.first_wrong is not None:
            return f"{self.first_wrong}: {self.diagnosis}"
        return self.error or "failed"


@dataclass(frozen=True, repr=False)
class ForwardReport(display.Displayed):
    """The grade of a forward pass on the battery: ``cases`` (``ForwardCaseResult``), the network globals
    set for it (``globals_set``), ``notes``; ``str()`` is the table, ``to_dict()`` plain data."""

    function: str
    activation: str
    batch: int
    dtype: str
    cases: tuple
    globals_set: tuple = ()
    notes: tuple = ()
    strict: bool = True  # every case counts; False: only the notebook's task ("task" cases) counts

    @property
    def counted(self) -> tuple:
        return tuple(c for c in self.cases if self.strict or c.group == "task")

    @property
    def ok(self) -> bool:
        return all(case.ok for case in self.counted)

    @property
    def failing(self) -> list:
        return [case for case in self.counted if not case.ok]

    @property
    def verdict(self) -> str:
        counted = self.counted
        if self.ok:
            what = (f"all {len(counted)} cases" if self.strict
                    else f"the notebook's task ({len(counted)} cases)")
            beyond = [c for c in self.cases if c not in counted and not c.ok]
            more = f"; beyond the notebook {len(beyond)} fail (not counted)" if beyond else ""
            return f"OK: {self.function} agrees with the forward pass on {what}{more}"
        first = self.failing[0]
        return (f"FAIL: {len(self.failing)} of {len(counted)} cases fail; first: {first.name}: "
                f"{first.summary}")

    def __str__(self) -> str:
        counted = self.counted
        passed = sum(case.ok for case in counted)
        conventions = {case.convention for case in self.cases if case.convention}
        shown = f"; {CONVENTIONS[conventions.pop()]}" if len(conventions) == 1 else ""
        task = "" if self.strict else " of the notebook's task"
        lines = [f"{self.function}: {passed}/{len(counted)} cases{task} pass ({self.activation}, batch "
                 f"{self.batch}, {self.dtype}{shown})"]
        for title, cases in (("", counted), ("beyond the notebook (not counted: strict grading counts them):",
                                             [c for c in self.cases if c not in counted])):
            if not cases:
                continue
            lines += ([title] if title else []) + [
                f"{'case':<32} {'sizes':>21}  {'verdict':>7}  {'first wrong':<12} diagnosis"]
            lines += [f"{case.name:<32} {'-'.join(map(str, case.sizes)):>21}  "
                      f"{'ok' if case.ok else 'FAIL':>7}  {case.first_wrong or '-':<12} "
                      f"{'-' if case.ok else (case.diagnosis or case.error)}"
                      for case in cases]
        lines += [f"note: {note}" for note in self.notes]
        lines.append(self.verdict)
        return "\n".join(lines)

    def display_table(self) -> display.Table:
        return display.forward_table(self, CONVENTIONS)

    def to_dict(self) -> dict:
        return {
            "function": self.function, "activation": self.activation, "batch": self.batch,
            "dtype": self.dtype, "ok": self.ok, "globals_set": list(self.globals_set),
            "notes": list(self.notes), "strict": self.strict,
            "cases": [dict(asdict(case), sizes=list(case.sizes))
                                                 for case in self.cases],
        }


# ------------------------------------------------------------------------------------------------ reading


def _read_result(value, n_layers: int):
    """``(net_output, all_f, all_h, convention)`` as float64 arrays, or ``_Structure`` saying what is off.
    Runs inside ``call_user``: the user's objects (their ``len``, ``__array__``) may do anything."""
    expected = "expected a triple (net_output, all_f, all_h)"
    if value is None:
        raise _Structure(f"returned None; {expected}")
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        size = f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""
        raise _Structure(f"returned a {type(value).__name__}{size}; {expected}")
    net_output, all_f, all_h = value
    for name, part in (("all_f", all_f), ("all_h", all_h)):
        if not isinstance(part, (list, tuple)):
            raise _Structure(f"{name} is a {type(part).__name__}; expected a list of arrays")
    if len(all_f) != n_layers:
        raise _Structure(f"all_f has {len(all_f)} entries; expected {n_layers} (K+1, one per layer)")
    if len(all_h) not in (n_layers, n_layers + 1):
        raise _Structure(f"all_h has {len(all_h)} entries; expected {n_layers} (h_0..h_K, the output in "
                         f"all_f[K]) or {n_layers + 1} (the output last)")

    def array(item, name):
        if item is None:
            raise _Structure(f"{name} is None: never computed")
        return np.array(item, dtype=np.float64)

    convention = "K+1" if len(all_h) == n_layers else "K+2"
    return (array(net_output, "net_output"), [array(f, f"all_f[{k}]") for k, f in enumerate(all_f)],
            [array(h, f"all_h[{k}]") for k, h in enumerate(all_h)], convention)


# ------------------------------------------------------------------------------------------------ diagnosis


class _Context:
    """The case's right inputs and quantities, for recomputing a mistake at the first wrong quantity."""

    def __init__(self, case: Case, activation: str):
        self.act, self.activation = get_activation(activation), activation
        self.weights = [w.astype(np.float64) for w in case.weights]
        self.biases = [b.astype(np.float64) for b in case.biases]
        self.x = case.net_input.astype(np.float64)
        self.dtype = case.weights[0].dtype
        self.output, self.all_f, self.all_h = forward(
            [w.astype(self.dtype) for w in case.weights], [b.astype(self.dtype) for b in case.biases],
            case.net_input, self.act)
        self.tolerance = tolerance_for(self.dtype, "analytic")
        self.loose = tolerance_for(self.dtype, "diagnosis")

    def same(self, actual, expected, tolerance=None) -> bool:
        expected = np.asarray(expected, dtype=np.float64)
        if actual.shape != expected.shape:
            return False
        tolerance = tolerance or self.tolerance
        return bool(agree(np.asarray(actual, dtype=np.float64), expected, rtol=tolerance.rtol,
                          atol=tolerance.atol, scale=gradient_scale(expected)).all())

    def like(self, actual, candidate) -> bool:
        return candidate is not None and self.same(actual, candidate, self.loose)


def _quantities(ctx: _Context, net_output, all_f, all_h):
    """(label, layer, yours, ours) in the order the forward pass computes them."""
    last = len(ctx.weights) - 1
    yield "all_h[0]", 0, all_h[0], ctx.x
    for k in range(last + 1):
        yield f"all_f[{k}]", k, all_f[k], ctx.all_f[k]
        if k < last:
            yield f"all_h[{k + 1}]", k, all_h[k + 1], ctx.all_h[k + 1]
    if len(all_h) == last + 2:
        yield f"all_h[{last + 1}]", last, all_h[last + 1], ctx.output
    yield "net_output", last, net_output, ctx.output


def _broadcast(operation, *arrays):
    try:
        with np.errstate(all="ignore"):
            return operation(*arrays)
    except ValueError:
        return None


def _diagnose(label: str, k: int, actual, ctx: _Context):
    """(pattern key, text) for the first wrong quantity ``label`` of layer ``k``; (None, None): none fits."""
    a = ctx.act.function
    last = len(ctx.weights) - 1
    omega, beta, h = ctx.weights[k], ctx.biases[k], ctx.all_h[k].astype(np.float64)
    fmt = {"k": k, "n": k + 1, "activation": ctx.activation}
    candidates = []
    if label == "all_h[0]":
        candidates.append(("input_not_h0", None))
    elif label.startswith("all_f"):
        candidates += [
            ("bias_missing", omega @ h),
            ("no_matmul", _broadcast(lambda w, x, b: w * x + b, omega, h, beta)),
            ("no_matmul", _broadcast(lambda w, x, b: w * x.T + b, omega, h, beta)),
            ("activation_before_weights", omega @ a(h) + beta),
            ("activation_after_last" if k == last else "activation_stored_in_f", a(omega @ h + beta)),
        ]
        for j, (other_w, other_b) in enumerate(zip(ctx.weights, ctx.biases, strict=True)):
            if j != k and other_w.shape[1] == h.shape[0]:
                candidates.append((("wrong_layer_order", j), other_w @ h + other_b))
    elif label.startswith("all_h") and label != f"all_h[{last + 1}]":  # a hidden layer's activation
        f = ctx.all_f[k].astype(np.float64)
        candidates.append(("activation_missing", f))
        for other in ACTIVATIONS:
            if other != ctx.activation:
                candidates.append((("other_activation", other), get_activation(other).function(f)))
    else:  # the output: all_h[K+1] or net_output
        candidates += [("activation_after_last", a(ctx.output.astype(np.float64))),
                       ("hidden_as_output", ctx.all_h[last].astype(np.float64))]
    for key, candidate in candidates:
        if key == "input_not_h0" or ctx.like(actual, candidate):
            if isinstance(key, tuple):
                key, value = key
                fmt = dict(fmt, j=value, other=value)
            return key, PATTERNS[key].format(**fmt)
    return None, None


def _grade_case(function, case: Case, activation: str, timeout) -> tuple[ForwardCaseResult, tuple]:
    common = dict(name=case.name, sizes=case.sizes, batch=int(case.net_input.shape[1]), group=case.group)
    originals = (case.net_input, case.weights, case.biases)
    passed = (case.net_input.copy(), [w.copy() for w in case.weights], [b.copy() for b in case.biases])
    lists = (passed[0], list(passed[1]), list(passed[2]))
    call = call_user(function, lists, timeout=timeout, globals_to_set=network_globals(case.weights))
    if not call.ok:
        error = call.error
        if call.status == "raised" and "could not be broadcast" in (call.message or ""):
            error += " (an elementwise * where a matrix product belongs? use np.matmul or @)"
        kind = {"raised": "exception"}.get(call.status, call.status)
        return ForwardCaseResult(**common, ok=False, error_kind=kind, error=error), call.globals_set
    reading = call_user(_read_result, (call.value, len(case.weights)), timeout=timeout)
    if not reading.ok:
        if isinstance(reading.exception, _Structure):
            error = safe_message(reading.exception)
        else:  # its len, iteration or conversion raised (or hung): the user's object, not our bug
            why = describe_exception(reading.exception) if reading.exception is not None else reading.error
            error = f"returned an object that could not be read: {why}"
        return ForwardCaseResult(**common, ok=False, error_kind="structure", error=error), call.globals_set
    net_output, all_f, all_h, convention = reading.value
    ctx = _Context(case, activation)
    result = None
    for label, k, yours, ours in _quantities(ctx, net_output, all_f, all_h):
        if ctx.same(yours, ours):
            continue
        pattern, text = _diagnose(label, k, yours, ctx)
        if text is None:
            ours = np.asarray(ours, dtype=np.float64)
            if yours.shape != ours.shape:
                text = f"wrong shape: expected {ours.shape}, got {yours.shape}"
            else:
                text = "wrong values; no known bug pattern fits"
        worst = (float(np.max(np.abs(yours - np.asarray(ours, np.float64))))
                 if yours.shape == np.shape(ours) else None)
        result = ForwardCaseResult(**common, ok=False, convention=convention, error_kind="values",
                                   first_wrong=label, layer=k, pattern=pattern, diagnosis=text,
                                   max_error=worst)
        break
    mutated = _mutation(originals, passed, lists)
    if mutated:
        base = result or ForwardCaseResult(**common, ok=False, convention=convention)
        return ForwardCaseResult(**dict(asdict(base), sizes=case.sizes, ok=False, error_kind="mutation",
                                        error=mutated)), call.globals_set
    return result or ForwardCaseResult(**common, ok=True, convention=convention), call.globals_set


def safe_message(exc) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__


def _mutation(originals, passed, lists) -> str | None:
    x, weights, biases = originals
    if not np.array_equal(x, passed[0]):
        return "net_input was modified in place"
    for name, orig, copies, given in (("all_weights", weights, passed[1], lists[1]),
                                      ("all_biases", biases, passed[2], lists[2])):
        if len(given) != len(orig) or any(a is not b for a, b in zip(given, copies, strict=False)):
            return f"{name} (the list) was modified"
        for k, (o, c) in enumerate(zip(orig, copies, strict=True)):
            if not np.array_equal(o, c):
                return f"{name}[{k}] was modified in place"
    return None


def check_forward(function, *, activation: str = "relu", batch: int = 1, dtype=np.float64, seed: int = 0,
                  cases=None, timeout: float | None = DEFAULT_TIMEOUT, strict: bool | None = None,
                  namespace: dict | None = None) -> ForwardReport:
    """Grade ``function(net_input, all_weights, all_biases) -> (net_output, all_f, all_h)``.

    Called on every case of the battery (or the given ``cases``) through ``call_user``, in this process (it
    trusts the code): each call has ``timeout`` seconds, the network globals it reads (``K``, ``D``, ``D_i``,
    ``D_o``) set to the case's and put back after, fresh copies of the arrays. Nothing it does escapes.
    In a notebook (``namespace``, else the function's globals) only the notebook's task counts toward
    ``ok`` unless ``strict`` (see ``battery.make_notebook_battery``); elsewhere every case counts.
    """
    if not callable(function):
        raise TypeError(f"function must be callable, got {type(function).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"dtype must be float64 or float32, got {dtype}")
    namespace = getattr(function, "__globals__", None) if namespace is None else namespace
    notebook = isinstance(namespace, dict) and is_notebook(namespace) and batch == 1
    strict = not notebook if strict is None else bool(strict)
    if cases is None:
        cases = (make_notebook_battery(activation, "least_squares", dtype, seed) if notebook
                 else make_battery(activation, "least_squares", batch, dtype, seed))
    cases = list(cases)
    if not cases:
        raise ValueError("cases is empty: nothing to grade (pass None for the standard battery)")
    if not all(isinstance(case, Case) for case in cases):
        raise TypeError("cases must be a list of battery Case objects (see make_battery)")
    get_activation(activation)
    results, read = [], set()
    for case in cases:
        result, set_names = _grade_case(function, case, activation, timeout)
        results.append(result)
        read.update(set_names)
    name = getattr(function, "__qualname__", None) or type(function).__name__
    globals_set = tuple(n for n in ("K", "D", "D_i", "D_o") if n in read)
    note = globals_note(name, globals_set)
    return ForwardReport(name, activation, int(batch), dtype.name, tuple(results), globals_set,
                         (note,) if note else (), strict)
