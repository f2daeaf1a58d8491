"""Activation functions a(f) and their derivatives a'(f), each beside the other.

Derivative conventions at the kinks match JAX's ``jax.nn`` exactly, so that manual backprop and the
``jax.grad`` oracle agree bit for bit where a pre-activation is exactly 0:

- ``relu``: a'(0) = 0 (the notebook's ``f > 0``; ``jax.nn.relu`` has the same custom derivative; note that
  ``jnp.maximum(0, f)`` would give 0.5 there).
- ``leaky_relu``: slope 0.01 for f < 0 and a'(0) = 1, since ``jax.nn.leaky_relu`` selects the ``f >= 0``
  branch at 0.
- ``tanh``, ``sigmoid``, ``softplus`` are smooth.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

LEAKY_SLOPE = 0.01


class Activation(NamedTuple):
    name: str
    function: object  # a(f), elementwise
    derivative: object  # a'(f), elementwise, as a function of the pre-activation f
    kinked: bool  # piecewise linear with a kink at 0: finite differences may cross it
    slope: object  # what the backward pass multiplies delta by: a'(f), or an array that acts the same
    is_on: object = None  # kinked only: the on/off state of each unit that a'(f) follows (None: smooth)
    curvature: object = None  # a''(f), elementwise: what the Hessian-vector product (hvp.py) needs


def relu(f):
    return np.maximum(f, 0)


def relu_derivative(f):
    return (f > 0).astype(f.dtype)


def relu_slope(f):
    # Multiplying by the boolean f > 0 is multiplying by 1.0 or 0.0, bit for bit, without a float copy.
    return f > 0


def leaky_relu(f):
    return np.where(f >= 0, f, LEAKY_SLOPE * f)


def leaky_relu_derivative(f):
    return np.where(f >= 0, f.dtype.type(1), f.dtype.type(LEAKY_SLOPE))


def tanh_derivative(f):
    return 1 - np.tanh(f) ** 2


def sigmoid(f):
    # 1 / (1 + e^-f) = exp(-log(1 + e^-f)), with log(1 + e^-f) as logaddexp(0, -f): no overflow for large
    # |f|, and no underflow to 0 for f < -37 (where 0.5 + 0.5 tanh(f / 2) rounds to 0).
    return np.exp(-np.logaddexp(0, -f))


def sigmoid_derivative(f):
    # s (1 - s) = e^-f / (1 + e^-f)^2, in logs: accurate in both tails, where 1 - s would cancel.
    return np.exp(-f - 2 * np.logaddexp(0, -f))


def softplus(f):
    return np.logaddexp(f, 0)


def zero_curvature(f):
    # Piecewise linear: a''(f) = 0 everywhere but at the kink, where it does not exist (jax.nn's custom
    # derivatives give 0 there too).
    return np.zeros_like(f)


def tanh_curvature(f):
    # d/df (1 - tanh^2 f) = -2 tanh(f) (1 - tanh^2 f)
    t = np.tanh(f)
    return -2 * t * (1 - t * t)


def sigmoid_curvature(f):
    # d/df s (1 - s) = s (1 - s) (1 - 2 s), and 1 - 2 s = -tanh(f / 2): no cancellation in either tail.
    return -sigmoid_derivative(f) * np.tanh(f / 2)


ACTIVATIONS = {
    # relu is on for f > 0 (a'(0) = 0); leaky_relu for f >= 0 (a'(0) = 1): the sides jax.nn picks at 0.
    "relu": Activation("relu", relu, relu_derivative, True, relu_slope, relu_slope, zero_curvature),
    "leaky_relu": Activation("leaky_relu", leaky_relu, leaky_relu_derivative, True, leaky_relu_derivative,
                             lambda f: f >= 0, zero_curvature),
    "tanh": Activation("tanh", np.tanh, tanh_derivative, False, tanh_derivative, None, tanh_curvature),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_derivative, False, sigmoid_derivative, None,
                          sigmoid_curvature),
    # softplus' is the sigmoid, so softplus'' is the sigmoid's derivative
    "softplus": Activation("softplus", softplus, sigmoid, False, sigmoid, None, sigmoid_derivative),
}


def other_side_at_kink(derivative):
    """``(a'(0), the one-sided a' the convention did not pick)`` for a kinked a'; None for a smooth one.

    ReLU: (0, 1), the classic slip being the mask f >= 0; leaky ReLU: (1, 0.01).
    """
    left, at_zero, right = (float(np.asarray(derivative(np.array([v])))[0]) for v in (-1.0, 0.0, 1.0))
    if left == right:
        return None
    return at_zero, (left if at_zero == right else right)


def get_activation(name: str) -> Activation:
    """The activation called ``name``; a ValueError lists the choices for an unknown name."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None
