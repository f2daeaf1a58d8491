"""The Hessian of the loss times a vector, by hand: Pearlmutter's R-operator on forward and backward passes.

For a vector v = (V_0..V_K, b_0..b_K) shaped like the parameters, write R{x} = d/dt x(theta + t v) at t = 0
for any quantity x of the passes. The gradient is a function of theta like any other, so H v = R{grad}.

R-forward (the JVP, ``jvp.py``): R{f_k} = V_k h_k + Omega_k R{h_k} + b_k, R{h_{k+1}} = a'(f_k) * R{f_k},
R{h_0} = 0.

R-backward (differentiate each line of backprop by the product rule), with delta_k = dL/df_k:

    R{delta_K}        = H_L R{f_K}                     (H_L: the loss's Hessian in the output, per column)
    R{dL/dOmega_k}    = R{delta_k} h_k^T + delta_k R{h_k}^T
    R{dL/dbeta_k}     = sum over the batch of R{delta_k}
    R{delta_{k-1}}    = a'(f_{k-1}) * (V_k^T delta_k + Omega_k^T R{delta_k})
                        + a''(f_{k-1}) * R{f_{k-1}} * (Omega_k^T delta_k)

The cost is about two forward and two backward passes (the textbook bound: a small constant times one
gradient). For relu and leaky relu a''(f) = 0 (almost everywhere): the last term vanishes, but H is not 0:
the loss's curvature and the products of parameters (Omega_k h_k) remain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..._types import Gradients, Parameters
from ...validate import check_gradient_finite
from ..activations import Activation
from ..backprop import backward
from ..losses import loss_gradient, loss_hessian_vector
from .jvp import jvp_forward
from .tangents import check_pair, check_problem

VECTOR_NAMES = ("v_weights", "v_biases")


def hvp_core(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray,
             target: np.ndarray, v_w: Sequence[np.ndarray], v_b: Sequence[np.ndarray], act: Activation,
             loss: str, curvature: Callable[[np.ndarray], np.ndarray] | None = None) -> Gradients:
    """Unchecked H v: ``(Hv_weights, Hv_biases)`` shaped like the parameters.

    ``curvature`` is a''(f) (None: ``act.curvature``); a test passes a wrong one to see the check fail.
    """
    curvature = act.curvature if curvature is None else curvature
    all_f, all_h, all_df, all_dh = jvp_forward(weights, biases, x, v_w, v_b, act)
    delta = loss_gradient(loss, all_f[-1], target)
    r_delta = loss_hessian_vector(loss, all_f[-1], target, all_df[-1])
    n_layers = len(weights)
    hv_w, hv_b = [None] * n_layers, [None] * n_layers
    for k in reversed(range(n_layers)):
        hv_w[k] = r_delta @ all_h[k].T
        if k > 0:  # R{h_0} = 0: the input does not move
            hv_w[k] += delta @ all_dh[k].T
        hv_b[k] = r_delta.sum(axis=1, keepdims=True)
        if k > 0:
            back = weights[k].T @ delta  # Omega_k^T delta_k
            r_back = v_w[k].T @ delta + weights[k].T @ r_delta  # its R{}: the product rule
            slope = act.slope(all_f[k - 1])  # a'(f_{k-1}) (a boolean mask for relu)
            r_delta = slope * r_back + curvature(all_f[k - 1]) * all_df[k - 1] * back
            delta = slope * back
    return hv_w, hv_b


def gradient_and_hvp(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray,
                     target: np.ndarray, v_w: Sequence[np.ndarray], v_b: Sequence[np.ndarray],
                     act: Activation, loss: str) -> tuple[Gradients, Gradients]:
    """Unchecked: the gradient and H v together, ``((dl_dw, dl_db), (hv_w, hv_b))`` (a cross-check)."""
    all_f, all_h, _, _ = jvp_forward(weights, biases, x, v_w, v_b, act)
    gradient = backward(weights, all_f, all_h, loss_gradient(loss, all_f[-1], target), act)
    return gradient, hvp_core(weights, biases, x, target, v_w, v_b, act, loss)


def manual_hvp(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
               v_weights: Parameters, v_biases: Parameters, *, activation: str = "relu",
               loss: str = "least_squares") -> Gradients:
    """H v, the Hessian of the loss (summed over the batch) in the parameters times v, by hand.

    ``net_input`` (D_i, N); ``y`` (D_o, N) or class indices (N,) for softmax cross-entropy;
    ``v_weights[k]`` (D_{k+1}, D_k) and ``v_biases[k]`` (D_{k+1}, 1) like Omega_k and beta_k. Returns
    ``(Hv_weights, Hv_biases)``, lists of new arrays with the parameters' shapes and floating dtype.
    """
    return checked_vector_product(hvp_core, "H v", all_weights, all_biases, net_input, y, v_weights, v_biases,
                                  activation, loss)


def checked_vector_product(core, what: str, all_weights, all_biases, net_input, y, v_weights, v_biases,
                           activation: str, loss: str) -> Gradients:
    """The public door of a matrix-vector product of the parameters (H v, G v): arguments checked, ``core``
    run on the checked arrays, an overflow a ValueError naming ``what`` and the layer."""
    weights, biases, x, target, act, loss, dtype = check_problem(
        all_weights, all_biases, net_input, y, activation, loss)
    v_w, v_b = check_pair(v_weights, v_biases, VECTOR_NAMES, weights, biases, dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a ValueError naming the layer
        product_w, product_b = core(weights, biases, x, target, v_w, v_b, act, loss)
    check_gradient_finite(product_w, product_b, what, "scale the parameters, input, target or direction down")
    return product_w, product_b
