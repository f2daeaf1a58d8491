"""Backprop's chain checked link by link on the student's own returned values, at batch 1.

Backprop is three local equations (book section 7.4; notebook 7.2), and at batch 1 the student's bias
gradient dL/dbeta_k *is* their delta_k = dL/df_k, so each equation can be checked on what they returned:

1. the top: their delta_K against dL/d(output) at the network's output (either least-squares
   convention: 0.5 sum((out - y)^2) gives out - y, sum((out - y)^2) gives 2 (out - y));
2. the weights: their dL/dOmega_k against (their delta_k) h_k^T, and their dL/dbeta_k against delta_k;
3. the step down: their delta_k against a'(f_k) * (Omega_{k+1}^T (their delta_{k+1})).

Each link is judged on the student's own upstream value, so the first link that fails is where the bug
is, whatever the bug; the links below that hold are right given what they received. Where f_k = 0 exactly
either one-sided slope of the activation is right (ReLU: 0 or 1; leaky ReLU: 1 or 0.01): a step that
uses the other side on every kink unit holds. A layer whose Omega_k and beta_k are both off while the
layer below received the right delta_k (a post-processed gradient) fails at its weight and bias links,
not at the step. ``Link.layer`` is the layer whose tensor the link produces: the step to layer k is the
step from layer k + 1 down to k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..compare.gradient_forms import as_gradient_array
from ..maths.activations import other_side_at_kink
from .chain_words import bias_reading, short, step_products, step_reading, top_reading, weight_reading
from .patterns import close

KINDS = ("top", "step", "weights", "bias")


@dataclass(frozen=True)
class Link:
    """One equation of the chain at one layer: ``yours`` (the student's value) against ``given`` (what the
    equation gives from their own upstream value); ``code`` and ``words`` say what a failing one's numbers
    show (``code`` None: no usual mistake reproduces it); an elementwise step keeps the effective ``slope``
    per unit beside ``f`` and the right ``right_slope``; ``note`` says which one-sided slope a kink used;
    ``back`` is a step's Omega_{k+1}^T (their delta_{k+1}). Shapes at layer k: (D_{k+1}, 1) for a top, step
    or bias link (delta_k), (D_{k+1}, D_k) for a weight link; ``slope``, ``f``, ``right_slope``, ``back``
    (D_{k+1}, 1)."""

    kind: str
    layer: int
    holds: bool
    yours: np.ndarray
    given: np.ndarray
    code: str | None = None
    words: str = ""
    numbers: str = ""
    slope: np.ndarray | None = None
    f: np.ndarray | None = None
    right_slope: np.ndarray | None = None
    note: str | None = None
    back: np.ndarray | None = None  # a step's Omega_{k+1}^T (their delta_{k+1})

    @property
    def name(self) -> str:
        if self.kind == "top":
            return f"the top, dL/d(output) = delta_{self.layer}"
        if self.kind == "step":
            return f"the step from layer {self.layer + 1} down to {self.layer}"
        if self.kind == "weights":
            return f"the weight gradient of layer {self.layer} (dL/dOmega_{self.layer})"
        return f"the bias gradient of layer {self.layer} (dL/dbeta_{self.layer})"

    @property
    def equation(self) -> str:
        k = self.layer
        return {"top": "dL/d(output)", "weights": f"delta_{k} h_{k}^T", "bias": f"delta_{k}",
                "step": f"a'(f_{k}) * (Omega_{k + 1}^T delta_{k + 1})"}[self.kind]  # fmt: skip

    @property
    def tensor(self) -> str:
        k = self.layer
        return {"top": f"delta_{k} (your beta_{k} gradient)", "step": f"delta_{k} (your beta_{k} gradient)",
                "weights": f"dL/dOmega_{k}", "bias": f"dL/dbeta_{k}"}[self.kind]  # fmt: skip

    def lines(self) -> list:
        """The link with numbers the student can reproduce, then what they say."""
        out = [f"yours: {self.tensor} = {short(self.yours)}"]
        if self.back is not None:
            out.append(f"from your delta_{self.layer + 1}: Omega_{self.layer + 1}^T delta_{self.layer + 1} = "
                       f"{short(self.back)}")  # fmt: skip
        out.append(f"from your own upstream value, {self.equation} = {short(self.given)}")
        if self.slope is not None:
            out.append(f"your slope per unit, delta_{self.layer} / (Omega_{self.layer + 1}^T delta_"
                       f"{self.layer + 1}) = {short(self.slope)}, where f_{self.layer} = {short(self.f)} and "
                       f"a'(f_{self.layer}) = {short(self.right_slope)}")  # fmt: skip
        if self.numbers:
            out.append(self.numbers)
        if self.words:
            out.append(f"what the numbers say: {self.words}")
        return out

    def to_dict(self) -> dict:
        def listed(a):
            return None if a is None else [None if np.isnan(v) else float(v) for v in np.ravel(a)]

        return {"kind": self.kind, "layer": self.layer, "holds": self.holds, "name": self.name,
                "equation": self.equation, "yours": listed(self.yours), "given": listed(self.given),
                "code": self.code, "words": self.words, "slope": listed(self.slope), "f": listed(self.f),
                "right_slope": listed(self.right_slope), "note": self.note,
                "back": listed(self.back)}  # fmt: skip


@dataclass(frozen=True)
class Chain:
    """Every link checked on one case, top down (``links``); ``line`` the student's likely line."""

    case: str
    links: tuple
    line: str | None = None

    @property
    def broken(self) -> tuple:
        return tuple(link for link in self.links if not link.holds)

    @property
    def first(self) -> Link | None:
        return next(iter(self.broken), None)

    def headline(self) -> str:
        """One sentence: where the chain breaks, what the numbers say, and what holds below."""
        first = self.first
        if first is None:
            return f"every link of the chain holds on case '{self.case}'"
        rest = self.broken[1:]
        if not rest:
            below = "; the links below hold, given what they received"
        elif {link.kind for link in rest} == {first.kind}:
            below = f"; the same link fails again at {len(rest)} layer(s) below: the mistake repeats"
        else:
            below = "; also failing: " + ", ".join(link.name for link in rest[:3])
            below += ", ..." if len(rest) > 3 else ""
        return f"the chain breaks at {first.name} (case '{self.case}'): {first.words}{below}"

    def lines(self) -> list:
        """The report's lines for the link: numbers, their reading, the likely line."""
        first = self.first
        if first is None:
            return []
        out = [f"the chain, link by link on your own values (case '{self.case}', batch 1): "
               f"{first.name} is the first that fails"]  # fmt: skip
        out += ["  " + line for line in first.lines()]
        if self.line:
            out.append(f"  likely line: {self.line}")
        return out

    def to_dict(self) -> dict:
        first = self.first
        return {"case": self.case, "link": None if first is None else first.to_dict(),
                "broken": [[link.kind, link.layer] for link in self.broken], "line": self.line,
                "headline": self.headline()}  # fmt: skip


def _read(raw, shape, dtype, weights: bool = False):
    """The student's tensor as a float array of ``shape`` (a 1-D bias taken as the column), else None."""
    a, _ = as_gradient_array(raw)
    if a is None or a.dtype.kind not in "fiub" or a.size != int(np.prod(shape)):
        return None
    if weights and a.shape != tuple(shape):
        return None  # a transposed weight gradient is a named pattern; its entries are not delta h^T
    a = a.astype(dtype).reshape(shape)
    return a if np.all(np.isfinite(a)) else None


def _step_variants(ctx, k: int, d_up):
    """(a'(f_k) * Omega_{k+1}^T d_up, note) for the jax.nn slope and, on kink units, the other side."""
    back = ctx.weights[k + 1].T @ d_up
    f = ctx.all_f[k]
    slope = ctx.derivative(f)
    out = [(slope * back, None, slope)]
    sides = other_side_at_kink(ctx.derivative) if np.any(f == 0) else None
    if sides is not None:
        other = np.where(f == 0, sides[1], slope)
        out.append((other * back, f"a'(0) = {sides[1]:g} where f_{k} = 0 (a valid one-sided slope)", other))
    return back, out


def _top_variants(ctx, loss: str):
    right = ctx.deltas[-1]
    out = [(right, None, None)]
    if loss == "least_squares":
        out.append((2 * right, "the sum_of_squares convention: 2 (out - y)", None))
    elif loss == "sum_of_squares":
        out.append((right / 2, "the least_squares convention: out - y", None))
    return out


def _pick(variants, b, w, h, tol):
    for value, note, slope in variants:
        if (b is not None and close(b, value, tol)) or (w is not None and close(w, value @ h.T, tol)):
            return value, note, slope
    return variants[0]


def follow(name: str, ctx, result, loss: str) -> Chain | None:
    """The chain of one batch-1 case: ``ctx`` a ``diagnose.Context``, ``result`` the student's pair of lists.
    None where the batch is not 1 or the lists cannot be read."""
    weights = ctx.weights
    if ctx.deltas[-1].shape[1] != 1 or not isinstance(result, (tuple, list)) or len(result) != 2:
        return None
    top = len(weights) - 1
    if any(not isinstance(part, (list, tuple)) or len(part) != top + 1 for part in result):
        return None
    dtype = ctx.deltas[-1].dtype
    dW = [_read(result[0][k], w.shape, dtype, weights=True) for k, w in enumerate(weights)]
    dB = [_read(result[1][k], (w.shape[0], 1), dtype) for k, w in enumerate(weights)]
    return Chain(name, tuple(_walk(ctx, dW, dB, loss, top, None)))


def _walk(ctx, dW, dB, loss: str, start: int, internal) -> list:
    """The links from layer ``start`` down, ``internal`` the student's delta_{start+1} (None at the top)."""
    links = []
    top = len(ctx.weights) - 1
    for k in range(start, -1, -1):
        h, b, w = ctx.all_h[k], dB[k], dW[k]
        if k == top:
            back, variants = None, _top_variants(ctx, loss)
        else:
            back, variants = _step_variants(ctx, k, internal)
        e, note, right_slope = _pick(variants, b, w, h, ctx)
        bias_ok = b is not None and close(b, e, ctx)
        weight_ok = w is not None and close(w, e @ h.T, ctx)
        if b is None and w is not None and np.any(h) and not weight_ok:
            b = w @ h / (h.T @ h).item()  # no readable bias gradient: their delta from Omega_k = delta h^T
            b = b if close(w, b @ h.T, ctx) else None
        if b is None and not weight_ok:
            break  # nothing to read their delta_k from: the chain stops here
        upstream_ok = bias_ok or weight_ok
        if not upstream_ok and k > 0:
            # both tensors off: a wrong delta_k, or a right one formed into wrong tensors: then every link
            # below holds from the right delta_k (and not from theirs)
            below = (ctx, dW, dB, loss, k - 1)
            upstream_ok = _all_hold(*below, e) and not _all_hold(*below, b)
        above, internal = internal, (e if upstream_ok else b)
        links.append(_upstream_link(ctx, k, upstream_ok, b, e, (back, above, dW), note, right_slope, loss))
        links.append(_weight_link(ctx, k, w, internal))
        links.append(_bias_link(ctx, k, dB[k], internal, w))
    return [link for link in links if link is not None]


def _all_hold(ctx, dW, dB, loss, start, internal) -> bool:
    """Every link from layer ``start`` down holds from ``internal`` = delta_{start+1} (no readings: K^2
    steps for the whole chain, not 2^K)."""
    for k in range(start, -1, -1):
        h, b, w = ctx.all_h[k], dB[k], dW[k]
        internal = _pick(_step_variants(ctx, k, internal)[1], b, w, h, ctx)[0]
        wrong_bias = b is not None and not close(b, internal, ctx)
        if wrong_bias or (w is not None and not close(w, internal @ h.T, ctx)):
            return False
    return True


def _upstream_link(ctx, k, ok, b, e, above, note, right_slope, loss):
    """The top link (k = K) or the step down to layer k; ``above`` is (Omega_{k+1}^T d_up, d_up, dW) with
    d_up their delta_{k+1}."""
    back, d_up, dW = above
    kind = "top" if k == len(ctx.weights) - 1 else "step"
    if ok:
        return Link(kind, k, True, e if b is None else b, e, note=note)
    if kind == "top":
        code, words, numbers = top_reading(b, ctx.all_f[-1], ctx.deltas[-1], loss, ctx)
        return Link("top", k, False, b, e, code, words, numbers)
    W, G = ctx.weights[k + 1], dW[k + 1]
    f, h = ctx.all_f[k], ctx.all_h[k + 1]
    others = step_products(W, G if G is not None else np.full_like(W, np.nan), d_up, f, h, ctx.derivative, k,
                           ctx.all_f[k + 1])
    code, words, slope = step_reading(b, e, back, f, h, right_slope, others, k, ctx)
    return Link("step", k, False, b, e, code, words, slope=slope, f=f, right_slope=right_slope, back=back)


def _weight_link(ctx, k, w, d):
    if w is None:
        return None
    given = d @ ctx.all_h[k].T
    if close(w, given, ctx):
        return Link("weights", k, True, w, given)
    code, words = weight_reading(w, d, ctx.all_f, ctx.all_h, ctx.derivative, k, ctx)
    return Link("weights", k, False, w, given, code, words)


def _bias_link(ctx, k, b, d, w):
    if b is None:
        return None
    if close(b, d, ctx):
        return Link("bias", k, True, b, d)
    G = w if w is not None else np.full((d.shape[0], ctx.all_h[k].shape[0]), np.nan)
    code, words = bias_reading(b, d, G, ctx.all_f, ctx.all_h, k, ctx)
    return Link("bias", k, False, b, d, code, words)
