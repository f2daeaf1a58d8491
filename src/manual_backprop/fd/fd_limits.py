"""Steps and sizes of finite differences: the step checks, the memory and cost refusals, the cost model."""

from __future__ import annotations

import math
import numbers
from functools import lru_cache

import numpy as np
from numpy.typing import DTypeLike

from ..tolerances import FD_MAX_BLOCK_BYTES, FD_MAX_COST

METHODS = ("central", "forward", "backward")
DEFAULT_MEMORY = 8 * 2**20  # bytes of working arrays per batch of perturbations: small, to stay in cache


def default_step(dtype: DTypeLike, method: str = "central") -> float:
    """The base step for ``dtype``; a parameter theta is moved by base * max(1, |theta|).

    A one-sided difference errs by O(s) (truncation) plus O(eps / s) (rounding), smallest near
    s = sqrt(eps); a central difference errs by O(s^2) + O(eps / s), smallest near s = cbrt(eps).
    Scaling by max(1, |theta|) keeps the relative perturbation of large parameters meaningful.
    float64: 1.5e-8 (one-sided), 6.1e-6 (central); float32: 3.5e-4 and 4.9e-3.
    """
    return _base_step(np.dtype(dtype), method == "central")


@lru_cache(maxsize=8)
def _base_step(dtype: np.dtype, central: bool) -> float:
    eps = float(np.finfo(dtype).eps)
    return float(np.cbrt(eps)) if central else float(np.sqrt(eps))


def check_method_and_step(method, step):
    """``(method, step)`` checked: a method of ``METHODS``, and None or a finite step > 0 (as a float)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if step is None or (type(step) is float and math.isfinite(step) and step > 0):  # the common cases
        return method, step
    if step is not None:
        number = not isinstance(step, bool) and isinstance(step, numbers.Real)
        if not (number and math.isfinite(step) and step > 0):
            raise ValueError(f"step must be a finite number > 0 (or None for the default), got {step!r}")
        step = float(step)
    return method, step


def check_step_resolves(step: float | None, weights, biases, dtype) -> None:
    """A ValueError when a given absolute ``step`` is too small to move the network: theta + step rounds to
    theta (and f + step h to f) in ``dtype`` once step < eps max(1, max |theta|), and every difference
    would be 0 (or 0 / 0 where the step itself underflows, as 1e-50 does in float32). Names the smallest
    usable step. None (the default steps) always resolves."""
    if step is None:
        return
    largest = float(np.abs(np.concatenate([a.ravel() for a in (*weights, *biases)])).max())  # exact: a max
    smallest = float(np.finfo(dtype).eps) * max(1.0, largest)
    if step < smallest:
        raise ValueError(
            f"step={step!r} is below the smallest usable step {smallest:.2e} in {np.dtype(dtype).name} "
            f"(eps x max(1, max |theta|) = {np.finfo(dtype).eps:.1e} x {max(1.0, largest):.3g}): theta + "
            f"step rounds to theta and every difference would be 0. Take step >= {smallest:.2e} (better "
            f"near {default_step(dtype, 'central'):.0e} x max(1, |theta|)), or step=None for the defaults"
        )


def per_perturbation_bytes(weights, columns: int, dtype) -> int:
    """Working memory of one perturbation (bytes): the perturbed rows it carries up the layers, a (D_{k+1},
    N) array per sign at the widest output and a few temporaries (the input width is never carried)."""
    itemsize = dtype.itemsize if isinstance(dtype, np.dtype) else np.dtype(dtype).itemsize
    return 8 * max([w.shape[0] for w in weights]) * columns * itemsize


def check_memory(max_memory) -> float:
    """``max_memory`` checked: a number of bytes >= 1, or ``float('inf')`` for no limit (a float)."""
    if type(max_memory) in (int, float) and max_memory >= 1:  # the common case, as below
        return float(max_memory)
    if isinstance(max_memory, bool) or not isinstance(max_memory, numbers.Real) or not max_memory >= 1:
        raise ValueError(f"max_memory must be a number of bytes >= 1 (or float('inf'): no limit), got "
                         f"{max_memory!r}")
    return float(max_memory)


def check_fd_size(weights, columns: int, method: str, max_memory: float = DEFAULT_MEMORY,
                  cost: float | None = None) -> None:
    """Refuse a full finite-difference gradient whose cost or working memory would be absurd: more than
    ``FD_MAX_COST`` multiply-adds, or one perturbation needing more than both ``max_memory`` and
    ``FD_MAX_BLOCK_BYTES``; the error gives the estimate and names the directional check, which costs a
    few forward passes whatever the network's size."""
    advice = ("use three_way_check(..., fd='directional') (or directional_check), which costs a few forward "
              "passes")
    cost = fd_cost(weights, columns, method) if cost is None else cost
    if cost > FD_MAX_COST:
        raise ValueError(
            f"a full {method} finite-difference gradient of this network would cost {cost:.1e} multiply-adds "
            f"(the limit is {FD_MAX_COST:.0e}, some minutes of NumPy): {advice}"
        )
    need = per_perturbation_bytes(weights, columns, weights[0].dtype)
    if need > max(max_memory, FD_MAX_BLOCK_BYTES):
        raise ValueError(
            f"one perturbation of this network needs about {need / 2**30:.1f} GiB of working arrays "
            f"(max_memory={max_memory:.3g} bytes; without it the limit is {FD_MAX_BLOCK_BYTES / 2**30:.0f} "
            f"GiB): {advice}, or pass a larger max_memory (float('inf'): no limit)"
        )


def fd_cost(weights, columns: int, method: str = "central") -> float:
    """Multiply-adds of a full finite-difference gradient: each parameter's change runs the layers above."""
    return _cost(tuple([w.shape for w in weights]), columns, method)


@lru_cache(maxsize=64)
def _cost(shapes: tuple, columns: int, method: str) -> float:
    total, above = 0, 0  # above: the sizes of the layers above layer k, summed (plain ints)
    for rows, inputs in reversed(shapes):
        total += (rows * inputs + rows) * (above + 1)
        above += rows * inputs
    return float(total * columns * (2 if method == "central" else 1))
