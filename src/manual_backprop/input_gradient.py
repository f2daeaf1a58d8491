"""The gradient of the loss in the network's input, by hand: dL/dh_0 = Omega_0^T delta_0.

Backprop stops one step early: it computes delta_0 = dL/df_0 (D_1, N) but needs no derivative in h_0, the
input. One more step of the same chain rule, f_0 = beta_0 + Omega_0 h_0, gives dL/d(net_input) =
Omega_0^T delta_0, shape (D_i, N): column n is the gradient of example n's loss in its own input (what
saliency maps and adversarial examples use). No a'(f) factor: the input has no activation.
"""

from __future__ import annotations

from .backprop import backward, forward
from .losses import loss_gradient
from .tangents import check_problem


def input_gradient_core(weights, biases, x, target, act, loss):
    """Unchecked dL/d(net_input), (D_i, N)."""
    net_output, all_f, all_h = forward(weights, biases, x, act)
    deltas = [None] * len(weights)
    backward(weights, all_f, all_h, loss_gradient(loss, net_output, target), act, all_deltas=deltas)
    return weights[0].T @ deltas[0]


def manual_input_gradient(all_weights, all_biases, net_input, y, *, activation: str = "relu",
                          loss: str = "least_squares"):
    """dL/d(net_input), shape (D_i, N), in the parameters' dtype, by backprop one layer further.

    ``net_input`` (D_i, N), ``y`` (D_o, N) or class indices (N,) for softmax cross-entropy.
    """
    weights, biases, x, target, act, loss, _ = check_problem(
        all_weights, all_biases, net_input, y, activation, loss)
    return input_gradient_core(weights, biases, x, target, act, loss)
