"""The JAX witness of a user's loss: ``jax.grad`` in scoped 64-bit mode, and the loss's evaluations batched.

JAX differentiates ``jax_loss_fn`` when given, or ``loss_fn`` itself when it is array-API generic (written
with ``xp = array_namespace(...)``, ``array_api_compat``): run on JAX arrays it then returns a JAX array
(``is_jax_array``), not a NumPy value. Either way it is a witness only if its value at the parameters is
``loss_fn``'s (``LOSS_MATCH_RTOL``): another function would be a false reference. 64-bit mode is switched
on for the call only (``jax.enable_x64``, as the oracle does), whatever the parameters' dtype: the witness is
the exact derivative at the float64 copy of the parameters.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from ..limits import CHUNK_ENTRIES, CHUNK_WIDTH
from ..tolerances import LOSS_MATCH_RTOL
from ..usercode import describe_exception


class JaxWitness(NamedTuple):
    """``gradient``: dL/dtheta (P,) float64, or None when JAX could not witness; ``batch``: the loss at
    many single-coordinate moves, ``batch(theta, index, delta)`` -> (M,), or None; ``note``: why not, or
    what ran."""

    gradient: np.ndarray | None
    batch: object
    note: str


def _x64():
    from oracle.jax_network import _x64 as scoped

    return scoped(True)


def _differentiable(loss_fn, flat):
    """theta (a JAX vector) -> the loss: the tree rebuilt from slices of theta, as ``flat.tree`` does."""
    from ..compare.pytree import unflatten

    def loss_of(theta):
        pieces = zip(flat.bounds, flat.bounds[1:], flat.shapes, strict=False)
        leaves = [theta[a:b].reshape(shape) for a, b, shape in pieces]
        value = loss_fn(unflatten(flat.structure, leaves))
        return value.reshape(()) if getattr(value, "ndim", 0) else value

    return loss_of


def jax_witness(loss_fn, flat, theta: np.ndarray, numpy_loss: float, dtype: str, *,
                explicit: bool) -> JaxWitness:
    """``jax.grad`` of ``loss_fn`` at ``theta`` (see the module's docstring). ``explicit``: ``loss_fn`` is
    the user's ``jax_loss_fn``, whose failure or other value is a ValueError; otherwise either is a note."""
    who = "jax_loss_fn" if explicit else "loss_fn"
    if not explicit and getattr(loss_fn, "in_worker", False):  # grading.isolation.RemoteFunction
        return JaxWitness(None, None, "jax: not run (loss_fn runs in a worker process, where only its values "
                                      "come back: finite differences are the witness; from Python, "
                                      "check_gradient adds jax.grad for an array-API loss)")
    try:
        import jax
        import jax.numpy as jnp
        from array_api_compat import is_jax_array
    except ImportError as exc:  # pragma: no cover (both are dependencies)
        return JaxWitness(None, None, f"jax: not run ({exc})")
    loss_of = _differentiable(loss_fn, flat)
    try:
        with _x64():
            point = jnp.asarray(theta, dtype=jnp.float64)
            value = loss_of(point)
            if not explicit and not is_jax_array(value):
                return JaxWitness(None, None, f"jax: not run (loss_fn returned {type(value).__name__} on JAX "
                                              "arrays: it is not array-API generic; pass jax_loss_fn)")
            gradient = np.asarray(jax.grad(loss_of)(point), dtype=np.float64)
            value = float(value)
    except Exception as exc:  # noqa: BLE001 (the user's function on JAX arrays: any failure says "not generic")
        if explicit:
            raise ValueError(f"jax_loss_fn failed on JAX arrays: {describe_exception(exc)}") from None
        return JaxWitness(None, None, f"jax: not run (loss_fn failed on JAX arrays: {type(exc).__name__}; "
                                      "to have jax.grad as a witness, write it with "
                                      "xp = array_namespace(...) or pass jax_loss_fn)")
    rtol = LOSS_MATCH_RTOL[dtype]
    if not abs(value - numpy_loss) <= rtol * max(abs(numpy_loss), abs(value)) + 1e-300:
        message = (f"{who} on JAX arrays gives the loss {value!r}, loss_fn gives {numpy_loss!r} (beyond rtol "
                   f"{rtol:g}): not the same function")
        if explicit:
            raise ValueError(message + "; jax_loss_fn must compute loss_fn's loss")
        return JaxWitness(None, None, f"jax: not run ({message})")
    if not np.all(np.isfinite(gradient)):
        return JaxWitness(None, None, "jax: not used (jax.grad returned NaN or inf)")
    return JaxWitness(gradient, _batched(loss_of, theta.size), f"jax.grad of {who} in float64")


def _batched(loss_of, size: int):
    """The loss at many single-coordinate moves in one ``jax.vmap``, in chunks of ``CHUNK_ENTRIES``."""
    import jax
    import jax.numpy as jnp

    @jax.jit
    def many(theta, index, delta):
        return jax.vmap(lambda i, d: loss_of(theta.at[i].add(d)))(index, delta)

    width = max(1, min(CHUNK_WIDTH, CHUNK_ENTRIES // max(size, 1)))  # one compiled shape for every call

    def batch(theta, index, delta):
        out = np.empty(len(index))
        with _x64():
            point = jnp.asarray(theta, dtype=jnp.float64)
            for start in range(0, len(index), width):
                stop = min(start + width, len(index))
                i = np.zeros(width, np.int64)
                d = np.zeros(width)
                i[: stop - start], d[: stop - start] = index[start:stop], delta[start:stop]
                out[start:stop] = np.asarray(many(point, i, d))[: stop - start]
        return out

    batch.width = width  # type: ignore[attr-defined]
    return batch


def batch_seconds(batch, theta: np.ndarray) -> float:
    """Seconds per evaluation through ``batch``: one call compiles, the next (``batch.width`` moves) is
    timed."""
    index = np.arange(batch.width) % theta.size
    delta = np.zeros(batch.width)
    batch(theta, index, delta)
    start = time.perf_counter()
    batch(theta, index, delta)
    return (time.perf_counter() - start) / batch.width
