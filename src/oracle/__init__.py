"""An independent witness: the notebook's network written in ``jax.numpy`` and differentiated by ``jax.grad``.

Nothing here imports ``manual_backprop``: the oracle shares the conventions (column vectors, Omega_k of shape
(D_out, D_in), beta_k of shape (D_out, 1), no activation after the last layer, losses summed over the batch)
but none of the code.
"""

from .jax_network import ACTIVATIONS, LOSSES, jax_gradients, jax_loss, jax_network_output

__all__ = ["ACTIVATIONS", "__version__", "LOSSES", "jax_gradients", "jax_loss", "jax_network_output"]

from .jax_derivatives import (  # noqa: E402
    jax_ggn_vp,
    jax_hvp,
    jax_input_gradient,
    jax_jvp,
    jax_loss_jvp,
    jax_per_example_gradients,
)

__all__ += [
    "jax_ggn_vp",
    "jax_hvp",
    "jax_input_gradient",
    "jax_jvp",
    "jax_loss_jvp",
    "jax_per_example_gradients",
]

__version__: str  # see __getattr__ below


def __getattr__(name: str) -> str:
    if name == "__version__":  # read from the installed metadata (pyproject's version) on first access only
        from importlib.metadata import version

        return version("manual-backprop")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
