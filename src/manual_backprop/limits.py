"""What the command line refuses before it starts, and why: networks too large for memory or too deep.

Both limits are checked up front, from the sizes alone, so that a mistyped option is one line and exit 2,
not a MemoryError traceback after minutes of work or minutes of silence while XLA compiles.

- **Memory.** ``memory_estimate`` adds the parameters (each copy the check keeps: the network, manual
  backprop's and jax.grad's gradients, the finite-difference witness or the directions of the directional
  check, all in the parameters' dtype or float64) and the activations (the forward pass's ``all_f`` and
  ``all_h``, the backward pass's deltas, JAX's residuals and the float64 loss line), and compares the sum with
  ``MEMORY_FRACTION`` of the machine's physical memory.
- **Depth.** The oracle unrolls the network's layers in ``jax.jit``; XLA's compile time grows faster than
  the depth (measured on 2 cores: the gradient compiles in 1.3 s at depth 50, 6 s at 200, 19 s at 400; H v
  and G v take 3 to 5 times longer). Past ``MAX_DEPTH`` the check would sit silent for minutes, so it is
  refused; the manual code itself has no such limit (``manual_gradients`` is a Python loop over layers).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

# Deepest network the command line checks: XLA compiles the unrolled oracle in about 6 s at this depth (the
# gradient; H v about 30 s), and the time grows faster than the depth beyond it.
MAX_DEPTH = 200

# Share of physical memory a check may plan to use: room for the operating system and the rest of the machine,
# and for what the estimate leaves out (NumPy temporaries, XLA's buffers, fragmentation).
MEMORY_FRACTION = 0.5

# Copies of the parameters alive at the peak, counted in float64: measured peak RSS over the parameters'
# bytes was 9.2 (--depth 2 --width 3000, the directional check); 12 leaves a margin. Activations likewise
# (all_f, all_h, the deltas, the oracle's residuals, the float64 loss line): 8.4 measured (--batch 1000000
# --depth 5 --width 6), 10 with a margin.
PARAMETER_COPIES = 12
ACTIVATION_COPIES = 10
# Per-example gradients hold N copies of the gradient (manual, JAX and the finite-difference witness).
PER_EXAMPLE_COPIES = 4

# An output this large (in absolute value) means the activations exploded: the header says so.
EXPLODING_OUTPUT = 1e6

GIB = 2**30

# check_gradient's batched finite differences (user_jax): one batch of perturbed parameter vectors holds at
# most CHUNK_ENTRIES float64 (32 MiB) and CHUNK_WIDTH vectors (a small batch compiles fast, pads little).
CHUNK_ENTRIES = 2**22
CHUNK_WIDTH = 256


class MemoryEstimate(NamedTuple):
    """Bytes a check is expected to hold at its peak, by kind; ``total`` their sum."""

    parameters: int
    activations: int
    working: int

    @property
    def total(self) -> int:
        return self.parameters + self.activations + self.working


def memory_estimate(sizes: Sequence[int], batch: int, derivative: str = "gradient") -> MemoryEstimate:
    """The peak memory of a check of the network with layer ``sizes`` (D_i, D_1, ..., D_o) on ``batch``
    columns, in bytes (counted in float64 whatever the dtype: the witnesses run in float64).

    Exact integer arithmetic, so absurd sizes (``--width 100000``) give an absurd number, not an overflow.
    """
    sizes = [int(s) for s in sizes]
    parameters = sum(d_out * (d_in + 1) for d_in, d_out in zip(sizes, sizes[1:], strict=False))
    units = sum(sizes)
    copies = PARAMETER_COPIES + (PER_EXAMPLE_COPIES * int(batch) if derivative == "per_example" else 0)
    # A block of finite differences: 8 MiB, or 8 arrays (widest layer, N) when one perturbation needs more.
    working = max(8 * 2**20, 8 * 8 * max(sizes) * int(batch))
    return MemoryEstimate(8 * parameters * copies, 8 * units * int(batch) * ACTIVATION_COPIES, working)


def physical_memory() -> int | None:
    """Bytes of physical memory, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def memory_limit() -> int | None:
    """``MEMORY_FRACTION`` of physical memory, in bytes (None: unknown, no limit)."""
    memory = physical_memory()
    return None if memory is None else int(memory * MEMORY_FRACTION)


def exploding(net_output: np.ndarray) -> float | None:
    """The largest |output| when it exceeds ``EXPLODING_OUTPUT`` (or is not finite), else None."""
    largest = float(np.max(np.abs(net_output))) if np.size(net_output) else 0.0
    return largest if not largest <= EXPLODING_OUTPUT else None
