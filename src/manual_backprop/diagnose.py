"""Name the kind of a wrong gradient tensor, in plain words, by matching it against known bugs.

For a failing tensor of layer k the user's array is compared with what each classic bug would have
produced *at that layer*, given the right delta coming from above (errors flow toward the input, so the
highest failing layer is where the bug is; the layers below inherit it):

- shape: transposed, bias not summed over the batch, a tensor of another layer, or just the wrong shape;
- precision: right to the precision of a lower dtype than the parameters' (returned float32 for float64),
  or right up to a relative error just above the tolerance (no bug pattern can be told apart there);
- values: NaN or inf, all zeros, sign flipped, scaled by a constant c, transposed (square matrices whose
  transpose differs), equal to another layer's gradient;
- the backward step from layer k+1 to k: activation mask missing, mask from the wrong layer, activations
  h used instead of the mask, Omega instead of Omega^T (missing transpose); the weight gradient built
  from the wrong layer's activations (or the pre-activations f instead of h).

Matching uses the "diagnosis" tolerance (``tolerances.py``): bug patterns differ by O(1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import other_side_at_kink
from .backprop import backward
from .compare import as_gradient_array
from .tolerances import gradient_scale, tolerance_for

# A tensor returned in a lower precision than the parameters' is "right to that precision" when every
# entry is within this many of its eps of the right value (relative to the entry and to the gradient's
# scale): a cast of the right float64 gradient is within 1/2, one computed throughout in float32 within a
# few; a bug is off by O(1).
DTYPE_EPS_FACTOR = 64


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
    * |expected|``), to say by how much it failed.
    """

    weights: list
    all_f: list
    all_h: list
    deltas: list
    derivative: object
    expected: tuple
    rtol: float
    atol: float
    top_candidates: tuple = ()
    compare_rtol: float = 1e-10
    compare_atol: float = 1e-12
    scale: float = 1.0


def make_context(
    weights, all_f, all_h, dl_df_last, act, expected, dtype, top_candidates=()
) -> Context:
    """Build a ``Context``: runs the right backward recursion once to keep every delta.

    ``top_candidates``: (code, text, dL/df_K) for wrong starts of the recursion (another loss's derivative).
    """
    deltas = [None] * len(weights)
    backward(weights, all_f, all_h, dl_df_last, act, all_deltas=deltas)
    tolerance = tolerance_for(dtype, "diagnosis")
    compared = tolerance_for(dtype, "analytic")
    return Context(
        weights,
        all_f,
        all_h,
        deltas,
        act.derivative,
        expected,
        tolerance.rtol,
        tolerance.atol,
        tuple(top_candidates),
        compared.rtol,
        compared.atol,
        gradient_scale(expected),
    )


def _close(actual, candidate, ctx: Context) -> bool:
    if candidate is None or np.shape(candidate) != np.shape(actual):
        return False
    scale = max(float(np.max(np.abs(candidate), initial=0.0)), 1e-300)
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(actual - candidate) <= ctx.atol * scale + ctx.rtol * np.abs(candidate)))


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
        eps = float(np.finfo(returned).eps)
        with np.errstate(invalid="ignore", over="ignore"):
            near = np.abs(actual - expected) <= DTYPE_EPS_FACTOR * eps * (np.abs(expected) + ctx.scale)
        if np.all(near):
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


def _try(build):
    """A candidate array, or None where that bug cannot happen for these shapes."""
    try:
        with np.errstate(all="ignore"):
            return build()
    except (ValueError, IndexError):
        return None


def _describe_c(c: float, columns: int) -> str:
    for name, value in (("2", 2.0), ("1/2", 0.5), ("-2", -2.0), ("-1/2", -0.5)):
        if np.isclose(c, value, rtol=1e-6):
            return name
    if columns > 1 and np.isclose(c, 1 / columns, rtol=1e-6):
        return f"1/N = 1/{columns} (averaged over the batch instead of summed?)"
    return f"{c:.6g}"


def _step_candidates(layer: int, ctx: Context):
    """(code, text, delta) for the classic bugs in the backward step from layer+1 down to ``layer``."""
    if layer + 1 >= len(ctx.weights):
        return list(ctx.top_candidates)
    W, d = ctx.weights[layer + 1], ctx.deltas[layer + 1]
    f = ctx.all_f
    back = W.T @ d
    out = [
        (
            "mask_missing",
            f"activation mask missing (delta from layer {layer + 1} not multiplied by a'(f_{layer}))",
            back,
        )
    ]
    for other in (layer + 1, layer - 1, layer + 2):
        if 0 <= other < len(f):
            cand = _try(lambda o=other: back * ctx.derivative(f[o]))
            out.append(
                (
                    "mask_wrong_layer",
                    f"activation mask taken from the wrong layer (a'(f_{other}) instead of a'(f_{layer}))",
                    cand,
                )
            )
    out.append(
        (
            "h_instead_of_mask",
            f"delta multiplied by the activations h_{layer + 1} instead of the mask a'(f_{layer})",
            _try(lambda: back * ctx.all_h[layer + 1]),
        )
    )
    out.append(
        (
            "wrong_derivative",
            f"activation derivative of ReLU (f_{layer} > 0) used where the network's activation is another",
            _try(lambda: back * (f[layer] > 0)),
        )
    )
    on_kink = f[layer] == 0
    sides = other_side_at_kink(ctx.derivative) if on_kink.any() else None
    if sides is not None:
        # a'(0) on the other side: the mask (f >= 0) where ReLU'(0) = 0 asks for (f > 0), or the reverse.
        at_zero, other = sides
        out.append(
            (
                "kink_convention",
                f"derivative at the kink: a'(0) taken as {other:g} where f_{layer} = 0 exactly; the "
                f"convention (jax.nn's) is a'(0) = {at_zero:g} (for ReLU: mask f > 0, not f >= 0)",
                _try(lambda: back * np.where(on_kink, other, ctx.derivative(f[layer]))),
            )
        )
    out.append(
        (
            "missing_transpose",
            f"missing transpose: delta propagated with Omega_{layer + 1} instead of Omega_{layer + 1}^T",
            _try(lambda: (W @ d) * ctx.derivative(f[layer])),
        )
    )
    return out


def _finite_diagnosis(actual, expected):
    if not np.all(np.isfinite(actual)):
        return "nan", "NaN or inf in the gradient"
    if not np.any(actual):
        return "zeros", "all zeros, where the right gradient is not"
    return None


def _value_diagnosis(actual, expected, ctx: Context, columns: int):
    """(code, text) for an array of the right shape: a multiple or the transpose of the right one."""
    e_norm = float(np.vdot(expected, expected))
    if e_norm > 0:
        c = float(np.vdot(actual, expected)) / e_norm
        if _close(actual, c * expected, ctx):
            if np.isclose(c, -1, rtol=1e-6):
                return (
                    "sign",
                    "sign flipped (the right gradient times -1: e.g. y - output instead of output - y)",
                )
            described = _describe_c(c, columns)
            telling = described != f"{c:.6g}"  # 2, 1/2, 1/N: factors that name a bug
            # A single number is a multiple of any other: there, name only the telling factors.
            # c within rounding of 1 is no scaling: the tensor is right to that precision
            if abs(c - 1) > max(ctx.rtol, 8 * np.finfo(actual.dtype).eps) and (actual.size > 1 or telling):
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
        for code, text, delta in _step_candidates(layer, ctx)
        if delta is not None and _telling(actual, _try(lambda d=delta: form(d)), layer, kind, ctx)
    ]
    if matches:
        codes = list(dict.fromkeys(code for code, _ in matches))
        # e.g. a mask of all ones is no mask: name both readings
        return codes[0], " or ".join(dict.fromkeys(text for _, text in matches))
    if kind == "weights":
        d = ctx.deltas[layer]
        for j in (layer + 1, layer - 1):
            if 0 <= j < len(h) and _telling(actual, _try(lambda j=j: d @ h[j].T), layer, kind, ctx):
                return "wrong_activations", f"weight gradient built from h_{j} instead of h_{layer}"
        if layer > 0 and _telling(actual, _try(lambda: d @ ctx.all_f[layer - 1].T), layer, kind, ctx):
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
        or _value_diagnosis(actual, expected, ctx, columns)
        or _other_layer(actual, layer, kind, ctx)
    )
    if found:
        return Diagnosis(layer, kind, *found)
    relative = _relative_error(actual, expected, ctx)
    with np.errstate(invalid="ignore", over="ignore"):
        allowed = ctx.compare_atol * ctx.scale + ctx.compare_rtol * np.abs(expected)
        wrong = int(np.count_nonzero(~(np.abs(actual - expected) <= allowed)))
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
