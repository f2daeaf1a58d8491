"""The three-way check of a derivative beyond the gradient: manual, JAX and finite differences, per tensor.

``check_derivative(all_weights, all_biases, net_input, y, derivative=...)`` runs one of

- ``"jvp"``: the output's derivative along a tangent (and the loss's, ``dL``), ``manual_jvp``;
- ``"hvp"``: the Hessian of the loss times v, ``manual_hvp``;
- ``"ggn"``: the generalized Gauss-Newton matrix times v, ``manual_ggn_vp``;
- ``"per_example"``: each example's gradient, ``manual_per_example_gradients``;
- ``"input"``: the gradient in the input, ``manual_input_gradient``;

against the ``oracle`` (``jax.jvp``, forward-over-reverse, ``jax.linearize``/``jax.vjp``, ``jax.vmap`` of
``jax.grad``) and the finite-difference witnesses of ``derivative_fd`` (with the kink rule), and returns a
``DerivativeReport``: per tensor the largest absolute error of each pair (manual-jax, manual-fd, jax-fd),
the entries compared one-sided or excluded beside a kink, ``.ok``, ``str()`` (the table) and ``to_dict()``.
Tolerances: ``tolerances.py``, kinds ``derivative_analytic``, ``derivative_central``,
``derivative_one_sided``, each entry judged as ``|a - e| <= atol * scale + rtol * |e|`` (``agree``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._types import Parameters, Seed
from ..compare import display
from ..fd import derivative_fd
from ..fd.fd_limits import fd_cost
from ..maths.derivatives.ggn import manual_ggn_vp
from ..maths.derivatives.hvp import manual_hvp
from ..maths.derivatives.input_gradient import manual_input_gradient
from ..maths.derivatives.jvp import manual_jvp
from ..maths.derivatives.per_example import manual_per_example_gradients
from ..maths.derivatives.tangents import check_pair, check_problem
from ..maths.losses import loss_gradient
from ..maths.network import _generator
from ..tables import RowsVerdict, fmt, render_table
from ..tolerances import PER_EXAMPLE_FD_MAX_COST, agree, gradient_scale, tolerance_for

DERIVATIVES = {
    "jvp": "the output's derivative along a tangent (forward mode), and the loss's (dL)",
    "hvp": "H v, the loss's Hessian times v (Pearlmutter's R-operator)",
    "ggn": "G v = J^T H_L J v, the generalized Gauss-Newton matrix times v",
    "per_example": "each example's gradient (leading batch axis N)",
    "input": "dL/d(net_input), the gradient in the input",
}
WITH_VECTOR = ("jvp", "hvp", "ggn")
MANUAL = {"jvp": manual_jvp, "hvp": manual_hvp, "ggn": manual_ggn_vp,
          "per_example": manual_per_example_gradients, "input": manual_input_gradient}  # fmt: skip
LABELS = {"jvp": "the JVP", "hvp": "H v", "ggn": "G v", "per_example": "the per-example gradients",
          "input": "the input gradient"}
PAIRS = ("manual-jax", "manual-fd", "jax-fd")


def _oracle(derivative):
    import oracle  # the JAX import is paid only by the checks that need it

    return {"jvp": oracle.jax_jvp, "hvp": oracle.jax_hvp, "ggn": oracle.jax_ggn_vp,
            "per_example": oracle.jax_per_example_gradients, "input": oracle.jax_input_gradient}[derivative]


@dataclass(frozen=True)
class DerivativeRow:
    """One tensor of the derivative: the largest |error| of each pair (None: not compared) and verdicts."""

    name: str
    shape: tuple
    manual_jax: float | None
    manual_fd: float | None
    jax_fd: float | None
    manual_jax_ok: bool
    manual_fd_ok: bool
    jax_fd_ok: bool
    compared: int
    one_sided: int = 0
    excluded: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.manual_jax_ok and self.manual_fd_ok and self.jax_fd_ok

    def to_dict(self) -> dict:
        def number(x):
            return None if x is None else (float(x) if np.isfinite(x) else str(x))

        return {"name": self.name, "shape": list(self.shape), "manual_jax": number(self.manual_jax),
                "manual_fd": number(self.manual_fd), "jax_fd": number(self.jax_fd), "ok": self.ok,
                "manual_jax_ok": self.manual_jax_ok, "manual_fd_ok": self.manual_fd_ok,
                "jax_fd_ok": self.jax_fd_ok, "compared": self.compared, "one_sided": self.one_sided,
                "excluded": self.excluded, "message": self.message}  # fmt: skip


@dataclass(frozen=True, repr=False)
class DerivativeReport(RowsVerdict, display.Displayed):
    """Manual, JAX and finite differences of one derivative, compared per tensor (``rows``)."""

    derivative: str
    sizes: tuple
    batch: int
    dtype: str
    activation: str
    loss: str
    rows: tuple
    tolerances: tuple  # ((kind, rtol, atol), ...)
    notes: tuple = ()
    values: dict = field(default=None, repr=False, compare=False)  # {"manual"|"jax"|"fd": [arrays]}


    @property
    def inconclusive(self) -> bool:
        """True when the finite differences compared no entry (all beside kinks): only manual-jax counted."""
        return all(row.compared == 0 for row in self.rows)

    @property
    def verdict(self) -> str:
        what = LABELS[self.derivative]
        if not self.ok:
            names = ", ".join(row.name for row in self.failing)
            return f"FAIL: {what}: {names} disagree"
        if self.inconclusive:
            return f"OK, in part: manual and jax agree on {what}; finite differences inconclusive (kinks)"
        return f"OK: manual, jax and finite differences agree on {what}"

    def to_dict(self) -> dict:
        return {"ok": self.ok, "derivative": self.derivative, "sizes": list(self.sizes), "batch": self.batch,
                "dtype": self.dtype, "activation": self.activation, "loss": self.loss,
                "inconclusive": self.inconclusive, "verdict": self.verdict,
                "tolerances": {kind: {"rtol": rtol, "atol": atol} for kind, rtol, atol in self.tolerances},
                "rows": [row.to_dict() for row in self.rows], "notes": list(self.notes)}  # fmt: skip

    def display_table(self) -> display.Table:
        return display.derivative_table(self, DERIVATIVES[self.derivative])

    def __str__(self) -> str:
        lines = [("tensor", "shape", *PAIRS, "1-sided", "excl", "")]
        for r in self.rows:
            lines.append((r.name, "x".join(map(str, r.shape)), fmt(r.manual_jax), fmt(r.manual_fd),
                          fmt(r.jax_fd), str(r.one_sided), str(r.excluded),
                          "ok" if r.ok else "FAIL" + (f" ({r.message})" if r.message else "")))  # fmt: skip
        table = [render_table(lines)]
        sizes = "-".join(map(str, self.sizes))
        head = [f"{self.derivative}: {DERIVATIVES[self.derivative]}; network {sizes}, batch {self.batch}",
                f"max abs errors per tensor ({self.dtype}, {self.activation}, {self.loss}, fd: central, "
                "kink rule)"]  # fmt: skip
        return "\n".join(head + table + list(self.notes) + [self.verdict])


def _random_vector(weights, biases, rng, dtype):
    generator = _generator(rng)
    return ([generator.standard_normal(w.shape).astype(dtype) for w in weights],
            [generator.standard_normal(b.shape).astype(dtype) for b in biases])  # fmt: skip


def _copies(arguments):
    """Deep copies of arrays and lists of arrays (anything else as it is)."""
    return tuple([np.array(a, copy=True) for a in arg] if isinstance(arg, list)
                 else np.array(arg, copy=True) if isinstance(arg, np.ndarray) else arg
                 for arg in arguments)  # fmt: skip


def _names(weights, prefix=""):
    n = len(weights)
    return [f"{prefix}Omega_{k}" for k in range(n)] + [f"{prefix}beta_{k}" for k in range(n)]


def _tensors(derivative, result, loss_value=None):
    """A derivative's result as one flat list of arrays, in the order of the report's rows."""
    if derivative == "jvp":
        return [np.asarray(result[1]), np.asarray(loss_value, np.float64).reshape(1, 1)]
    if derivative == "input":
        return [np.asarray(result)]
    weights, biases = result
    return [np.asarray(a) for a in [*weights, *biases]]


def _compare(actual, expected, include, rtol, atol, scale):
    """(largest |error| over the included entries or None, ok, message) for one tensor of one pair."""
    actual = np.asarray(actual)
    if actual.shape != expected.shape:
        return None, False, f"wrong shape: expected {expected.shape}, got {actual.shape}"
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    good = agree(a, e, rtol=rtol, atol=atol, scale=scale)
    with np.errstate(invalid="ignore"):
        error = np.abs(a - e)
    if include is not None:
        if not include.any():
            return None, True, ""
        good |= ~include
        error = error[include]
    worst = float(error.max(initial=0.0))  # NaN if any error is NaN: it agrees with nothing
    return worst, bool(good.all()), ""


def check_derivative(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike, *,
                     derivative: str = "jvp", activation: str = "relu", loss: str = "least_squares",
                     vector: tuple[Parameters, Parameters] | None = None, rng: Seed = 0,
                     manual: Callable[..., Any] | None = None) -> DerivativeReport:
    """Check one derivative three ways: manual (ours, or ``manual``), ``jax`` and finite differences.

    ``net_input`` (D_i, N); ``y`` (D_o, N) or class indices (N,) for softmax cross-entropy. ``derivative``
    is one of ``DERIVATIVES``. ``vector`` (jvp, hvp, ggn only) is the tangent or v as a pair of lists
    ``(v_weights, v_biases)`` shaped like the parameters; None draws standard normal entries from ``rng``
    (a seed or a ``np.random.Generator``). ``manual``, when given, is checked in place of ours: a function
    with the signature of ``manual_jvp`` / ``manual_hvp`` / ... (keyword ``activation`` and, but for the
    JVP, ``loss``). Returns a ``DerivativeReport``.
    """
    if not isinstance(derivative, str) or derivative not in DERIVATIVES:
        raise ValueError(f"unknown derivative {derivative!r}; choose one of {', '.join(DERIVATIVES)}")
    weights, biases, x, target, act, loss, dtype = check_problem(
        all_weights, all_biases, net_input, y, activation, loss)
    if derivative in WITH_VECTOR:
        if vector is None:
            v_w, v_b = _random_vector(weights, biases, rng, dtype)
        else:
            if not isinstance(vector, (list, tuple)) or len(vector) != 2:
                raise TypeError("vector must be a pair (v_weights, v_biases) of lists like the parameters")
            v_w, v_b = check_pair(vector[0], vector[1], ("vector[0]", "vector[1]"), weights, biases, dtype)
    elif vector is not None:
        raise ValueError(f"vector is for jvp, hvp and ggn; the {derivative!r} derivative takes none")
    if manual is not None and not callable(manual):
        raise TypeError(f"manual must be a function like manual_{derivative}, got {type(manual).__name__}")
    if derivative == "per_example" and fd_cost(weights, x.shape[1]) > PER_EXAMPLE_FD_MAX_COST:
        raise ValueError(
            f"the per-example finite-difference witness would cost {fd_cost(weights, x.shape[1]):.1e} "
            f"multiply-adds (limit {PER_EXAMPLE_FD_MAX_COST:.0e}, about a minute): check the per-example "
            "gradients on a smaller network or batch (their code does not depend on the size)")
    function = MANUAL[derivative] if manual is None else manual
    oracle = _oracle(derivative)
    keywords = {"activation": activation} if derivative == "jvp" else {"activation": activation, "loss": loss}
    first = (weights, biases, x) if derivative == "jvp" else (weights, biases, x, y)
    vectors = (v_w, v_b) if derivative in WITH_VECTOR else ()
    jax_result = oracle(*first, *vectors, **keywords)
    if manual is not None:  # a user's function gets fresh copies: what it writes into stays its own
        first, vectors = _copies(first), _copies(vectors)
    manual_result = function(*first, *vectors, **keywords)

    n_layers = len(weights)
    names = _names(weights) if derivative != "input" else ["net_input"]
    order = [i for k in range(n_layers) for i in (k, n_layers + k)] if derivative != "input" else [0]
    manual_dl = jax_dl = grad_z = None
    if derivative == "jvp":
        names, order = ["d_output", "dL"], [0, 1]
        from oracle import jax_loss_jvp

        z = np.asarray(jax_result[0], np.float64)
        grad_z = loss_gradient(loss, z, target.astype(np.float64))
        manual_dl = float(np.vdot(grad_z, np.asarray(manual_result[1], np.float64)))
        jax_dl = jax_loss_jvp(weights, biases, x, y, v_w, v_b, activation=activation, loss=loss)
    fd_args = (weights, biases, x, target)
    witness = {
        "jvp": lambda: derivative_fd.fd_jvp(*fd_args, v_w, v_b, act, loss),
        "hvp": lambda: derivative_fd.fd_hvp(*fd_args, v_w, v_b, act, loss),
        "ggn": lambda: derivative_fd.fd_ggn_vp(*fd_args, v_w, v_b, act, loss),
        "per_example": lambda: derivative_fd.fd_per_example(*fd_args, act, loss),
        "input": lambda: derivative_fd.fd_input_gradient(*fd_args, act, loss),
    }[derivative]()

    manual_t = _tensors(derivative, manual_result, manual_dl)
    jax_t = _tensors(derivative, jax_result, jax_dl)
    analytic = tolerance_for(dtype, "derivative_analytic")
    central = tolerance_for(dtype, "derivative_central")
    side = tolerance_for(dtype, "derivative_one_sided")
    # One scale for the whole derivative (as for gradients). The JVP's d_output and dL are two quantities;
    # dL = sum(dL/df_K * df_K) is a dot product whose terms may cancel, so its scale is sum |terms|.
    if derivative == "jvp":
        terms = np.abs(grad_z * np.asarray(jax_t[0], np.float64)).sum()
        scales = [gradient_scale(jax_t[0]), terms if 0 < terms < np.inf else 1.0]
    else:
        scales = [gradient_scale(jax_t)] * len(jax_t)
    rows = []
    for i in order:
        name = names[i]
        expected = jax_t[i]
        fd_values, one, out = witness.values[i], witness.one_sided[i], witness.excluded[i]
        rtol = np.where(one, side.rtol, central.rtol)
        # the difference quotient's own rounding (derivative_fd.ROUNDING_ULPS) joins the absolute part
        atol = np.where(one, side.atol, central.atol) + witness.rounding[i] / scales[i]
        include = ~out
        mj, mj_ok, message = _compare(manual_t[i], expected, None, analytic.rtol, analytic.atol, scales[i])
        if message:
            rows.append(DerivativeRow(name, expected.shape, None, None, None, False, False, True, 0,
                                      message=message))  # fmt: skip
            continue
        mf, mf_ok, _ = _compare(fd_values, np.asarray(manual_t[i]), include, rtol, atol, scales[i])
        jf, jf_ok, _ = _compare(fd_values, expected, include, rtol, atol, scales[i])
        rows.append(DerivativeRow(name, tuple(expected.shape), mj, mf, jf, mj_ok, mf_ok, jf_ok,
                                  int(include.sum()), int((one & include).sum()),
                                  int(out.sum())))  # fmt: skip
    notes = []
    if any(r.excluded for r in rows):
        notes.append("excluded: entries whose differences crossed a kink on both sides (never compared)")
    if dtype == np.float32:
        notes.append("finite differences evaluated in float64 (the float32 network's exact values)")
    sizes = (weights[0].shape[1], *(w.shape[0] for w in weights))
    tolerances = tuple((kind, t.rtol, t.atol) for kind, t in
                       (("analytic", analytic), ("central", central), ("one_sided", side)))  # fmt: skip
    return DerivativeReport(derivative, sizes, x.shape[1], np.dtype(dtype).name, activation, loss,
                            tuple(rows), tolerances, tuple(notes),
                            {"manual": manual_t, "jax": jax_t, "fd": witness.values})  # fmt: skip
