"""Type aliases of the public signatures, in the notebook's terms (for readers and for mypy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

Parameters = Sequence[ArrayLike]  # all_weights or all_biases as a user passes them: one array per layer
Arrays = list[np.ndarray]  # one array per layer, as returned
Gradients = tuple[list[np.ndarray], list[np.ndarray]]  # (all_dl_dweights, all_dl_dbiases)
Seed = int | np.random.Generator | None  # a seed, a Generator, or None for fresh entropy
