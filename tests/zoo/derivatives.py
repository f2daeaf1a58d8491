"""Deliberately wrong derivatives: each must fail ``check_derivative`` (the checker tested, autograd style).

Each is a function with the public signature of the derivative it imitates, and one bug.
"""

from __future__ import annotations

import numpy as np

from manual_backprop.maths.activations import get_activation
from manual_backprop.maths.backprop import backward, forward
from manual_backprop.maths.derivatives.hvp import hvp_core
from manual_backprop.maths.derivatives.jvp import jvp_forward
from manual_backprop.maths.derivatives.per_example import per_example_core
from manual_backprop.maths.losses import loss_gradient, loss_hessian_vector
from manual_backprop.validate import check_target


def _target(y, loss, weights, columns):
    return check_target(y, loss, weights[-1].shape[0], columns, np.float64)


def jvp_without_domega_h(all_weights, all_biases, net_input, tw, tb, *, activation="relu"):
    """df_k = Omega_k dh_k + dbeta_k: the product rule's dOmega_k h_k term dropped."""
    act = get_activation(activation)
    zeros = [np.zeros_like(t) for t in tw]
    all_f, _, all_df, _ = jvp_forward(all_weights, all_biases, net_input, zeros, tb, act)
    return all_f[-1], all_df[-1]


def jvp_without_slope(all_weights, all_biases, net_input, tw, tb, *, activation="relu"):
    """dh_{k+1} = df_k: a'(f_k) forgotten on the way up."""
    act = get_activation(activation)
    linear = act._replace(derivative=np.ones_like, slope=np.ones_like)
    all_f = forward(all_weights, all_biases, net_input, act)[1]
    _, _, all_df, _ = jvp_forward(all_weights, all_biases, net_input, tw, tb, linear)
    return all_f[-1], all_df[-1]


def hvp_without_vt_delta(all_weights, all_biases, net_input, y, vw, vb, *, activation="relu",
                         loss="least_squares"):
    """R{delta_{k-1}} without V_k^T delta_k: the product rule on Omega_k^T delta_k half done."""
    act = get_activation(activation)
    target = _target(y, loss, all_weights, net_input.shape[1])
    all_f, all_h, all_df, all_dh = jvp_forward(all_weights, all_biases, net_input, vw, vb, act)
    delta = loss_gradient(loss, all_f[-1], target)
    r_delta = loss_hessian_vector(loss, all_f[-1], target, all_df[-1])
    n = len(all_weights)
    hv_w, hv_b = [None] * n, [None] * n
    for k in reversed(range(n)):
        hv_w[k] = r_delta @ all_h[k].T + delta @ all_dh[k].T
        hv_b[k] = r_delta.sum(axis=1, keepdims=True)
        if k > 0:
            back = all_weights[k].T @ delta
            slope = act.derivative(all_f[k - 1])
            curvature = act.curvature(all_f[k - 1])
            r_delta = slope * (all_weights[k].T @ r_delta) + curvature * all_df[k - 1] * back
            delta = slope * back
    return hv_w, hv_b


def hvp_without_delta_rh(all_weights, all_biases, net_input, y, vw, vb, *, activation="relu",
                         loss="least_squares"):
    """R{dL/dOmega_k} = R{delta_k} h_k^T only: the term delta_k R{h_k}^T dropped."""
    act = get_activation(activation)
    target = _target(y, loss, all_weights, net_input.shape[1])
    hv_w, hv_b = hvp_core(all_weights, all_biases, net_input, target, vw, vb, act, loss)
    all_f, all_h, all_df, all_dh = jvp_forward(all_weights, all_biases, net_input, vw, vb, act)
    deltas = [None] * len(all_weights)
    backward(all_weights, all_f, all_h, loss_gradient(loss, all_f[-1], target), act, all_deltas=deltas)
    return [h - d @ dh.T for h, d, dh in zip(hv_w, deltas, all_dh, strict=False)], hv_b


def hvp_without_curvature(all_weights, all_biases, net_input, y, vw, vb, *, activation="tanh",
                          loss="least_squares"):
    """a''(f) taken as 0 (right for relu only): the last term of R{delta_{k-1}} dropped."""
    act = get_activation(activation)
    target = _target(y, loss, all_weights, net_input.shape[1])
    return hvp_core(all_weights, all_biases, net_input, target, vw, vb, act, loss, curvature=np.zeros_like)


def hvp_wrong_curvature(all_weights, all_biases, net_input, y, vw, vb, *, activation="tanh",
                        loss="least_squares"):
    """a''(f) with the wrong sign (tanh'' = +2 tanh (1 - tanh^2), a classic slip)."""
    act = get_activation(activation)
    target = _target(y, loss, all_weights, net_input.shape[1])
    return hvp_core(all_weights, all_biases, net_input, target, vw, vb, act, loss,
                    curvature=lambda f: -act.curvature(f))  # fmt: skip


def ggn_as_hessian(all_weights, all_biases, net_input, y, vw, vb, *, activation="tanh", loss="least_squares"):
    """H v returned for G v: the network's own curvature kept."""
    act = get_activation(activation)
    target = _target(y, loss, all_weights, net_input.shape[1])
    return hvp_core(all_weights, all_biases, net_input, target, vw, vb, act, loss)


def per_example_batch_mean(all_weights, all_biases, net_input, y, *, activation="relu", loss="least_squares"):
    """Every example given the batch's mean gradient."""
    act = get_activation(activation)
    target = _target(y, loss, all_weights, net_input.shape[1])
    per_w, per_b = per_example_core(all_weights, all_biases, net_input, target, act, loss)
    return ([np.broadcast_to(p.mean(axis=0), p.shape).copy() for p in per_w],
            [np.broadcast_to(p.mean(axis=0), p.shape).copy() for p in per_b])  # fmt: skip


def input_gradient_with_slope_of_f0(all_weights, all_biases, net_input, y, *, activation="tanh",
                                    loss="least_squares"):
    """dL/dh_0 = Omega_0^T (a'(f_0) * delta_0): a'(f_0) applied twice (the input has no activation)."""
    act = get_activation(activation)
    target = _target(y, loss, all_weights, net_input.shape[1])
    out, all_f, all_h = forward(all_weights, all_biases, net_input, act)
    deltas = [None] * len(all_weights)
    backward(all_weights, all_f, all_h, loss_gradient(loss, out, target), act, all_deltas=deltas)
    return all_weights[0].T @ (act.derivative(all_f[0]) * deltas[0])
