"""Checks and conversions of user input, once at the door: messages name the argument, layer and shapes.

Conventions (the notebook's): column vectors; ``all_weights[k]`` is Omega_k of shape (D_{k+1}, D_k),
``all_biases[k]`` is beta_k of shape (D_{k+1}, 1); ``net_input`` is (D_i, N) and ``y`` is (D_o, N), one
column per example. Nothing here writes into an array it is given: a conversion makes a new array.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._types import Array, Parameters
from .objective import BASE_LOSSES, parse_objective
from .tolerances import TARGET_SUM_ATOL

SUPPORTED_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
SMALL = 2**16  # entries: below this, arrays are checked for NaN and inf by one isfinite (of one copy)

LOSSES = BASE_LOSSES  # the loss's name may carry conventions too: "least_squares, output sigmoid, mean"


def detached(value):
    """``value`` ready for ``np.asarray``: a tensor that tracks gradients (torch's ``requires_grad=True``,
    whose ``__array__`` raises) is taken through ``.detach()``, and one on a device through ``.cpu()``;
    anything else is returned as is. A read-only view of the same numbers: nothing of the caller's changes."""
    if isinstance(value, np.ndarray) or not callable(getattr(value, "detach", None)):
        return value
    value = value.detach()
    return value.cpu() if callable(getattr(value, "cpu", None)) else value


def as_real_array(value, name: str) -> np.ndarray:
    """``value`` as a NumPy array of a real dtype: integers and booleans become float64, no complex.
    Tensors that track gradients (torch) are detached first (``detached``)."""
    if type(value) is np.ndarray and value.dtype.kind == "f":  # the common case, as the lines below give it
        return value
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real floating array, got {type(value).__name__}")
    value = detached(value)
    try:
        array = np.asarray(value)
    except ValueError as error:  # a ragged nested list: name the argument rather than NumPy's internals
        raise ValueError(f"{name} is not a rectangular array: {error}") from None
    kind = array.dtype.kind
    if kind == "c":
        raise TypeError(f"{name} is complex ({array.dtype}); gradients here are of real-valued networks")
    if kind in "biu":
        return array.astype(np.float64)
    if kind != "f":
        raise TypeError(
            f"{name} has dtype {array.dtype}; expected a real floating array (float64 or float32)"
        )
    return array


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise ValueError naming the first NaN or inf entry of ``array``."""
    # The sum is one cheap pass; only when it is not finite do we look for the culprit entry
    # (a finite sum can also overflow, which the exact check below then lets through).
    # Large finite values may overflow the sum: not an error, and not worth a warning.
    with np.errstate(over="ignore", invalid="ignore"):
        total = array.sum()
    if np.isfinite(total):
        return
    bad = ~np.isfinite(array)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} contains {array[index]} at index {index}; values must be finite")


def _first_non_finite(array: np.ndarray) -> tuple | None:
    """The index of the first NaN or inf entry of ``array``, or None: one cheap test first (for a large array
    a sum, which large finite entries may overflow, not an error), the scan only when that test fails."""
    if array.size <= SMALL:
        finite = np.logical_and.reduce(np.isfinite(array), axis=None)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            finite = np.isfinite(np.add.reduce(array, axis=None))
    if finite:
        return None
    bad = ~np.isfinite(array)
    return tuple(int(i) for i in np.argwhere(bad)[0]) if bad.any() else None


def _all_finite(arrays) -> bool:
    """Whether every entry of ``arrays`` is finite: for small ones, one test of a concatenated copy."""
    if sum([a.size for a in arrays]) <= SMALL:
        return bool(np.logical_and.reduce(np.isfinite(np.concatenate([a.ravel() for a in arrays]))))
    return all(_first_non_finite(a) is None for a in arrays)


def check_forward_finite(all_f, result=None, what: str = "the loss") -> None:
    """A ValueError naming the first layer whose pre-activations ``all_f[k]`` overflow (inf or NaN).

    ``result`` (the loss, or the output) is looked at first: when it is finite nothing is scanned, so a
    pass that went right costs one sum. When it is not and no layer overflowed, ``what`` overflowed: the
    error says so. Raised by every public forward, loss and gradient function, not a NumPy warning.
    """
    if result is not None and _first_non_finite(np.asarray(result)) is None:
        return
    for k, f in enumerate(all_f):
        bad = _first_non_finite(f)
        if bad is not None:
            raise ValueError(
                f"the forward pass overflows: all_f[{k}]{list(bad)} = {f[bad]} (largest finite "
                f"{np.finfo(f.dtype).max:.1e}): layer {k}'s pre-activations; scale the parameters or the "
                "input down"
            )
    if result is not None:
        raise ValueError(f"{what} overflows ({result}); scale the parameters, input or target down")


def check_result_finite(array: np.ndarray, name: str, advice: str) -> None:
    """A ValueError naming the first entry of a computed ``array`` that overflowed (inf or NaN), and what to
    do (``advice``); one sum when all is well."""
    bad = _first_non_finite(array)
    if bad is not None:
        raise ValueError(f"{name} overflows: {name}{list(bad)} = {array[bad]} in {array.dtype}; {advice}")


def check_gradient_finite(all_dl_dweights, all_dl_dbiases, what: str = "the backward pass",
                          advice: str = "scale the parameters, input or target down") -> None:
    """A ValueError naming the first layer whose gradient overflows (inf or NaN): one sum when all is well."""
    if _all_finite(list(all_dl_dweights) + list(all_dl_dbiases)):
        return
    for k, (g_w, g_b) in enumerate(zip(all_dl_dweights, all_dl_dbiases, strict=True)):
        for name, g in ((f"dL/dOmega_{k}", g_w), (f"dL/dbeta_{k}", g_b)):
            bad = _first_non_finite(g)
            if bad is not None:
                raise ValueError(
                    f"{what} overflows at layer {k}: {name}{list(bad)} = {g[bad]} (largest finite "
                    f"{np.finfo(g.dtype).max:.1e}); {advice}"
                )


def _check_sequence(value, name: str) -> list:
    if isinstance(value, np.ndarray) or not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise TypeError(
            f"{name} must be a list (or tuple) of arrays, one per layer; got {type(value).__name__}"
        )
    return list(value)


def _fast_parameters(all_weights, all_biases):
    """The common case checked in a few microseconds: ``(weights, biases, dtype)``, or None.

    Two lists of float64 (or float32) arrays of one dtype, of matching shapes, all finite: small layers
    would otherwise spend more time being validated than differentiated. Anything else returns None, for
    the full check whose errors name the layer.
    """
    if not (isinstance(all_weights, list) and isinstance(all_biases, list) and 0 < len(all_weights)
            == len(all_biases)) or type(all_weights[0]) is not np.ndarray:  # fmt: skip
        return None
    dtype, rows = all_weights[0].dtype, None
    for omega, beta in zip(all_weights, all_biases, strict=True):
        if not (type(omega) is np.ndarray and type(beta) is np.ndarray and omega.dtype == dtype
                and beta.dtype == dtype and omega.ndim == 2 and 0 not in omega.shape
                and beta.shape == (omega.shape[0], 1) and (rows is None or omega.shape[1] == rows)):
            return None
        rows = omega.shape[0]
    if dtype not in SUPPORTED_DTYPES or not _all_finite([*all_weights, *all_biases]):
        return None
    return list(all_weights), list(all_biases), dtype


def check_parameters(all_weights, all_biases) -> tuple[list[np.ndarray], list[np.ndarray], np.dtype]:
    """Validate the notebook's two parameter lists and bring them to one floating dtype.

    Returns ``(weights, biases, dtype)``: new lists (the caller's lists are not touched) whose arrays are the
    caller's own where no conversion was needed. ``dtype`` is float64 or float32: float64 when any
    parameter is float64 or an integer.
    """
    fast = _fast_parameters(all_weights, all_biases)
    if fast is not None:
        return fast
    weights = _check_sequence(all_weights, "all_weights")
    biases = _check_sequence(all_biases, "all_biases")
    if len(weights) == 0:
        raise ValueError("all_weights is empty: a network needs at least one layer")
    if len(weights) != len(biases):
        raise ValueError(
            f"all_weights has {len(weights)} entries but all_biases has {len(biases)}: "
            "one bias per weight matrix"
        )
    weights, biases = ([as_real_array(a, f"{name}[{k}]") for k, a in enumerate(part)]
                       for name, part in (("all_weights", weights), ("all_biases", biases)))
    dtype = np.result_type(*weights, *biases)
    if dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"parameters of dtype {dtype} are not supported; use float64 or float32")
    for k, (omega, beta) in enumerate(zip(weights, biases, strict=True)):
        if omega.ndim != 2:
            raise ValueError(
                f"all_weights[{k}] must be 2-D (D_out, D_in); got shape {omega.shape}"
            )
        if k > 0 and omega.shape[1] != weights[k - 1].shape[0]:
            raise ValueError(
                f"all_weights[{k}] has shape {omega.shape}: its input size {omega.shape[1]} does not match "
                f"the output size {weights[k - 1].shape[0]} of layer {k - 1} (all_weights[{k - 1}] has shape "
                f"{weights[k - 1].shape})"
            )
        if beta.shape != (omega.shape[0], 1):
            hint = " (biases are column vectors: use b.reshape(-1, 1))" if beta.ndim == 1 else ""
            raise ValueError(
                f"all_biases[{k}] has shape {beta.shape}, expected ({omega.shape[0]}, 1) to match "
                f"all_weights[{k}] of shape {omega.shape}{hint}"
            )
        if 0 in omega.shape:
            raise ValueError(f"all_weights[{k}] has shape {omega.shape}: every layer needs at least one unit")
    for k, (omega, beta) in enumerate(zip(weights, biases, strict=True)):
        check_finite(omega, f"all_weights[{k}]")
        check_finite(beta, f"all_biases[{k}]")
    weights = [w if w.dtype == dtype else w.astype(dtype) for w in weights]
    biases = [b if b.dtype == dtype else b.astype(dtype) for b in biases]
    return weights, biases, dtype


def checked_network(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike,
                    ) -> tuple[list[Array], list[Array], Array, np.dtype]:
    """The door of every function of a network and its input: ``(weights, biases, x, dtype)``, the
    parameters checked (``check_parameters``) and ``net_input`` as x of shape (D_i, N) in their dtype."""
    weights, biases, dtype = check_parameters(all_weights, all_biases)
    return weights, biases, check_columns(net_input, "net_input", weights[0].shape[1], dtype), dtype


def checked_problem(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
                    loss: str) -> tuple[list[Array], list[Array], Array, Array, np.dtype]:
    """The door of every function of a loss: ``(weights, biases, x, target, dtype)``, the target (D_o, N)
    checked for ``loss`` (one-hot for class indices)."""
    fast = _fast_problem(all_weights, all_biases, net_input, y, loss)
    if fast is not None:
        return fast
    weights, biases, x, dtype = checked_network(all_weights, all_biases, net_input)
    return weights, biases, x, check_target(y, loss, weights[-1].shape[0], x.shape[1], dtype), dtype


def _fast_problem(all_weights, all_biases, x, y, loss):
    """``checked_problem``'s common case in one pass, or None: least squares, and ``x`` and ``y`` arrays of
    the parameters' dtype and the right shapes, everything finite; then what the full checks return."""
    if not (loss in ("least_squares", "sum_of_squares") and type(x) is np.ndarray and type(y) is np.ndarray
            and isinstance(all_weights, list) and all_weights and isinstance(all_biases, list) and all_biases
            and x.ndim == 2 and 0 < x.shape[1] and x.size + y.size <= SMALL):  # fmt: skip
        return None
    omega, beta = all_weights[0], all_biases[-1]
    if not (type(omega) is np.ndarray and type(beta) is np.ndarray and omega.ndim == beta.ndim == 2
            and x.dtype == omega.dtype == y.dtype and x.shape[0] == omega.shape[1]
            and y.shape == (beta.shape[0], x.shape[1])):  # fmt: skip
        return None
    if not _all_finite([x, y]):
        return None
    weights, biases, dtype = check_parameters(all_weights, all_biases)  # in a few microseconds, or raises
    if dtype != x.dtype:  # parameters of mixed dtypes, converted: x and y follow, as in the full checks
        x = check_columns(x, "net_input", weights[0].shape[1], dtype)
        return weights, biases, x, check_target(y, loss, weights[-1].shape[0], x.shape[1], dtype), dtype
    return weights, biases, x, y, dtype


def check_columns(value, name: str, rows: int, dtype: np.dtype, columns: int | None = None) -> np.ndarray:
    """A (rows, N) array of ``dtype``: ``net_input`` or a least-squares target, one column per example."""
    array = as_real_array(value, name)
    if array.ndim != 2:
        raise ValueError(
            f"{name} has shape {array.shape}: expected a 2-D array ({rows}, N) with one column per example"
            + (f" (for one example use {name}.reshape(-1, 1))" if array.ndim == 1 else "")
        )
    if array.shape[0] != rows or (columns is not None and array.shape[1] != columns):
        expected = f"({rows}, {columns if columns is not None else 'N'})"
        rows_are_examples = array.shape[1] == rows and (columns is None or array.shape[0] == columns)
        hint = (f": it looks like one row per example (N, {rows}); this project takes one column per "
                f"example, as the book does: pass {name}.T") if rows_are_examples else ""
        raise ValueError(f"{name} has shape {array.shape}, expected {expected}{hint}")
    if array.shape[1] == 0:
        raise ValueError(f"{name} has shape {array.shape}: the batch needs at least one column")
    check_finite(array, name)
    return array if array.dtype == dtype else array.astype(dtype)


def check_loss_name(loss) -> str:
    """The loss's name, with the conventions it may carry checked (see ``objective``)."""
    if isinstance(loss, str) and loss in LOSSES:
        return loss
    return parse_objective(loss).name()


def check_target(y, loss: str, rows: int, columns: int, dtype: np.dtype) -> np.ndarray:
    """The target ``y`` as a float array of shape (D_o, N), checked against the loss.

    - least_squares, sum_of_squares: any finite (D_o, N) array.
    - binary_cross_entropy: (D_o, N) with values in [0, 1] (each output an independent Bernoulli).
    - softmax_cross_entropy: integer class indices of shape (N,), returned one-hot, or a (D_o, N) array
      whose columns are probability vectors (one-hot included).
    """
    loss = parse_objective(check_loss_name(loss)).base
    if loss == "softmax_cross_entropy" and np.ndim(y) == 1:
        labels = np.asarray(y)
        if labels.dtype.kind not in "iu":
            raise TypeError(
                f"y of shape {labels.shape} must hold integer class indices for softmax_cross_entropy "
                f"(got dtype {labels.dtype}); or pass one-hot targets of shape ({rows}, N)"
            )
        if labels.shape != (columns,):
            raise ValueError(
                f"y has shape {labels.shape}, expected ({columns},): one class index per example"
            )
        outside = (labels < 0) | (labels >= rows)
        if outside.any():
            n = int(np.argmax(outside))
            raise ValueError(f"y[{n}] = {labels[n]} is not a class index in [0, {rows})")
        one_hot = np.zeros((rows, columns), dtype=dtype)
        one_hot[labels, np.arange(columns)] = 1
        return one_hot
    target = check_columns(y, "y", rows, dtype, columns)
    if loss == "binary_cross_entropy":
        outside = (target < 0) | (target > 1)
        if outside.any():
            index = tuple(int(i) for i in np.argwhere(outside)[0])
            raise ValueError(
                f"y{list(index)} = {target[index]} is outside [0, 1], as binary cross-entropy needs"
            )
    elif loss == "softmax_cross_entropy":
        if (target < 0).any() or not np.allclose(target.sum(axis=0), 1, rtol=0, atol=TARGET_SUM_ATOL):
            raise ValueError(
                "y for softmax_cross_entropy must be class indices of shape (N,) or one-hot (or probability) "
                f"columns of shape ({rows}, N), each non-negative and summing to 1"
            )
    return target


def check_activations_lists(
    all_f, all_h, weights: list[np.ndarray], dtype: np.dtype
) -> tuple[list, list, int]:
    """Check the forward pass's stored ``all_f`` (K+1 arrays) and ``all_h`` (K+2, ``all_h[0]`` the input)."""
    all_f = _check_sequence(all_f, "all_f")
    all_h = _check_sequence(all_h, "all_h")
    n_layers = len(weights)
    if len(all_f) != n_layers:
        raise ValueError(f"all_f has {len(all_f)} entries, expected {n_layers} (one per layer)")
    if len(all_h) not in (n_layers + 1, n_layers):
        raise ValueError(
            f"all_h has {len(all_h)} entries, expected {n_layers + 1} (the input, then one per layer)"
        )
    all_f = [as_real_array(f, f"all_f[{k}]") for k, f in enumerate(all_f)]
    all_h = [as_real_array(h, f"all_h[{k}]") for k, h in enumerate(all_h)]
    if all_h[0].ndim != 2:
        raise ValueError(
            f"all_h[0] (the input) has shape {all_h[0].shape}, expected ({weights[0].shape[1]}, N)"
        )
    columns = all_h[0].shape[1]
    for k, omega in enumerate(weights):
        if all_f[k].shape != (omega.shape[0], columns):
            raise ValueError(
                f"all_f[{k}] has shape {all_f[k].shape}, expected ({omega.shape[0]}, {columns}) "
                f"for all_weights[{k}] of shape {omega.shape}"
            )
    for k in range(min(len(all_h), n_layers)):
        if all_h[k].shape != (weights[k].shape[1], columns):
            raise ValueError(
                f"all_h[{k}] has shape {all_h[k].shape}, expected ({weights[k].shape[1]}, {columns}) "
                f"as input to all_weights[{k}] of shape {weights[k].shape}"
            )
    if len(all_h) == n_layers + 1 and all_h[-1].shape != all_f[-1].shape:
        raise ValueError(
            f"all_h[{n_layers}] (the output) has shape {all_h[-1].shape}, "
            f"expected {all_f[-1].shape} like all_f[-1]"
        )
    for k, f in enumerate(all_f):
        check_finite(f, f"all_f[{k}]")
    for k, h in enumerate(all_h):
        check_finite(h, f"all_h[{k}]")
    all_f = [f if f.dtype == dtype else f.astype(dtype) for f in all_f]
    all_h = [h if h.dtype == dtype else h.astype(dtype) for h in all_h]
    return all_f, all_h, columns
