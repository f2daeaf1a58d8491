"""The network as a pure function of ``(all_weights, all_biases)`` in ``jax.numpy``, and its ``jax.grad``.

Precision: JAX computes in 32 bits unless 64-bit mode is on. Each call here turns it on only for its own
duration (``with jax.enable_x64(...)``) when the parameters are float64, so float64 in means float64
computed, and the importer's process-wide JAX default is left as it was. (JAX before 0.7, the newest that
Python 3.10 gets, has the same scoped switch as ``jax.experimental.enable_x64`` / ``disable_x64``.)

Kinks follow ``jax.nn``: relu'(0) = 0, and leaky_relu'(0) = 1 (``jax.nn.leaky_relu`` takes the
``x >= 0`` branch). ``jnp.maximum(0, f)`` is not used: its derivative at 0 is 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike


def _x64(enabled: bool):
    """A context manager that turns JAX's 64-bit mode on (or off) for its duration only."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(enabled)
    from jax.experimental import disable_x64, enable_x64  # JAX < 0.7

    return enable_x64() if enabled else disable_x64()


ACTIVATIONS = {
    "relu": jax.nn.relu,
    "leaky_relu": partial(jax.nn.leaky_relu, negative_slope=0.01),
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "softplus": jax.nn.softplus,
}
LOSSES = ("least_squares", "sum_of_squares", "binary_cross_entropy", "softmax_cross_entropy")


def _network_output(params, net_input, activation):
    all_weights, all_biases = params
    a = ACTIVATIONS[activation]
    h = net_input
    last = len(all_weights) - 1
    for k, (omega, beta) in enumerate(zip(all_weights, all_biases, strict=True)):
        f = omega @ h + beta
        h = a(f) if k < last else f
    return h


def objective(loss: str):
    """(base loss, output activation or None, mean over the batch, l2) of a loss's name such as
    "least_squares, output sigmoid, mean, l2 0.01" (read here again: the oracle borrows nothing)."""
    base, *parts = [part.strip() for part in str(loss).split(",")]
    output, mean, l2 = None, False, 0.0
    for part in parts:
        words = part.split()
        if words[:1] == ["output"] and len(words) == 2 and words[1] in ACTIVATIONS:
            output = words[1]
        elif words == ["mean"] or words == ["sum"]:
            mean = words == ["mean"]
        elif words[:1] == ["l2"] and len(words) == 2:
            l2 = float(words[1])
        else:
            raise ValueError(f"loss {loss!r}: cannot read {part!r}")
    if base not in LOSSES:
        raise ValueError(f"unknown loss {base!r}; choose one of {', '.join(LOSSES)}")
    return base, output, mean, l2


def _objective_of(z, y, weights, loss, base_loss):
    """The loss's conventions around its base loss of the output z: L = scale * base(a(z), y) + penalty."""
    base, output, mean, l2 = objective(loss)
    value = base_loss(ACTIVATIONS[output](z) if output else z, y, base)
    if mean:
        value = value / z.shape[1]
    if l2:
        value = value + 0.5 * l2 * sum(jnp.sum(omega * omega) for omega in weights)
    return value


def _loss(params, net_input, y, activation, loss):
    z = _network_output(params, net_input, activation)
    return _objective_of(z, y, params[0], loss, _base_loss)


def _base_loss(z, y, loss):
    if loss == "least_squares":
        return 0.5 * jnp.sum((z - y) ** 2)
    if loss == "sum_of_squares":  # the published notebook's: no 1/2
        return jnp.sum((z - y) ** 2)
    if loss == "binary_cross_entropy":
        # -y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)), written on logits so +-1000 stays finite.
        return -jnp.sum(y * jax.nn.log_sigmoid(z) + (1 - y) * jax.nn.log_sigmoid(-z))
    if y.ndim == 1:  # class indices
        y = jax.nn.one_hot(y, z.shape[0], axis=0, dtype=z.dtype)
    return -jnp.sum(y * jax.nn.log_softmax(z, axis=0))


_jit_output = jax.jit(_network_output, static_argnames=("activation",))
_jit_loss = jax.jit(_loss, static_argnames=("activation", "loss"))
_jit_grad = jax.jit(jax.grad(_loss), static_argnames=("activation", "loss"))


# ------------------------------------------------------------------------------ one program for small nets
# XLA compiles one program per shape: about 0.3 s each, far more than a small network's gradient costs, and
# a grader calls the oracle once on each of a dozen small networks of different shapes. (An eager jax.grad
# is no cheaper cold: each primitive of each shape compiles, 1.4-2 s for the notebook's network.) So a
# small network runs padded into a shared layout: every layer a P x P matrix (zeros outside the real
# block), the layers stacked and run by ``lax.scan``, layers past the last one skipped, the output rows past
# D_o masked out of the loss. Zeros add nothing and skipped layers pass h through, so the loss and its
# jax.grad restricted to the real entries are the network's (to a few ulps: XLA may order sums otherwise);
# one compiled program serves every network of a bucket (P, layers, batch, dtype, activation, loss).
PADDED_MAX_WIDTH = 64  # networks whose every layer fits in 64 x 64 ...
PADDED_MAX_LAYERS = 32  # ... and with at most 32 layers take the shared program


def _bucket(n: int, least: int = 8) -> int:
    """The power of two >= n (at least ``least``): few buckets, so that few programs are compiled."""
    return max(least, 1 << (n - 1).bit_length())


def _padded_loss(params, x, y, rows, last, activation, loss):
    """The loss of a padded network: ``params`` = (weights (L, P, P), biases (L, P, 1)); layer ``last``
    (a traced integer) is the output layer, the layers after it are skipped; ``rows`` (P, 1) marks the
    real output rows; ``y`` (P, N) is the target padded with zeros (one-hot for softmax)."""
    weights, biases = params
    a = ACTIVATIONS[activation]

    def layer(h, stacked):
        omega, beta, k = stacked
        f = omega @ h + beta
        return jnp.where(k < last, a(f), jnp.where(k == last, f, h)), None

    z, _ = jax.lax.scan(layer, x, (weights, biases, jnp.arange(weights.shape[0])))
    return _objective_of(z, (y, rows), [weights], loss, _padded_base_loss)


def _padded_base_loss(z, y_rows, loss):
    y, rows = y_rows
    if loss == "least_squares":
        return 0.5 * jnp.sum(jnp.where(rows, (z - y) ** 2, 0))
    if loss == "sum_of_squares":
        return jnp.sum(jnp.where(rows, (z - y) ** 2, 0))
    if loss == "binary_cross_entropy":
        terms = y * jax.nn.log_sigmoid(z) + (1 - y) * jax.nn.log_sigmoid(-z)
        return -jnp.sum(jnp.where(rows, terms, 0))
    log_p = jax.nn.log_softmax(jnp.where(rows, z, -jnp.inf), axis=0)
    return -jnp.sum(jnp.where(rows, y * log_p, 0))


_jit_padded_grad = jax.jit(jax.grad(_padded_loss), static_argnames=("activation", "loss"))


def _padded_gradients(weights, biases, x, target, dtype, activation, loss):
    """jax.grad through the shared padded program; the gradients cut back to the parameters' shapes."""
    sizes = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    width, layers, columns = _bucket(max(sizes)), _bucket(len(weights), 16), x.shape[1]
    stacked_w = np.zeros((layers, width, width), dtype)
    stacked_b = np.zeros((layers, width, 1), dtype)
    for k, (omega, beta) in enumerate(zip(weights, biases, strict=True)):
        stacked_w[k, : omega.shape[0], : omega.shape[1]] = omega
        stacked_b[k, : beta.shape[0]] = beta
    padded_x = np.zeros((width, columns), dtype)
    padded_x[: x.shape[0]] = x
    padded_y = np.zeros((width, columns), dtype)
    if target.ndim == 1:  # class indices
        padded_y[target, np.arange(columns)] = 1
    else:
        padded_y[: target.shape[0]] = target
    rows = (np.arange(width) < sizes[-1])[:, None]
    dl_dw, dl_db = _jit_padded_grad((stacked_w, stacked_b), padded_x, padded_y, rows, len(weights) - 1,
                                    activation=activation, loss=loss)
    dl_dw, dl_db = np.asarray(dl_dw), np.asarray(dl_db)
    return ([dl_dw[k, : w.shape[0], : w.shape[1]].copy() for k, w in enumerate(weights)],
            [dl_db[k, : b.shape[0]].copy() for k, b in enumerate(biases)])


def _use_padded(weights, dtype) -> bool:
    """The shared padded program for a small float64 network: as fast per call as the network's own
    program (measured: 0.28 ms against 0.30 ms for a K=8 battery network), and compiled once per bucket
    rather than once per shape; the two agree to 1.3e-14 of the gradient's largest entry. Larger networks
    get their own program (padding would multiply their work), and so does float32, where the two
    programs' roundings differ by up to 7e-6 of it. Never under ``jax.disable_jit`` (an eager gradient)."""
    if jax.config.jax_disable_jit or dtype != np.float64:
        return False
    return len(weights) <= PADDED_MAX_LAYERS and max(max(w.shape) for w in weights) <= PADDED_MAX_WIDTH


def _as_real(value, name):
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real floating array, got {type(value).__name__}")
    if not isinstance(value, np.ndarray) and callable(getattr(value, "detach", None)):
        value = value.detach()  # a torch tensor that requires grad: its __array__ raises otherwise
        value = value.cpu() if callable(getattr(value, "cpu", None)) else value
    try:
        array = np.asarray(value)
    except ValueError as error:
        raise ValueError(f"{name} is not a rectangular array: {error}") from None
    if array.dtype.kind == "c":
        raise TypeError(f"{name} is complex ({array.dtype}); the oracle differentiates real networks")
    if array.dtype.kind in "biu":
        return array.astype(np.float64)
    if array.dtype.kind != "f":
        raise TypeError(f"{name} has dtype {array.dtype}; expected a real floating array")
    return array


def _check_finite(array, name):
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(array.sum()):  # fast path: a finite sum means finite entries
            return
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} contains {array[index]} at index {index}; values must be finite")


_NO_TARGET = object()


def _prepare(all_weights, all_biases, net_input, y=_NO_TARGET, loss="least_squares"):
    """Checked NumPy arrays of the arguments in one floating dtype, and that dtype (no target: y omitted)."""
    for name, seq in (("all_weights", all_weights), ("all_biases", all_biases)):
        if isinstance(seq, (np.ndarray, str)) or not isinstance(seq, (list, tuple)):
            raise TypeError(f"{name} must be a list or tuple of arrays, got {type(seq).__name__}")
    if len(all_weights) == 0 or len(all_weights) != len(all_biases):
        raise ValueError(
            f"all_weights has {len(all_weights)} entries and all_biases {len(all_biases)}: need one bias per "
            "weight matrix, at least one layer"
        )
    weights = [_as_real(w, f"all_weights[{k}]") for k, w in enumerate(all_weights)]
    biases = [_as_real(b, f"all_biases[{k}]") for k, b in enumerate(all_biases)]
    dtype = np.result_type(*weights, *biases)
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"parameters of dtype {dtype} are not supported; use float64 or float32")
    rows = None
    for k, (omega, beta) in enumerate(zip(weights, biases, strict=True)):
        fits_below = rows is None or (omega.ndim == 2 and omega.shape[1] == rows)
        if omega.ndim != 2 or not fits_below or beta.shape != (omega.shape[0], 1):
            raise ValueError(
                f"layer {k}: all_weights[{k}] has shape {omega.shape} and all_biases[{k}] {beta.shape}; "
                f"expected ({'D_out'}, {rows if rows is not None else 'D_in'}) and (D_out, 1)"
            )
        if 0 in omega.shape:
            raise ValueError(f"all_weights[{k}] has shape {omega.shape}: every layer needs at least one unit")
        _check_finite(omega, f"all_weights[{k}]")
        _check_finite(beta, f"all_biases[{k}]")
        rows = omega.shape[0]
    x = _as_real(net_input, "net_input")
    if x.ndim != 2 or x.shape[0] != weights[0].shape[1] or x.shape[1] == 0:
        raise ValueError(f"net_input has shape {x.shape}, expected ({weights[0].shape[1]}, N) with N >= 1")
    _check_finite(x, "net_input")
    # No copies where the dtype already fits: JAX copies the arrays to its device buffers on the call.
    weights = [w.astype(dtype, copy=False) for w in weights]
    biases = [b.astype(dtype, copy=False) for b in biases]
    x = x.astype(dtype, copy=False)
    if y is _NO_TARGET:
        return weights, biases, x, None, dtype
    if y is None:
        raise TypeError("y must be an array of targets (D_o, N), or class indices (N,) for softmax, got None")
    loss = objective(loss)[0]
    columns = x.shape[1]
    if loss == "softmax_cross_entropy" and np.ndim(y) == 1:
        labels = np.asarray(y)
        if labels.dtype.kind not in "iu":
            raise TypeError(
                f"class indices y must be integers, got dtype {labels.dtype}; or pass one-hot ({rows}, N)"
            )
        if labels.shape != (columns,):
            raise ValueError(
                f"y has shape {labels.shape}, expected ({columns},): one class index per example"
            )
        if ((labels < 0) | (labels >= rows)).any():
            raise ValueError(f"class indices y must lie in [0, {rows}), got {labels.min()}..{labels.max()}")
        return weights, biases, x, labels.astype(np.int32), dtype
    target = _as_real(y, "y")
    if target.shape != (rows, columns):
        raise ValueError(f"y has shape {target.shape}, expected ({rows}, {columns})")
    _check_finite(target, "y")
    if loss == "binary_cross_entropy" and ((target < 0) | (target > 1)).any():
        raise ValueError("y for binary cross-entropy must lie in [0, 1]")
    if loss == "softmax_cross_entropy" and (
        (target < 0).any() or not np.allclose(target.sum(axis=0), 1, rtol=0, atol=1e-6)
    ):
        raise ValueError(
            f"y for softmax cross-entropy: columns of shape ({rows}, N) must be non-negative and sum to 1"
        )
    return weights, biases, x, target.astype(dtype, copy=False), dtype


def _check_activation(activation):
    if not isinstance(activation, str) or activation not in ACTIVATIONS:  # a list is unhashable: no KeyError
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")


def _first_bad(array):
    """The index of the first NaN or inf entry of ``array``, or None (one cheap sum first)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(array, axis=None)):
            return None
    bad = ~np.isfinite(array)
    return tuple(int(i) for i in np.argwhere(bad)[0]) if bad.any() else None


def _check_finite_result(results, names, weights, biases, x, activation, what):
    """A ValueError, not a silent inf or NaN, when a computed result overflowed: it names the first layer
    whose pre-activations overflow (the forward pass rerun, only on this failure path), else the entry of
    the result. The oracle's own check: it imports nothing from manual_backprop."""
    first = next(((name, r, i) for name, r in zip(names, results, strict=True)
                  if (i := _first_bad(r)) is not None), None)  # fmt: skip
    if first is None:
        return
    a = ACTIVATIONS[activation]
    h = x
    with np.errstate(over="ignore", invalid="ignore"), _x64(x.dtype == np.float64):
        for k, (omega, beta) in enumerate(zip(weights, biases, strict=True)):
            f = omega @ h + beta
            bad = _first_bad(f)
            if bad is not None:
                raise ValueError(
                    f"the forward pass overflows at layer {k}: f_{k}{list(bad)} = {f[bad]} (largest finite "
                    f"{np.finfo(f.dtype).max:.1e}); scale the parameters or the input down"
                )
            h = np.asarray(a(f)) if k < len(weights) - 1 else f
    name, result, index = first
    raise ValueError(f"{what} overflows: {name}{list(index)} = {result[index]} in {result.dtype}; scale the "
                     "parameters, input or target down")


def jax_network_output(net_input: ArrayLike, all_weights: Sequence[ArrayLike],
                       all_biases: Sequence[ArrayLike], *, activation: str = "relu") -> np.ndarray:
    """The network's output (D_o, N) for ``net_input`` (D_i, N), computed by JAX in the parameters' dtype."""
    _check_activation(activation)
    weights, biases, x, _, dtype = _prepare(all_weights, all_biases, net_input)
    with _x64(dtype == np.float64):
        output = np.array(_jit_output((weights, biases), x, activation=activation))
    _check_finite_result([output], ["output"], weights, biases, x, activation, "the output")
    return output


def jax_loss(all_weights: Sequence[ArrayLike], all_biases: Sequence[ArrayLike], net_input: ArrayLike,
             y: ArrayLike, *, activation: str = "relu", loss: str = "least_squares") -> np.floating:
    """The loss summed over the batch, computed by JAX in the parameters' dtype (a NumPy scalar)."""
    _check_activation(activation)
    weights, biases, x, target, dtype = _prepare(all_weights, all_biases, net_input, y, loss)
    with _x64(dtype == np.float64):
        value = np.array(_jit_loss((weights, biases), x, target, activation=activation, loss=loss))
    _check_finite_result([value], ["loss"], weights, biases, x, activation, "the loss")
    return value[()]


def jax_gradients(all_weights: Sequence[ArrayLike], all_biases: Sequence[ArrayLike], net_input: ArrayLike,
                  y: ArrayLike, *, activation: str = "relu",
                  loss: str = "least_squares") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``jax.grad`` of the loss with respect to ``(all_weights, all_biases)``.

    Same signature and result as ``manual_backprop.manual_gradients``: ``net_input`` (D_i, N), ``y``
    (D_o, N) or class indices (N,); returns ``(all_dl_dweights, all_dl_dbiases)``, lists of new NumPy
    arrays with the parameters' shapes and floating dtype. Compiled once per shape, dtype and choice; the
    first call of a small network's shape runs a program shared by all small networks instead (see
    ``_padded_gradients``), so that one-off calls on many shapes do not each pay a compilation.
    """
    _check_activation(activation)
    weights, biases, x, target, _ = _prepare(all_weights, all_biases, net_input, y, loss)
    dl_dweights, dl_dbiases = gradients_of_checked(weights, biases, x, target, activation=activation,
                                                   loss=loss)
    names = [f"dL/dOmega_{k}" for k in range(len(weights))] + [f"dL/dbeta_{k}" for k in range(len(biases))]
    _check_finite_result(dl_dweights + dl_dbiases, names, weights, biases, x, activation, "jax.grad")
    return dl_dweights, dl_dbiases


def gradients_of_checked(weights, biases, net_input, target, *, activation: str, loss: str):
    """``jax_gradients`` without the checks, for a caller that has checked its arguments: lists of finite
    arrays of one floating dtype with matching shapes, ``net_input`` (D_i, N), ``target`` (D_o, N) of that
    dtype (or class indices (N,) for softmax), a known activation and loss."""
    dtype = weights[0].dtype
    with _x64(dtype == np.float64):
        if _use_padded(weights, dtype):
            return _padded_gradients(weights, biases, net_input, target, dtype, activation, loss)
        dl_dweights, dl_dbiases = _jit_grad((weights, biases), net_input, target, activation=activation,
                                            loss=loss)
        return [np.array(g) for g in dl_dweights], [np.array(g) for g in dl_dbiases]
