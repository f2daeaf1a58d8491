"""Diagnosis: name the bug behind each wrong gradient tensor, in plain words, by matching known bugs.

For a failing tensor of layer k the user's array is compared with what each classic bug would have
produced *at that layer*, given the right delta coming from above (errors flow toward the input, so the
highest failing layer is where the bug is; the layers below inherit it):

- shape: transposed, bias not summed over the batch, a tensor of another layer, or just the wrong shape;
- precision: right to the precision of a lower dtype than the parameters' (returned float32 for float64),
  or right up to a relative error just above the tolerance (no bug pattern can be told apart there);
- values: NaN or inf, all zeros, sign flipped, scaled by a constant c (claimed only where delta_k has
  several nonzero entries: else "not sure"), transposed (square matrices whose transpose differs), equal
  to another layer's gradient;
- the backward step from layer k+1 to k, with the candidates of ``patterns.py``: activation mask missing,
  from the wrong layer, without the bias, applied twice, another activation's derivative, h instead of the
  mask, Omega instead of Omega^T; at the top, dL/d(output) without the target; the weight gradient built
  from the wrong layer's activations (or the pre-activations f instead of h).

The function-level story over all cases (``story.py``) is built on top of these tensor diagnoses.

Matching uses the "diagnosis" tolerance (``tolerances.py``): bug patterns differ by O(1). A case's
diagnosis also says when the function keeps state between calls (it returns an earlier case's gradient) or
starts the recursion from another loss's derivative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compare.compare import compare_gradients
from ..compare.gradient_forms import as_gradient_array
from ..maths.backprop import backward
from ..maths.losses import loss_gradient
from ..tolerances import (
    DTYPE_EPS_FACTOR,
    FACTOR_RTOL,
    MIN_SUPPORT,
    UNIT_FACTOR_EPS,
    agree,
    gradient_scale,
    tolerance_for,
)
from ..validate import LOSSES
from .patterns import attempt, close, describe_c, step_candidates


@dataclass(frozen=True)
class Diagnosis:
    """Why tensor (``layer``, ``kind``) is wrong: a short ``code`` and a sentence ``text``."""

    layer: int
    kind: str
    code: str
    text: str

    def to_dict(self) -> dict:
        return {"layer": self.layer, "kind": self.kind, "code": self.code, "text": self.text}


@dataclass(frozen=True)
class Context:
    """What the diagnosis needs about the network: checked arrays of one dtype (nothing is modified).

    ``deltas[k]`` = dL/df_k (D_{k+1}, N), the right one; ``expected`` the right gradient pair; ``rtol``
    and ``atol`` the "diagnosis" tolerance; ``compare_rtol``, ``compare_atol`` and ``scale`` those of
    the comparison that failed the tensor (``|actual - expected| <= compare_atol * scale + compare_rtol
    * |expected|``), to say by how much it failed; ``top_candidates`` (code, text, dL/df_K) the wrong starts
    of the recursion tried at the top layer.
    """

    weights: list
    all_f: list
    all_h: list
    deltas: list
    derivative: object
    expected: tuple
    rtol: float
    atol: float
    compare_rtol: float
    compare_atol: float
    scale: float
    dtype: np.dtype  # the parameters' (and the right gradient's)
    top_candidates: tuple = ()
    biases: list | None = None  # for the patterns that add theta (weight decay, an update returned)


def make_context(
    weights, all_f, all_h, dl_df_last, act, expected, dtype, top_candidates=(), biases=None
) -> Context:
    """Build a ``Context``: runs the right backward recursion once to keep every delta.

    ``top_candidates``: (code, text, dL/df_K) for wrong starts of the recursion (another loss's derivative).
    """
    deltas = [None] * len(weights)
    backward(weights, all_f, all_h, dl_df_last, act, all_deltas=deltas)
    tolerance = tolerance_for(dtype, "diagnosis")
    compared = tolerance_for(dtype, "analytic")
    return Context(
        weights=weights,
        all_f=all_f,
        all_h=all_h,
        deltas=deltas,
        derivative=act.derivative,
        expected=expected,
        rtol=tolerance.rtol,
        atol=tolerance.atol,
        top_candidates=tuple(top_candidates),
        compare_rtol=compared.rtol,
        compare_atol=compared.atol,
        scale=gradient_scale(expected),
        dtype=np.dtype(dtype),
        biases=biases,
    )


def case_context(weights, forward_pass, act, loss: str, target, expected, dtype, biases=None) -> Context:
    """``make_context`` for one graded case: ``forward_pass`` is ``(net_output, all_f, all_h)``; the wrong
    starts of the recursion tried at the top layer are the other losses' derivatives dL/d(output)."""
    net_output, all_f, all_h = forward_pass
    wrong_losses = [
        ("wrong_loss_derivative", f"dL/d(output) of {other} used for the {loss} loss",
         loss_gradient(other, net_output, target))
        for other in LOSSES if other != loss
    ]  # fmt: skip
    return make_context(weights, all_f, all_h, loss_gradient(loss, net_output, target), act, expected, dtype,
                        top_candidates=wrong_losses, biases=biases)  # fmt: skip


_close = close


def _telling(actual, candidate, layer: int, kind: str, ctx: Context) -> bool:
    """``actual`` matches a bug's ``candidate`` that differs from the right gradient (else it tells nothing:
    e.g. h_{k+1} equals f_k where every ReLU is on)."""
    expected = ctx.expected[0 if kind == "weights" else 1][layer]
    return _close(actual, candidate, ctx) and not (
        np.shape(candidate) == np.shape(expected) and _close(candidate, expected, ctx)
    )


def _relative_error(actual, expected, ctx: Context) -> float:
    """The largest error relative to the comparison's allowance per unit of rtol: it fails iff > rtol."""
    floor = ctx.compare_atol / ctx.compare_rtol * ctx.scale
    with np.errstate(invalid="ignore", over="ignore"):
        return float(np.max(np.abs(actual - expected) / (np.abs(expected) + floor), initial=0.0))


def _precision_diagnosis(actual, expected, returned, ctx: Context):
    """(code, text) for a tensor that is right up to rounding: in a lower dtype than the parameters', or
    by a relative error between the comparison's tolerance and the diagnosis's."""
    relative = _relative_error(actual, expected, ctx)
    if returned.kind == "f" and np.finfo(returned).eps > np.finfo(expected.dtype).eps:
        within = DTYPE_EPS_FACTOR * float(np.finfo(returned).eps)
        if np.all(agree(actual, expected, rtol=within, atol=within, scale=ctx.scale)):
            return "dtype", (
                f"returned {returned.name} where the parameters are {expected.dtype.name}: right to "
                f"{returned.name} precision (relative error {relative:.1e}, tolerance "
                f"{ctx.compare_rtol:.0e}); compute and return {expected.dtype.name} arrays"
            )
    if _close(actual, expected, ctx):
        return "precision", (
            f"close to the right gradient, but its relative error {relative:.1e} exceeds the tolerance "
            f"{ctx.compare_rtol:.0e} (precision lost: a lower-precision intermediate, or a cancelling sum?)"
        )
    return None


def _finite_diagnosis(actual, expected):
    if not np.all(np.isfinite(actual)):
        return "nan", "NaN or inf in the gradient"
    if not np.any(actual):
        return "zeros", "all zeros, where the right gradient is not"
    return None


def _value_diagnosis(actual, expected, ctx: Context, columns: int, layer: int):
    """(code, text) for an array of the right shape: a multiple or the transpose of the right one.

    A multiple is claimed only where delta_layer has several nonzero entries: with one, Omega_layer =
    delta h^T carries a single number, and any change to it looks like a constant factor ("not_sure")."""
    e_norm = float(np.vdot(expected, expected))
    if e_norm > 0:
        c = float(np.vdot(actual, expected)) / e_norm
        if _close(actual, c * expected, ctx) and abs(c - 1) > ctx.rtol and (
            np.count_nonzero(ctx.expected[1][layer]) < MIN_SUPPORT
        ):
            return "not_sure", (
                f"wrong values in {int(np.count_nonzero(actual != expected))} of {actual.size} entries; only "
                f"one entry of delta_{layer} is nonzero on this network, so its cause cannot be told here"
            )
        if _close(actual, c * expected, ctx):
            if np.isclose(c, -1, rtol=FACTOR_RTOL):
                return (
                    "sign",
                    "sign flipped (the right gradient times -1: e.g. y - output instead of output - y)",
                )
            described = describe_c(c, columns)
            telling = described != f"{c:.6g}"  # 2, 1/2, 1/N: factors that name a bug
            # A single number is a multiple of any other: there, name only the telling factors.
            # c within rounding of 1 is no scaling: the tensor is right to that precision
            if abs(c - 1) > max(ctx.rtol, UNIT_FACTOR_EPS * np.finfo(actual.dtype).eps) and (
                actual.size > 1 or telling
            ):
                return "scaled", f"scaled by a constant c = {described}"
    if (
        actual.ndim == 2
        and actual.shape[0] == actual.shape[1] > 1
        and not _close(expected.T, expected, ctx)  # a symmetric gradient is its own transpose
        and _close(actual.T, expected, ctx)
    ):
        return "transposed", "transposed: the transpose of the right gradient"
    return None


def _other_layer(actual, layer, kind, ctx: Context):
    for part, other_kind in enumerate(("weights", "biases")):
        for other, cand in enumerate(ctx.expected[part]):
            if (other, other_kind) != (layer, kind) and np.any(cand) and _telling(
                actual, cand, layer, kind, ctx
            ):
                return "other_layer", f"equal to the {other_kind} gradient of layer {other}"
    return None


def _structural(actual, layer, kind, ctx: Context):
    """Bugs in the backward step or in forming the tensor from delta; (code, text) or None.

    Where several step bugs give the same array (a mask of all ones is no mask), all are named."""
    h = ctx.all_h
    form = (lambda d: d @ h[layer].T) if kind == "weights" else (lambda d: d.sum(axis=1, keepdims=True))
    matches = [
        (code, text)
        for code, text, delta in step_candidates(layer, ctx)
        if delta is not None and _telling(actual, attempt(lambda d=delta: form(d)), layer, kind, ctx)
    ]
    if matches:
        codes = list(dict.fromkeys(code for code, _ in matches))
        # e.g. a mask of all ones is no mask: name both readings
        return codes[0], " or ".join(dict.fromkeys(text for _, text in matches))
    if kind == "weights":
        d = ctx.deltas[layer]
        for j in (layer + 1, layer - 1):
            if 0 <= j < len(h) and _telling(actual, attempt(lambda j=j: d @ h[j].T), layer, kind, ctx):
                return "wrong_activations", f"weight gradient built from h_{j} instead of h_{layer}"
        if layer > 0 and _telling(actual, attempt(lambda: d @ ctx.all_f[layer - 1].T), layer, kind, ctx):
            return "wrong_activations", (
                f"weight gradient built from the pre-activations f_{layer - 1} "
                f"instead of the activations h_{layer}"
            )
    return None


def diagnose_tensor(actual, layer: int, kind: str, ctx: Context) -> Diagnosis:
    """Say in words why ``actual`` (the user's tensor for ``layer``, ``kind``) differs from the right one."""
    expected = ctx.expected[0 if kind == "weights" else 1][layer]
    columns = ctx.deltas[-1].shape[1]
    actual, problem = as_gradient_array(actual)
    if actual is None:
        if problem == "missing":
            return Diagnosis(
                layer, kind, "missing",
                f"missing: got None instead of an array of shape {expected.shape} (was this layer skipped?)",
            )  # fmt: skip
        return Diagnosis(layer, kind, "type", f"{problem}, of shape {expected.shape}")
    found = None
    if actual.shape != expected.shape:
        got = f"wrong shape: expected {expected.shape}, got {actual.shape}"
        if actual.dtype.kind not in "fiu":
            return Diagnosis(layer, kind, "shape", got)
        actual = actual.astype(expected.dtype, copy=False)
        if actual.shape == expected.shape[::-1] and _close(actual.T, expected, ctx):
            return Diagnosis(
                layer, kind, "transposed", f"transposed: {got} (the transpose of the right gradient)"
            )
        if (
            kind == "biases"
            and actual.ndim == 2
            and actual.shape[0] == expected.shape[0]
            and columns > 1
            and actual.shape[1] == columns
            and _close(actual.sum(axis=1, keepdims=True), expected, ctx)
        ):
            return Diagnosis(
                layer,
                kind,
                "bias_not_summed",
                f"bias gradient not summed over the batch: {got}; summed over its columns it "
                "is right (use delta.sum(axis=1, keepdims=True))",
            )
        found = _other_layer(actual, layer, kind, ctx) or _structural(actual, layer, kind, ctx)
        if found:
            return Diagnosis(layer, kind, found[0], f"{found[1]} ({got})")
        hint = " (biases are column vectors (D, 1))" if kind == "biases" and actual.ndim == 1 else ""
        return Diagnosis(layer, kind, "shape", got + hint)
    if actual.dtype.kind not in "fiu":
        return Diagnosis(layer, kind, "shape", f"wrong dtype {actual.dtype}: expected a floating array")
    returned = actual.dtype
    actual = actual.astype(expected.dtype, copy=False)
    found = (
        _finite_diagnosis(actual, expected)
        or _precision_diagnosis(actual, expected, returned, ctx)
        or _structural(actual, layer, kind, ctx)
        or _value_diagnosis(actual, expected, ctx, columns, layer)
        or _other_layer(actual, layer, kind, ctx)
    )
    if found:
        return Diagnosis(layer, kind, *found)
    relative = _relative_error(actual, expected, ctx)
    fine = agree(actual, expected, rtol=ctx.compare_rtol, atol=ctx.compare_atol, scale=ctx.scale)
    wrong = int(np.count_nonzero(~fine))
    where = f"wrong values in {wrong} of {actual.size} entries" if wrong else "wrong values"
    return Diagnosis(
        layer,
        kind,
        "unknown",
        f"{where} (relative error {relative:.1e}, tolerance {ctx.compare_rtol:.0e}); "
        "no known bug pattern fits",
    )


def first_wrong_layer(rows) -> int | None:
    """The highest layer with a failing tensor: the layers below it inherit its error through delta."""
    failing = [row.layer for row in rows if not row.ok]
    return max(failing) if failing else None


def _stale(result, history, dtype, expected) -> str | None:
    """The name of an earlier case whose right gradient (unlike this case's) ``result`` equals, if any."""
    for name, earlier in history:
        if compare_gradients(earlier, expected, dtype=dtype, kind="diagnosis").ok:
            continue  # the same network again: matching its right gradient is not stale
        if compare_gradients(earlier, result, dtype=dtype, kind="diagnosis").ok:
            return name
    return None


def diagnose_case(result, comparison, ctx: Context, history=()) -> tuple:
    """A ``Diagnosis`` per failing tensor of ``comparison`` (``result`` against ``ctx.expected``), in
    backward order: the first wrong layer first, then the layers that inherit its error. First of all, a
    "stale" one where ``result`` equals the right gradient of an earlier case of ``history`` ((name,
    right gradient) pairs): the function keeps state between calls."""
    first = first_wrong_layer(comparison.rows)
    if first is None:
        return ()
    failing = sorted((row for row in comparison.rows if not row.ok), key=lambda r: -r.layer)
    diagnoses = tuple(
        diagnose_tensor(result[0 if row.kind == "weights" else 1][row.layer], row.layer, row.kind, ctx)
        for row in failing
    )
    stale = _stale(result, history, ctx.dtype, ctx.expected)
    if stale:
        text = f"equal to the right gradient of case '{stale}': the function keeps state between calls"
        diagnoses = (Diagnosis(first, "weights", "stale", text),) + diagnoses
    return diagnoses
