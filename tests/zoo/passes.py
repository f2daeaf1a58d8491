"""The notebook's backward pass (Understanding Deep Learning, notebook 7.2), copied as is, and a zoo of
deliberately broken variants, each with the layer where it first goes wrong and the diagnosis it deserves.

All take ``(all_weights, all_biases, all_f, all_h, y)`` and return ``(all_dl_dweights, all_dl_dbiases)``.
"""

import numpy as np


def d_loss_d_output(net_output, y):
    return net_output - y


def backward_pass(all_weights, all_biases, all_f, all_h, y):
    """The notebook's, verbatim (not batch-aware: the bias gradient keeps the batch axis)."""
    K = len(all_weights) - 1  # Number of layers excluding input

    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)

    # Initialize delta as derivative of loss wrt output
    delta = d_loss_d_output(all_h[-1], y)

    for layer in reversed(range(K + 1)):  # Start from last layer and go backward
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta

        if layer > 0:
            df_dh = (all_f[layer - 1] > 0).astype(float)  # ReLU derivative
            delta = (all_weights[layer].T @ delta) * df_dh

    return all_dl_dweights, all_dl_dbiases


def _backward(
    all_weights,
    all_f,
    all_h,
    y,
    *,
    delta0=None,
    mask=None,
    propagate=None,
    weight_grad=None,
    bias_grad=None,
    bias_after=False,
    skip=(),
    layers=None,
):
    """The batch-aware backward pass with hooks where the classic bugs go."""
    K = len(all_weights) - 1
    dW, db = [None] * (K + 1), [None] * (K + 1)
    delta = (all_h[-1] - y) if delta0 is None else delta0(all_h[-1], y)
    for layer in reversed(range(K + 1)) if layers is None else layers(K):
        if layer in skip:
            continue
        dW[layer] = delta @ all_h[layer].T if weight_grad is None else weight_grad(delta, all_h, layer)
        if not bias_after:
            db[layer] = delta.sum(axis=1, keepdims=True) if bias_grad is None else bias_grad(delta)
        if layer > 0:
            back = (
                (all_weights[layer].T @ delta) if propagate is None else propagate(all_weights[layer], delta)
            )
            delta = back * ((all_f[layer - 1] > 0) if mask is None else mask(all_f, all_h, layer))
        if bias_after:
            db[layer] = delta.sum(axis=1, keepdims=True)
    return dW, db


def batch_backward(all_weights, all_biases, all_f, all_h, y):
    """Correct and batch-aware: the bias gradient sums delta over the batch."""
    return _backward(all_weights, all_f, all_h, y)


def sign_flipped(all_weights, all_biases, all_f, all_h, y):
    return _backward(all_weights, all_f, all_h, y, delta0=lambda out, y: y - out)


def factor_two(all_weights, all_biases, all_f, all_h, y):
    return _backward(all_weights, all_f, all_h, y, delta0=lambda out, y: 2 * (out - y))


def no_mask(all_weights, all_biases, all_f, all_h, y):
    return _backward(all_weights, all_f, all_h, y, mask=lambda f, h, layer: 1.0)


def mask_wrong_layer(all_weights, all_biases, all_f, all_h, y):
    return _backward(all_weights, all_f, all_h, y, mask=lambda f, h, layer: f[layer] > 0)


def missing_transpose(all_weights, all_biases, all_f, all_h, y):
    return _backward(all_weights, all_f, all_h, y, propagate=lambda w, d: w @ d)


def transposed_weight_gradient(all_weights, all_biases, all_f, all_h, y):
    return _backward(all_weights, all_f, all_h, y, weight_grad=lambda d, h, layer: h[layer] @ d.T)


def bias_after_propagation(all_weights, all_biases, all_f, all_h, y):
    return _backward(all_weights, all_f, all_h, y, bias_after=True)


def skipped_layer(all_weights, all_biases, all_f, all_h, y):
    """The loop stops before layer 0 (range(1, K+1)): the first layer's gradients are never set."""
    return _backward(all_weights, all_f, all_h, y, layers=lambda K: reversed(range(1, K + 1)))


def in_place(all_weights, all_biases, all_f, all_h, y):
    """Applies ReLU's derivative by zeroing the caller's pre-activations in place."""
    K = len(all_weights) - 1
    dW, db = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[-1] - y
    for layer in reversed(range(K + 1)):
        dW[layer] = delta @ all_h[layer].T
        db[layer] = delta.sum(axis=1, keepdims=True)
        if layer > 0:
            f = all_f[layer - 1]
            f[f <= 0] = 0
            f[f > 0] = 1
            delta = (all_weights[layer].T @ delta) * f
    return dW, db


def gradient_step_inside(all_weights, all_biases, all_f, all_h, y):
    """Right gradients, but it also takes a gradient step on the caller's parameters (all_weights -= ...)."""
    dW, db = in_place(all_weights, all_biases, [f.copy() for f in all_f], all_h, y)
    for omega, gradient in zip(all_weights, dW, strict=True):
        omega -= 0.1 * gradient
    return dW, db


_CACHE = {}


def stateful(all_weights, all_biases, all_f, all_h, y):
    """Memoizes by shapes: the second network of the same shapes gets the first one's gradient."""
    key = tuple(w.shape for w in all_weights) + (y.shape,)
    if key not in _CACHE:
        _CACHE[key] = batch_backward(all_weights, all_biases, all_f, all_h, y)
    return _CACHE[key]


# Bugs the diagnoses were not designed around.
def h_instead_of_mask(all_weights, all_biases, all_f, all_h, y):
    return _backward(all_weights, all_f, all_h, y, mask=lambda f, h, layer: h[layer])


def mean_over_batch(all_weights, all_biases, all_f, all_h, y):
    return _backward(all_weights, all_f, all_h, y, delta0=lambda out, y: (out - y) / y.shape[1])


def off_by_one_activation(all_weights, all_biases, all_f, all_h, y):
    """Uses h_{k+1} (the layer's own output) in the weight gradient: runs only where shapes allow."""
    return _backward(all_weights, all_f, all_h, y, weight_grad=lambda d, h, layer: d @ h[layer + 1].T)


def weights_twice(all_weights, all_biases, all_f, all_h, y):
    """Returns the weight gradients in place of the bias gradients."""
    dW, _ = batch_backward(all_weights, all_biases, all_f, all_h, y)
    return dW, list(dW)


def returns_none(all_weights, all_biases, all_f, all_h, y):
    batch_backward(all_weights, all_biases, all_f, all_h, y)


def returns_nan(all_weights, all_biases, all_f, all_h, y):
    dW, db = batch_backward(all_weights, all_biases, all_f, all_h, y)
    dW[0] = dW[0] * np.nan
    return dW, db


def raises(all_weights, all_biases, all_f, all_h, y):
    return 1 / 0
