"""The plan of a finite-difference sweep: batches of perturbations, their steps, the flat layout of results.

Every entry of the augmented matrices [Omega_k | beta_k] is perturbed (a bias is the weight of a constant
input 1). A sweep (``finite_diff``) pushes a batch of perturbations up the network; the plan cuts them into
batches that fit the working memory, and lays every per-entry result out as one flat vector: the raveled
augmented matrices one layer after another. Plans and layouts hold no numbers, only shapes, and are kept
per shape: a small network pays for them once.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import accumulate
from typing import NamedTuple

import numpy as np

from .fd_limits import default_step

SIGNS = {"central": (1, -1), "forward": (1,), "backward": (-1,)}  # the directions of each method's moves
WIDE = 32  # layers of this many units or more: perturbations join through their own row, idle ones dropped
SMALL_BATCH = 2**16  # entries of the one-hot of a batch's rows, at most: past it, moves are made per block


class Block(NamedTuple):
    """The perturbations of ``rows`` x ``cols`` of layer k's augmented matrix [Omega_k | beta_k].

    Either whole rows or part of one row: either way a contiguous run of the matrix's entries.
    """

    layer: int
    rows: slice
    cols: slice

    @property
    def size(self) -> int:
        return (self.rows.stop - self.rows.start) * (self.cols.stop - self.cols.start)


class Batch(NamedTuple):
    """One sweep's perturbations: ``blocks`` (at most one per layer, by layer) and their count ``size``.

    For a small batch whose blocks all join as changes of f_k (narrow layers, the output), also what
    ``finite_diff`` needs to make all their moves at once (else None): the row of the stacked inputs that
    each perturbation multiplies (``gather``) and a one-hot (max D, size) of its row i (``rows``).
    """

    blocks: tuple
    size: int
    gather: np.ndarray | None = None
    rows: np.ndarray | None = None


_KEPT: dict = {}  # (what, shapes, ...) -> a plan or layout of a small network, computed once


def _kept(key, make, small: bool):
    """``make()``, kept under ``key`` when ``small`` (a few kilobytes of indices at most) and room is left."""
    value = _KEPT.get(key)
    if value is None:
        value = make()
        if small and len(_KEPT) < 256:
            _KEPT[key] = value
    return value


def plan(shapes: tuple, signs: int, chunk: int) -> tuple[Batch, ...]:
    """Batches of about ``chunk`` perturbations (signs included) of a network whose weights have ``shapes``.

    Every batch takes a share of the rows of every layer, so that each sweep up the network carries
    perturbations of all layers (one sweep for a small network); a row wider than ``chunk`` on its own
    is cut into column blocks, one batch each.
    """
    small = sum(rows * (columns + 1) for rows, columns in shapes) <= SMALL_BATCH
    return _kept(("plan", shapes, signs, chunk), lambda: _plan(shapes, signs, chunk), small)


def _plan(shapes: tuple, signs: int, chunk: int) -> tuple[Batch, ...]:
    sizes = [(rows, columns + 1) for rows, columns in shapes]
    if any(signs * width > chunk for _, width in sizes):
        step = max(1, chunk // signs)
        return tuple(_batch((Block(layer, slice(i, i + 1), slice(j, min(j + step, width))),), shapes)
                     for layer, (rows, width) in enumerate(sizes)
                     for i in range(rows) for j in range(0, width, step))  # fmt: skip
    count = -(-signs * sum(rows * width for rows, width in sizes) // chunk)  # ceil: batches needed
    batches = []
    for b in range(count):
        blocks = tuple(Block(layer, slice(rows * b // count, rows * (b + 1) // count), slice(0, width))
                       for layer, (rows, width) in enumerate(sizes)
                       if rows * (b + 1) // count > rows * b // count)  # fmt: skip
        if blocks:
            batches.append(_batch(blocks, shapes))
    return tuple(batches)


def _batch(blocks: tuple, shapes: tuple) -> Batch:
    size, last, widest = sum(b.size for b in blocks), len(shapes) - 1, max(rows for rows, _ in shapes)
    if widest * size > SMALL_BATCH or any(b.layer < last and shapes[b.layer][0] >= WIDE for b in blocks):
        return Batch(blocks, size)
    starts = input_starts(tuple(columns for _, columns in shapes))
    rows = np.concatenate([np.repeat(np.arange(b.rows.start, b.rows.stop), b.cols.stop - b.cols.start)
                           for b in blocks])  # fmt: skip
    gather = np.concatenate([np.tile(np.arange(b.cols.start, b.cols.stop), b.rows.stop - b.rows.start)
                             + starts[b.layer] for b in blocks])  # fmt: skip
    one_hot = np.arange(widest)[:, None] == rows
    gather.flags.writeable = one_hot.flags.writeable = False  # shared by every call with these shapes
    return Batch(blocks, size, gather, one_hot)


@lru_cache(maxsize=64)
def input_starts(columns: tuple) -> list:
    """Where each layer's rows [h_k; 1] start in the stacked inputs: D_k + 1 rows each."""
    return [0, *accumulate(d + 1 for d in columns)]


@lru_cache(maxsize=8)
def identity(size: int, dtype) -> np.ndarray:
    """``np.eye(size, dtype=dtype)``, read-only and made once."""
    eye = np.eye(size, dtype=dtype)
    eye.flags.writeable = False
    return eye


def layout(shapes: tuple) -> tuple:
    """``(offsets, order, inverse, ends)`` for weights of ``shapes``: where layer k's raveled augmented matrix
    [Omega_k | beta_k] starts in the flat vector of them all; the position in ``concatenate(weights +
    biases)`` of each of its entries, and the inverse; where each tensor ends in that concatenation."""
    small = sum(rows * (columns + 1) for rows, columns in shapes) <= SMALL_BATCH
    return _kept(("layout", shapes), lambda: _layout(shapes), small)


def _layout(shapes: tuple) -> tuple:
    offsets = [0, *accumulate(rows * (columns + 1) for rows, columns in shapes)]
    ends = [*accumulate([rows * columns for rows, columns in shapes] + [rows for rows, _ in shapes])]
    order, bias = [], ends[len(shapes) - 1]
    for (rows, columns), start in zip(shapes, [0, *ends], strict=False):
        entries = np.arange(start, start + rows * columns).reshape(rows, columns)
        order.append(np.concatenate([entries, np.arange(bias, bias + rows)[:, None]], axis=1).ravel())
        bias += rows
    order = np.concatenate(order)
    inverse = np.argsort(order)
    order.flags.writeable = inverse.flags.writeable = False
    return offsets, order, inverse, ends


class Steps(list):
    """``perturbation_steps``' arrays, one per layer, all views of ``flat``: every step, in the order of the
    raveled augmented matrices one after another (the order of a single batch)."""

    flat: np.ndarray


def perturbation_steps(weights, biases, dtype, method: str, step):
    """The step of every entry of the augmented matrices [Omega_k | beta_k]: one per layer, each either
    an array (D_out, D_in + 1) or, for a step given, that step as a scalar of ``dtype``."""
    if step is not None:
        return [dtype.type(step)] * len(weights)
    base_step = default_step(dtype, method)
    shapes = tuple(omega.shape for omega in weights)
    offsets, order, _, _ = layout(shapes)
    theta = np.concatenate([*weights, *biases], axis=None)[order]  # every layer's [Omega_k | beta_k]
    flat = (base_step * np.maximum(1, np.abs(theta))).astype(dtype, copy=False)
    steps = Steps(flat[a:b].reshape(rows, -1)
                  for a, b, (rows, _) in zip(offsets, offsets[1:], shapes, strict=False))  # fmt: skip
    steps.flat = flat
    return steps


@lru_cache(maxsize=8)
def signs_of(method: str, dtype) -> np.ndarray:
    """The signs of ``method``'s moves (S,) in ``dtype``, read-only and made once."""
    signs = np.array(SIGNS[method], dtype)
    signs.flags.writeable = False
    return signs


def batch_steps(all_steps, blocks, single: bool):
    """The steps of the batch's perturbations, in order (one scalar when a step serves every parameter)."""
    if not isinstance(all_steps[0], np.ndarray):
        return all_steps[0]
    if single and isinstance(all_steps, Steps):  # the whole network, in the order of the flat vector
        return all_steps.flat
    return np.concatenate([all_steps[b.layer][b.rows, b.cols].ravel() for b in blocks])


def split(every, weights):
    """The flat vector ``every`` (``layout``'s order) as the lists (all for Omega_k, all for beta_k): views
    of one reordered copy, each tensor contiguous and none sharing memory with another or with ``every``."""
    shapes = tuple(omega.shape for omega in weights)
    _, _, inverse, ends = layout(shapes)
    tensors = every[inverse]  # Omega_0 ... Omega_K, then beta_0 ... beta_K, each raveled
    shapes += tuple((rows, 1) for rows, _ in shapes)
    parts = [tensors[a:b].reshape(shape) for a, b, shape in zip([0, *ends], ends, shapes, strict=False)]
    return parts[: len(weights)], parts[len(weights):]
