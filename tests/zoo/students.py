"""Backward passes written the way students write them, from the notebook's template (issue 9).

Each starts from ``def backward_pass(all_weights, all_biases, all_f, all_h, y):`` with the notebook's
conventions: K = len(all_weights) - 1; all_h[0] is the input, all_f[K] the output; least squares
0.5 sum((out - y)^2), so dL/d(out) = out - y; ReLU'(0) = 0; column vectors; gradients summed over the batch.
None is a perturbed right answer: each is written out in full, with its mistake where a student makes it.

``@student(...)`` records what the grader should say about it:

- ``code``: the pattern the diagnosis should name (None for a right one);
- ``case`` and ``layer``: the battery case that shows it and its first wrong layer there (``layer`` None
  where the case fails without a layer, e.g. a wrong return structure);
- ``activation``, ``batch``: how it is graded;
- ``also``: other codes that are no wrong claim for it (another name for the same story).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Meta:
    code: str | None
    case: str = "notebook"
    layer: int | None = None
    activation: str = "relu"
    batch: int = 1
    also: tuple = ()

    @property
    def right(self) -> bool:
        return self.code is None


WRONG = []
RIGHT = []


def student(code=None, *, case="notebook", layer=None, activation="relu", batch=1, also=()):
    def mark(fn):
        fn.meta = Meta(code, case, layer, activation, batch, tuple(also))
        (RIGHT if code is None else WRONG).append(fn)
        return fn

    return mark


def relu_mask(f):
    return (f > 0).astype(float)


# ============================================================ target missing: delta = output, not out - y


@student("target_missing", layer=5)
def delta_is_the_output(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1]  # dL/d(output)
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = np.sum(delta, axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * relu_mask(all_f[layer - 1])
    return all_dl_dweights, all_dl_dbiases


def d_loss_d_output_forgot_y(net_output, y):
    return net_output  # the derivative of 0.5 * out^2


@student("target_missing", layer=5)
def loss_derivative_without_y(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = d_loss_d_output_forgot_y(all_f[K], y)
    for layer in range(K, -1, -1):
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        all_dl_dweights[layer] = delta @ all_h[layer].T
        if layer:
            delta = all_weights[layer].T @ delta
            delta = delta * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("target_missing", layer=5, batch=4)
def delta_is_the_output_batched(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [], []
    dl_df = all_f[-1].copy()
    for k in range(K, -1, -1):
        dW.insert(0, dl_df @ all_h[k].T)
        dB.insert(0, dl_df.sum(1, keepdims=True))
        if k > 0:
            dl_df = np.where(all_f[k - 1] > 0, all_weights[k].T @ dl_df, 0.0)
    return dW, dB


# ========================================================== clipped: gradients capped at a constant +-c


def _plain(all_weights, all_f, all_h, y):
    """A student's own right helper, used by the functions that then post-process its answer."""
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[K + 1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


@student("clipped", layer=5)
def clip_to_one(all_weights, all_biases, all_f, all_h, y):
    dW, dB = _plain(all_weights, all_f, all_h, y)
    # "exploding gradients": clip them
    dW = [np.clip(g, -1, 1) for g in dW]
    dB = [np.clip(g, -1, 1) for g in dB]
    return dW, dB


@student("clipped", layer=5)
def clip_to_five_in_the_loop(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = np.clip(delta @ all_h[layer].T, -5.0, 5.0)
        all_dl_dbiases[layer] = np.clip(delta, -5.0, 5.0)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("clipped", layer=5)
def clip_with_min_max(all_weights, all_biases, all_f, all_h, y):
    max_grad = 3.0
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        g = delta @ all_h[layer].T
        all_dl_dweights[layer] = np.minimum(np.maximum(g, -max_grad), max_grad)
        b = np.sum(delta, axis=1, keepdims=True)
        all_dl_dbiases[layer] = np.minimum(np.maximum(b, -max_grad), max_grad)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


# ===================================================== weight decay: g + lambda * theta added to the gradient


@student("weight_decay", layer=5)
def l2_on_weights(all_weights, all_biases, all_f, all_h, y):
    lam = 0.01
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T + lam * all_weights[layer]
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("weight_decay", layer=5)
def l2_on_everything(all_weights, all_biases, all_f, all_h, y):
    weight_decay = 1e-3
    dW, dB = _plain(all_weights, all_f, all_h, y)
    dW = [g + weight_decay * w for g, w in zip(dW, all_weights, strict=True)]
    dB = [g + weight_decay * b for g, b in zip(dB, all_biases, strict=True)]
    return dW, dB


@student("weight_decay", layer=5)
def l2_derivative_two_lambda(all_weights, all_biases, all_f, all_h, y):
    # loss + lambda * ||Omega||^2, differentiated: + 2 * lambda * Omega
    lam = 0.05
    K = len(all_weights) - 1
    grads_w, grads_b = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[K + 1] - y
    for k in range(K, -1, -1):
        grads_w[k] = delta @ all_h[k].T + 2 * lam * all_weights[k]
        grads_b[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = all_weights[k].T @ delta * (all_f[k - 1] > 0)
    return grads_w, grads_b


# ====================================================== a parameter update returned instead of the gradient


@student("update_returned", layer=5)
def returns_new_parameters(all_weights, all_biases, all_f, all_h, y):
    lr = 0.1
    dW, dB = _plain(all_weights, all_f, all_h, y)
    new_weights = [w - lr * g for w, g in zip(all_weights, dW, strict=True)]
    new_biases = [b - lr * g for b, g in zip(all_biases, dB, strict=True)]
    return new_weights, new_biases


@student("update_returned", layer=5, also=("scaled",))
def returns_the_step(all_weights, all_biases, all_f, all_h, y):
    learning_rate = 0.01
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = -learning_rate * (delta @ all_h[layer].T)
        all_dl_dbiases[layer] = -learning_rate * delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("update_returned", layer=5)
def sgd_step_in_the_loop(all_weights, all_biases, all_f, all_h, y):
    lr = 0.05
    K = len(all_weights) - 1
    out_w, out_b = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        out_w[layer] = all_weights[layer] - lr * delta @ all_h[layer].T
        out_b[layer] = all_biases[layer] - lr * delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return out_w, out_b


# ================================================= another activation's derivative on this network


@student("wrong_derivative", layer=4)
def tanh_derivative_on_relu(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (1 - all_h[layer] ** 2)
    return all_dl_dweights, all_dl_dbiases


@student("wrong_derivative", layer=4)
def sigmoid_derivative_on_relu(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            h = all_h[layer]
            delta = (all_weights[layer].T @ delta) * h * (1 - h)
    return all_dl_dweights, all_dl_dbiases


@student("wrong_derivative", layer=4)
def sigmoid_of_f_derivative_on_relu(all_weights, all_biases, all_f, all_h, y):
    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_f[K] - y
    for k in range(K, -1, -1):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            s = sigmoid(all_f[k - 1])
            delta = (all_weights[k].T @ delta) * s * (1 - s)
    return dW, dB


@student("wrong_derivative", layer=4, activation="tanh")
def relu_mask_on_tanh(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("wrong_derivative", layer=4, activation="tanh")
def sigmoid_derivative_on_tanh(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * all_h[k] * (1 - all_h[k])
    return dW, dB


# ======================================================= identity derivative: no mask at all


@student("mask_missing", layer=4)
def no_relu_derivative(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = all_weights[layer].T @ delta
    return all_dl_dweights, all_dl_dbiases


@student("mask_missing", layer=4)
def identity_derivative(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            df_dh = np.ones_like(all_f[k - 1])  # TODO: ReLU derivative
            delta = (all_weights[k].T @ delta) * df_dh
    return dW, dB


# ====================================== a'(0) = 0.5 (and a'(0) = 1): seen only where f is exactly 0


@student("kink_half", case="exact kinks", layer=1)
def sign_step(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            step = (np.sign(all_f[layer - 1]) + 1) / 2
            delta = (all_weights[layer].T @ delta) * step
    return all_dl_dweights, all_dl_dbiases


@student("kink_half", case="exact kinks", layer=1)
def heaviside_half(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * np.heaviside(all_f[k - 1], 0.5)
    return dW, dB


@student("kink_half", case="exact kinks", layer=1)
def half_at_zero_by_hand(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            f = all_f[k - 1]
            relu_grad = (f > 0) * 1.0 + (f == 0) * 0.5  # subgradient: middle of [0, 1]
            delta = (all_weights[k].T @ delta) * relu_grad
    return dW, dB


@student()  # ReLU'(0) = 1 at a kink: the other one-sided derivative, a valid subgradient (a note)
def mask_greater_equal(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] >= 0)
    return all_dl_dweights, all_dl_dbiases


# ================================================== the mask from Omega h without beta


@student("mask_without_bias", layer=3)
def mask_from_omega_h(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            pre = all_weights[layer - 1] @ all_h[layer - 1]
            delta = (all_weights[layer].T @ delta) * (pre > 0)
    return all_dl_dweights, all_dl_dbiases


@student("mask_without_bias", layer=3)
def recomputed_preactivation(all_weights, all_biases, all_f, all_h, y):
    def relu_derivative(W, h):
        return np.where(W @ h > 0, 1.0, 0.0)

    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = relu_derivative(all_weights[k - 1], all_h[k - 1]) * (all_weights[k].T @ delta)
    return dW, dB


@student("mask_without_bias", layer=3, batch=4)
def mask_without_bias_batched(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [], []
    delta = all_h[-1] - y
    for k in range(K, -1, -1):
        dW.append(delta @ all_h[k].T)
        dB.append(delta.sum(axis=1, keepdims=True))
        if k > 0:
            z = np.dot(all_weights[k - 1], all_h[k - 1])
            delta = np.dot(all_weights[k].T, delta) * (z > 0)
    return dW[::-1], dB[::-1]


# ============================================== the mask applied to the weight gradient, or applied twice


@student("mask_on_weight_gradient", layer=5)
def mask_of_h_in_weight_gradient(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        if layer > 0:
            all_dl_dweights[layer] = delta @ (all_h[layer] > 0).T
        else:
            all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = all_weights[layer].T @ delta * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("mask_on_weight_gradient", layer=5)
def relu_derivative_as_weight_input(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dh_df = (all_f[k - 1] > 0).astype(float) if k > 0 else all_h[0]
        dW[k] = delta @ dh_df.T  # dL/dOmega_k = delta "times" the derivative of h_k
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


@student("mask_on_weight_gradient", layer=5, activation="tanh")
def tanh_derivative_in_weight_gradient(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        h = all_h[k]
        dW[k] = delta @ (h * (1 - h**2)).T if k > 0 else delta @ h.T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (1 - h**2)
    return dW, dB


@student("mask_twice", layer=4, activation="tanh")
def tanh_derivative_twice(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        if k < K:
            delta = delta * (1 - np.tanh(all_f[k]) ** 2)  # through the activation of layer k
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (1 - all_h[k] ** 2)
    return dW, dB


@student("mask_twice", layer=4, activation="sigmoid")
def sigmoid_derivative_twice(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            h = all_h[layer]
            dh = all_weights[layer].T @ delta
            df = dh * h * (1 - h)
            delta = df * h * (1 - h)
    return all_dl_dweights, all_dl_dbiases


@student("mask_twice", layer=4, activation="leaky_relu")
def leaky_slope_twice(all_weights, all_biases, all_f, all_h, y):
    def leaky_derivative(f):
        return np.where(f >= 0, 1.0, 0.01)

    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = leaky_derivative(all_f[k - 1]) * (all_weights[k].T @ delta)
            delta *= leaky_derivative(all_f[k - 1])
    return dW, dB


# ============================================================ an integer or float16 array returned


@student("dtype", layer=5)
def rounded_to_int(all_weights, all_biases, all_f, all_h, y):
    dW, dB = _plain(all_weights, all_f, all_h, y)
    return [g.astype(int) for g in dW], [g.astype(int) for g in dB]


@student("dtype", layer=5)
def half_precision(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = (all_h[-1] - y).astype(np.float16)  # save memory
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T.astype(np.float16)
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T.astype(np.float16) @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("dtype", layer=5)
def integer_buffers(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW = [np.zeros(w.shape, dtype=int) for w in all_weights]
    dB = [np.zeros(b.shape, dtype=int) for b in all_biases]
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k][:] = delta @ all_h[k].T
        dB[k][:] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


# ================================================================ state kept between calls


_GRADIENT_CACHE = {}


@student("stale", case="notebook shapes, seed 1", layer=5)
def cached_by_shapes(all_weights, all_biases, all_f, all_h, y):
    key = tuple(w.shape for w in all_weights)
    if key not in _GRADIENT_CACHE:  # don't recompute the same network twice
        _GRADIENT_CACHE[key] = _plain(all_weights, all_f, all_h, y)
    return _GRADIENT_CACHE[key]


@student("stale", case="notebook shapes, seed 1", layer=5)
def cached_on_the_function(all_weights, all_biases, all_f, all_h, y):
    memo = cached_on_the_function.__dict__.setdefault("memo", {})
    depth = len(all_weights)
    if depth not in memo:
        memo[depth] = _plain(all_weights, all_f, all_h, y)
    return memo[depth]


_RUNNING = {}


@student("accumulates", case="notebook shapes, seed 1", layer=5)
def running_sums(all_weights, all_biases, all_f, all_h, y):
    dW, dB = _plain(all_weights, all_f, all_h, y)
    key = tuple(w.shape for w in all_weights)
    if key not in _RUNNING:
        _RUNNING[key] = ([np.zeros_like(w) for w in all_weights], [np.zeros_like(b) for b in all_biases])
    acc_w, acc_b = _RUNNING[key]
    for k in range(len(dW)):
        acc_w[k] += dW[k]  # gradients accumulate, as in torch, and nobody zeroes them
        acc_b[k] += dB[k]
    return [a.copy() for a in acc_w], [a.copy() for a in acc_b]


_GRAD_W = {}
_GRAD_B = {}


@student("accumulates", case="notebook shapes, seed 1", layer=5)
def global_gradient_buffers(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        kw, kb = (k, all_weights[k].shape), (k, all_biases[k].shape)
        _GRAD_W[kw] = _GRAD_W.get(kw, 0) + delta @ all_h[k].T
        _GRAD_B[kb] = _GRAD_B.get(kb, 0) + delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return (
        [_GRAD_W[(k, all_weights[k].shape)].copy() for k in range(K + 1)],
        [_GRAD_B[(k, all_biases[k].shape)].copy() for k in range(K + 1)],
    )


@student("mutable_default", case="notebook shapes, seed 1")
def default_lists_insert(all_weights, all_biases, all_f, all_h, y, all_dl_dweights=[], all_dl_dbiases=[]):  # noqa: B006
    K = len(all_weights) - 1
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights.insert(0, delta @ all_h[layer].T)
        all_dl_dbiases.insert(0, delta.sum(axis=1, keepdims=True))
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("mutable_default", case="notebook shapes, seed 1")
def default_lists_append(all_weights, all_biases, all_f, all_h, y, grads=([], [])):
    K = len(all_weights) - 1
    dW, dB = grads
    delta = all_h[-1] - y
    for layer in range(K, -1, -1):
        dW.append(delta @ all_h[layer].T)
        dB.append(np.sum(delta, axis=1, keepdims=True))
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return dW[::-1], dB[::-1]


# ===================================== per-example loops that overwrite instead of adding (batch > 1)


@student("last_example_only", layer=5, batch=4)
def per_example_overwrites(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    for n in range(y.shape[1]):
        delta = all_h[-1][:, n : n + 1] - y[:, n : n + 1]
        for layer in reversed(range(K + 1)):
            all_dl_dweights[layer] = delta @ all_h[layer][:, n : n + 1].T
            all_dl_dbiases[layer] = delta
            if layer > 0:
                delta = (all_weights[layer].T @ delta) * (all_f[layer - 1][:, n : n + 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("last_example_only", layer=5, batch=4)
def zeros_inside_the_loop(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    N = all_h[0].shape[1]
    for n in range(N):
        dW = [np.zeros_like(w) for w in all_weights]  # should be before the loop
        dB = [np.zeros_like(b) for b in all_biases]
        delta = all_h[K + 1][:, [n]] - y[:, [n]]
        for k in range(K, -1, -1):
            dW[k] += delta @ all_h[k][:, [n]].T
            dB[k] += delta
            if k:
                delta = all_weights[k].T @ delta * (all_f[k - 1][:, [n]] > 0)
    return dW, dB


@student("last_example_only", layer=5, batch=4)
def per_example_helper(all_weights, all_biases, all_f, all_h, y):
    def one_example(n):
        sl = slice(n, n + 1)
        return _plain(all_weights, [f[:, sl] for f in all_f], [h[:, sl] for h in all_h], y[:, sl])

    for n in range(y.shape[1]):
        all_dl_dweights, all_dl_dbiases = one_example(n)
    return all_dl_dweights, all_dl_dbiases


# ================================================ biases and weights swapped, or the lists reversed


@student("swapped", layer=5)
def biases_first(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dbiases, all_dl_dweights


@student("swapped", layer=5)
def swapped_through_a_dict(all_weights, all_biases, all_f, all_h, y):
    dW, dB = _plain(all_weights, all_f, all_h, y)
    grads = {"beta": dB, "omega": dW}  # alphabetical, like the book's symbols
    return tuple(grads.values())


@student("reversed", layer=5)
def appended_not_reversed(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = []
    all_dl_dbiases = []
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights.append(delta @ all_h[layer].T)
        all_dl_dbiases.append(delta.sum(axis=1, keepdims=True))
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("reversed", layer=5)
def reversed_twice(all_weights, all_biases, all_f, all_h, y):
    dW, dB = _plain(all_weights, all_f, all_h, y)
    # the loop ran from the output back, so put them in that order
    return dW[::-1], dB[::-1]


# ====================================================== the patterns the README's table names today


@student("sign", layer=5)
def y_minus_output(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = y - all_h[-1]
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("sign", layer=4)
def minus_in_the_step(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = -(all_weights[k].T @ delta) * (all_f[k - 1] > 0)  # "gradient descent"
    return dW, dB


@student("loss_convention", layer=5)
def derivative_of_the_square(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = 2 * (all_h[-1] - y)  # d/dx x^2 = 2x
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("scaled", layer=5, batch=4)
def averaged_over_the_batch(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    N = y.shape[1]
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = (all_h[-1] - y) / N
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


@student("scaled", layer=5, batch=4)
def bias_mean_not_sum(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = np.mean(delta, axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


@student("transposed", layer=5)
def h_times_delta(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = all_h[layer] @ delta.T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("missing_transpose", case="K=3 square", layer=2)
def omega_not_transposed(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer] @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("mask_wrong_layer", case="K=3 square", layer=2)
def mask_of_this_layer(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k] > 0)
    return dW, dB


@student("h_instead_of_mask", layer=4)
def times_h(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * all_h[layer]  # ReLU(f)
    return all_dl_dweights, all_dl_dbiases


@student("wrong_activations", layer=5)
def f_instead_of_h(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        inputs = all_f[k - 1] if k > 0 else all_h[0]
        dW[k] = delta @ inputs.T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


@student("bias_not_summed", layer=5, batch=4)
def bias_is_delta(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("other_layer", layer=5)
def bias_after_the_step(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
        dB[k] = delta.sum(axis=1, keepdims=True)
    return dW, dB


@student("missing", layer=0)
def loop_stops_at_one(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in range(K, 0, -1):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
    return all_dl_dweights, all_dl_dbiases


@student("mask_missing", layer=4)
def forgot_the_mask(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = np.sum(delta, axis=1, keepdims=True)
        if k > 0:
            delta = all_weights[k].T.dot(delta)
    return dW, dB


@student("transposed", case="K=3 square", layer=3)
def outer_the_wrong_way(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = np.dot(all_h[k], delta.T)  # dL/dOmega = h delta^T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = np.dot(all_weights[k].T, delta) * (all_f[k - 1] > 0)
    return dW, dB


@student("missing_transpose", case="K=3 square", layer=2)
def einsum_without_transpose(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = np.einsum("in,jn->ij", delta, all_h[k])
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = np.einsum("ij,jn->in", all_weights[k], delta) * (all_f[k - 1] > 0)
    return dW, dB


@student("mask_wrong_layer", case="K=3 square", layer=2)
def mask_from_h_of_the_layer_above(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_h[k + 1] > 0)
    return dW, dB


@student("h_instead_of_mask", layer=4)
def relu_of_f_as_derivative(all_weights, all_biases, all_f, all_h, y):
    def relu(z):
        return np.maximum(0, z)

    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = relu(all_f[layer - 1]) * (all_weights[layer].T @ delta)
    return all_dl_dweights, all_dl_dbiases


@student("wrong_activations", case="K=3 square", layer=3)
def output_of_the_layer_in_weight_gradient(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k + 1].T  # the layer's activations
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


@student("bias_not_summed", layer=5, batch=4)
def bias_keeps_the_batch(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta * np.ones_like(all_h[k + 1])  # dL/dbeta = delta * dF/dbeta
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


@student("other_layer", layer=5)
def weight_and_bias_from_the_same_list(all_weights, all_biases, all_f, all_h, y):
    dW, dB = _plain(all_weights, all_f, all_h, y)
    return dW, dW


@student("missing", layer=0)
def breaks_before_the_input_layer(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    layer = K
    while True:
        if layer == 0:
            break  # no layer below the input
        dW[layer] = delta @ all_h[layer].T
        dB[layer] = delta.sum(axis=1, keepdims=True)
        delta = (all_weights[layer].T @ delta) * (all_f[layer - 1] > 0)
        layer -= 1
    return dW, dB


# ================================================================================ right, unusually


@student()
def with_einsum(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = np.einsum("in,jn->ij", delta, all_h[k])
        dB[k] = np.einsum("in->i", delta)[:, None]
        if k > 0:
            delta = np.einsum("ji,jn->in", all_weights[k], delta) * (all_f[k - 1] > 0)
    return dW, dB


@student()
def loop_over_examples_summed(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW = [np.zeros_like(w) for w in all_weights]
    dB = [np.zeros_like(b) for b in all_biases]
    for n in range(y.shape[1]):
        delta = all_h[-1][:, [n]] - y[:, [n]]
        for k in reversed(range(K + 1)):
            dW[k] += delta @ all_h[k][:, [n]].T
            dB[k] += delta
            if k > 0:
                delta = (all_weights[k].T @ delta) * (all_f[k - 1][:, [n]] > 0)
    return dW, dB


@student()
def mask_from_h(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            delta = (all_weights[layer].T @ delta) * (all_h[layer] > 0)  # h > 0 iff f > 0
    return all_dl_dweights, all_dl_dbiases


@student()
def with_np_where(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_f[K] - y
    for k in range(K, -1, -1):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k:
            delta = np.where(all_f[k - 1] > 0, all_weights[k].T @ delta, 0.0)
    return dW, dB


@student()
def returns_tuples(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = (), ()
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW = (delta @ all_h[k].T,) + dW
        dB = (delta.sum(axis=1, keepdims=True),) + dB
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


@student()
def recursive(all_weights, all_biases, all_f, all_h, y):
    def down(k, delta):
        here_w = [delta @ all_h[k].T]
        here_b = [delta.sum(axis=1, keepdims=True)]
        if k == 0:
            return here_w, here_b
        below_w, below_b = down(k - 1, (all_weights[k].T @ delta) * (all_f[k - 1] > 0))
        return below_w + here_w, below_b + here_b

    return down(len(all_weights) - 1, all_h[-1] - y)


@student()
def closure_per_layer(all_weights, all_biases, all_f, all_h, y):
    def make_layer(k):
        def backward(delta):
            grads = (delta @ all_h[k].T, delta.sum(axis=1, keepdims=True))
            if k == 0:
                return grads, None
            return grads, (all_weights[k].T @ delta) * (all_f[k - 1] > 0)

        return backward

    steps = [make_layer(k) for k in range(len(all_weights))]
    grads = [None] * len(steps)
    delta = all_h[-1] - y
    for k in reversed(range(len(steps))):
        grads[k], delta = steps[k](delta)
    return [g[0] for g in grads], [g[1] for g in grads]


@student()
def with_np_dot(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = np.subtract(all_h[K + 1], y, dtype=np.float64)
    for k in reversed(range(K + 1)):
        dW[k] = np.dot(delta, np.transpose(all_h[k]))
        dB[k] = np.dot(delta, np.ones((delta.shape[1], 1)))
        if k > 0:
            delta = np.multiply(np.dot(np.transpose(all_weights[k]), delta), np.greater(all_f[k - 1], 0))
    return dW, dB


@student()
def loops_over_units(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    N = y.shape[1]
    dW = [np.zeros(w.shape) for w in all_weights]
    dB = [np.zeros(b.shape) for b in all_biases]
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        rows, cols = all_weights[k].shape
        for i in range(rows):
            for n in range(N):
                dB[k][i, 0] += delta[i, n]
                for j in range(cols):
                    dW[k][i, j] += delta[i, n] * all_h[k][j, n]
        if k > 0:
            below = np.zeros((cols, N))
            for j in range(cols):
                for n in range(N):
                    if all_f[k - 1][j, n] > 0:
                        below[j, n] = sum(all_weights[k][i, j] * delta[i, n] for i in range(rows))
            delta = below
    return dW, dB


@student()
def masked_weight_gradient_no_op(all_weights, all_biases, all_f, all_h, y):
    # h is 0 wherever the mask is: masking the weight gradient by (h > 0) changes nothing on ReLU
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        h = all_h[k]
        dW[k] = (delta @ h.T) * ((h != 0).any(axis=1) if k > 0 else np.ones(h.shape[0]))
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


@student()
def heaviside_zero(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta @ np.ones((delta.shape[1], 1))
        if k > 0:
            delta = np.heaviside(all_f[k - 1], 0.0) * (all_weights[k].T @ delta)
    return dW, dB


@student()
def outer_products_summed(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    N = y.shape[1]
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for k in reversed(range(K + 1)):
        dW[k] = sum(np.outer(delta[:, n], all_h[k][:, n]) for n in range(N))
        dB[k] = delta.sum(axis=1).reshape(-1, 1)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0)
    return dW, dB


@student()
def jacobian_matrices(all_weights, all_biases, all_f, all_h, y):
    # batch 1 per call of the inner function, with the Jacobian of ReLU as a diagonal matrix
    def one(n):
        K = len(all_weights) - 1
        dW, dB = [None] * (K + 1), [None] * (K + 1)
        dl_df = all_h[-1][:, [n]] - y[:, [n]]
        for k in reversed(range(K + 1)):
            dW[k] = dl_df @ all_h[k][:, [n]].T
            dB[k] = dl_df
            if k > 0:
                dh_df = np.diag((all_f[k - 1][:, n] > 0).astype(float))
                dl_df = dh_df @ all_weights[k].T @ dl_df
        return dW, dB

    per = [one(n) for n in range(y.shape[1])]
    return (
        [sum(p[0][k] for p in per) for k in range(len(all_weights))],
        [sum(p[1][k] for p in per) for k in range(len(all_weights))],
    )


def reset_state():
    """Forget what the stateful functions remember, as a fresh import would."""
    _GRADIENT_CACHE.clear()
    _RUNNING.clear()
    _GRAD_W.clear()
    _GRAD_B.clear()
    cached_on_the_function.__dict__.pop("memo", None)
    default_lists_insert.__defaults__ = ([], [])
    default_lists_append.__defaults__ = (([], []),)
