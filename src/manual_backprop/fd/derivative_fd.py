"""Finite-difference witnesses of the derivatives beyond the gradient, with the kink rule.

Each witness moves the parameters (or the input) along one direction by +-s and differences what it
watches, column by column (example n's output, loss and gradient depend on column n of the input only):

- JVP: the output f_K and each column's loss along the tangent (central difference);
- H v: each column's manual gradient (forward + backward by hand) along v, summed over the columns;
- G v: J v from the JVP witness above, then the gradient with dL/df_K = grad_z L(z + t J v) (the network held
  fixed), differenced in t: d/dt J^T grad_z L(z + t J v) = J^T H_L J v;
- per-example gradients: each column's loss along each parameter's own coordinate;
- input gradient: each column's loss along each input row.

Everything is evaluated in float64 whatever the dtype (a float32 network is exactly a float64 one): the
witness is of the exact derivative at the same point, to about 1e-10.

The kink rule (relu, leaky_relu): a move that flips some unit of a column on or off (``Activation.is_on``)
crossed a kink, where a difference quotient need not equal the derivative. That column is retried with
the step shrunk 16-fold, then 256-fold; then with a one-sided difference on a side where no unit changes
state (for a unit exactly at its kink that is the side the convention a'(0) picks); if both sides flip,
the column is *excluded*: counted, never compared, never a false alarm. A sum over the columns (H v, G v)
with an excluded column is excluded as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from ..maths.activations import Activation
from ..maths.backprop import backward, forward
from ..maths.losses import loss_gradient, loss_terms
from ..progress import track

EPS64 = float(np.finfo(np.float64).eps)
CENTRAL_STEP = float(np.cbrt(EPS64))  # 6.1e-6: O(s^2) truncation against O(eps / s) rounding
ONE_SIDED_STEP = float(np.sqrt(EPS64))  # 1.5e-8: O(s) truncation against O(eps / s) rounding
SHRINK = (1.0, 1 / 16, 1 / 256)  # central retries of a column that crossed a kink
# The rounding of a difference quotient: each evaluation of a value v carries a few ulps of error per
# operation that formed it (not the same ones at +s and at -s), so the quotient carries about
# ROUNDING_ULPS * eps * (|v(+s)| + |v(-s)|) / (2 s). Measured: a loss of 20 differenced for a derivative of
# 0.008 errs by 1e-9 (~ 30 eps |L| / s); 64 ulps cover that with room and stay 1e5 x below an O(1) bug there.
ROUNDING_ULPS = 64.0
CENTRAL, FORWARD, BACKWARD, EXCLUDED = 0, 1, -1, 2


class Witness(NamedTuple):
    """A finite-difference witness: ``values`` (a list of arrays, the derivative's tensors), and per tensor
    boolean masks of the entries from a one-sided difference (``one_sided``) and of those ``excluded``,
    and the estimated rounding error of each entry (``rounding``, absolute, float64)."""

    values: list
    one_sided: list
    excluded: list
    rounding: list


def _states(all_f, act):
    """The on/off state of every hidden unit, per column: (N, units) bool; None for smooth activations."""
    if act.is_on is None or len(all_f) < 2:
        return None
    return np.concatenate([np.asarray(act.is_on(f), bool) for f in all_f[:-1]], axis=0).T


def kink_rule_difference(evaluate: Callable[[float], tuple[np.ndarray, list[np.ndarray]]], step: float,
                         one_sided_step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The derivative at t = 0 of ``evaluate(t) -> (values (N, M), states (N, U) or None)``, per column.

    Returns ``(estimate (N, M), sides (N,), rounding (N, M))``: sides CENTRAL, FORWARD, BACKWARD or
    EXCLUDED (estimate NaN); rounding the estimated rounding error of each quotient.
    """
    base, base_states = evaluate(0.0)
    n = base.shape[0]
    estimate = np.full(base.shape, np.nan)
    rounding = np.zeros(base.shape)
    sides = np.full(n, EXCLUDED)
    todo = np.ones(n, bool)
    for scale in SHRINK if base_states is not None else SHRINK[:1]:
        s = step * scale
        (plus, p_states), (minus, m_states) = evaluate(s), evaluate(-s)
        clean = todo.copy()
        if base_states is not None:
            clean &= ~(p_states != base_states).any(axis=1) & ~(m_states != base_states).any(axis=1)
        estimate[clean] = (plus[clean] - minus[clean]) / (2 * s)
        rounding[clean] = ROUNDING_ULPS * EPS64 * (np.abs(plus[clean]) + np.abs(minus[clean])) / (2 * s)
        sides[clean] = CENTRAL
        todo &= ~clean
        if not todo.any():
            return estimate, sides, rounding
    for sign, side in ((1, FORWARD), (-1, BACKWARD)):
        s = sign * one_sided_step
        moved, states = evaluate(s)
        clean = todo & ~(states != base_states).any(axis=1)
        estimate[clean] = (moved[clean] - base[clean]) / s
        rounding[clean] = ROUNDING_ULPS * EPS64 * (np.abs(moved[clean]) + np.abs(base[clean])) / abs(s)
        sides[clean] = side
        todo &= ~clean
        if not todo.any():
            break
    return estimate, sides, rounding


def _float64(arrays):
    return [np.asarray(a, np.float64) for a in arrays]


def _direction_steps(weights, biases, v_w, v_b):
    """Steps along v that move the largest parameter by the base step's share: ``(central, one-sided)``."""
    largest = max(float(np.abs(a).max()) for a in [*weights, *biases])
    v_max = max(float(np.abs(a).max()) for a in [*v_w, *v_b])
    scale = max(1.0, largest) / (v_max if v_max > 0 else 1.0)
    return CENTRAL_STEP * scale, ONE_SIDED_STEP * scale


def _masks(sides, shape_per_column):
    """(one_sided, excluded) masks of shape (N, *shape) from per-column sides."""
    expand = (slice(None),) + (None,) * len(shape_per_column)
    one = np.broadcast_to(((sides == FORWARD) | (sides == BACKWARD))[expand], (len(sides), *shape_per_column))
    out = np.broadcast_to((sides == EXCLUDED)[expand], (len(sides), *shape_per_column))
    return one.copy(), out.copy()


def _line(weights, biases, x, target, d_w, d_b):
    """The line theta + t d in float64: ``(x, target, step, one_step, moved)``, ``moved(t)`` the two lists
    (weights, biases) at t, the steps those of ``_direction_steps``."""
    weights, biases, x, target, d_w, d_b = map(_float64, (weights, biases, [x], [target], d_w, d_b))
    step, one_step = _direction_steps(weights, biases, d_w, d_b)

    def moved(t: float):
        return ([w + t * d for w, d in zip(weights, d_w, strict=True)],
                [b + t * d for b, d in zip(biases, d_b, strict=True)])  # fmt: skip

    return x[0], target[0], step, one_step, moved


def fd_jvp(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray, target: np.ndarray,
           t_w: Sequence[np.ndarray], t_b: Sequence[np.ndarray], act: Activation, loss: str) -> Witness:
    """Central differences along the tangent: ``Witness([d_output (D_o, N), dL (1, 1)])``."""
    x, target, step, one_step, moved = _line(weights, biases, x, target, t_w, t_b)

    def evaluate(t):
        moved_w, moved_b = moved(t)
        out, all_f, _ = forward(moved_w, moved_b, x, act)
        column_loss = loss_terms(loss, out, target).sum(axis=0)
        return np.vstack([out, column_loss]).T, _states(all_f, act)

    estimate, sides, rounding = kink_rule_difference(evaluate, step, one_step)
    d_out = estimate[:, :-1].T
    d_loss = np.array([[estimate[:, -1].sum()]])
    one, out = _masks(sides, (d_out.shape[0],))
    any_one, any_out = bool(one.any()), bool(out.any())
    return Witness([d_out, d_loss], [one.T, np.array([[any_one and not any_out]])],
                   [out.T, np.array([[any_out]])],
                   [rounding[:, :-1].T, np.array([[rounding[:, -1].sum()]])])  # fmt: skip


def _sum_over_columns(estimate, sides, rounding, shapes):
    """Per-column estimates (N, P) summed into tensors of ``shapes``; all excluded if a column is."""
    total = estimate.sum(axis=0) if not (sides == EXCLUDED).any() else np.full(estimate.shape[1], np.nan)
    noise = rounding.sum(axis=0)
    one = bool(((sides == FORWARD) | (sides == BACKWARD)).any())
    excluded = bool((sides == EXCLUDED).any())
    values, ones, outs, roundings, start = [], [], [], [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        values.append(total[start:start + size].reshape(shape))
        roundings.append(noise[start:start + size].reshape(shape))
        ones.append(np.full(shape, one and not excluded))
        outs.append(np.full(shape, excluded))
        start += size
    return Witness(values, ones, outs, roundings)


def _column_gradients(weights, biases, x, target, act, loss):
    """Each column's gradient, flattened: (N, P), by the manual forward and backward passes."""
    rows = []
    for n in range(x.shape[1]):
        out, all_f, all_h = forward(weights, biases, x[:, n:n + 1], act)
        g_w, g_b = backward(weights, all_f, all_h, loss_gradient(loss, out, target[:, n:n + 1]), act)
        rows.append(np.concatenate([g.ravel() for g in [*g_w, *g_b]]))
    return np.array(rows)


def fd_hvp(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray, target: np.ndarray,
           v_w: Sequence[np.ndarray], v_b: Sequence[np.ndarray], act: Activation, loss: str) -> Witness:
    """Central differences of the manual gradient along v: ``Witness([Hv_w..., Hv_b...])``."""
    x, target, step, one_step, moved = _line(weights, biases, x, target, v_w, v_b)

    def evaluate(t):
        moved_w, moved_b = moved(t)
        _, all_f, _ = forward(moved_w, moved_b, x, act)
        return _column_gradients(moved_w, moved_b, x, target, act, loss), _states(all_f, act)

    estimate, sides, rounding = kink_rule_difference(evaluate, step, one_step)
    shapes = [w.shape for w in weights] + [b.shape for b in biases]
    return _sum_over_columns(estimate, sides, rounding, shapes)


def fd_ggn_vp(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray, target: np.ndarray,
              v_w: Sequence[np.ndarray], v_b: Sequence[np.ndarray], act: Activation, loss: str) -> Witness:
    """J^T H_L J v: J v from the JVP witness, then d/dt of backprop from grad_z L(z + t J v)."""
    jv_witness = fd_jvp(weights, biases, x, target, v_w, v_b, act, loss)
    weights, biases, x, target = map(_float64, (weights, biases, [x], [target]))
    x, target = x[0], target[0]
    jv = jv_witness.values[0]
    shapes = [w.shape for w in weights] + [b.shape for b in biases]
    if jv_witness.excluded[0].any():
        nothing = np.zeros((1, sum(int(np.prod(s)) for s in shapes)))
        return _sum_over_columns(nothing, np.array([EXCLUDED]), nothing, shapes)
    out, all_f, all_h = forward(weights, biases, x, act)
    scale = max(1.0, float(np.abs(out).max())) / max(float(np.abs(jv).max()), 1e-300)
    s = CENTRAL_STEP * scale

    def pulled(t):
        g_w, g_b = backward(weights, all_f, all_h, loss_gradient(loss, out + t * jv, target), act)
        return np.concatenate([g.ravel() for g in [*g_w, *g_b]])

    # backward is linear in its dL/df_K and the network is held fixed: no kink is crossed here.
    plus, minus = pulled(s), pulled(-s)
    estimate = ((plus - minus) / (2 * s))[None, :]
    rounding = (ROUNDING_ULPS * EPS64 * (np.abs(plus) + np.abs(minus)) / (2 * s))[None, :]
    one_sided = bool(jv_witness.one_sided[0].any())
    return _sum_over_columns(estimate, np.array([FORWARD if one_sided else CENTRAL]), rounding, shapes)


def _coordinate_differences(count, move, base_value):
    """Per-column derivatives along ``count`` coordinates: ``move(j, t) -> (values (N, 1), states)``."""
    columns, sides, roundings = [], [], []
    for j in track(range(count), "finite differences"):  # a bar only in the command line
        estimate, side, rounding = kink_rule_difference(lambda t, j=j: move(j, t), *base_value(j))
        columns.append(estimate[:, 0])
        sides.append(side)
        roundings.append(rounding[:, 0])
    return np.array(columns).T, np.array(sides).T, np.array(roundings).T  # (N, count) each


def fd_per_example(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray,
                   target: np.ndarray, act: Activation, loss: str) -> Witness:
    """Each column's loss differenced along each parameter coordinate.

    Returns a ``Witness`` of arrays (N, D_{k+1}, D_k) for the weights, then (N, D_{k+1}, 1) for the biases.
    """
    weights, biases, x, target = map(_float64, (weights, biases, [x], [target]))
    x, target = x[0], target[0]
    params = [*weights, *biases]
    sizes = [p.size for p in params]
    offsets = np.cumsum([0] + sizes)

    def locate(j):
        i = int(np.searchsorted(offsets, j, side="right")) - 1
        return i, np.unravel_index(j - offsets[i], params[i].shape)

    def move(j, t):
        i, index = locate(j)
        moved = [p.copy() if m == i else p for m, p in enumerate(params)]
        moved[i][index] += t
        out, all_f, _ = forward(moved[:len(weights)], moved[len(weights):], x, act)
        return loss_terms(loss, out, target).sum(axis=0)[:, None], _states(all_f, act)

    def steps(j):
        i, index = locate(j)
        size = max(1.0, abs(float(params[i][index])))
        return CENTRAL_STEP * size, ONE_SIDED_STEP * size

    estimate, sides, rounding = _coordinate_differences(offsets[-1], move, steps)
    values, ones, outs, roundings = [], [], [], []
    for i, p in enumerate(params):
        part = slice(offsets[i], offsets[i + 1])
        values.append(estimate[:, part].reshape((-1, *p.shape)))
        roundings.append(rounding[:, part].reshape((-1, *p.shape)))
        ones.append(((sides[:, part] == FORWARD) | (sides[:, part] == BACKWARD)).reshape((-1, *p.shape)))
        outs.append((sides[:, part] == EXCLUDED).reshape((-1, *p.shape)))
    return Witness(values, ones, outs, roundings)


def fd_input_gradient(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray,
                      target: np.ndarray, act: Activation, loss: str) -> Witness:
    """Each column's loss differenced along each input row: ``Witness([dL/d(net_input) (D_i, N)])``."""
    weights, biases, x, target = map(_float64, (weights, biases, [x], [target]))
    x, target = x[0], target[0]

    def move(i, t):
        moved = x.copy()
        moved[i] += t  # each column's own entry (i, n): column n's loss depends on column n only
        out, all_f, _ = forward(weights, biases, moved, act)
        return loss_terms(loss, out, target).sum(axis=0)[:, None], _states(all_f, act)

    def steps(i):
        size = max(1.0, float(np.abs(x[i]).max()))
        return CENTRAL_STEP * size, ONE_SIDED_STEP * size

    estimate, sides, rounding = _coordinate_differences(x.shape[0], move, steps)
    return Witness([estimate.T], [((sides == FORWARD) | (sides == BACKWARD)).T], [(sides == EXCLUDED).T],
                   [rounding.T])
