"""Backward passes broken in ways no named pattern describes, written as students write them (issue 18).

Each starts from the notebook's ``def backward_pass(all_weights, all_biases, all_f, all_h, y):`` (all_h of
K+2 entries, output all_f[K]; least squares 0.5 sum((out - y)^2), so dL/d(out) = out - y; ReLU). The
chain, checked link by link on the student's own values, must find the broken link; no named pattern may
be claimed. ``@chain_student(kind, offset, code, ...)`` records what the chain should say:

- ``kind``: the first broken link: "top", "weights", "bias" or "step";
- ``offset``: its layer counted from the top, K + offset (0: layer K; -1: the step from K down to K - 1);
- ``code``: the reading of its numbers (``chain_words``), None where no usual mistake reproduces them;
- ``slope``: for an elementwise step, the effective slope per unit the chain must show, as a function of
  (f_k, Omega^T delta), compared where Omega^T delta is not 0;
- ``activation``: how it is graded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChainMeta:
    kind: str
    offset: int
    code: str | None
    slope: object = None
    activation: str = "relu"
    also: tuple = ()


CHAIN_WRONG = []


def chain_student(kind, offset=0, code=None, *, slope=None, activation="relu", also=()):
    def mark(fn):
        fn.chain = ChainMeta(kind, offset, code, slope, activation, tuple(also))
        CHAIN_WRONG.append(fn)
        return fn

    return mark


def least_squares_loss(net_output, y):
    return 0.5 * np.sum((net_output - y) ** 2)


def indicator_function(x):
    x_in = np.array(x)
    x_in[x_in > 0] = 1
    x_in[x_in <= 0] = 0
    return x_in


def _template(all_weights, all_f, all_h, delta, step=None, weight=None, bias=None):
    """The notebook's loop, with the student's own top, step, weight or bias line passed in."""
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    for layer in range(K, -1, -1):
        all_dl_dweights[layer] = delta @ all_h[layer].T if weight is None else weight(layer, delta)
        all_dl_dbiases[layer] = delta.copy() if bias is None else bias(layer, delta, all_dl_dweights[layer])
        if layer > 0:
            if step is None:
                delta = indicator_function(all_f[layer - 1]) * (all_weights[layer].T @ delta)
            else:
                delta = step(layer, delta, all_dl_dweights[layer])
    return all_dl_dweights, all_dl_dbiases


# ==================================================================== the top: dL/d(output) is wrong


@chain_student("top", 0, "loss_itself")
def loss_where_its_derivative_belongs(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dl_df = np.full_like(all_f[K], least_squares_loss(all_f[K], y))  # "the derivative of the loss"
    return _template(all_weights, all_f, all_h, dl_df)


@chain_student("top", 0, "sign")
def sign_of_the_error(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    return _template(all_weights, all_f, all_h, np.sign(all_f[K] - y))


@chain_student("top", 0, "abs")
def absolute_error(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    return _template(all_weights, all_f, all_h, np.abs(all_f[K] - y))


@chain_student("top", 0, "summed")
def summed_error_broadcast(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    error = np.sum(all_f[K] - y)
    return _template(all_weights, all_f, all_h, error * np.ones_like(all_f[K]))


@chain_student("top", 0, "mean")
def mean_error_broadcast(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    delta = np.mean(all_f[K] - y) + np.zeros_like(y)
    return _template(all_weights, all_f, all_h, delta)


@chain_student("top", 0, "normalised", also=("scaled",))
def normalised_error(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    err = all_f[K] - y
    return _template(all_weights, all_f, all_h, err / (np.linalg.norm(err) + 1e-12))


@chain_student("top", 0, "squared")
def squared_error(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    return _template(all_weights, all_f, all_h, (all_f[K] - y) ** 2)


def d_loss_d_output(net_output, y):
    return 0.5 * (net_output - y) ** 2  # "the loss per output"


@chain_student("top", 0, "loss_terms")
def loss_terms_as_derivative(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    return _template(all_weights, all_f, all_h, d_loss_d_output(all_f[K], y))


# ============================================================== the step down: delta_{k-1} is wrong


def _right_top(all_f, y):
    return all_f[-1] - y


@chain_student("step", -1, "inverted", slope=lambda f, back: (f <= 0).astype(float),
               also=("wrong_derivative", "zeros", "mask_missing"))
def mask_inverted(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        return (all_weights[layer].T @ delta) * (all_f[layer - 1] <= 0)

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "np_sign", slope=lambda f, back: np.sign(f))
def mask_as_sign(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        return np.sign(all_f[layer - 1]) * (all_weights[layer].T @ delta)

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "boolean")
def boolean_by_precedence(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_f[K] - y
    for k in range(K, -1, -1):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta * 1.0
        if k > 0:
            delta = all_weights[k].T @ delta * all_f[k - 1] > 0  # (W.T @ delta * f) > 0
    return dW, dB


@chain_student("step", -1, "relu_of_gradient", slope=lambda f, back: (back > 0).astype(float),
               also=("mask_missing",))
def relu_on_the_gradient(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        return np.maximum(0, all_weights[layer].T @ delta)  # "apply the ReLU backwards"

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "relu_of_masked", slope=lambda f, back: ((back > 0) & (f > 0)).astype(float),
               also=("zeros",))
def relu_on_the_masked_gradient(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        return np.maximum(0, all_weights[layer].T @ delta) * indicator_function(all_f[layer - 1])

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "rescaled", also=("scaled",))
def delta_divided_by_its_norm(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        delta = indicator_function(all_f[layer - 1]) * (all_weights[layer].T @ delta)
        return delta / (np.linalg.norm(delta) + 1e-12)  # "to stop the gradient exploding"

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "weight_gradient")
def through_the_weight_gradient(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, dw):
        return indicator_function(all_f[layer - 1]) * (dw.T @ delta)

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "weight_gradient")
def through_the_weight_gradient_unmasked(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, dw):
        return dw.T @ delta

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "f_as_slope", slope=lambda f, back: f, also=("h_instead_of_mask",))
def times_the_preactivation(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        return (all_weights[layer].T @ delta) * all_f[layer - 1]

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "leaky", slope=lambda f, back: np.where(f > 0, 1.0, 0.01))
def leaky_derivative_on_relu(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        return np.where(all_f[layer - 1] > 0, 1.0, 0.01) * (all_weights[layer].T @ delta)

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "clip", slope=lambda f, back: np.clip(f, 0, 1), also=("h_instead_of_mask",))
def relu_derivative_as_clip(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        return np.clip(all_f[layer - 1], 0, 1) * (all_weights[layer].T @ delta)

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "f_squared", slope=lambda f, back: 1 - f**2, activation="tanh")
def tanh_derivative_of_f(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        return (1 - all_f[layer - 1] ** 2) * (all_weights[layer].T @ delta)

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, "f_sigmoid", slope=lambda f, back: f * (1 - f), activation="sigmoid")
def sigmoid_derivative_of_f(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        f = all_f[layer - 1]
        return f * (1 - f) * (all_weights[layer].T @ delta)

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


@chain_student("step", -1, None)
def bias_added_when_propagating(all_weights, all_biases, all_f, all_h, y):
    def step(layer, delta, _):
        return indicator_function(all_f[layer - 1]) * (all_weights[layer].T @ delta + all_biases[layer - 1])

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), step=step)


# ================================================================= the weights and the biases


@chain_student("weights", 0, "scaled", also=("scaled",))
def weight_gradient_normalised(all_weights, all_biases, all_f, all_h, y):
    def weight(layer, delta):
        g = delta @ all_h[layer].T
        return g / (np.linalg.norm(g) + 1e-12)

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), weight=weight)


@chain_student("weights", 0, "other_h", also=("scaled",))
def weight_gradient_of_squared_activations(all_weights, all_biases, all_f, all_h, y):
    def weight(layer, delta):
        return delta @ (all_h[layer] ** 2).T  # "d(h^2)"

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), weight=weight)


@chain_student("weights", 0, "other_h")
def delta_added_to_the_weight_gradient(all_weights, all_biases, all_f, all_h, y):
    def weight(layer, delta):
        return delta @ all_h[layer].T + delta

    return _template(all_weights, all_f, all_h, _right_top(all_f, y), weight=weight)


@chain_student("bias", 0, "weight_rows", also=("scaled",))
def bias_from_the_weight_rows(all_weights, all_biases, all_f, all_h, y):
    return _template(all_weights, all_f, all_h, _right_top(all_f, y),
                     bias=lambda layer, delta, dw: np.sum(dw, axis=1, keepdims=True))  # fmt: skip


@chain_student("bias", 0, "weight_mean", also=("scaled",))
def bias_from_the_weight_row_means(all_weights, all_biases, all_f, all_h, y):
    return _template(all_weights, all_f, all_h, _right_top(all_f, y),
                     bias=lambda layer, delta, dw: dw.mean(axis=1, keepdims=True))  # fmt: skip


@chain_student("bias", 0, None)
def bias_times_the_bias(all_weights, all_biases, all_f, all_h, y):
    return _template(all_weights, all_f, all_h, _right_top(all_f, y),
                     bias=lambda layer, delta, dw: delta * all_biases[layer])  # fmt: skip
