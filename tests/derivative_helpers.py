"""Problems shared by the tests of the derivatives beyond the gradient (a helper module, not a test file)."""

from __future__ import annotations

import numpy as np

from manual_backprop import random_network

# One architecture for the activation x loss grids: JAX compiles each shape once for the whole session.
SIZES = (3, 5, 4, 3)
BATCH = 4


def make_problem(seed, sizes=SIZES, batch=BATCH, dtype=np.float64, loss="least_squares"):
    """A random network, input and target for ``loss``: ``(all_weights, all_biases, net_input, y)``."""
    rng = np.random.default_rng(seed)
    all_weights, all_biases = random_network(list(sizes), rng=rng, dtype=dtype)
    net_input = rng.standard_normal((sizes[0], batch)).astype(dtype)
    D_o = sizes[-1]
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, D_o, size=batch)  # class indices
    elif loss == "binary_cross_entropy":
        y = rng.uniform(0, 1, (D_o, batch)).astype(dtype)
    else:  # least squares, and any other loss on real targets (sum_of_squares)
        y = rng.standard_normal((D_o, batch)).astype(dtype)
    return all_weights, all_biases, net_input, y


def random_vector(all_weights, all_biases, seed, dtype=np.float64):
    """A pair of lists shaped like the parameters, standard normal entries."""
    rng = np.random.default_rng(seed)
    return ([rng.standard_normal(w.shape).astype(dtype) for w in all_weights],
            [rng.standard_normal(b.shape).astype(dtype) for b in all_biases])  # fmt: skip


def flat(pair):
    """A pair of lists of arrays (or one list) as one flat float64 vector."""
    parts = [a for part in pair for a in (part if isinstance(part, (list, tuple)) else [part])]
    return np.concatenate([np.ravel(np.asarray(a, np.float64)) for a in parts])


def kink_problem(seed, loss="least_squares", batch=3):
    """Integer-valued parameters and input whose hidden pre-activations include exact zeros (kinks)."""
    sizes = (3, 4, 4, 2)
    for attempt in range(500):
        rng = np.random.default_rng([seed, attempt])
        shapes = zip(sizes[1:], sizes[:-1], strict=True)
        weights = [rng.integers(-1, 2, shape).astype(float) for shape in shapes]
        biases = [rng.integers(-1, 2, (o, 1)).astype(float) for o in sizes[1:]]
        x = rng.integers(-1, 2, (sizes[0], batch)).astype(float)
        h, zeros, live = x, 0, True
        for w, b in zip(weights[:-1], biases[:-1], strict=True):
            f = w @ h + b
            zeros += int((f == 0).sum())
            h = np.maximum(f, 0)
            live &= bool((f > 0).any())
        if zeros and live:
            break
    if loss == "softmax_cross_entropy":
        y = rng.integers(0, sizes[-1], batch)
    elif loss == "binary_cross_entropy":
        y = rng.integers(0, 2, (sizes[-1], batch)).astype(float)
    else:
        y = rng.integers(-2, 3, (sizes[-1], batch)).astype(float)
    return weights, biases, x, y
