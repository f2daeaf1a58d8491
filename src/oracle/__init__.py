"""An independent witness: the notebook's network written in ``jax.numpy`` and differentiated by ``jax.grad``.

Nothing here imports ``manual_backprop``: the oracle shares the conventions (column vectors, Omega_k of shape
(D_out, D_in), beta_k of shape (D_out, 1), no activation after the last layer, losses summed over the batch)
but none of the code.
"""

from .jax_network import ACTIVATIONS, LOSSES, jax_gradients, jax_loss, jax_network_output

__version__: str  # see __getattr__ below

__all__ = ["ACTIVATIONS", "__version__", "LOSSES", "jax_gradients", "jax_loss", "jax_network_output"]


def __getattr__(name: str) -> str:
    if name == "__version__":  # computed on first access (see _version.py)
        from ._version import version

        return version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
