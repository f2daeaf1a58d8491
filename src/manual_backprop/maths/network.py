"""Networks to differentiate: the notebook's random network and random networks of any shape.

A network is the notebook's two lists: ``all_weights[k]`` is Omega_k of shape (D_{k+1}, D_k) and
``all_biases[k]`` is beta_k of shape (D_{k+1}, 1), for k = 0..K (K hidden layers, K+1 weight matrices).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np
from numpy.typing import DTypeLike, NDArray

Network = tuple[list[NDArray[np.floating]], list[NDArray[np.floating]]]  # (all_weights, all_biases)


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _check_seed(seed, name: str = "seed") -> int:
    """A seed for NumPy's legacy stream: an integer in [0, 2**32 - 1]."""
    seed = _check_count(seed, name, 0)
    if seed > 2**32 - 1:
        raise ValueError(f"{name} must be at most 2**32 - 1, got {seed}")
    return seed


def _generator(rng) -> np.random.Generator:
    """``rng`` as a Generator: None (fresh entropy), a non-negative integer seed, or a Generator."""
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    if isinstance(rng, bool) or not isinstance(rng, numbers.Integral):
        raise TypeError(f"rng must be None, an integer seed >= 0 or a np.random.Generator, got {rng!r}")
    if rng < 0:
        raise ValueError(f"rng must be a non-negative integer seed, got {rng}")
    return np.random.default_rng(int(rng))


def _check_std(value, name: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


# A network's parameters past this many bytes are refused up front (a ValueError with the size) rather than
# left to NumPy's MemoryError or OverflowError part-way through the draws: 16 GiB, beyond any check here.
MAX_PARAMETER_BYTES = 2**34


def _check_size(sizes, name: str, itemsize: int = 8) -> None:
    """A ValueError giving the parameter count and bytes of a network of ``sizes`` that would not fit."""
    count = sum(d_out * (d_in + 1) for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=False))
    if count * itemsize > MAX_PARAMETER_BYTES:
        raise ValueError(
            f"{name} would have {count:.3g} parameters ({count * itemsize / 2**30:.3g} GiB; widest layer "
            f"{max(sizes)}): more than the {MAX_PARAMETER_BYTES / 2**30:.0f} GiB allowed; choose smaller "
            "sizes"
        )


def udl_network(seed: int = 0, K: int = 5, D: int = 6, D_i: int = 1, D_o: int = 1) -> Network:
    """The notebook's network: K hidden layers of D units, drawn in the notebook's order.

    The draws come from NumPy's legacy stream seeded with ``seed`` (what ``np.random.seed(seed)`` then
    ``np.random.normal`` gives), through a private ``RandomState``, so NumPy's global state is untouched.
    With the defaults, ``net_input = 1.2`` gives output 1.907 and target 20 gives loss 163.685.

    Returns ``(all_weights, all_biases)``: K+1 float64 arrays each, shapes (D, D_i), (D, D), ..., (D_o, D)
    and (D, 1), ..., (D_o, 1).
    """
    seed = _check_seed(seed)
    K = _check_count(K, "K", 1)  # the notebook draws distinct first and last layers
    D, D_i, D_o = (_check_count(v, n, 1) for v, n in ((D, "D"), (D_i, "D_i"), (D_o, "D_o")))
    _check_size([D_i] + [D] * K + [D_o], f"udl_network(K={K}, D={D}, D_i={D_i}, D_o={D_o})")
    stream = np.random.RandomState(seed)
    all_weights = [None] * (K + 1)
    all_biases = [None] * (K + 1)
    all_weights[0] = stream.normal(size=(D, D_i))
    all_weights[-1] = stream.normal(size=(D_o, D))
    all_biases[0] = stream.normal(size=(D, 1))
    all_biases[-1] = stream.normal(size=(D_o, 1))
    for layer in range(1, K):
        all_weights[layer] = stream.normal(size=(D, D))
        all_biases[layer] = stream.normal(size=(D, 1))
    return all_weights, all_biases


def random_network(layer_sizes: Iterable[int], *, rng: int | np.random.Generator | None = None,
                   dtype: DTypeLike = np.float64, weight_std: float | None = None,
                   bias_std: float = 0.1) -> Network:
    """A random network with ``layer_sizes = [D_i, D_1, ..., D_K, D_o]`` (K = 0: one linear layer).

    Weights are He-normal, std sqrt(2 / D_in) per layer, unless ``weight_std`` (a number) is given; biases
    are N(0, bias_std^2). ``rng`` is a seed or a ``np.random.Generator`` (None: a fresh, unseeded one).
    Returns ``(all_weights, all_biases)`` of ``dtype`` (float64 or float32).
    """
    if isinstance(layer_sizes, (str, bytes)) or not hasattr(layer_sizes, "__iter__"):
        raise TypeError(f"layer_sizes must be a list of integers [D_i, D_1, ..., D_o], got {layer_sizes!r}")
    sizes = [_check_count(d, f"layer_sizes[{i}]", 1) for i, d in enumerate(layer_sizes)]
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size, got {list(layer_sizes)}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float64, np.float32):
        raise TypeError(f"dtype must be float64 or float32, got {dtype}")
    shown = sizes if len(sizes) <= 6 else [*sizes[:3], "...", *sizes[-2:]]
    _check_size(sizes, f"random_network({shown})", dtype.itemsize)
    weight_std = _check_std(weight_std, "weight_std")
    bias_std = _check_std(bias_std, "bias_std")
    if bias_std is None:
        raise TypeError("bias_std must be a number, got None")
    generator = _generator(rng)
    all_weights, all_biases = [], []
    for D_in, D_out in zip(sizes[:-1], sizes[1:], strict=True):
        std = np.sqrt(2.0 / D_in) if weight_std is None else weight_std
        all_weights.append((std * generator.standard_normal((D_out, D_in))).astype(dtype))
        all_biases.append((bias_std * generator.standard_normal((D_out, 1))).astype(dtype))
    return all_weights, all_biases
