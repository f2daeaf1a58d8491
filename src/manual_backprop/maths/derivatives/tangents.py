"""Checks of the arguments the derivatives beyond the gradient take: tangents and vectors like the parameters.

A tangent (for the JVP) or a vector v (for H v and G v) is the notebook's pair of lists again: ``[dOmega_0,
..., dOmega_K]`` with dOmega_k of Omega_k's shape (D_{k+1}, D_k), and ``[dbeta_0, ..., dbeta_K]`` with
dbeta_k of shape (D_{k+1}, 1). Every message names the argument and the tensor (``tangent_weights[2] has
shape (4, 3), expected (4, 5)``). Nothing given is written into: a conversion makes a new array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
from numpy.typing import ArrayLike

from ..._types import Arrays, Gradients, Parameters
from ...validate import (
    LOSSES,
    as_real_array,
    check_finite,
    check_loss_name,
    check_target,
    checked_network,
)
from ..activations import Activation, get_activation


def check_like_parameters(values: Parameters, name: str, reference: Sequence[np.ndarray],
                          dtype: np.dtype) -> list[np.ndarray]:
    """``values``, a list of arrays shaped like ``reference`` (the checked weights or biases), in ``dtype``.

    ``name`` is the argument's name ("tangent_weights"); integers become floats, NaN or inf is an error.
    """
    if isinstance(values, np.ndarray) or not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
        raise TypeError(
            f"{name} must be a list (or tuple) of arrays, one per layer like the parameters; "
            f"got {type(values).__name__}"
        )
    if len(values) != len(reference):
        raise ValueError(
            f"{name} has {len(values)} entries, expected {len(reference)}: one per layer, like the parameters"
        )
    if all(type(v) is np.ndarray and v.dtype == dtype and v.shape == r.shape
           for v, r in zip(values, reference, strict=True)):
        # The common case in a few microseconds: one finite check over all tensors (the full loop below
        # finds the culprit when it fails).
        with np.errstate(over="ignore", invalid="ignore"):
            total = sum(np.add.reduce(v, axis=None) for v in values)
        if np.isfinite(total):
            return cast(list[np.ndarray], list(values))  # arrays of the dtype and shapes (checked above)
    out = []
    for k, (value, ref) in enumerate(zip(values, reference, strict=True)):
        array = as_real_array(value, f"{name}[{k}]")
        if array.shape != ref.shape:
            raise ValueError(f"{name}[{k}] has shape {array.shape}, expected {ref.shape} like the parameter")
        check_finite(array, f"{name}[{k}]")
        out.append(array if array.dtype == dtype else array.astype(dtype))
    return out


def check_network(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike,
                  activation: str) -> tuple[Arrays, Arrays, np.ndarray, Activation, np.dtype]:
    """``(weights, biases, x, act, dtype)``: the checked parameters, input (D_i, N) and activation."""
    act = get_activation(activation)
    weights, biases, x, dtype = checked_network(all_weights, all_biases, net_input)
    return weights, biases, x, act, dtype


def check_problem(
    all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike, activation: str,
    loss: str,
) -> tuple[Arrays, Arrays, np.ndarray, np.ndarray, Activation, str, np.dtype]:
    """``(weights, biases, x, target, act, loss, dtype)``: all checked; the target (D_o, N), one-hot for
    class indices."""
    loss = check_loss_name(loss)
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r}: the derivatives beyond the gradient take a plain loss ("
                         f"{', '.join(LOSSES)}), without an output activation, mean or l2")
    weights, biases, x, act, dtype = check_network(all_weights, all_biases, net_input, activation)
    target = check_target(y, loss, weights[-1].shape[0], x.shape[1], dtype)
    return weights, biases, x, target, act, loss, dtype


def check_pair(values_w: Parameters, values_b: Parameters, names: tuple[str, str],
               weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], dtype: np.dtype) -> Gradients:
    """A tangent or vector given as two lists, checked against the parameters: ``(list_w, list_b)``."""
    return (check_like_parameters(values_w, names[0], weights, dtype),
            check_like_parameters(values_b, names[1], biases, dtype))  # fmt: skip
