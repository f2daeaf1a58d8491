"""Many small tensors as segments of one flat array: per-tensor values spread over them, each one's argmax.

A comparison of a gradient of many small tensors (``compare.compare_tensors``) lays them end to end and
works on the flat array in a few NumPy calls instead of a few per tensor; segment j is
``bounds[j]:bounds[j + 1]``, of ``sizes[j]`` entries.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def spread(parts, sizes, fill):
    """One flat float64 array of per-tensor values (None: ``fill``; a scalar: broadcast)."""
    first = parts[0]
    if all(p is first for p in parts) and np.isscalar(first):  # one number for every tensor, often the case
        return first
    if all(np.isscalar(p) for p in parts) and len(set(parts)) == 1:
        return parts[0]
    return np.concatenate(
        [
            np.broadcast_to(fill if p is None else p, (n,)) if np.ndim(p) == 0 or p is None else np.ravel(p)
            for p, n in zip(parts, sizes, strict=True)
        ]
    )


def argmax_per_segment(share, sizes: tuple, bounds):
    """``share[lo:hi].argmax()`` of every segment (the first largest entry, or the first NaN), as an array.

    Small gradients in one step: the segments laid out as the rows of a matrix padded with -inf."""
    if len(sizes) * max(sizes) > 2**16:
        return np.array([int(share[lo:hi].argmax()) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)])
    padded = np.full(len(sizes) * max(sizes), -np.inf)
    padded[_padded_positions(sizes)] = share
    return padded.reshape(len(sizes), -1).argmax(axis=1)


@lru_cache(maxsize=16)
def _padded_positions(sizes: tuple):
    """Where each entry of the segments of ``sizes`` sits in their padded matrix (raveled)."""
    width = max(sizes)
    positions = np.concatenate([np.arange(n) + j * width for j, n in enumerate(sizes)])
    positions.flags.writeable = False  # shared by every call with these sizes
    return positions
