"""Finite differences of any scalar loss over a tree of parameters: steps, kinks, rounding, cost, directions.

The loss is seen as a function of one float64 vector theta (the leaves raveled and concatenated, in
``pytree.flatten``'s order); every evaluation gets fresh arrays, so the caller's are never touched, not even
perturbed and restored. Each coordinate moves by s = cbrt(eps) max(1, |theta_i|) (``fd_limits.default_step``)
and by s x ``USER_FD_SHRINK``: four evaluations per parameter, in a plain loop, or in batches where the loss
runs under ``jax.vmap`` (``batch``).

Non-smooth points are found, not assumed: on a smooth piece the central quotient moves by O(s^2) between
the two steps and the gap between the one-sided quotients shrinks with the step; near a kink one of them
moves by O(1). Such an entry is an **exact kink** when both one-sided quotients stay put (the kink is at
theta: either one-sided value is accepted), is retried at a smaller step when they do not, and is
**excluded** (counted, never called a bug) when the smaller step still sees the kink. The allowance of
each entry is its rounding floor (``USER_FD_ULPS`` eps max |L| / s) plus the truncation it measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..compare.pytree import Structure, unflatten
from ..tolerances import (
    USER_FD_DIRECTIONS,
    USER_FD_SECONDS,
    USER_FD_SHRINK,
    USER_FD_ULPS,
    gradient_scale,
    tolerance_for,
)
from .directions import generator
from .fd_limits import default_step


def as_scalar(value, who: str = "loss_fn") -> float:
    """A loss value as a float: a number, a 0-d array or an array of one entry; TypeError otherwise."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{who} must return a number, got {type(value).__name__}") from None
    if array.size != 1:
        raise TypeError(f"{who} must return a scalar loss, got an array of shape {array.shape}")
    return float(array.reshape(()))


class FlatLoss:
    """``loss_fn`` as a function of the float64 vector theta: ``shapes`` of the leaves, ``structure`` to
    rebuild the tree. Leaves are handed to ``loss_fn`` as fresh float64 arrays."""

    def __init__(self, loss_fn: Callable, structure: Structure, shapes: list[tuple]):
        self.loss_fn, self.structure, self.shapes = loss_fn, structure, shapes
        self.bounds = np.cumsum([0] + [int(np.prod(s)) for s in shapes]).tolist()
        self.calls = 0

    def tree(self, theta: np.ndarray):
        """The parameters tree at ``theta`` (float64 arrays, views of a copy of ``theta``)."""
        theta = np.array(theta, dtype=np.float64, copy=True)
        pieces = zip(self.bounds, self.bounds[1:], self.shapes, strict=False)
        leaves = [theta[a:b].reshape(shape) for a, b, shape in pieces]
        return unflatten(self.structure, leaves)

    def raw(self, theta: np.ndarray):
        """What ``loss_fn`` returns at ``theta``, unconverted (to read its dtype)."""
        self.calls += 1
        return self.loss_fn(self.tree(theta))

    def __call__(self, theta: np.ndarray) -> float:
        return as_scalar(self.raw(theta))

    def moves(self, theta: np.ndarray, index: np.ndarray, delta: np.ndarray, batch=None) -> np.ndarray:
        """L(theta + delta_m e_{index_m}) for each m: (M,) float64, through ``batch`` where given."""
        if batch is not None:
            return np.asarray(batch(theta, index, delta), dtype=np.float64)
        out = np.empty(len(index))
        work = np.array(theta, dtype=np.float64, copy=True)
        for m, (i, d) in enumerate(zip(index.tolist(), delta.tolist(), strict=True)):
            old = work[i]
            work[i] = old + d
            out[m] = self(work)
            work[i] = old
        return out


class CoordinateFd(NamedTuple):
    """The coordinate sweep, per entry of theta (P,): ``values`` (the central quotient; at an exact kink
    the forward one), ``other`` (the backward one at an exact kink, NaN elsewhere), the masks ``kink``
    (exact kinks: either one-sided value accepted) and ``excluded``, and ``allowance`` (absolute: rounding
    floor plus measured truncation). ``evaluations`` counts the loss's calls."""

    values: np.ndarray
    other: np.ndarray
    kink: np.ndarray
    excluded: np.ndarray
    allowance: np.ndarray
    evaluations: int


def _quotients(flat: FlatLoss, theta, base_loss, index, steps, batch):
    """Forward, backward and central quotients at ``steps`` (moved exactly: (theta + s) - theta)."""
    t = theta[index]
    up, down = (t + steps) - t, t - (t - steps)
    plus = flat.moves(theta, index, up, batch)
    minus = flat.moves(theta, index, -down, batch)
    with np.errstate(invalid="ignore", over="ignore"):
        fwd, bwd = (plus - base_loss) / up, (base_loss - minus) / down
        central = (plus - minus) / (up + down)
    magnitude = np.maximum(np.maximum(np.abs(plus), np.abs(minus)), abs(base_loss))
    return fwd, bwd, central, magnitude


def coordinate_fd(flat: FlatLoss, theta: np.ndarray, eps: float, *, batch=None) -> CoordinateFd:
    """Central differences of every coordinate with the kink rule (see the module's docstring); ``eps`` is
    that of the dtype the loss computes in (float64's when it returns float64 for float64 inputs)."""
    dtype = np.float32 if eps > 1e-10 else np.float64
    P = theta.size
    base = default_step(dtype, "central")
    step = base * np.maximum(1.0, np.abs(theta))
    # the unmoved loss by the same evaluation as the moved ones: their roundings then match
    base_loss = flat(theta) if batch is None else float(flat.moves(theta, np.zeros(1, int), np.zeros(1),
                                                                   batch)[0])
    if not np.isfinite(base_loss):
        raise ValueError(f"loss_fn returned {base_loss} at params: the loss must be finite to be differenced")
    index = np.arange(P)
    f1, b1, c1, m1 = _quotients(flat, theta, base_loss, index, step, batch)
    f2, b2, c2, m2 = _quotients(flat, theta, base_loss, index, step * USER_FD_SHRINK, batch)
    evaluations = 4 * P + 1
    magnitude = np.maximum(m1, m2)
    floor1 = USER_FD_ULPS * eps * magnitude / step
    floor2 = floor1 / USER_FD_SHRINK
    finite = np.isfinite(c1) & np.isfinite(c2)
    scale = gradient_scale(np.where(finite, c1, 0.0))
    tol, side = tolerance_for(dtype, "central"), tolerance_for(dtype, "forward")
    with np.errstate(invalid="ignore"):
        allow = tol.rtol * np.abs(c1) + tol.atol * scale + floor2
        moved = ~(np.abs(c1 - c2) <= allow)
        bent = ~(np.abs((f2 - b2) - USER_FD_SHRINK * (f1 - b1)) <= allow + 4 * floor2)
    flagged = moved | bent | ~finite
    values, other = np.where(finite, c1, np.nan), np.full(P, np.nan)
    kink, excluded = np.zeros(P, bool), np.zeros(P, bool)
    allowance = floor1 + np.where(finite, np.abs(c1 - c2), 0.0)
    if flagged.any():
        with np.errstate(invalid="ignore"):
            side_allow = side.rtol * np.maximum(np.abs(f1), np.abs(b1)) + side.atol * scale + 2 * floor2
            kink = flagged & (np.abs(f1 - f2) <= side_allow) & (np.abs(b1 - b2) <= side_allow)
        values = np.where(kink, f1, values)
        other = np.where(kink, b1, other)
        allowance = np.where(kink, 2 * floor1 + np.maximum(np.abs(f1 - f2), np.abs(b1 - b2)), allowance)
        retry = np.flatnonzero(flagged & ~kink)
        if retry.size:  # the kink may lie between the two steps: the smaller one then sees a smooth piece
            small = step[retry] * USER_FD_SHRINK**2
            f3, b3, c3, m3 = _quotients(flat, theta, base_loss, retry, small, batch)
            evaluations += 2 * retry.size
            floor3 = USER_FD_ULPS * eps * np.maximum(m3, magnitude[retry]) / small
            with np.errstate(invalid="ignore"):
                allow3 = tol.rtol * np.abs(c2[retry]) + tol.atol * scale + floor3
                smooth = (np.abs(c2[retry] - c3) <= allow3) & (
                    np.abs((f3 - b3) - USER_FD_SHRINK * (f2[retry] - b2[retry])) <= allow3 + 4 * floor3)
            values[retry] = np.where(smooth, c3, np.nan)
            allowance[retry] = np.where(smooth, floor3 + np.abs(c2[retry] - c3), 0.0)
            excluded[retry] = ~smooth
    return CoordinateFd(values, other, kink, excluded, allowance, evaluations)


def evaluation_seconds(flat: FlatLoss, theta: np.ndarray, repeats: int = 3) -> float:
    """Seconds per evaluation of the loss, the best of ``repeats`` timed calls."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        flat(theta)
        best = min(best, time.perf_counter() - start)
    return float(best)


def sweep_seconds(parameters: int, seconds_per_call: float) -> float:
    """The coordinate sweep's estimated time: 4 evaluations per parameter (two steps, two signs)."""
    return (4 * parameters + 1) * seconds_per_call


def use_directions(parameters: int, seconds_per_call: float) -> bool:
    """Whether the sweep would take longer than ``USER_FD_SECONDS``."""
    return sweep_seconds(parameters, seconds_per_call) > USER_FD_SECONDS


class DirectionFd(NamedTuple):
    """One leaf differenced along ``directions`` (the moves u, one row each, theta's full length):
    ``values`` the central quotients dL/dt along each, ``allowance`` (absolute), ``excluded`` (a kink
    within reach: the quotient moved with the step)."""

    directions: np.ndarray
    values: np.ndarray
    allowance: np.ndarray
    excluded: np.ndarray


def leaf_directions(theta: np.ndarray, lo: int, hi: int, gradient: np.ndarray | None, count: int,
                    rng: np.random.Generator) -> np.ndarray:
    """``count`` moves within entries ``lo:hi`` of theta (zero elsewhere), entry i scaled by
    max(1, |theta_i|): the first mixes random signs with ``gradient``'s direction (a bug rarely leaves
    v . g unchanged along g itself), the others are random signs."""
    size = hi - lo
    out = np.zeros((count, theta.size))
    for k in range(count):
        v = rng.choice((-1.0, 1.0), size=size)
        if k == 0 and gradient is not None:
            g = np.asarray(gradient[lo:hi], np.float64)
            norm = float(np.linalg.norm(g))
            if 0 < norm < np.inf:
                v = 0.5 * v + 0.5 * np.sqrt(size) * g / norm
        out[k, lo:hi] = v * np.maximum(1.0, np.abs(theta[lo:hi]))
    return out


def directional_fd(flat: FlatLoss, theta: np.ndarray, eps: float, directions: np.ndarray,
                   gradient: np.ndarray | None = None) -> DirectionFd:
    """dL/dt of L(theta + t u) at t = 0 for each row u of ``directions``, by central differences at
    t = cbrt(eps) and t x ``USER_FD_SHRINK``, with the same kink rule and allowance as the sweep; the
    scale of each direction is sum |u_i g_i| (``gradient``: the one under test; None: |dL/dt|)."""
    dtype = np.float32 if eps > 1e-10 else np.float64
    tol, side = tolerance_for(dtype, "central"), tolerance_for(dtype, "forward")
    base_loss = flat(theta)
    t1 = default_step(dtype, "central")
    values, allowance, excluded = [], [], []
    for u in directions:
        quotients, gaps, magnitude = [], [], abs(base_loss)
        for t in (t1, t1 * USER_FD_SHRINK):
            plus, minus = flat(theta + t * u), flat(theta - t * u)
            quotients.append((plus - minus) / (2 * t))
            gaps.append((plus - 2 * base_loss + minus) / t)  # forward minus backward quotient
            magnitude = max(magnitude, abs(plus), abs(minus))
        floor = USER_FD_ULPS * eps * magnitude / (t1 * USER_FD_SHRINK)
        moved = abs(quotients[0] - quotients[1])
        bent = abs(gaps[1] - USER_FD_SHRINK * gaps[0])  # a smooth line's gap shrinks with the step
        scale = abs(quotients[0]) if gradient is None else float(np.abs(u * gradient).sum())
        values.append(quotients[0])
        allowance.append(floor + moved)
        # a kink within reach moves the quotient, or keeps the gap, by O(1) of a unit's share; smooth
        # pieces by O(t^2)
        allowed = tol.rtol * abs(quotients[0]) + side.atol * scale + floor
        excluded.append(not (moved <= allowed and bent <= allowed + 4 * floor))
    return DirectionFd(directions, np.array(values), np.array(allowance), np.array(excluded))


def directions_for_leaves(theta: np.ndarray, bounds: list[int], gradient: np.ndarray | None, seed,
                          count: int = USER_FD_DIRECTIONS) -> list[np.ndarray]:
    """The moves of every leaf (``bounds``: leaf i is ``theta[bounds[i]:bounds[i+1]]``), from ``seed``."""
    rng = generator(seed)
    return [leaf_directions(theta, lo, hi, gradient, count, rng)
            for lo, hi in zip(bounds, bounds[1:], strict=False)]
