"""The plan of a finite-difference sweep: batches of perturbations, their steps, the flat layout of results.

Every entry of the augmented matrices [Omega_k | beta_k] is perturbed (a bias is the weight of a constant
input 1). A sweep (``finite_diff``) pushes a batch of perturbations up the network; the plan cuts them into
batches that fit the working memory, and lays every per-entry result out as one flat vector: the raveled
augmented matrices one layer after another. Plans and layouts hold no numbers, only shapes, and are kept
per shape: a small network pays for them once.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
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
    each perturbation multiplies (``gather``), a one-hot (max D, size) of its row i (``rows``), and per
    layer from the first block's up, (k, start, stop, D_{k+1}): the batch positions joining at layer k.
    """

    blocks: tuple
    size: int
    gather: np.ndarray | None = None
    rows: np.ndarray | None = None
    joins: tuple | None = None


_KEPT: dict = {}  # (what, shapes, ...) -> a plan or layout of a small network, the oldest first
KEPT, KEPT_PARAMETERS = 64, 2**14  # at most this many, of networks of at most this many parameters


def _kept(key, shapes: tuple, make):
    """``make()``, kept under ``key`` for a small network (indices of a few hundred kilobytes at most), the
    oldest dropped past ``KEPT``."""
    value = _KEPT.get(key)
    if value is None:
        value = make()
        if sum(rows * (columns + 1) for rows, columns in shapes) <= KEPT_PARAMETERS:
            _KEPT[key] = value
            while len(_KEPT) > KEPT:
                with suppress(KeyError, RuntimeError, StopIteration):  # another thread dropped it first
                    del _KEPT[next(iter(_KEPT))]
    return value


def plan(shapes: tuple, signs: int, chunk: int) -> tuple[Batch, ...]:
    """Batches of about ``chunk`` perturbations (signs included) of a network whose weights have ``shapes``.

    Every batch takes a share of the rows of every layer, so that each sweep up the network carries
    perturbations of all layers (one sweep for a small network); a row wider than ``chunk`` on its own
    is cut into column blocks, one batch each.
    """
    return _kept(("plan", shapes, signs, chunk), shapes, lambda: _plan(shapes, signs, chunk))


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
    sizes, joins, start = {b.layer: b.size for b in blocks}, [], 0
    for k in range(blocks[0].layer, last + 1):
        joins.append((k, start, start + sizes.get(k, 0), shapes[k][0]))
        start += sizes.get(k, 0)
    return Batch(blocks, size, gather, one_hot, tuple(joins))


@lru_cache(maxsize=64)
def input_starts(columns: tuple) -> list:
    """Where each layer's rows [h_k; 1] start in the stacked inputs: D_k + 1 rows each."""
    return [0, *accumulate(d + 1 for d in columns)]


def identity(size: int, dtype) -> np.ndarray:
    """``np.eye(size, dtype=dtype)``, read-only; made once for a narrow network."""
    return _identity(size, dtype) if size < 2 * WIDE else np.eye(size, dtype=dtype)


@lru_cache(maxsize=8)
def _identity(size: int, dtype) -> np.ndarray:
    eye = np.eye(size, dtype=dtype)
    eye.flags.writeable = False
    return eye


class Layout(NamedTuple):
    """Where the entries of a network with weights of some shapes sit, in three flat orders.

    ``offsets``: where layer k's raveled augmented matrix [Omega_k | beta_k] starts in the flat vector of
    them all (the sweep's order); ``order``: where each entry of that vector sits in ``concatenate(weights
    + biases)``; ``gather``: where each entry of Omega_0, beta_0, Omega_1, beta_1, ... (raveled end to end,
    the order of a comparison's rows) sits in that vector; ``pieces``: (start, stop, shape) of each of
    those tensors in their own order.
    """

    offsets: list
    order: np.ndarray
    gather: np.ndarray
    pieces: list


def layout(shapes: tuple) -> Layout:
    """The ``Layout`` of a network whose weights have ``shapes``."""
    return _kept(("layout", shapes), shapes, lambda: _layout(shapes))


def _layout(shapes: tuple) -> Layout:
    offsets = [0, *accumulate(rows * (columns + 1) for rows, columns in shapes)]
    starts = [0, *accumulate([rows * columns for rows, columns in shapes] + [rows for rows, _ in shapes])]
    order, gather, pieces, end = [], [], [], 0
    for k, ((rows, columns), offset) in enumerate(zip(shapes, offsets, strict=False)):
        entries = np.arange(starts[k], starts[k + 1]).reshape(rows, columns)
        biases = np.arange(starts[len(shapes) + k], starts[len(shapes) + k + 1])[:, None]
        order.append(np.concatenate([entries, biases], axis=1).ravel())
        augmented = np.arange(offset, offsets[k + 1]).reshape(rows, columns + 1)
        gather += [augmented[:, :-1].ravel(), augmented[:, -1]]
        middle, end = end + rows * columns, end + rows * (columns + 1)
        pieces += [(middle - rows * columns, middle, (rows, columns)), (middle, end, (rows, 1))]
    order, gather = np.concatenate(order), np.concatenate(gather)
    order.flags.writeable = gather.flags.writeable = False
    return Layout(offsets, order, gather, pieces)


class Steps(Sequence):
    """``perturbation_steps``' arrays, one per layer (D_out, D_in + 1), views of ``flat`` made when asked for:
    ``flat`` holds every step, the raveled augmented matrices one after another (a single batch's order)."""

    def __init__(self, flat: np.ndarray, offsets: list, shapes: tuple):
        self.flat, self.offsets, self.shapes = flat, offsets, shapes

    def __len__(self) -> int:
        return len(self.shapes)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        k = k + len(self) if k < 0 else k
        if not 0 <= k < len(self):
            raise IndexError(k)
        return self.flat[self.offsets[k]:self.offsets[k + 1]].reshape(self.shapes[k][0], -1)


def perturbation_steps(weights, biases, dtype, method: str, step):
    """The step of every entry of the augmented matrices [Omega_k | beta_k]: one per layer, each either
    an array (D_out, D_in + 1) or, for a step given, that step as a scalar of ``dtype``."""
    if step is not None:
        return [dtype.type(step)] * len(weights)
    base_step = default_step(dtype, method)
    shapes = tuple([omega.shape for omega in weights])
    where = layout(shapes)
    theta = np.concatenate([a.ravel() for a in (*weights, *biases)])[where.order]  # every [Omega_k | beta_k]
    return Steps((base_step * np.maximum(1, np.abs(theta))).astype(dtype, copy=False), where.offsets, shapes)


@lru_cache(maxsize=8)
def signs_of(method: str, dtype) -> np.ndarray:
    """The signs of ``method``'s moves (S,) in ``dtype``, read-only and made once."""
    signs = np.array(SIGNS[method], dtype)
    signs.flags.writeable = False
    return signs


def batch_steps(all_steps, blocks, single: bool):
    """The steps of the batch's perturbations, in order (one scalar when a step serves every parameter)."""
    if isinstance(all_steps, Steps) and single:  # the whole network, in the order of the flat vector
        return all_steps.flat
    if not isinstance(all_steps[0], np.ndarray):
        return all_steps[0]
    return np.concatenate([all_steps[b.layer][b.rows, b.cols].ravel() for b in blocks])


def split(every, weights):
    """The flat vector ``every`` (``layout``'s order) as the lists (all for Omega_k, all for beta_k)."""
    return split_flat(every, weights)[1:]


def split_flat(every, weights):
    """``(tensors, weights, biases)``: ``every`` (``layout``'s order) as Omega_0, beta_0, Omega_1, ... raveled
    end to end (one reordered copy), and its lists of views of that copy: each tensor contiguous, none
    sharing memory with another or with ``every``."""
    where = layout(tuple([omega.shape for omega in weights]))
    tensors = every[where.gather]
    parts = [tensors[start:stop].reshape(shape) for start, stop, shape in where.pieces]
    return tensors, parts[0::2], parts[1::2]
