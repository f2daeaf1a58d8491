"""The gradient of the loss in the network's input, by hand: dL/dh_0 = Omega_0^T delta_0.

Backprop stops one step early: it computes delta_0 = dL/df_0 (D_1, N) but needs no derivative in h_0, the
input. One more step of the same chain rule, f_0 = beta_0 + Omega_0 h_0, gives dL/d(net_input) =
Omega_0^T delta_0, shape (D_i, N): column n is the gradient of example n's loss in its own input (what
saliency maps and adversarial examples use). No a'(f) factor: the input has no activation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ..._types import Parameters
from ...validate import check_result_finite
from ..activations import Activation
from ..backprop import forward
from ..losses import loss_gradient
from .tangents import check_problem


def input_gradient_core(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray,
                        target: np.ndarray, act: Activation, loss: str) -> np.ndarray:
    """Unchecked dL/d(net_input), (D_i, N).

    Only the deltas travel: delta_{k-1} = a'(f_{k-1}) * (Omega_k^T delta_k), then Omega_0^T delta_0. The
    weight gradients delta_k h_k^T, which ``backprop.backward`` would form on the way, are not needed: one
    matrix product per layer down instead of two.
    """
    net_output, all_f, _ = forward(weights, biases, x, act)
    delta = loss_gradient(loss, net_output, target)  # delta_K
    for k in reversed(range(len(weights))):
        delta = weights[k].T @ delta  # Omega_k^T delta_k: dL/dh_k
        if k > 0:
            delta *= act.slope(all_f[k - 1])  # delta_{k-1}
    return delta


def manual_input_gradient(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
                          *, activation: str = "relu", loss: str = "least_squares") -> np.ndarray:
    """dL/d(net_input), shape (D_i, N), in the parameters' dtype, by backprop one layer further.

    ``net_input`` (D_i, N), ``y`` (D_o, N) or class indices (N,) for softmax cross-entropy.
    """
    weights, biases, x, target, act, loss, _ = check_problem(
        all_weights, all_biases, net_input, y, activation, loss)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a ValueError naming the entry
        gradient = input_gradient_core(weights, biases, x, target, act, loss)
    check_result_finite(gradient, "dL/d(net_input)", "scale the parameters, input or target down")
    return gradient
