"""Forward mode by hand: the directional derivative (JVP) of the network's output and loss along a tangent.

Move every parameter along a tangent, Omega_k -> Omega_k + t dOmega_k and beta_k -> beta_k + t dbeta_k; the
derivative in t at t = 0 of each stored quantity follows the forward pass, layer by layer (the product
rule on f_k = beta_k + Omega_k h_k, the chain rule on h_{k+1} = a(f_k)):

    df_k = dOmega_k h_k + Omega_k dh_k + dbeta_k,      dh_{k+1} = a'(f_k) * df_k,      dh_0 = 0,

so d_output = df_K (D_o, N), at the cost of about two forward passes and no storage of the layers. The
loss's derivative along the tangent is then dL = sum(dL/df_K * df_K), a scalar; it equals the gradient's
dot product with the tangent (``grad . v``), which is one of the cross-checks in the tests. In Pearlmutter's
notation df_k is R{f_k}: the Hessian-vector product (``hvp.py``) starts with this very pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..._types import Arrays, Parameters
from ...validate import check_result_finite
from ..activations import Activation
from ..losses import loss_gradient
from .tangents import check_network, check_pair, check_problem

TANGENT_NAMES = ("tangent_weights", "tangent_biases")


def jvp_forward(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], net_input: np.ndarray,
                tangent_w: Sequence[np.ndarray], tangent_b: Sequence[np.ndarray], act: Activation,
                d_input: np.ndarray | None = None) -> tuple[Arrays, Arrays, Arrays, Arrays]:
    """Unchecked forward pass with its tangent: ``(all_f, all_h, all_df, all_dh)``.

    ``all_f[k]`` and ``all_df[k]`` are f_k and df_k (D_{k+1}, N), k = 0..K; ``all_h[k]`` and ``all_dh[k]``
    are h_k and dh_k (D_k, N), k = 0..K+1 (``all_h[0]`` the input, ``all_h[-1]`` the output f_K).
    ``d_input`` is dh_0, the input's own tangent (None: the input is fixed, dh_0 = 0).
    """
    h, dh = net_input, d_input  # dh None: exactly 0, the product Omega_0 dh_0 skipped
    all_f, all_df, all_h, all_dh = [], [], [h], [np.zeros_like(h) if dh is None else dh]
    last = len(weights) - 1
    for k, (omega, beta) in enumerate(zip(weights, biases, strict=True)):
        f = omega @ h
        f += beta
        # the product rule on beta_k + Omega_k h_k: dOmega_k h_k + Omega_k dh_k + dbeta_k
        df = tangent_w[k] @ h
        if dh is not None:
            df += omega @ dh
        df += tangent_b[k]
        all_f.append(f)
        all_df.append(df)
        if k < last:
            # the chain rule on h_{k+1} = a(f_k); act.slope acts as a'(f) (a boolean mask for relu)
            h, dh = act.function(f), df * act.slope(f)
        else:
            h, dh = f, df  # no activation after the last layer
        all_h.append(h)
        all_dh.append(dh)
    return all_f, all_h, all_df, all_dh


def manual_jvp(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike,
               tangent_weights: Parameters, tangent_biases: Parameters, *,
               activation: str = "relu") -> tuple[np.ndarray, np.ndarray]:
    """The network's output and its derivative along the tangent, in one forward pass by hand.

    ``net_input`` is (D_i, N); ``tangent_weights[k]`` has Omega_k's shape (D_{k+1}, D_k) and
    ``tangent_biases[k]`` beta_k's (D_{k+1}, 1). Returns ``(net_output, d_output)``, both (D_o, N) in the
    parameters' dtype: d_output = d/dt f_K(Omega + t dOmega, beta + t dbeta) at t = 0.
    """
    weights, biases, x, act, dtype = check_network(all_weights, all_biases, net_input, activation)
    tw, tb = check_pair(tangent_weights, tangent_biases, TANGENT_NAMES, weights, biases, dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a ValueError naming it
        all_f, _, all_df, _ = jvp_forward(weights, biases, x, tw, tb, act)
    check_result_finite(all_f[-1], "the output", "scale the parameters or the input down")
    check_result_finite(all_df[-1], "d_output", "scale the parameters, input or tangent down")
    return all_f[-1], all_df[-1]


def manual_loss_jvp(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
                    tangent_weights: Parameters, tangent_biases: Parameters, *, activation: str = "relu",
                    loss: str = "least_squares") -> np.floating:
    """dL along the tangent: sum over outputs and examples of dL/df_K * df_K (a scalar of the dtype).

    Arguments as ``manual_jvp``, plus the target ``y`` (D_o, N) (class indices (N,) for softmax
    cross-entropy) and the ``loss``. Equal to the gradient's dot product with the tangent.
    """
    weights, biases, x, target, act, loss, dtype = check_problem(
        all_weights, all_biases, net_input, y, activation, loss)
    tw, tb = check_pair(tangent_weights, tangent_biases, TANGENT_NAMES, weights, biases, dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a ValueError naming it
        all_f, _, all_df, _ = jvp_forward(weights, biases, x, tw, tb, act)
    d_loss = np.asarray(np.vdot(loss_gradient(loss, all_f[-1], target), all_df[-1]))
    check_result_finite(d_loss, "dL", "scale the parameters, input, target or tangent down")
    return dtype.type(d_loss)
