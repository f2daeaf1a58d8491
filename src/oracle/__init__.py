"""An independent witness: the notebook's network written in ``jax.numpy`` and differentiated by ``jax.grad``.

Nothing here imports ``manual_backprop``: the oracle shares the conventions (column vectors, Omega_k of shape
(D_out, D_in), beta_k of shape (D_out, 1), no activation after the last layer, losses summed over the batch)
but none of the code.
"""

from ._version import __version__
from .jax_network import ACTIVATIONS, LOSSES, jax_gradients, jax_loss, jax_network_output

__all__ = ["ACTIVATIONS", "__version__", "LOSSES", "jax_gradients", "jax_loss", "jax_network_output"]
