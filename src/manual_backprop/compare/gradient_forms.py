"""The forms a gradient comes in (a pair of lists, a list, a dict, one array), read tensor by tensor.

Only ``compare_gradients`` reads user gradients this way; nothing here raises on the *actual* side (a part
that is not there is a ``Missing`` with the reason), while an ``expected`` or a per-tensor argument of the
wrong form is a TypeError or ValueError naming it. ``as_gradient_array``: one tensor a user returned, as an
array (it never raises: a comparison turns its message into a failing row).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ..validate import detached


class Missing(NamedTuple):
    """An actual tensor that is not there (a missing dict key, a list too short), with the reason."""

    message: str


def is_array(value) -> bool:
    if isinstance(value, np.ndarray):
        return True
    return hasattr(value, "__array__") and not isinstance(value, (str, bytes))


def structure_of(expected) -> str:
    """What ``expected`` is: "pair" (two lists of arrays), "list", "dict" or "array"; else a TypeError."""
    if isinstance(expected, Mapping):
        return "dict"
    if is_array(expected):
        return "array"
    if isinstance(expected, (list, tuple)):
        if len(expected) == 2 and all(isinstance(p, (list, tuple)) and all(map(is_array, p))
                                      for p in expected):  # fmt: skip
            return "pair"
        if len(expected) and all(map(is_array, expected)):
            return "list"
    raise TypeError(
        "expected must be a gradient: a pair of lists of arrays (all_dl_dweights, all_dl_dbiases), a list of "
        f"arrays, a dict of arrays or one array; got {describe(expected)}"
    )


def describe(value) -> str:
    if isinstance(value, (list, tuple)):
        inner = sorted({type(v).__name__ for v in value})
        return f"a {type(value).__name__} of {len(value)} ({', '.join(inner) or 'nothing'})"
    return f"a {type(value).__name__}"


def tensors_in(value, structure: str, keys: list):
    """``value`` in ``structure`` as one entry per key (None where a part is missing), never raising: the
    actual gradient's tensors, or a ``Missing`` saying how the structure differs."""
    if structure == "array":
        return [value]
    if structure == "dict":
        if not isinstance(value, Mapping):
            return [Missing(f"expected a dict with key {k!r}, got {type(value).__name__}") for k in keys]
        return [value[k] if k in value else Missing(f"missing key {k!r}") for k in keys]
    if not isinstance(value, (list, tuple)) or is_array(value):
        return [Missing(f"expected a list of {len(keys)} arrays, got {type(value).__name__}")] * len(keys)
    items = list(value)
    return [items[i] if i < len(items) else Missing(f"missing: the list has {len(items)} entries")
            for i in range(len(keys))]  # fmt: skip


def per_tensor(value, structure: str, keys: list, name: str, shapes=None):
    """A per-tensor argument (``include``, ``rtol``, ``atol``, ``allowance``): None or a scalar for all
    tensors, or the expected gradient's structure; a ValueError naming ``name`` otherwise. With ``shapes``,
    each part must be a boolean mask of its tensor's shape."""
    if value is None or (np.ndim(value) == 0 and not isinstance(value, (list, tuple, Mapping))):
        if shapes is not None and value is not None:
            raise ValueError(f"{name} must be None or boolean masks shaped like expected, got {value!r}")
        return [value] * len(keys)
    if structure == "dict":
        parts = [value.get(k) for k in keys] if isinstance(value, Mapping) else None
    elif structure == "array":
        parts = [value]
    else:
        parts = list(value) if isinstance(value, (list, tuple)) and len(value) == len(keys) else None
    if parts is None:
        raise ValueError(f"{name} must have expected's structure ({structure} of {len(keys)}), got "
                         f"{describe(value)}")
    if shapes is not None:
        masks = []
        for key, part, shape in zip(keys, parts, shapes, strict=True):
            mask = None if part is None else np.asarray(part)
            if mask is not None and (mask.dtype != bool or mask.shape != shape):
                raise ValueError(f"{name}[{key!r}] must be a boolean mask of shape {shape}, got "
                                 f"{mask.dtype} {mask.shape}")
            masks.append(mask)
        return masks
    return parts


def pair_masks(include, expected_w, expected_b):
    """``include`` for a pair: None, or a pair of lists of boolean masks of the tensors' shapes."""
    if include is None:
        return None
    if not (isinstance(include, (list, tuple)) and len(include) == 2 and all(
            isinstance(p, (list, tuple)) and len(p) == len(expected_w) for p in include)):  # fmt: skip
        raise ValueError(f"include must be None or a pair of lists of {len(expected_w)} boolean masks "
                         f"(weights, biases), like expected; got {describe(include)}")
    for part, (masks, tensors) in enumerate(zip(include, (expected_w, expected_b), strict=True)):
        for k, (mask, tensor) in enumerate(zip(masks, tensors, strict=True)):
            m = np.asarray(mask)
            if m.dtype != bool or m.shape != tensor.shape:
                raise ValueError(f"include[{part}][{k}] must be a boolean mask of shape {tensor.shape}, got "
                                 f"{m.dtype} {m.shape}")
    return include


def largest(value) -> float:
    """The largest entry of a tolerance given as a number, an array, or a list or dict of them."""
    if type(value) is float:  # what float(np.max(value)) gives
        return value
    parts = list(value.values()) if isinstance(value, Mapping) else value
    if isinstance(parts, (list, tuple)):
        return max((largest(p) for p in parts), default=0.0)
    return float(np.max(parts))


def split_pair(actual, n_layers: int):
    """The user's pair of lists, padded with None where entries are missing (never raises)."""
    try:
        weights, biases = actual
        weights, biases = list(weights), list(biases)
    except (TypeError, ValueError):
        weights, biases = [], []
    pad = [None] * n_layers
    return (weights + pad)[:n_layers], (biases + pad)[:n_layers]


def as_gradient_array(value):
    """``(array, None)`` for a value a user returned as one gradient tensor, else ``(None, message)``.

    A plain ndarray is kept; an ndarray subclass (``np.matrix``) or anything with ``__array__`` (a jax
    array, a torch tensor, a NumPy scalar) becomes a plain ndarray via ``np.asarray``. None is "missing";
    a list, a string or any other object is not taken for an array (a list of lists would hide a bug in
    the user's shapes). Never raises: a value that cannot be converted gets a message saying why.
    """
    if value is None:
        return None, "missing"
    if type(value) is np.ndarray:
        return value, None
    if isinstance(value, np.ndarray) or (hasattr(value, "__array__") and not isinstance(value, (str, bytes))):
        try:
            array = np.asarray(detached(value))
        except Exception as exc:  # e.g. a torch tensor that requires grad or lives on a GPU
            return None, (
                f"a {type(value).__name__} that could not be converted to a NumPy array "
                f"({type(exc).__name__}: {str(exc).strip()[:120]})"
            )
        if type(array) is not np.ndarray:  # __array__ may hand back a subclass again
            array = np.array(array, copy=True, subok=False)
        return array, None
    hint = " (return np.array(...), not a list)" if isinstance(value, (list, tuple)) else ""
    return None, f"expected a NumPy array, got {type(value).__name__}{hint}"
