"""Bug patterns as fits: what each known mistake would have returned for one tensor, and which ones match.

A ``Fit`` says that the user's tensor (``layer``, ``kind``) of one case equals what a bug would give:
either a fixed candidate array (no free parameter: the mask missing, tanh's derivative on a ReLU network,
the last example only, ...) or a one-parameter family whose parameter is read off the tensor (scaled by c,
clipped at +-c, weight decay lambda, an update with learning rate lr). ``support`` counts the independent
entries that agree with the fit, so that a single number never proves a scale (``story.py`` weighs fits
across tensors and networks).

Layers follow the book: f_k = beta_k + Omega_k h_k, h_{k+1} = a(f_k), delta_k = dL/df_k, and the right
step is delta_k = (Omega_{k+1}^T delta_{k+1}) * a'(f_k).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compare.gradient_forms import as_gradient_array
from ..maths.activations import other_side_at_kink
from ..tolerances import FACTOR_RTOL, TINY_SCALE, agree


@dataclass(frozen=True)
class Fit:
    """One pattern matching one tensor: ``param`` is c, lambda, lr or the clip bound (None if fixed)."""

    code: str
    text: str
    param: float | None
    support: int


def close(actual, candidate, ctx) -> bool:
    """``actual`` equals ``candidate`` to the diagnosis tolerance (same shape, every entry)."""
    if candidate is None or np.shape(candidate) != np.shape(actual):
        return False
    scale = max(float(np.max(np.abs(candidate), initial=0.0)), TINY_SCALE)
    return bool(np.all(agree(actual, candidate, rtol=ctx.rtol, atol=ctx.atol, scale=scale)))


def attempt(build):
    """A candidate array, or None where that bug cannot happen for these shapes."""
    try:
        with np.errstate(all="ignore"):
            return build()
    except (ValueError, IndexError, TypeError):
        return None


def _sigmoid(f):
    return 0.5 + 0.5 * np.tanh(0.5 * f)


def step_candidates(layer: int, ctx):
    """(code, text, delta_layer) for the bugs in the step from layer+1 down to ``layer`` (or at the top,
    the wrong starts dL/d(output))."""
    f, h, a_prime = ctx.all_f, ctx.all_h, ctx.derivative
    if layer + 1 >= len(ctx.weights):
        out = [("target_missing", "dL/d(output) without the target: delta = output instead of output - y "
                "(e.g. d_loss_d_output returns net_output)", f[layer])]
        return out + list(ctx.top_candidates)
    W, d = ctx.weights[layer + 1], ctx.deltas[layer + 1]
    back = W.T @ d
    fk, up = f[layer], h[layer + 1]
    out = [("mask_missing",
            f"activation mask missing (delta from layer {layer + 1} not multiplied by a'(f_{layer}))", back)]
    for other in (layer + 1, layer - 1, layer + 2):
        if 0 <= other < len(f):
            out.append(("mask_wrong_layer", "activation mask taken from the wrong layer "
                        f"(a'(f_{other}) instead of a'(f_{layer}))",
                        attempt(lambda o=other: back * a_prime(f[o]))))
    out.append(("h_instead_of_mask",
                f"delta multiplied by the activations h_{layer + 1} instead of the mask a'(f_{layer})",
                attempt(lambda: back * up)))
    for name, derivative in (
        ("ReLU's (f > 0)", lambda: fk > 0),
        ("tanh's 1 - h^2", lambda: 1 - up**2),
        ("the sigmoid's h (1 - h)", lambda: up * (1 - up)),
        ("the sigmoid's s(f) (1 - s(f))", lambda: _sigmoid(fk) * (1 - _sigmoid(fk))),
    ):
        out.append(("wrong_derivative", f"the derivative of another activation: {name} used where the "
                    "network's activation is another", attempt(lambda dv=derivative: back * dv())))
    on_kink = fk == 0
    sides = other_side_at_kink(a_prime) if on_kink.any() else None
    if sides is not None:
        at_zero, other = sides
        out.append(("kink_convention",
                    f"derivative at the kink: a'(0) taken as {other:g} where f_{layer} = 0 exactly; the "
                    f"convention (jax.nn's) is a'(0) = {at_zero:g} (for ReLU: mask f > 0, not f >= 0)",
                    attempt(lambda: back * np.where(on_kink, other, a_prime(fk)))))
    if on_kink.any():
        out.append(("kink_half", f"derivative at the kink taken as a'(0) = 0.5 where f_{layer} = 0 exactly "
                    "(np.sign-style or heaviside(f, 0.5) step); the convention is ReLU'(0) = 0: use f > 0",
                    attempt(lambda: back * np.where(on_kink, 0.5, a_prime(fk)))))
    out.append(("mask_without_bias", f"activation mask computed from Omega_{layer} h_{layer} without "
                f"beta_{layer} (the pre-activation without its bias); use all_f[{layer}]",
                attempt(lambda: back * a_prime(ctx.weights[layer] @ h[layer]))))
    out.append(("mask_twice", f"activation derivative a'(f_{layer}) applied twice",
                attempt(lambda: back * a_prime(fk) ** 2)))
    out.append(("missing_transpose",
                f"missing transpose: delta propagated with Omega_{layer + 1} instead of Omega_{layer + 1}^T",
                attempt(lambda: (W @ d) * a_prime(fk))))
    out.append(("missing_transpose",
                f"missing transpose: delta propagated with Omega_{layer + 1} instead of Omega_{layer + 1}^T "
                "(an einsum that broadcast where it should have failed)",
                attempt(lambda: np.einsum("ij,jn->in", W, d) * a_prime(fk))))
    return out  # fmt: skip


def tensor_candidates(layer: int, kind: str, ctx):
    """(code, text, array) for every fixed pattern of tensor (``layer``, ``kind``)."""
    h = ctx.all_h
    d = ctx.deltas[layer]
    if kind == "weights":
        form = lambda delta: delta @ h[layer].T  # noqa: E731
    else:
        form = lambda delta: delta.sum(axis=1, keepdims=True)  # noqa: E731
    out = [(code, text, attempt(lambda x=delta: form(x))) for code, text, delta in step_candidates(layer, ctx)
           if delta is not None]  # fmt: skip
    if kind == "weights":
        for j in (layer + 1, layer - 1):
            if 0 <= j < len(h):
                out.append(("wrong_activations", f"weight gradient built from h_{j} instead of h_{layer}",
                            attempt(lambda j=j: d @ h[j].T)))
        if layer > 0:
            f_below = ctx.all_f[layer - 1]
            out.append(("wrong_activations", f"weight gradient built from the pre-activations f_{layer - 1} "
                        f"instead of the activations h_{layer}", attempt(lambda: d @ f_below.T)))
            text = (f"activation mask applied to the weight gradient (delta_{layer} @ mask^T) instead of "
                    f"to delta: Omega_{layer}'s gradient is delta_{layer} h_{layer}^T")
            for mask in (lambda: ctx.derivative(f_below), lambda: h[layer] > 0,
                         lambda: h[layer] * ctx.derivative(f_below)):
                out.append(("mask_on_weight_gradient", text, attempt(lambda m=mask: d @ m().T)))
    if d.shape[1] > 1:
        n = d.shape[1] - 1
        last = (lambda: d[:, [n]] @ h[layer][:, [n]].T) if kind == "weights" else (lambda: d[:, [n]])
        out.append(("last_example_only", "the gradient of the last example only: a loop over the examples "
                    "overwrites (= or zeros inside the loop) instead of adding", attempt(last)))
    return out  # fmt: skip


def parametric_fits(actual, expected, theta, indep: int, ctx) -> list:
    """Scaled by c, weight decay lambda, an update with rate lr, clipped at c: the ones that match."""
    out = []
    e_norm = float(np.vdot(expected, expected))
    if e_norm > 0:
        c = float(np.vdot(actual, expected)) / e_norm
        # c = 0 is no factor but an array of zeros: a fact ("all zeros") said at the tensor level
        if c != 0 and close(actual, c * expected, ctx) and not close(actual, expected, ctx):
            code = "sign" if np.isclose(c, -1, rtol=FACTOR_RTOL) else "scaled"
            out.append(Fit(code, "", c, indep))
    nonzero = expected != 0
    t_norm = float(np.vdot(theta, theta))
    if t_norm > 0:  # least squares for lambda, then every entry must agree
        lam = float(np.vdot(actual - expected, theta)) / t_norm
        if lam != 0 and close(actual, expected + lam * theta, ctx) and not close(actual, expected, ctx):
            out.append(Fit("weight_decay", "", lam, int(np.count_nonzero(theta))))
    if e_norm > 0:
        lr = float(np.vdot(theta - actual, expected)) / e_norm
        if lr > 0 and np.any(theta) and close(actual, theta - lr * expected, ctx):
            out.append(Fit("update_returned", "", lr, int(np.count_nonzero(nonzero))))
        step = -float(np.vdot(actual, expected)) / e_norm  # the step -lr g alone (-g is "sign")
        if step > 0 and not np.isclose(step, 1, rtol=FACTOR_RTOL) and close(actual, -step * expected, ctx):
            out.append(Fit("update_returned", "", step, indep))
    bound = float(np.max(np.abs(actual), initial=0.0))
    clipped = np.abs(expected) > bound * (1 + ctx.rtol)
    if bound > 0 and clipped.any() and close(actual, np.clip(expected, -bound, bound), ctx):
        out.append(Fit("clipped", "", bound, int(np.count_nonzero(clipped)) + 1))
    return out


def param_text(code: str, param: float, columns: int, loss: str) -> str:
    """The words for a parametric story (``code`` with its parameter)."""
    if code == "scaled":
        return f"every failing gradient is scaled by a constant c = {describe_c(param, columns)}"
    if code == "sign":
        return "sign flipped (the right gradient times -1: e.g. y - output instead of output - y)"
    if code == "weight_decay":
        return (f"a weight-decay (L2) term added: the gradient plus lambda * theta with lambda = "
                f"{param:.6g}; the gradient of the loss has no such term")  # fmt: skip
    if code == "update_returned":
        return (f"a parameter update returned instead of the gradient (theta - lr * g, or the step -lr * g, "
                f"with lr = {param:.6g}); return dL/dtheta itself")  # fmt: skip
    return (f"gradients clipped to [-{param:.6g}, {param:.6g}] where the right values are larger; "
            "return the gradient unclipped")  # fmt: skip


def describe_c(c: float, columns: int) -> str:
    """A factor in words: 2, 1/2, -2, -1/2, 1/N (named for the bug it suggests), else its digits."""
    for name, value in (("2", 2.0), ("1/2", 0.5), ("-2", -2.0), ("-1/2", -0.5)):
        if np.isclose(c, value, rtol=FACTOR_RTOL):
            return name
    if columns > 1 and np.isclose(c, 1 / columns, rtol=FACTOR_RTOL):
        return f"1/N = 1/{columns} (averaged over the batch instead of summed?)"
    return f"{c:.6g}"


KINDS = ("weights", "biases")


def zeros_story(value: list):
    """A function's one story when every failing tensor of every case (``story.Seen``) is all zeros where the
    right one is not: ``(("zeros",), text)``, else None."""
    kinds = set()
    for seen in value:
        for row in seen.comparison.rows:
            if row.ok:
                continue
            actual = as_gradient_array(seen.result[KINDS.index(row.kind)][row.layer])[0]
            if actual is None or actual.shape != tuple(row.shape) or np.any(actual):
                return None
            kinds.add(row.kind)
    if not kinds:
        return None
    which = " and ".join(word for kind, word in zip(KINDS, ("weight", "bias"), strict=True) if kind in kinds)
    return ("zeros",), (f"every failing tensor is all zeros (the {which} gradients that fail): never filled "
                        "in (left as np.zeros_like), or multiplied by a mask that is zero everywhere")
