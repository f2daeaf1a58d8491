"""Notebook namespaces for the display tests: the published-style cells run in a dict, solved right or not."""

from __future__ import annotations

import numpy as np

import published_style as ps

# The notebook's loss cell in the other least-squares convention, 0.5 * sum((out - y)^2): the default loss
# of check_backward, so a backward pass built on it passes whether or not the convention is read.
HALF_LOSS = ps.LOSS.replace("np.sum((net_output-y) * (net_output-y))",
                            "0.5 * np.sum((net_output-y) * (net_output-y))").replace("2*(net_output -y)",
                                                                                      "(net_output -y)")
# The published-style backward pass with the ReLU mask forgotten: all_dl_df[layer-1] = all_dl_dh[layer].
NO_MASK = ps.BACKWARD.replace("indicator_function(all_f[layer-1]) * all_dl_dh[layer]", "all_dl_dh[layer]")
assert HALF_LOSS != ps.LOSS and NO_MASK != ps.BACKWARD


def namespace(*, backward: str = ps.BACKWARD, loss: str = HALF_LOSS, forward: str = ps.FORWARD,
              notebook: bool = False) -> dict:
    """The globals of a notebook whose network, forward pass, loss and backward pass cells have run;
    ``notebook``: marked as Jupyter's namespace is (``_ih``, its input history), so graded as a notebook."""
    names = {"np": np, "__name__": "__main__", **({"_ih": [""]} if notebook else {})}
    for source in (ps.NETWORK, forward, loss, backward):
        exec(source, names)  # our own test code, as the notebook's cells would run it
    return names
