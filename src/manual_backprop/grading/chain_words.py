"""What a broken link's numbers say: the usual wrong value at each link of the chain, named in words.

Each ``*_reading`` takes the student's value at one link and the values it was built from (their own
upstream delta, the forward pass) and returns ``(code, words)``: the first usual mistake that reproduces
the value exactly (to the "diagnosis" tolerance), or ``(None, words)`` saying what was tried. Shapes follow
the book at batch 1: delta_k = dL/df_k (D_{k+1}, 1), h_k (D_k, 1), Omega_k (D_{k+1}, D_k).
"""

from __future__ import annotations

import numpy as np

from ..maths.activations import sigmoid
from ..maths.losses import loss_terms
from ..tolerances import MIN_SUPPORT
from .patterns import attempt, close

# The notebook's names for the loss and its derivative, per loss: what a student swaps.
_LOSS_NAMES = {"least_squares": "least_squares_loss", "sum_of_squares": "least_squares_loss"}

_RIGHT_TOP = {"least_squares": "out - y", "sum_of_squares": "2 (out - y)",
              "binary_cross_entropy": "sigmoid(out) - y", "softmax_cross_entropy": "softmax(out) - y"}


def _right_top(loss: str) -> str:
    """The right dL/d(output) in words: a formula for a plain loss, the objective's name otherwise."""
    return _RIGHT_TOP.get(loss, f"the derivative of {loss}")


def short(values, digits: int = 4, most: int = 6) -> str:
    """A few numbers as the student would print them: ``[1.2, -0.5, 0]``, long vectors cut."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    shown = ", ".join("nan" if np.isnan(v) else f"{v + 0.0:.{digits}g}" for v in flat[:most])  # no -0
    more = f", ... ({flat.size} entries)" if flat.size > most else ""
    return f"[{shown}{more}]"


def _softmax(z):
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def target_of(loss: str, out, right_top):
    """The target y, recovered from the output and the right dL/d(output)."""
    if loss == "least_squares":
        return out - right_top
    if loss == "sum_of_squares":
        return out - right_top / 2
    if loss == "binary_cross_entropy":
        return sigmoid(out) - right_top
    return _softmax(out) - right_top


def _first(yours, right, candidates, tol):
    """(code, words) of every candidate reproducing ``yours`` that differs from ``right``, joined by "or"."""
    found = [(code, words) for code, words, build in candidates
             if close(yours, attempt(build), tol) and not close(attempt(build), right, tol)]  # fmt: skip
    if not found:
        return None, None
    return found[0][0], " or ".join(dict.fromkeys(w for _, w in found))


def top_reading(yours, out, right, loss: str, tol):
    """(code, words, numbers) for the top link: the student's delta_K against dL/d(output)."""
    y = target_of(loss, out, right)
    err = out - y
    value = float(loss_terms(loss, out, y).sum())
    fn = _LOSS_NAMES.get(loss, "the loss function")
    norm = float(np.linalg.norm(err))
    candidates = [
        ("loss_itself", f"yours equals the loss itself (L = {value:.6g}): you used {fn} where "
         "d_loss_d_output belongs", lambda: np.full_like(out, value)),
        ("loss_terms", "yours is the loss's terms, not their derivative (the loss per output)",
         lambda: loss_terms(loss, out, y)),
        ("sign", "yours is np.sign(out - y): the derivative of |out - y| (an L1 loss), not of the squared "
         "error", lambda: np.sign(err)),
        ("abs", "yours is |out - y|: the error's sign is lost (np.abs, or the square root of its square)",
         lambda: np.abs(err)),
        ("summed", "yours is the summed error sum(out - y) in every entry: the error was summed over the "
         "outputs before the chain; dL/d(output) keeps one entry per output",
         lambda: np.full_like(out, err.sum())),
        ("mean", "yours is the mean error mean(out - y) in every entry: the error was averaged over the "
         "outputs; dL/d(output) keeps one entry per output", lambda: np.full_like(out, err.mean())),
        ("normalised", "yours is (out - y) / ||out - y||: the error divided by its norm",
         lambda: err / norm),
        ("flipped", "yours is y - out: the sign is flipped", lambda: -right),
        ("squared", "yours is (out - y)^2, the squared error, not its derivative", lambda: err**2),
        ("output", "yours is the output itself: the target y is missing", lambda: out),
        ("target", "yours is the target y: the output is missing", lambda: y),
        ("minus_target", "yours is -y: the output is missing", lambda: -y),
    ]
    if loss not in _LOSS_NAMES:  # the cross-entropies: least squares' out - y first, alone if it fits
        candidates.insert(0, ("least_squares", "yours is out - y, the derivative of least squares, where "
                              f"the loss is {loss}", lambda: err))
    if out.size == 1:  # one output: its sum and its mean are itself
        candidates = [c for c in candidates if c[0] not in ("summed", "mean")]
    code, words = _first(yours, right, candidates, tol)
    if code == "least_squares":
        words = candidates[0][1]
    if code is None and yours.size > 1 and np.count_nonzero(right) > 1:
        c = float(np.vdot(yours, right) / np.vdot(right, right))
        if close(yours, c * right, tol):
            code, words = "scaled", f"yours is {c:.4g} x the right derivative {_right_top(loss)}"
    if code is None:
        words = ("not a usual mistake (tried the loss itself, np.sign(out - y), |out - y|, the summed error, "
                 "y - out, the output alone)")
    numbers = (f"out = {short(out)}, y = {short(y)}, out - y = {short(err)}, the loss L = {value:.6g}; the "
               f"right dL/d(output) = {_right_top(loss)} = {short(right)}")
    return code, words, numbers


def _slope_candidates(f, h, back, right_slope, k: int):
    """(code, words, slope per unit) for the usual wrong factors of the step to layer k."""
    return [
        ("inverted", f"1 - mask: the mask is inverted (your slope is 1 - a'(f_{k}))",
         lambda: 1 - right_slope),
        ("inverted", f"the ReLU mask inverted: your slope is 1 where f_{k} <= 0 and 0 where f_{k} > 0",
         lambda: (f <= 0).astype(float)),
        ("np_sign", "your slope is -1 where the unit is off: np.sign(f)? (the mask must be 0 there)",
         lambda: np.sign(f)),
        ("relu_of_gradient", f"your slope is 1 where Omega^T delta > 0 and 0 where it is < 0, whatever "
         f"f_{k}: "
         "ReLU applied to the propagated gradient (np.maximum(0, W.T @ delta)) instead of multiplying by "
         f"a'(f_{k})", lambda: (back > 0).astype(float)),
        ("f_as_slope", f"your slope is f_{k} itself: delta multiplied by the pre-activation instead of "
         f"a'(f_{k})", lambda: f),
        ("h_as_slope", f"your slope is h_{k + 1} = a(f_{k}): delta multiplied by the activation instead of "
         "its derivative", lambda: h),
        ("no_mask", f"your slope is 1 on every unit: a'(f_{k}) is missing", lambda: np.ones_like(f)),
        ("relu_of_masked", f"your slope is a'(f_{k}) where Omega^T delta > 0 and 0 where it is < 0: ReLU "
         "applied to the propagated gradient as well as the mask", lambda: (back > 0) * right_slope),
        ("kink_half", f"your slope is 0.5 where f_{k} = 0 exactly: neither one-sided slope of the "
         "kink; np.sign-style or heaviside(f, 0.5)", lambda: np.where(f == 0, 0.5, right_slope)),
        ("leaky", "your slope is 0.01 where the unit is off: leaky ReLU's derivative on a ReLU network",
         lambda: np.where(f > 0, 1.0, 0.01)),
        ("clip", f"your slope is np.clip(f_{k}, 0, 1): f itself between 0 and 1, not a step",
         lambda: np.clip(f, 0, 1)),
        ("f_squared", f"your slope is 1 - f_{k}^2: tanh's derivative 1 - h^2 written with f instead of "
         f"h = tanh(f)", lambda: 1 - f**2),
        ("f_sigmoid", f"your slope is f_{k} (1 - f_{k}): the sigmoid's derivative s (1 - s) written with f "
         "instead of s = sigmoid(f)", lambda: f * (1 - f)),
    ]


def step_reading(yours, given, back, f, h, right_slope, others, k: int, tol):
    """(code, words, slope) for the step down to layer k: yours = delta_k, given = a'(f_k) * back with
    back = Omega_{k+1}^T (their delta_{k+1}); ``others``: (code, words, array) of non-elementwise candidates.

    ``slope`` is the student's effective slope per unit, yours / back (nan where back is 0), or None where
    the step is not elementwise (a nonzero delta_k where back is 0)."""
    scale = max(float(np.max(np.abs(back), initial=0.0)), 1e-300)
    units = np.abs(back) > 1e-12 * scale
    distinct = np.unique(np.round(yours, 12))
    if np.all(np.isin(distinct, (0.0, 1.0))) and np.any(yours == 1) and not np.all(np.isin(given, (0, 1))):
        return "boolean", (f"your delta_{k} holds only 0s and 1s: a boolean, e.g. W.T @ delta * f > 0 "
                           "compares the whole product with 0 (operator precedence); write (W.T @ delta) * "
                           "(f > 0)"), None
    slope = None
    if close(yours[~units], np.zeros_like(yours[~units]), tol) or not np.any(~units):
        slope = np.full(yours.shape, np.nan)
        slope[units] = yours[units] / back[units]
        given_slope = np.where(units, given / np.where(units, back, 1), right_slope)
        on = units.ravel()
        code, words = _first(slope[units], given_slope[units],
                             [(c, w, lambda b=b: b()[units]) for c, w, b in
                              _slope_candidates(f, h, back, right_slope, k)], tol)  # fmt: skip
        if code is None and np.any(given_slope[units] != 0):
            mine, right = slope[units], given_slope[units]
            c = float(np.vdot(mine, right) / np.vdot(right, right))
            support = int(np.count_nonzero(right))  # one unit on: any factor would be "a constant"
            if support >= MIN_SUPPORT and close(mine, c * right, tol) and not np.isclose(c, 1):
                norm = float(np.linalg.norm(yours))
                why = " (your delta has norm 1: divided by its norm?)" if np.isclose(norm, 1) else ""
                if np.isclose(c, -1):
                    why = " (the sign flipped at this step: a minus sign in the step?)"
                code, words = "rescaled", f"a per-layer constant {c:.3g} times a'(f_{k}): delta rescaled{why}"
            elif on.sum() > 1 and np.allclose(slope[units], slope[units].ravel()[0]):
                c = float(slope[units].ravel()[0])
                code, words = "constant", (f"a constant slope {c:.3g} on every unit, off ones included: no "
                                           "mask, and delta rescaled")
        if code is not None:
            return code, words, slope
    code, words = _first(yours, given, others, tol)
    if code is not None:
        return code, words, slope
    return None, (f"the step is not a'(f_{k}) * (Omega_{k + 1}^T delta_{k + 1}), and no usual wrong product "
                  "(the weight gradient's transpose, Omega without the transpose, h instead of f, no mask) "
                  "reproduces it"), slope


def step_products(W, G, d_up, f, h, derivative, k: int, f_above):
    """(code, words, build) for the usual wrong products of the step down to layer k (not elementwise)."""
    r = derivative(f)
    return [
        ("weight_gradient", "delta propagated through the weight gradient: "
         f"dL/dOmega_{k + 1}^T delta_{k + 1} "
         f"where Omega_{k + 1}^T delta_{k + 1} belongs", lambda: r * (G.T @ d_up)),
        ("weight_gradient", f"delta propagated through the weight gradient, without the mask: "
         f"dL/dOmega_{k + 1}^T delta_{k + 1} where a'(f_{k}) * (Omega_{k + 1}^T delta_{k + 1}) belongs",
         lambda: G.T @ d_up),
        ("no_transpose", f"Omega_{k + 1} without the transpose: Omega_{k + 1} delta_{k + 1}",
         lambda: r * (W @ d_up)),
        ("no_transpose", f"Omega_{k + 1} without the transpose, and no mask", lambda: W @ d_up),
        ("a_of_h", f"the derivative taken at h_{k + 1} instead of f_{k}: a'(h_{k + 1})",
         lambda: derivative(h) * (W.T @ d_up)),
        ("unchanged", f"delta_{k + 1} passed down unchanged", lambda: d_up),
        ("mask_before", f"the mask of layer {k + 1} applied to delta_{k + 1} before the step, instead of "
         f"a'(f_{k}) after it: Omega_{k + 1}^T (delta_{k + 1} * a'(f_{k + 1}))",
         lambda: W.T @ (d_up * derivative(f_above))),
        ("weights_only", f"Omega_{k + 1}^T alone, without delta_{k + 1}: a'(f_{k}) * Omega_{k + 1}^T summed",
         lambda: r * W.T.sum(axis=1, keepdims=True)),
    ]


def weight_reading(yours, d, all_f, all_h, derivative, k: int, tol):
    """(code, words) for the weight link of layer k: yours against d h_k^T (d = their delta_k)."""
    h = all_h[k]
    right = d @ h.T
    candidates = [
        ("transposed", f"the transpose of delta_{k} h_{k}^T", lambda: right.T),
        ("h_above", f"built from h_{k + 1} instead of h_{k}: delta_{k} h_{k + 1}^T",
         lambda: d @ all_h[k + 1].T),
    ]
    if k > 0:
        g = all_f[k - 1]
        candidates += [
            ("h_below", f"built from h_{k - 1} instead of h_{k}", lambda: d @ all_h[k - 1].T),
            ("f_below", f"built from the pre-activation f_{k - 1} instead of h_{k} = a(f_{k - 1})",
             lambda: d @ g.T),
            ("mask", f"built from the mask a'(f_{k - 1}) instead of h_{k}", lambda: d @ derivative(g).T),
            ("masked_h", f"built from h_{k} * a'(f_{k - 1})", lambda: d @ (h * derivative(g)).T),
        ]
    code, words = _first(yours, right, candidates, tol)
    if code is not None:
        return code, words
    if np.count_nonzero(h) >= MIN_SUPPORT and yours.shape == right.shape:  # one h entry: any x h^T fits
        e = float(np.vdot(right, right))
        c = float(np.vdot(yours, right)) / e if e else 0.0
        if c and close(yours, c * right, tol):
            return "scaled", f"yours is {c:.4g} x delta_{k} h_{k}^T"
        other = yours @ h / (h.T @ h).item()  # a rank-one gradient other @ h^T: built from another delta
        if close(yours, other @ h.T, tol):
            return "other_delta", (f"yours is (another delta) h_{k}^T with that delta = {short(other)}, "
                                   f"where your beta_{k} gradient gives delta_{k} = {short(d)}")
    tried = (f"none of h_{k}, h_{k + 1}, f_{k - 1}, a transpose or a mask reproduces it" if k else
             "neither h_0, h_1 nor a transpose reproduces it")
    if np.count_nonzero(d) >= MIN_SUPPORT and yours.shape == right.shape:
        x = yours.T @ d / (d.T @ d).item()  # a rank-one gradient d x^T: the h side replaced by x
        if close(yours, d @ x.T, tol):
            squared = f" (h_{k}^2?)" if close(x, h**2, tol) else ""
            return "other_h", (f"yours is delta_{k} x^T with x = {short(x)}{squared} where h_{k} = "
                               f"{short(h)}: delta is right, the h_{k} side is not; {tried}")
    return None, tried


def bias_reading(yours, d, G, all_f, all_h, k: int, tol):
    """(code, words) for the bias link of layer k: yours against d (their delta_k, from their Omega_k)."""
    candidates = [
        ("weight_rows", f"the row sums of your Omega_{k} gradient (dW.sum(axis=1)): delta_{k} times "
         f"sum(h_{k}), not delta_{k}", lambda: G.sum(axis=1, keepdims=True)),
        ("weight_mean", f"the row means of your Omega_{k} gradient", lambda: G.mean(axis=1, keepdims=True)),
        ("weight_cols", f"the column sums of your Omega_{k} gradient", lambda: G.sum(axis=0)[:, None]),
        ("f", f"the pre-activation f_{k}", lambda: all_f[k]),
        ("h", f"the activation h_{k + 1}", lambda: all_h[k + 1]),
    ]
    code, words = _first(yours, d, candidates, tol)
    if code is not None:
        return code, words
    e = float(np.vdot(d, d))
    c = float(np.vdot(yours, d)) / e if e else 0.0
    if c and np.count_nonzero(d) >= MIN_SUPPORT and close(yours, c * d, tol):
        return "scaled", f"yours is {c:.4g} x delta_{k}"
    return None, f"not delta_{k} (tried the row and column sums of the weight gradient, f_{k}, h_{k + 1})"
