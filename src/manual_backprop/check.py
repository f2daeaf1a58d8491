"""Run the witnesses and gather their comparisons into reports.

- ``three_way_check``: manual backprop, ``jax.grad`` and finite differences (or, for large networks, the
  directional / Taylor checks) on one network, compared pairwise, per layer.
- ``check_backward``: grades a user's notebook-style ``backward(all_weights, all_biases, all_f, all_h, y)``
  against the oracle on a deterministic battery of networks, with a diagnosis of every failing tensor.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field

import numpy as np

from .activations import get_activation, other_side_at_kink
from .backprop import backward, forward
from .compare import Comparison, _number, compare_gradients, compare_pairs, fmt, render_table
from .diagnose import Diagnosis, diagnose_tensor, first_wrong_layer, make_context
from .directional import directional_check
from .finite_diff import fd_cost, numerical_gradients
from .losses import loss_gradient, loss_terms
from .network import _check_seed, random_network, udl_network
from .taylor import taylor_check
from .tolerances import gradient_scale, rounding_allowance, tolerance_for
from .validate import LOSSES, check_columns, check_loss_name, check_parameters, check_target

FD_MODES = ("central", "forward", "backward", "directional", "taylor")
# A full finite-difference check pushes every parameter's perturbation through the layers above it; past
# this many multiply-adds (about a second of NumPy) the check switches to directional and says so.
FD_BUDGET = 2e9

CONVENTIONS = (
    "column vectors: net_input (D_i, N), Omega_k (D_out, D_in), beta_k (D_out, 1); loss summed over the "
    "batch; no activation on the last layer",
    "derivatives at kinks follow jax.nn: ReLU'(0) = 0, leaky ReLU'(0) = 1",
    "an entry whose finite difference crossed a kink is compared with the one-sided difference on a side "
    "where no unit changes state (for a unit exactly on its kink that is the side ReLU'(0) = 0 selects: "
    "the unit stays off), with the default forward step and the forward tolerance; entries that cross on "
    "both sides (several units on kinks) are excluded and counted",
)


def _oracle():
    from oracle import jax_gradients  # the JAX import is paid only by the checks that need it

    return jax_gradients


# ---------------------------------------------------------------------------------------------- three way


@dataclass(frozen=True)
class ThreeWayReport:
    """Manual backprop, ``jax.grad`` and a finite-difference witness, compared pairwise per layer.

    ``manual_vs_jax``, ``manual_vs_fd``, ``jax_vs_fd`` are ``Comparison``s (the last two None in the
    directional and Taylor modes, which fill ``manual_directional`` and ``jax_directional`` instead).
    """

    sizes: tuple
    batch: int
    dtype: str
    activation: str
    loss: str
    fd: str
    requested_fd: str
    step: float | None
    loss_value: float
    manual_vs_jax: Comparison
    manual_vs_fd: Comparison | None
    jax_vs_fd: Comparison | None
    manual_directional: object = None
    jax_directional: object = None
    kinks_crossed: int = 0
    kinks_one_sided: int = 0
    kinks_excluded: int = 0
    notes: tuple = ()
    conventions: tuple = CONVENTIONS
    gradients: dict = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        parts = (
            self.manual_vs_jax,
            self.manual_vs_fd,
            self.jax_vs_fd,
            self.manual_directional,
            self.jax_directional,
        )
        return all(p.ok for p in parts if p is not None)

    def to_dict(self) -> dict:
        def d(x):
            return None if x is None else x.to_dict()

        return {
            "ok": self.ok,
            "sizes": list(self.sizes),
            "batch": self.batch,
            "dtype": self.dtype,
            "activation": self.activation,
            "loss": self.loss,
            "fd": self.fd,
            "requested_fd": self.requested_fd,
            "step": self.step,
            "loss_value": _number(self.loss_value),
            "manual_vs_jax": d(self.manual_vs_jax),
            "manual_vs_fd": d(self.manual_vs_fd),
            "jax_vs_fd": d(self.jax_vs_fd),
            "manual_directional": d(self.manual_directional),
            "jax_directional": d(self.jax_directional),
            "kinks": {
                "crossed": self.kinks_crossed,
                "one_sided": self.kinks_one_sided,
                "excluded": self.kinks_excluded,
            },
            "notes": list(self.notes),
            "conventions": list(self.conventions),
        }

    def __str__(self) -> str:
        fd_pairs = self.manual_vs_fd is not None
        head = ["tensor", "shape", "manual-jax"] + (
            ["manual-fd", "jax-fd", "1-sided", "excl"] if fd_pairs else []
        )
        lines = [tuple(head + [""])]
        for i, mj in enumerate(self.manual_vs_jax.rows):
            row = [mj.name, "x".join(map(str, mj.shape)), fmt(mj.max_abs_error)]
            ok = mj.ok
            if fd_pairs:
                mf, jf = self.manual_vs_fd.rows[i], self.jax_vs_fd.rows[i]
                row += [fmt(mf.max_abs_error), fmt(jf.max_abs_error), str(mf.one_sided), str(mf.excluded)]
                ok = ok and mf.ok and jf.ok
            lines.append(tuple(row + ["ok" if ok else "FAIL"]))
        out = [
            f"max abs errors per tensor ({self.dtype}, {self.activation}, {self.loss}, fd: {self.fd})",
            render_table(lines),
        ]
        for rep, who in ((self.manual_directional, "manual"), (self.jax_directional, "jax")):
            if rep is not None:
                out.append(f"{who}: {rep}")
        if self.kinks_crossed:
            out.append(
                f"kinks: {self.kinks_crossed} entries crossed a kink; {self.kinks_one_sided} compared "
                f"one-sided, {self.kinks_excluded} excluded"
            )
        out.extend(self.notes)
        return "\n".join(out)


def _fd_witness(weights, biases, x, y, activation, loss, method, step, dtype):
    """Finite differences with the kink rule: values, per-entry (rtol, atol), include masks and counts."""
    fd_w, fd_b, kinks = numerical_gradients(
        weights, biases, x, y, activation=activation, loss=loss, method=method, step=step, return_kinks=True
    )
    values = [list(fd_w), list(fd_b)]
    main = tolerance_for(dtype, method)
    crossed = sum(int(k.sum()) for part in kinks for k in part)
    if crossed == 0:
        return values, main.rtol, main.atol, None, None, (0, 0, 0)
    side = tolerance_for(dtype, "forward")
    rtol = [[np.where(k, side.rtol, main.rtol) for k in part] for part in kinks]
    atol = [[np.where(k, side.atol, main.atol) for k in part] for part in kinks]
    remaining = [[k.copy() for k in part] for part in kinks]
    one_sided = 0
    for other in ("forward", "backward"):
        if other == method:
            continue
        o_w, o_b, (ok_w, ok_b) = numerical_gradients(
            weights, biases, x, y, activation=activation, loss=loss, method=other, return_kinks=True
        )
        for part, (o_vals, o_kinks) in enumerate(((o_w, ok_w), (o_b, ok_b))):
            for layer, (vals, k) in enumerate(zip(o_vals, o_kinks, strict=False)):
                usable = remaining[part][layer] & ~k
                if usable.any():
                    values[part][layer] = np.where(usable, vals, values[part][layer])
                    remaining[part][layer] = remaining[part][layer] & k
                    one_sided += int(usable.sum())
    include = [[~r for r in part] for part in remaining]
    sided = [[k & ~r for k, r in zip(pk, pr, strict=False)] for pk, pr in zip(kinks, remaining, strict=False)]
    excluded = sum(int(r.sum()) for part in remaining for r in part)
    return values, rtol, atol, include, sided, (crossed, one_sided, excluded)


def _compare_fd(analytic, fd_values, rtol, atol, include, sided, label, main):
    """The analytic gradient against finite differences, with per-entry tolerances beside kinks."""
    scale = gradient_scale(analytic)
    one_sided = None if sided is None else [[int(np.count_nonzero(m)) for m in part] for part in sided]
    rows = compare_pairs(analytic, fd_values, rtol=rtol, atol=atol, scale=scale, include=include,
                         one_sided=one_sided)  # fmt: skip
    notes = () if sided is None else ("entries beside a kink: one-sided difference, forward tolerance",)
    return Comparison(label, tuple(rows), main.rtol, main.atol, float(scale), notes)


def _check_forward_is_finite(all_f, loss_value: float):
    """A ValueError naming the first layer whose pre-activations overflow: no gradient to check there."""
    if np.isfinite(loss_value):
        return
    for k, f in enumerate(all_f):
        if not np.isfinite(f).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(f))[0])
            raise ValueError(
                f"the forward pass overflows: all_f[{k}]{list(bad)} = {f[bad]} (largest finite "
                f"{np.finfo(f.dtype).max:.1e}); scale the parameters or the input down"
            )
    raise ValueError(f"the loss overflows ({loss_value}); scale the parameters, input or target down")


def three_way_check(
    all_weights,
    all_biases,
    net_input,
    y,
    *,
    activation: str = "relu",
    loss: str = "least_squares",
    fd: str = "central",
    step=None,
    directions: int = 3,
    rng=0,
    fd_budget: float = FD_BUDGET,
) -> ThreeWayReport:
    """Manual vs JAX, manual vs finite differences, JAX vs finite differences, per layer and tensor.

    ``fd``: "central", "forward", "backward" (a difference per parameter; kinks handled as in
    ``CONVENTIONS``), "directional" or "taylor" (O(1) forward passes: see ``directional.py``). A full
    finite-difference check whose cost exceeds ``fd_budget`` multiply-adds switches to directional.
    """
    if fd not in FD_MODES:
        raise ValueError(f"unknown fd {fd!r}; choose one of {', '.join(FD_MODES)}")
    act = get_activation(activation)
    check_loss_name(loss)
    weights, biases, dtype = check_parameters(all_weights, all_biases)
    x = check_columns(net_input, "net_input", weights[0].shape[1], dtype)
    target = check_target(y, loss, weights[-1].shape[0], x.shape[1], dtype)
    # Checked once here; the manual witness then runs the book's equations on the checked arrays.
    with np.errstate(over="ignore", invalid="ignore"):
        net_output, all_f, all_h = forward(weights, biases, x, act)
        loss_value = float(loss_terms(loss, net_output, target).sum())
    _check_forward_is_finite(all_f, loss_value)
    dl_df_last = loss_gradient(loss, net_output, target)
    manual = backward(weights, all_f, all_h, dl_df_last, act)
    oracle = _oracle()(weights, biases, x, y, activation=activation, loss=loss)
    allowance = None
    if dtype == np.float32:  # rounding grows with the size of the computation; float64 keeps the table's
        allowance = rounding_allowance(weights, all_f, all_h, dl_df_last, act.derivative, dtype,
                                       loss_derivative=lambda z: loss_gradient(loss, z, target))  # fmt: skip
    manual_vs_jax = compare_gradients(oracle, manual, dtype=dtype, label="manual vs jax", allowance=allowance)
    sizes = (weights[0].shape[1],) + tuple(w.shape[0] for w in weights)
    common = dict(
        sizes=sizes,
        batch=int(x.shape[1]),
        dtype=dtype.name,
        activation=activation,
        loss=loss,
        requested_fd=fd,
        loss_value=loss_value,
        manual_vs_jax=manual_vs_jax,
    )
    notes = []
    method = fd
    if fd in ("central", "forward", "backward"):
        cost = fd_cost(weights, x.shape[1], fd)
        if cost > fd_budget:
            method = "directional"
            notes.append(
                f"a full {fd} finite-difference check would cost {cost:.1e} multiply-adds (budget "
                f"{fd_budget:.1e}): switched to directional"
            )
    if method in ("directional", "taylor"):
        check = directional_check if method == "directional" else taylor_check
        kwargs = dict(activation=activation, loss=loss, rng=rng)
        if method == "directional":
            # A step given for per-parameter differences is absolute; the directional one is relative.
            kwargs.update(directions=directions, step=step if fd == "directional" else None)
        return ThreeWayReport(
            **common,
            fd=method,
            step=step,
            manual_vs_fd=None,
            jax_vs_fd=None,
            manual_directional=check(weights, biases, x, y, manual, **kwargs),
            jax_directional=check(weights, biases, x, y, oracle, **kwargs),
            notes=tuple(notes),
            gradients={"manual": manual, "jax": oracle},
        )
    values, rtol, atol, include, sided, (crossed, one_sided, excluded) = _fd_witness(
        weights, biases, x, y, activation, loss, method, step, dtype
    )
    main = tolerance_for(dtype, method)
    manual_vs_fd = _compare_fd(manual, values, rtol, atol, include, sided, "manual vs fd", main)
    jax_vs_fd = _compare_fd(oracle, values, rtol, atol, include, sided, "jax vs fd", main)
    return ThreeWayReport(
        **common,
        fd=method,
        step=step,
        manual_vs_fd=manual_vs_fd,
        jax_vs_fd=jax_vs_fd,
        kinks_crossed=crossed,
        kinks_one_sided=one_sided,
        kinks_excluded=excluded,
        notes=tuple(notes),
        gradients={"manual": manual, "jax": oracle, "fd": values},
    )


# ------------------------------------------------------------------------------------------ check_backward


@dataclass(frozen=True)
class Case:
    """One network of the battery: parameters, input (D_i, N) and target (D_o, N)."""

    name: str
    weights: list
    biases: list
    net_input: np.ndarray
    y: np.ndarray

    @property
    def sizes(self) -> tuple:
        return (self.weights[0].shape[1],) + tuple(w.shape[0] for w in self.weights)


# (name, layer sizes, seed): unequal widths so that a missing transpose cannot hide, K = 0..8, one square
# network (where a missing transpose runs and must be caught by value), pairs with equal shapes but
# different values (a function that remembers a previous call is caught), and a network sitting on its
# kinks.
BATTERY = (
    ("notebook", None, 0),
    ("notebook shapes, seed 1", None, 1),
    ("K=0", (3, 2), 10),
    ("K=1", (4, 7, 3), 11),
    ("K=2", (2, 5, 3, 4), 12),
    ("K=3 square", (4, 4, 4, 4, 4), 13),
    ("K=4", (3, 6, 2, 5, 4, 2), 14),
    ("K=8", (2, 3, 5, 4, 6, 3, 5, 2, 4, 3), 15),
    ("K=8, seed 16", (2, 3, 5, 4, 6, 3, 5, 2, 4, 3), 16),
    ("exact kinks", "kinks", 17),
    ("notebook again", None, 0),
)
# The "exact kinks" network has integer-valued parameters and input, so that pre-activations are exactly 0
# and the derivative convention at the kink (ReLU'(0) = 0, leaky ReLU'(0) = 1) decides the gradient.
KINK_SIZES = (3, 5, 4, 3)


def _target(loss: str, rng, rows: int, columns: int, dtype, least_squares=None):
    if loss == "least_squares":
        return (2 * rng.standard_normal((rows, columns)) if least_squares is None else least_squares).astype(
            dtype
        )
    if loss == "binary_cross_entropy":
        return rng.uniform(size=(rows, columns)).astype(dtype)
    one_hot = np.zeros((rows, columns), dtype)
    one_hot[rng.integers(0, rows, columns), np.arange(columns)] = 1
    return one_hot


def _live(weights, x, act) -> bool:
    """Every layer's input has a live unit, so that no layer's gradient is zero by accident."""
    h = x
    for omega in weights[:-1]:
        h = act.function(omega @ h)
        if not np.any(h):
            return False
    return True


def _flipped_at_kink(act):
    """a'(f) with the other one-sided derivative at f = 0 (ReLU: 1 instead of 0): the classic slip."""
    _, other = other_side_at_kink(act.derivative)
    return lambda f: np.where(f == 0, f.dtype.type(other), act.derivative(f))


def _kink_network(act, loss: str, batch: int, seed: int, dtype):
    """Integer-valued parameters and input with pre-activations exactly 0 where a'(0) changes the gradient.

    For a smooth activation any such network does (a'(0) is no convention there).
    """
    flipped = _flipped_at_kink(act) if act.kinked else None
    for attempt in range(500):
        rng = np.random.default_rng([seed, 17, attempt])
        shapes = zip(KINK_SIZES[1:], KINK_SIZES[:-1], strict=True)
        weights = [rng.integers(-1, 2, shape).astype(float) for shape in shapes]
        biases = [rng.integers(-1, 2, (o, 1)).astype(float) for o in KINK_SIZES[1:]]
        x = rng.integers(-1, 2, (KINK_SIZES[0], batch)).astype(float)
        y = _target(loss, rng, KINK_SIZES[-1], batch, dtype, rng.integers(-2, 3, (KINK_SIZES[-1], batch)))
        net_output, all_f, all_h = forward(weights, biases, x, act)
        if not any((f == 0).any() for f in all_f[:-1]) or not _live(weights, x, act):
            continue
        if flipped is None:
            break
        delta = loss_gradient(loss, net_output, check_target(y, loss, KINK_SIZES[-1], batch, np.float64))
        right_w, right_b = backward(weights, all_f, all_h, delta, act)
        slipped_w, slipped_b = backward(weights, all_f, all_h, delta, act._replace(slope=flipped))
        pairs = zip(right_w + right_b, slipped_w + slipped_b, strict=True)
        if any(not np.allclose(a, b) for a, b in pairs):
            break
    return weights, biases, x, y


def make_battery(
    activation: str = "relu", loss: str = "least_squares", batch: int = 1, dtype=np.float64, seed: int = 0
) -> list:
    """The deterministic battery of ``Case``s (see ``BATTERY``)."""
    act = get_activation(activation)
    loss = check_loss_name(loss)
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    seed = _check_seed(seed)
    dtype = np.dtype(dtype)
    # A softmax over one output is constant (its gradient is 0): the notebook's shapes get 3 outputs there.
    notebook_outputs = 3 if loss == "softmax_cross_entropy" else 1
    cases = []
    for name, sizes, case_seed in BATTERY:
        rng = np.random.default_rng([seed, case_seed])
        if sizes is None:
            weights, biases = udl_network(seed=(seed + case_seed) % 2**32, D_o=notebook_outputs)
            x = np.full((1, batch), 1.2)
            x[:, 1:] += rng.standard_normal((1, batch - 1))
            y = _target(loss, rng, notebook_outputs, batch, dtype, np.full((notebook_outputs, batch), 20.0))
        elif sizes == "kinks":
            weights, biases, x, y = _kink_network(act, loss, batch, seed, dtype)
        else:
            for attempt in range(50):
                weights, biases = random_network(
                    sizes, rng=np.random.default_rng([seed, case_seed, attempt]), bias_std=0.5
                )
                x = rng.standard_normal((sizes[0], batch))
                if _live(weights, x, act):
                    break
            y = _target(loss, rng, sizes[-1], batch, dtype)
        cases.append(
            Case(
                name,
                [w.astype(dtype) for w in weights],
                [b.astype(dtype) for b in biases],
                x.astype(dtype),
                y,
            )
        )
    return cases


@dataclass(frozen=True)
class CaseResult:
    """The grade of one case. ``error`` is set for an exception, a bad return structure or a mutated input
    (``error_kind`` "exception", "structure", "mutation"); ``comparison`` holds the per-tensor rows against
    the oracle; ``first_wrong_layer`` and ``diagnoses`` say where and what."""

    name: str
    sizes: tuple
    batch: int
    ok: bool
    error_kind: str | None
    error: str | None
    comparison: Comparison | None
    first_wrong_layer: int | None
    diagnoses: tuple
    witnesses_agree: bool
    kinks_excluded: int

    @property
    def summary(self) -> str:
        if self.ok:
            return "ok"
        if self.error:
            return self.error
        stale = [d for d in self.diagnoses if d.code == "stale"]
        if stale:
            return stale[0].text
        return "; ".join(f"{names}: {text}" for names, text in self.first_layer_diagnoses())

    def first_layer_diagnoses(self) -> list:
        """(tensor names, text) at the first wrong layer, tensors with the same diagnosis grouped."""
        grouped = {}
        for d in self.diagnoses:
            if d.layer == self.first_wrong_layer:
                grouped.setdefault(d.text, []).append(
                    f"{'Omega' if d.kind == 'weights' else 'beta'}_{d.layer}"
                )
        return [(", ".join(names), text) for text, names in grouped.items()]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "sizes": list(self.sizes),
            "batch": self.batch,
            "ok": self.ok,
            "error_kind": self.error_kind,
            "error": self.error,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "first_wrong_layer": self.first_wrong_layer,
            "diagnoses": [d.to_dict() for d in self.diagnoses],
            "witnesses_agree": self.witnesses_agree,
            "kinks_excluded": self.kinks_excluded,
        }


@dataclass(frozen=True)
class BackwardReport:
    """``check_backward``'s grade of a user's backward pass: one ``CaseResult`` per case of the battery."""

    function: str
    activation: str
    loss: str
    batch: int
    dtype: str
    cases: tuple
    conventions: tuple = CONVENTIONS

    @property
    def ok(self) -> bool:
        return all(case.ok for case in self.cases)

    @property
    def failing(self) -> tuple:
        return tuple(case for case in self.cases if not case.ok)

    def to_dict(self) -> dict:
        return {
            "function": self.function,
            "ok": self.ok,
            "activation": self.activation,
            "loss": self.loss,
            "batch": self.batch,
            "dtype": self.dtype,
            "cases": [c.to_dict() for c in self.cases],
            "conventions": list(self.conventions),
        }

    def __str__(self) -> str:
        lines = [("case", "sizes", "verdict", "first wrong layer", "diagnosis")]
        for c in self.cases:
            lines.append(
                (
                    c.name,
                    "-".join(map(str, c.sizes)),
                    "ok" if c.ok else "FAIL",
                    "-" if c.first_wrong_layer is None else str(c.first_wrong_layer),
                    "" if c.ok else c.summary,
                )
            )
        passed = sum(c.ok for c in self.cases)
        head = (
            f"{self.function}: {passed}/{len(self.cases)} cases pass "
            f"({self.activation}, {self.loss}, batch {self.batch}, {self.dtype})"
        )
        out = [head, render_table(lines)]
        if not all(c.witnesses_agree for c in self.cases):
            out.append(
                "warning: jax and finite differences disagree on some case: the grade may be unreliable"
            )
        return "\n".join(out)


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


def _grade_case(backward, case: Case, activation: str, loss: str, oracle, history: list) -> CaseResult:
    act = get_activation(activation)
    dtype = case.weights[0].dtype
    target = check_target(case.y, loss, case.sizes[-1], case.net_input.shape[1], dtype)
    net_output, all_f, all_h = forward(case.weights, case.biases, case.net_input, act)
    expected = oracle(case.weights, case.biases, case.net_input, case.y, activation=activation, loss=loss)
    history.append((case.name, expected))
    # Second witness: finite differences agree with the oracle (kinks excluded).
    fd_w, fd_b, (k_w, k_b) = numerical_gradients(
        case.weights, case.biases, case.net_input, case.y, activation=activation, loss=loss, return_kinks=True
    )
    include = ([~k for k in k_w], [~k for k in k_b])
    witness = compare_gradients(expected, (fd_w, fd_b), dtype=dtype, kind="central", include=include)
    common = dict(
        name=case.name,
        sizes=case.sizes,
        batch=int(case.net_input.shape[1]),
        witnesses_agree=witness.ok,
        kinks_excluded=witness.excluded,
    )
    originals = (case.weights, case.biases, all_f, all_h, case.y)
    passed = [[a.copy() for a in part] for part in originals[:4]] + [case.y.copy()]
    lists = [list(p) for p in passed[:4]]
    try:
        result = backward(lists[0], lists[1], lists[2], lists[3], passed[4])
    except (Exception, SystemExit) as exc:  # the user's bug is a failed case, never our crash
        message = f"raised {type(exc).__name__}: {str(exc).strip()}{_user_line(exc, backward)}"
        return CaseResult(
            **common,
            ok=False,
            error_kind="exception",
            error=message,
            comparison=None,
            first_wrong_layer=None,
            diagnoses=(),
        )
    mutated = _mutation(
        originals, [(p, lst) for p, lst in zip(passed[:4], lists, strict=False)] + [(passed[4],)]
    )
    structure = _structure_error(result, len(case.weights))
    if structure:
        return CaseResult(
            **common,
            ok=False,
            error_kind="structure",
            error=structure,
            comparison=None,
            first_wrong_layer=None,
            diagnoses=(),
        )
    comparison = compare_gradients(expected, result, dtype=dtype, label="yours vs jax")
    first = first_wrong_layer(comparison.rows)
    diagnoses = ()
    if first is not None:
        ctx = make_context(
            case.weights,
            all_f,
            all_h,
            loss_gradient(loss, net_output, target),
            act,
            expected,
            dtype,
            top_candidates=[
                (
                    "wrong_loss_derivative",
                    f"dL/d(output) of {other} used for the {loss} loss",
                    loss_gradient(other, net_output, target),
                )
                for other in LOSSES
                if other != loss
            ],  # fmt: skip
        )
        # In backward order: the first wrong layer first, then the layers that inherit its error.
        failing = sorted((row for row in comparison.rows if not row.ok), key=lambda r: -r.layer)
        diagnoses = tuple(_diagnose(result, row, ctx) for row in failing)
        stale = _stale(result, history[:-1], dtype, expected)
        if stale:
            diagnoses = (
                Diagnosis(
                    first,
                    "weights",
                    "stale",
                    f"equal to the right gradient of case '{stale}': the function keeps state between calls",
                ),
            ) + diagnoses
    if mutated:
        return CaseResult(
            **common,
            ok=False,
            error_kind="mutation",
            error=mutated,
            comparison=comparison,
            first_wrong_layer=first,
            diagnoses=diagnoses,
        )
    return CaseResult(
        **common,
        ok=comparison.ok,
        error_kind=None,
        error=None,
        comparison=comparison,
        first_wrong_layer=first,
        diagnoses=diagnoses,
    )


def _stale(result, history, dtype, expected) -> str | None:
    """The name of an earlier case whose right gradient (unlike this case's) ``result`` equals, if any."""
    for name, earlier in history:
        if compare_gradients(earlier, expected, dtype=dtype, kind="diagnosis").ok:
            continue  # the same network again: matching its right gradient is not stale
        if compare_gradients(earlier, result, dtype=dtype, kind="diagnosis").ok:
            return name
    return None


def _diagnose(result, row, ctx) -> Diagnosis:
    actual = result[0 if row.kind == "weights" else 1][row.layer]
    return diagnose_tensor(actual, row.layer, row.kind, ctx)


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
    if not callable(backward):
        raise TypeError(f"backward must be a function, got {type(backward).__name__}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"dtype must be float64 or float32, got {dtype}")
    cases = make_battery(activation, loss, batch, dtype, seed) if cases is None else list(cases)
    if not cases:
        raise ValueError("cases is empty: nothing to grade (pass None for the standard battery)")
    oracle, history = _oracle(), []
    results = tuple(_grade_case(backward, case, activation, loss, oracle, history) for case in cases)
    name = getattr(backward, "__qualname__", None) or repr(backward)
    return BackwardReport(name, activation, loss, int(batch), dtype.name, results)
