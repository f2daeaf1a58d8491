"""check_vjp: a layer's hand-written backward pass (its vector-Jacobian product), checked input by input.

    report = check_vjp(affine_forward, affine_backward, (x, w, b))

``forward(*inputs)`` returns the output array, or a pair ``(out, cache)`` (a 2-tuple is always read as
output and cache, CS231n style); ``backward(dout, cache)`` when a cache came back, else
``backward(dout, *inputs)``; it returns one gradient per input (a tuple, or one array for one input). The
gradient checked is that of <dout, forward(*inputs)> (a random ``dout`` from ``seed``, or ``cotangent``),
by the witnesses of ``check_gradient``; inputs are named by position (``[0]``, ``[1]``, ...). Layers with
several outputs are out of scope.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..compare.pytree import flatten
from ..maths.network import _check_seed
from .user_check import _check, _copies
from .user_report import GradientReport


def _output(result, who: str = "forward"):
    """``(out, has_cache, cache)`` of what ``forward`` returned; TypeError unless an array comes out."""
    cached = isinstance(result, tuple) and len(result) == 2
    out = result[0] if cached else result
    try:
        array = np.asarray(out)
    except Exception:  # noqa: BLE001 (whatever the user returned)
        array = None
    if array is None or array.dtype.kind not in "fiu":
        shown = "its output (the first of the pair)" if cached else "an array"
        raise TypeError(f"{who} must return an array or a pair (out, cache); {shown} is a "
                        f"{type(out).__name__}")
    return out, cached, result[1] if cached else None


def check_vjp(forward: Callable, backward: Callable, inputs, *, cotangent=None, rtol: float | None = None,
              atol: float | None = None, seed=0, fd: str = "auto") -> GradientReport:
    """Check ``backward`` against the gradient of <dout, forward(*inputs)>, one row per input.

    ``inputs``: a tuple (or list) of float arrays, or one array; never modified. ``cotangent``: ``dout``,
    of the output's shape (None: standard normal entries from ``seed``). ``rtol``, ``atol``, ``seed`` and
    ``fd`` as in ``check_gradient``. Returns a ``GradientReport`` of kind "vjp"."""
    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    _, leaves, structure = flatten(tuple(inputs), "inputs")
    if structure.kind != "tuple" or any(c.kind != "leaf" for c in structure.children):
        raise TypeError("inputs must be a tuple of arrays, one per argument of forward")
    out, cached, cache = _output(forward(*_copies(leaves)))
    shape = np.shape(out)
    if cotangent is None:
        # A stream of its own: inputs drawn from default_rng(seed) must not be the cotangent itself (x^T x
        # is symmetric, and a transposed gradient would then pass)
        dout = np.random.default_rng([_check_seed(seed), 0xC07A]).standard_normal(shape)
    else:
        dout = np.array(cotangent, dtype=np.float64, copy=True)
        if dout.shape != shape:
            raise ValueError(f"cotangent has shape {dout.shape}; forward's output has shape {shape}")
    given = backward(dout.copy(), cache) if cached else backward(dout.copy(), *_copies(leaves))
    if len(leaves) == 1 and not isinstance(given, (tuple, list)):
        given = (given,)

    def loss_fn(args):
        value = forward(*args)
        value = value[0] if cached else value
        return (value * dout).sum()  # the array's own product and sum: NumPy or JAX alike

    names = [f"[{i}]" for i in range(len(leaves))]
    return _check(loss_fn, given, names, leaves, structure, jax_loss_fn=None, rtol=rtol, atol=atol, seed=seed,
                  fd=fd, who="backward", kind="vjp", name="inputs")
