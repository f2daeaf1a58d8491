"""Losses of the network output z = f_K (D_o, N) against targets, summed over the batch, and dL/dz.

- ``least_squares``: L = 0.5 * sum((z - y)^2), dL/dz = z - y (the notebook's).
- ``binary_cross_entropy`` on logits: each output an independent Bernoulli with P(y=1) = sigmoid(z);
  L = sum(softplus(z) - y z), dL/dz = sigmoid(z) - y.
- ``softmax_cross_entropy`` on logits: each column a categorical distribution softmax(z);
  L = sum_n (logsumexp(z_n) - y_n . z_n), dL/dz = softmax(z) - y.

Both cross-entropies are written so that logits of +-1000 neither overflow nor lose the answer.
"""

from __future__ import annotations

import numpy as np

from .activations import sigmoid
from .validate import as_real_array, check_loss_name, check_target


def _logsumexp(z, axis=0):
    peak = z.max(axis=axis, keepdims=True)
    return peak + np.log(np.exp(z - peak).sum(axis=axis, keepdims=True))


def loss_terms(loss: str, z: np.ndarray, target: np.ndarray, out=None) -> np.ndarray:
    """Elementwise loss terms of the shape of ``z`` (axis 0 is the output unit); their sum is the loss.

    ``target`` is the checked target (one-hot for class indices) and broadcasts against ``z``. ``out``,
    when given (of z's shape; it may be ``z`` itself), receives the least-squares terms in place.
    """
    if loss == "least_squares":
        terms = np.subtract(z, target, out=out)
        terms **= 2
        terms *= 0.5  # 0.5 * (z - target) ** 2, the same roundings
        return terms
    if loss == "binary_cross_entropy":
        return np.logaddexp(z, 0) - target * z
    # softmax_cross_entropy: y . (logsumexp(z) - z), which is the column's loss since y sums to 1.
    return target * (_logsumexp(z) - z)


def loss_gradient(loss: str, z: np.ndarray, target: np.ndarray, out=None) -> np.ndarray:
    """dL/dz, of the shape of ``z``, written into ``out`` when given (``out`` may be ``z`` itself)."""
    if loss == "least_squares":
        return np.subtract(z, target, out=out)
    if loss == "binary_cross_entropy":
        return np.subtract(sigmoid(z), target, out=out)
    exp = np.exp(z - z.max(axis=0, keepdims=True))
    return np.subtract(exp / exp.sum(axis=0, keepdims=True), target, out=out)


def _checked(net_output, y, loss):
    loss = check_loss_name(loss)
    z = as_real_array(net_output, "net_output")
    if z.ndim != 2:
        raise ValueError(f"net_output has shape {z.shape}: expected (D_o, N), one column per example")
    dtype = z.dtype if z.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    target = check_target(y, loss, z.shape[0], z.shape[1], dtype)
    return loss, z.astype(dtype, copy=False), target


def compute_loss(net_output, y, *, loss: str = "least_squares"):
    """The loss (a scalar of the output's dtype), summed over the N columns of ``net_output`` (D_o, N)."""
    loss, z, target = _checked(net_output, y, loss)
    return loss_terms(loss, z, target).sum()


def least_squares_loss(net_output, y):
    """The notebook's loss: 0.5 * sum((net_output - y)^2) for ``net_output`` and ``y`` of shape (D_o, N)."""
    return compute_loss(net_output, y, loss="least_squares")


def d_loss_d_output(net_output, y, *, loss: str = "least_squares") -> np.ndarray:
    """dL/d(net_output), shape (D_o, N); for least squares the notebook's ``net_output - y``."""
    loss, z, target = _checked(net_output, y, loss)
    return loss_gradient(loss, z, target)
