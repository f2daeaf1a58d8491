"""Every derivative beyond the gradient, by JAX's own transformations: the oracle for ``manual_backprop``.

Written in ``jax.numpy`` on the network of ``jax_network`` (its ``_network_output`` and ``_loss``) and
importing nothing from ``manual_backprop``:

- ``jax_jvp``: ``jax.jvp`` of the output in the parameters (forward mode);
- ``jax_loss_jvp``: ``jax.jvp`` of the loss;
- ``jax_hvp``: forward-over-reverse, ``jax.jvp`` of ``jax.grad`` of the loss;
- ``jax_ggn_vp``: ``jax.linearize`` gives J v, ``jax.vjp`` gives J^T u, and H_L is ``jax.hessian`` of one
  column's loss in that column's output, ``jax.vmap``-ed over the columns (the loss is a sum of columns, so
  its Hessian in the output is block diagonal: N blocks of (D_o, D_o), never the (D_o N)^2 matrix);
- ``jax_per_example_gradients``: ``jax.vmap(jax.grad(...))`` over the columns of the input and target;
- ``jax_input_gradient``: ``jax.grad`` in the input.

Same conventions and precision rule as ``jax_gradients``: float64 parameters are computed in float64 with
JAX's 64-bit mode on for the call only; each transformation is jit-compiled once per shape and choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from .jax_network import (
    LOSSES,
    _as_real,
    _check_activation,
    _check_finite,
    _loss,
    _network_output,
    _prepare,
    _x64,
)

Parameters = Sequence[ArrayLike]  # all_weights or all_biases: one array per layer
Gradients = tuple[list[np.ndarray], list[np.ndarray]]  # (all_dl_dweights, all_dl_dbiases)


def _output_loss(z, y, loss):
    """The loss of an output ``z`` (D_o, N) against a target (D_o, N), summed over the columns."""
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r}: the derivatives beyond the gradient take a plain loss")
    if loss == "least_squares":
        return 0.5 * jnp.sum((z - y) ** 2)
    if loss == "sum_of_squares":
        return jnp.sum((z - y) ** 2)
    if loss == "binary_cross_entropy":
        return -jnp.sum(y * jax.nn.log_sigmoid(z) + (1 - y) * jax.nn.log_sigmoid(-z))
    return -jnp.sum(y * jax.nn.log_softmax(z, axis=0))


def _one_hot(target, rows, dtype):
    """Class indices (N,) as one-hot columns (rows, N); a (rows, N) target as it is."""
    if target.ndim == 1:
        return np.eye(rows, dtype=dtype)[:, target]
    return target


def _jvp(params, tangent, net_input, activation):
    return jax.jvp(lambda p: _network_output(p, net_input, activation), (params,), (tangent,))


def _loss_jvp(params, tangent, net_input, y, activation, loss):
    return jax.jvp(lambda p: _loss(p, net_input, y, activation, loss), (params,), (tangent,))[1]


def _hvp(params, v, net_input, y, activation, loss):
    grad = jax.grad(_loss)
    return jax.jvp(lambda p: grad(p, net_input, y, activation, loss), (params,), (v,))[1]


def _ggn_vp(params, v, net_input, y, activation, loss):
    z, linear = jax.linearize(lambda p: _network_output(p, net_input, activation), params)
    jv = linear(v)  # J v, (D_o, N)

    def column_loss(z_n, y_n):
        return _output_loss(z_n[:, None], y_n[:, None], loss)

    blocks = jax.vmap(jax.hessian(column_loss), in_axes=(1, 1))(z, y)  # (N, D_o, D_o)
    u = jnp.einsum("nij,jn->in", blocks, jv)  # H_L J v
    _, pullback = jax.vjp(lambda p: _network_output(p, net_input, activation), params)
    return pullback(u)[0]  # J^T H_L J v


def _per_example(params, net_input, y, activation, loss):
    def one(x_n, y_n):
        return jax.grad(_loss)(params, x_n[:, None], y_n[:, None], activation, loss)

    return jax.vmap(one, in_axes=(1, 1))(net_input, y)


_STATIC = ("activation", "loss")
_jit_jvp = jax.jit(_jvp, static_argnames=("activation",))
_jit_loss_jvp = jax.jit(_loss_jvp, static_argnames=_STATIC)
_jit_hvp = jax.jit(_hvp, static_argnames=_STATIC)
_jit_ggn_vp = jax.jit(_ggn_vp, static_argnames=_STATIC)
_jit_per_example = jax.jit(_per_example, static_argnames=_STATIC)
_jit_input_gradient = jax.jit(jax.grad(lambda x, p, y, activation, loss: _loss(p, x, y, activation, loss)),
                              static_argnames=_STATIC)
EAGER = {"jvp": _jvp, "loss_jvp": _loss_jvp, "hvp": _hvp, "ggn": _ggn_vp, "per_example": _per_example}


def _vector(values_w, values_b, names, weights, biases, dtype):
    """A tangent or vector given as two lists, checked against the parameters' shapes, in ``dtype``."""
    out = []
    for values, name, reference in ((values_w, names[0], weights), (values_b, names[1], biases)):
        if isinstance(values, (np.ndarray, str)) or not isinstance(values, (list, tuple)):
            raise TypeError(f"{name} must be a list or tuple of arrays, got {type(values).__name__}")
        if len(values) != len(reference):
            raise ValueError(f"{name} has {len(values)} entries, expected {len(reference)}")
        arrays = []
        for k, (value, ref) in enumerate(zip(values, reference, strict=True)):
            array = _as_real(value, f"{name}[{k}]")
            if array.shape != ref.shape:
                raise ValueError(f"{name}[{k}] has shape {array.shape}, expected {ref.shape}")
            _check_finite(array, f"{name}[{k}]")
            arrays.append(array.astype(dtype, copy=False))
        out.append(arrays)
    return tuple(out)


def _to_numpy(pair):
    weights, biases = pair
    return [np.array(g) for g in weights], [np.array(g) for g in biases]


def jax_jvp(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike,
            tangent_weights: Parameters, tangent_biases: Parameters, *,
            activation: str = "relu") -> tuple[np.ndarray, np.ndarray]:
    """``jax.jvp`` of the output: ``(net_output, d_output)``, both (D_o, N), as ``manual_jvp``."""
    _check_activation(activation)
    weights, biases, x, _, dtype = _prepare(all_weights, all_biases, net_input)
    tangent = _vector(tangent_weights, tangent_biases, ("tangent_weights", "tangent_biases"), weights, biases,
                      dtype)  # fmt: skip
    with _x64(dtype == np.float64):
        out, d_out = _jit_jvp((weights, biases), tangent, x, activation=activation)
        return np.array(out), np.array(d_out)


def jax_loss_jvp(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
                 tangent_weights: Parameters, tangent_biases: Parameters, *, activation: str = "relu",
                 loss: str = "least_squares") -> np.floating:
    """``jax.jvp`` of the loss along the tangent: a NumPy scalar, as ``manual_loss_jvp``."""
    _check_activation(activation)
    weights, biases, x, target, dtype = _prepare(all_weights, all_biases, net_input, y, loss)
    tangent = _vector(tangent_weights, tangent_biases, ("tangent_weights", "tangent_biases"), weights, biases,
                      dtype)  # fmt: skip
    with _x64(dtype == np.float64):
        value: np.floating = np.array(_jit_loss_jvp((weights, biases), tangent, x, target,
                                                    activation=activation, loss=loss))[()]  # fmt: skip
        return value


def _with_vector(all_weights, all_biases, net_input, y, v_weights, v_biases, activation, loss):
    """The checked problem and the vector v = (v_weights, v_biases) of H v and G v."""
    _check_activation(activation)
    weights, biases, x, target, dtype = _prepare(all_weights, all_biases, net_input, y, loss)
    v = _vector(v_weights, v_biases, ("v_weights", "v_biases"), weights, biases, dtype)
    return weights, biases, x, target, dtype, v


def jax_hvp(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
            v_weights: Parameters, v_biases: Parameters, *, activation: str = "relu",
            loss: str = "least_squares") -> Gradients:
    """H v by forward-over-reverse (``jax.jvp`` of ``jax.grad``): ``(Hv_weights, Hv_biases)``."""
    weights, biases, x, target, dtype, v = _with_vector(all_weights, all_biases, net_input, y, v_weights,
                                                        v_biases, activation, loss)
    with _x64(dtype == np.float64):
        return _to_numpy(_jit_hvp((weights, biases), v, x, target, activation=activation, loss=loss))


def jax_ggn_vp(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
               v_weights: Parameters, v_biases: Parameters, *, activation: str = "relu",
               loss: str = "least_squares") -> Gradients:
    """G v = J^T H_L J v (``jax.linearize``, ``jax.vjp``, ``jax.hessian``): ``(Gv_weights, Gv_biases)``."""
    weights, biases, x, target, dtype, v = _with_vector(all_weights, all_biases, net_input, y, v_weights,
                                                        v_biases, activation, loss)
    target = _one_hot(target, weights[-1].shape[0], dtype)
    with _x64(dtype == np.float64):
        return _to_numpy(_jit_ggn_vp((weights, biases), v, x, target, activation=activation, loss=loss))


def jax_per_example_gradients(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike,
                              y: ArrayLike, *, activation: str = "relu",
                              loss: str = "least_squares") -> Gradients:
    """``jax.vmap(jax.grad(...))`` over the columns: arrays (N, D_{k+1}, D_k) and (N, D_{k+1}, 1)."""
    _check_activation(activation)
    weights, biases, x, target, dtype = _prepare(all_weights, all_biases, net_input, y, loss)
    target = _one_hot(target, weights[-1].shape[0], dtype)
    with _x64(dtype == np.float64):
        return _to_numpy(_jit_per_example((weights, biases), x, target, activation=activation, loss=loss))


def jax_input_gradient(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
                       *, activation: str = "relu", loss: str = "least_squares") -> np.ndarray:
    """``jax.grad`` of the loss in the input: dL/d(net_input), (D_i, N)."""
    _check_activation(activation)
    weights, biases, x, target, dtype = _prepare(all_weights, all_biases, net_input, y, loss)
    with _x64(dtype == np.float64):
        return np.array(_jit_input_gradient(x, (weights, biases), target, activation=activation, loss=loss))
