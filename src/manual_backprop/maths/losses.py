"""Losses of the network output z = f_K (D_o, N) against targets, summed over the batch, and dL/dz.

- ``least_squares``: L = 0.5 * sum((z - y)^2), dL/dz = z - y (the solved notebook's; the default).
- ``sum_of_squares``: L = sum((z - y)^2), dL/dz = 2 (z - y) (the published notebook's, without the 1/2):
  every term, the loss and every gradient exactly twice least_squares' (a factor 2 adds no rounding).
- ``binary_cross_entropy`` on logits: each output an independent Bernoulli with P(y=1) = sigmoid(z);
  L = sum(softplus(z) - y z), dL/dz = sigmoid(z) - y.
- ``softmax_cross_entropy`` on logits: each column a categorical distribution softmax(z);
  L = sum_n (logsumexp(z_n) - y_n . z_n), dL/dz = softmax(z) - y.

Both cross-entropies are written so that logits of +-1000 neither overflow nor lose the answer.

A loss's name may carry conventions (``objective``): an output activation a, L = loss(a(z), y) with
dL/dz = a'(z) * dloss/da; the mean over the batch (every term and dL/dz divided by N); an L2 penalty on the
weights, which is not a function of z and is added where the weights are (``l2_gradient``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .._types import Array
from ..objective import BASE_LOSSES, parse_objective
from ..validate import as_real_array, check_finite, check_loss_name, check_result_finite, check_target
from .activations import ACTIVATIONS, sigmoid, sigmoid_derivative


def _logsumexp(z, axis=0):
    peak = z.max(axis=axis, keepdims=True)
    return peak + np.log(np.exp(z - peak).sum(axis=axis, keepdims=True))


def _conventions(loss: str, z: np.ndarray):
    """(base loss, the activated output, a', 1/N or None) of a loss carrying conventions."""
    objective = parse_objective(loss)
    act = ACTIVATIONS[objective.output] if objective.output else None
    scale = 1 / z.shape[-1] if objective.reduction == "mean" else None  # N: the batch is the last axis
    return objective.base, (z if act is None else act.function(z)), act, scale


def loss_terms(loss: str, z: np.ndarray, target: np.ndarray, out=None) -> np.ndarray:
    """Elementwise loss terms of the shape of ``z`` (axis 0 is the output unit); their sum is the loss.

    ``target`` is the checked target (one-hot for class indices) and broadcasts against ``z``. ``out``,
    when given (of z's shape; it may be ``z`` itself), receives the least-squares terms in place.
    """
    if loss not in BASE_LOSSES:
        base, a_z, act, scale = _conventions(loss, z)
        terms = _base_terms(base, a_z, target, out if act is None else None)
        if scale is not None:
            terms *= scale
        return terms
    return _base_terms(loss, z, target, out)


def _base_terms(loss: str, z: np.ndarray, target: np.ndarray, out=None) -> np.ndarray:
    if loss == "least_squares":
        terms = np.subtract(z, target, out=out)
        terms **= 2
        terms *= 0.5  # 0.5 * (z - target) ** 2, the same roundings
        return terms
    if loss == "sum_of_squares":
        terms = np.subtract(z, target, out=out)
        terms **= 2
        return terms
    if loss == "binary_cross_entropy":
        return np.logaddexp(z, 0) - target * z
    # softmax_cross_entropy: y . (logsumexp(z) - z), which is the column's loss since y sums to 1.
    return target * (_logsumexp(z) - z)


def loss_term_magnitudes(loss: str, z: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The magnitudes whose rounding each loss term carries, of the shape of ``z``: |term| for the squares
    (a subtraction and a product, each to eps of the result), and the operands of the last subtraction for
    the cross-entropies, where a small term can be the difference of two large ones (softplus(z) - y z,
    logsumexp(z) - z for logits of 1e6): what a finite difference of the loss cannot resolve below."""
    if loss not in BASE_LOSSES:
        base, a_z, _, scale = _conventions(loss, z)
        magnitudes = loss_term_magnitudes(base, a_z, target)
        return magnitudes if scale is None else magnitudes * scale
    if loss in ("least_squares", "sum_of_squares"):
        return np.abs(loss_terms(loss, z, target))
    if loss == "binary_cross_entropy":
        return np.logaddexp(z, 0) + np.abs(target * z)
    return target * (np.abs(_logsumexp(z)) + np.abs(z))


def loss_gradient(loss: str, z: np.ndarray, target: np.ndarray, out=None) -> np.ndarray:
    """dL/dz, of the shape of ``z``, written into ``out`` when given (``out`` may be ``z`` itself)."""
    if loss not in BASE_LOSSES:
        base, a_z, act, scale = _conventions(loss, z)
        gradient = loss_gradient(base, a_z, target)
        if act is not None:
            gradient *= act.derivative(z)  # the chain rule through the output's activation
        if scale is not None:
            gradient *= scale
        if out is not None:
            out[...] = gradient
            return out
        return gradient
    if loss == "least_squares":
        return np.subtract(z, target, out=out)
    if loss == "sum_of_squares":
        gradient = np.subtract(z, target, out=out)
        gradient *= 2  # 2 (z - y): exactly twice least_squares' z - y
        return gradient
    if loss == "binary_cross_entropy":
        return np.subtract(sigmoid(z), target, out=out)
    exp = np.exp(z - z.max(axis=0, keepdims=True))
    return np.subtract(exp / exp.sum(axis=0, keepdims=True), target, out=out)


def l2_gradient(loss: str, weights) -> list | None:
    """dL/dOmega_k of the loss's L2 penalty, l2 Omega_k for each k, or None when it has none."""
    l2 = parse_objective(loss).l2 if loss not in BASE_LOSSES else 0.0
    return [l2 * omega for omega in weights] if l2 else None


def l2_penalty(loss: str, weights) -> float:
    """The loss's L2 penalty (l2 / 2) sum_k ||Omega_k||_F^2 (0 when it has none)."""
    l2 = parse_objective(loss).l2 if loss not in BASE_LOSSES else 0.0
    return 0.5 * l2 * sum(float(np.sum(omega * omega)) for omega in weights) if l2 else 0.0


def _checked(net_output, y, loss):
    loss = check_loss_name(loss)
    z = as_real_array(net_output, "net_output")
    if z.ndim != 2:
        raise ValueError(f"net_output has shape {z.shape}: expected (D_o, N), one column per example")
    if z.size == 0:
        raise ValueError(f"net_output has shape {z.shape}: expected (D_o, N) with D_o, N >= 1")
    check_finite(z, "net_output")
    dtype = z.dtype if z.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    target = check_target(y, loss, z.shape[0], z.shape[1], dtype)
    return loss, z.astype(dtype, copy=False), target


def compute_loss(net_output: ArrayLike, y: ArrayLike, *, loss: str = "least_squares") -> np.floating:
    """The loss (a scalar of the output's dtype), summed over the N columns of ``net_output`` (D_o, N).

    A ValueError, not inf, when the loss overflows the dtype (|net_output - y| past ~1e154 in float64)."""
    loss, z, target = _checked(net_output, y, loss)
    with np.errstate(over="ignore", invalid="ignore"):
        value = loss_terms(loss, z, target).sum()
    if not np.isfinite(value):
        raise ValueError(f"the loss overflows ({value}) in {z.dtype}; scale net_output or y down")
    return value


def least_squares_loss(net_output: ArrayLike, y: ArrayLike) -> np.floating:
    """The notebook's loss: 0.5 * sum((net_output - y)^2) for ``net_output`` and ``y`` of shape (D_o, N)."""
    return compute_loss(net_output, y, loss="least_squares")


def d_loss_d_output(net_output: ArrayLike, y: ArrayLike, *, loss: str = "least_squares") -> Array:
    """dL/d(net_output), shape (D_o, N); for least squares the notebook's ``net_output - y``."""
    loss, z, target = _checked(net_output, y, loss)
    with np.errstate(over="ignore", invalid="ignore"):
        gradient = loss_gradient(loss, z, target)
    check_result_finite(gradient, "dL/d(net_output)", "scale net_output or y down")
    return gradient


def loss_hessian_vector(loss: str, z: np.ndarray, target: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """H_L dz: the Hessian of the loss with respect to the output z (D_o, N), times ``dz`` (D_o, N).

    The loss is a sum over the columns, so H_L is block diagonal, one (D_o, D_o) block per example:

    - ``least_squares``: H_L = I, so H_L dz = dz.
    - ``sum_of_squares`` (L = sum((z - y)^2)): H_L = 2 I.
    - ``binary_cross_entropy``: diagonal, sigmoid'(z) = s (1 - s): H_L dz = s (1 - s) * dz.
    - ``softmax_cross_entropy``: per column diag(p) - p p^T with p = softmax(z): p * dz - p (p . dz).

    None depends on the target (``target`` is taken for a uniform signature). Returns a new (D_o, N) array.
    """
    if loss not in BASE_LOSSES:
        raise ValueError(f"loss {loss!r}: the derivatives beyond the gradient take a plain loss (no output "
                         "activation, mean or l2)")
    if loss == "least_squares":
        return dz.copy()
    if loss == "sum_of_squares":
        return 2 * dz
    if loss == "binary_cross_entropy":
        return sigmoid_derivative(z) * dz
    exp = np.exp(z - z.max(axis=0, keepdims=True))
    p = exp / exp.sum(axis=0, keepdims=True)
    return p * (dz - (p * dz).sum(axis=0, keepdims=True))
