"""The forward pass and the backward pass by hand (Understanding Deep Learning, section 7.4; notebook 7.2).

Column vectors throughout: for an input ``net_input`` of shape (D_i, N), one column per example,

    f_k = beta_k + Omega_k h_k,    h_{k+1} = a(f_k)    for k = 0..K,    h_0 = net_input,

with no activation after the last layer (the output is f_K). The backward pass runs the chain rule from
the output down, with delta = dL/df_k of shape (D_{k+1}, N):

    dL/dOmega_k = delta h_k^T,   dL/dbeta_k = sum over the batch of delta,
    delta_{k-1} = a'(f_{k-1}) * (Omega_k^T delta_k).

The loss is summed over the batch, so N = 1 is the notebook exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from .._types import Array, Gradients, Parameters
from ..validate import (
    check_activations_lists,
    check_forward_finite,
    check_gradient_finite,
    check_loss_name,
    check_parameters,
    check_target,
    checked_network,
    checked_problem,
)
from .activations import Activation, get_activation
from .losses import l2_gradient, loss_gradient


def forward(weights, biases, net_input, act: Activation):
    """Unchecked forward pass over checked arrays: ``(net_output, all_f, all_h)``."""
    all_f = []
    all_h = [net_input]
    h = net_input
    last = len(weights) - 1
    for k, (omega, beta) in enumerate(zip(weights, biases, strict=True)):
        f = omega @ h
        f += beta  # f is a fresh array: adding in place saves one allocation per layer
        all_f.append(f)
        h = act.function(f) if k < last else f
        all_h.append(h)
    return h, all_f, all_h


def backward(weights, all_f, all_h, dl_df_last, act: Activation, *, overwrite_f: bool = False,
             all_deltas: list | None = None):
    """Unchecked backward pass from ``dl_df_last`` = dL/df_K (D_o, N).

    Returns ``(all_dl_dweights, all_dl_dbiases)``. With ``overwrite_f=True`` each delta_{k-1} is written
    over f_{k-1} once a'(f_{k-1}) is taken (scipy's ``overwrite_a``): no fresh (D, N) array per layer,
    for a caller that owns ``all_f`` and needs it no more. ``all_deltas``, a list of K+1 entries when
    given, receives every delta_k = dL/df_k (D_{k+1}, N) on the way down.
    """
    n_layers = len(weights)
    all_dl_dweights = [None] * n_layers
    all_dl_dbiases = [None] * n_layers
    delta = dl_df_last
    for layer in reversed(range(n_layers)):
        if all_deltas is not None:
            all_deltas[layer] = delta
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            slope = act.slope(all_f[layer - 1])
            delta = np.matmul(weights[layer].T, delta, out=all_f[layer - 1] if overwrite_f else None)
            delta *= slope  # delta is ours: a fresh product, or f_{k-1}'s memory
    return all_dl_dweights, all_dl_dbiases


def compute_network_output(net_input: ArrayLike, all_weights: Parameters, all_biases: Parameters, *,
                           activation: str = "relu") -> tuple[Array, list[Array], list[Array]]:
    """Run the network on ``net_input`` (D_i, N) and keep what backprop needs.

    Returns ``(net_output, all_f, all_h)``: the output (D_o, N); the K+1 pre-activations ``all_f[k]`` of
    shape (D_{k+1}, N); and the K+2 activations ``all_h``, where ``all_h[0]`` is the input and
    ``all_h[-1]`` is the output (no activation after the last layer), as in the notebook.
    """
    act = get_activation(activation)
    weights, biases, x, dtype = checked_network(all_weights, all_biases, net_input)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a ValueError naming the layer
        result = forward(weights, biases, x, act)
    check_forward_finite(result[1])  # every all_f[k] is returned: each is checked (one sum apiece)
    return result


def backward_pass(all_weights: Parameters, all_biases: Parameters, all_f: Sequence[ArrayLike],
                  all_h: Sequence[ArrayLike], y: ArrayLike, *, activation: str = "relu",
                  loss: str = "least_squares") -> Gradients:
    """The notebook's backward pass, for a batch: dL/dOmega_k and dL/dbeta_k for every layer k.

    ``all_f`` and ``all_h`` are what ``compute_network_output`` stored; ``y`` is the target (D_o, N)
    (class indices of shape (N,) for softmax cross-entropy). Returns ``(all_dl_dweights, all_dl_dbiases)``
    with the shapes and dtype of the parameters; bias gradients are summed over the batch.
    """
    act = get_activation(activation)
    loss = check_loss_name(loss)
    weights, _, dtype = check_parameters(all_weights, all_biases)
    all_f, all_h, columns = check_activations_lists(all_f, all_h, weights, dtype)
    target = check_target(y, loss, weights[-1].shape[0], columns, dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a ValueError naming the layer
        gradients = backward(weights, all_f, all_h, loss_gradient(loss, all_f[-1], target), act)
    add_l2(gradients, loss, weights)
    check_gradient_finite(*gradients)
    return gradients


def manual_gradients(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike, *,
                     activation: str = "relu", loss: str = "least_squares") -> Gradients:
    """Forward then backward by hand: the gradient of the loss summed over the batch.

    ``net_input`` is (D_i, N), ``y`` is (D_o, N) (or class indices (N,) for softmax cross-entropy).
    Returns ``(all_dl_dweights, all_dl_dbiases)`` with exactly the parameters' shapes and floating dtype.
    """
    act = get_activation(activation)
    loss = check_loss_name(loss)
    weights, biases, x, target, dtype = checked_problem(all_weights, all_biases, net_input, y, loss)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a ValueError naming the layer
        net_output, all_f, all_h = forward(weights, biases, x, act)
        # Before backward writes over all_f: an output that overflowed names its first layer that did.
        check_forward_finite(all_f, net_output, "the output")
        # all_f is ours and needed no more: dL/df_K takes the place of f_K, each delta that of its f.
        dl_df_last = loss_gradient(loss, net_output, target, out=net_output)
        gradients = backward(weights, all_f, all_h, dl_df_last, act, overwrite_f=True)
    add_l2(gradients, loss, weights)
    check_gradient_finite(*gradients)
    return gradients


def add_l2(gradients, loss: str, weights) -> None:
    """Add the loss's L2 penalty gradient, l2 Omega_k, to each dL/dOmega_k (nothing for a plain loss)."""
    penalty = l2_gradient(loss, weights)
    if penalty is not None:
        for k, term in enumerate(penalty):
            gradients[0][k] += term
