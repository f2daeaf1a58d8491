"""Type aliases of the public signatures, in the notebook's terms (for readers and for mypy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.floating]  # float64 or float32, the parameters' dtype
Parameters = Sequence[ArrayLike]  # all_weights or all_biases as a user passes them: one array per layer
Arrays = list[Array]  # one array per layer, as returned
Gradients = tuple[list[Array], list[Array]]  # (all_dl_dweights, all_dl_dbiases), the parameters' shapes
Seed = int | np.random.Generator | None  # a seed, a Generator, or None for fresh entropy
