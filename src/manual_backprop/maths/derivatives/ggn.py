"""The generalized Gauss-Newton matrix times a vector, by hand: G v = J^T H_L J v.

J is the Jacobian of the output f_K (all columns) in the parameters, H_L the loss's Hessian in the output
(block diagonal, one (D_o, D_o) block per column; positive semi-definite for every loss here). Then

    J v       = R{f_K}, the JVP (``jvp.py``): one forward pass with the tangent v;
    u         = H_L J v                           (D_o, N);
    J^T u     = backprop with u in place of dL/df_K: delta_K = u,
                delta_{k-1} = a'(f_{k-1}) * (Omega_k^T delta_k),
                (G v) for Omega_k = delta_k h_k^T, for beta_k = sum over the batch of delta_k.

G = J^T H_L J is symmetric and u . G u = (J u) . H_L (J u) >= 0: what second-order optimizers use in place
of H. The Hessian is G plus the terms where the network itself curves (the hvp.py R-backward pass minus
the above: V_k^T delta_k, delta_k R{h_k}^T and a''(f) terms), so G v = H v exactly when the output is
linear in the parameters (K = 0: f_0 = Omega_0 x + beta_0), and they differ for K >= 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..._types import Gradients, Parameters
from ..activations import Activation
from ..backprop import backward
from ..losses import loss_hessian_vector
from .hvp import checked_vector_product
from .jvp import jvp_forward


def ggn_core(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray, target: np.ndarray,
             v_w: Sequence[np.ndarray], v_b: Sequence[np.ndarray], act: Activation, loss: str) -> Gradients:
    """Unchecked G v: ``(Gv_weights, Gv_biases)`` shaped like the parameters."""
    all_f, all_h, all_df, _ = jvp_forward(weights, biases, x, v_w, v_b, act)
    u = loss_hessian_vector(loss, all_f[-1], target, all_df[-1])
    return backward(weights, all_f, all_h, u, act)


def manual_ggn_vp(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
                  v_weights: Parameters, v_biases: Parameters, *, activation: str = "relu",
                  loss: str = "least_squares") -> Gradients:
    """G v = J^T H_L J v, the generalized Gauss-Newton matrix times v, by hand.

    Arguments and result as ``manual_hvp``: ``net_input`` (D_i, N), ``y`` (D_o, N) or class indices (N,),
    ``v_weights[k]`` (D_{k+1}, D_k), ``v_biases[k]`` (D_{k+1}, 1); returns ``(Gv_weights, Gv_biases)``.
    """
    return checked_vector_product(ggn_core, "G v", all_weights, all_biases, net_input, y, v_weights, v_biases,
                                  activation, loss)
