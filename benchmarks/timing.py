"""Timing shared by the harness and its cold-process child: blocks, autorange, interleaved rounds.

Imports only the standard library and NumPy, so that a fresh process timing one method (``cold.py``)
imports nothing that method does not need.
"""

from __future__ import annotations

import time

import numpy as np

try:
    import resource  # POSIX: page faults per call
except ImportError:  # pragma: no cover (Windows)
    resource = None


def minor_faults() -> int:
    """Minor page faults of this process so far (0 where getrusage is missing)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def time_block(fn, number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start


def calibrate(fn, block: float) -> int:
    """Calls per block: doubled until a block lasts ``block`` seconds (timeit's autorange, shorter)."""
    number = 1
    while True:
        elapsed = time_block(fn, number)
        if elapsed >= block or number >= 2**20:
            return number
        number *= 2 if elapsed <= 0 else max(2, min(10, int(block / elapsed) + 1))


def time_round_robin(callables: dict, block: float, min_repeats: int, budget: float) -> dict:
    """Median and spread per call of each callable, timed in interleaved rounds of one block each.

    Also the minor page faults per call over the timed blocks: a sign of an allocator that hands its
    temporaries back to the OS (and takes them again, zeroed) on every call.
    """
    numbers, samples = {}, {name: [] for name in callables}
    faults, calls = dict.fromkeys(callables, 0), dict.fromkeys(callables, 0)
    for name, fn in callables.items():
        fn()  # warm-up (a jit compile, caches, the BLAS threads)
        numbers[name] = calibrate(fn, block)
    started = time.perf_counter()
    rounds = 0
    while rounds < min_repeats or (time.perf_counter() - started < budget and rounds < 50):
        names = list(callables)
        names = names[rounds % len(names):] + names[: rounds % len(names)]  # rotate the order
        for name in names:
            before = minor_faults()
            samples[name].append(time_block(callables[name], numbers[name]) / numbers[name])
            faults[name] += minor_faults() - before
            calls[name] += numbers[name]
        rounds += 1
    stats = {}
    for name, values in samples.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        stats[name] = {
            "median_s": float(median),
            "q1_s": float(q1),
            "q3_s": float(q3),
            "min_s": float(min(values)),
            "max_s": float(max(values)),
            "spread": float((q3 - q1) / median) if median > 0 else 0.0,
            "number": numbers[name],
            "repeats": len(values),
            "page_faults_per_call": faults[name] / calls[name],
        }
    return stats
