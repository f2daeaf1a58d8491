"""Peer methods outside this project, for the benchmarks only: PyTorch eager autograd on the CPU.

Optional: ``pip install ".[peers]"``. Importing this module imports torch (an ImportError without it).
"""

from __future__ import annotations

import numpy as np
import torch


def torch_gradients(all_weights, all_biases, net_input, y):
    """``(all_dl_dweights, all_dl_dbiases)`` by ``torch.autograd``, eager, float64, ReLU, least squares.

    The notebook's network on column vectors: f_k = beta_k + Omega_k h_k, h_{k+1} = ReLU(f_k), no
    activation after the last layer, loss 0.5 * sum((out - y)^2). NumPy arrays in and out, as a user
    holding NumPy parameters would call it (``torch.from_numpy`` shares memory: no copy in).
    """
    weights = [torch.from_numpy(w).requires_grad_() for w in all_weights]
    biases = [torch.from_numpy(b).requires_grad_() for b in all_biases]
    h = torch.from_numpy(net_input)
    for k, (omega, beta) in enumerate(zip(weights, biases, strict=True)):
        f = torch.addmm(beta, omega, h)
        h = torch.relu(f) if k < len(weights) - 1 else f
    loss = 0.5 * torch.sum((h - torch.from_numpy(y)) ** 2)
    loss.backward()
    return [w.grad.numpy() for w in weights], [b.grad.numpy() for b in biases]


def _agrees_with_manual() -> bool:  # pragma: no cover (a manual spot check: python benchmarks/peers.py)
    from manual_backprop import manual_gradients, udl_network

    W, B = udl_network()
    x, y = np.array([[1.2]]), np.array([[20.0]])
    ours, theirs = manual_gradients(W, B, x, y), torch_gradients(W, B, x, y)
    return all(np.allclose(a, b, rtol=1e-12, atol=1e-12)
               for p, q in zip(ours, theirs, strict=True) for a, b in zip(p, q, strict=True))


if __name__ == "__main__":  # pragma: no cover
    print("torch", torch.__version__, "agrees with manual_gradients:", _agrees_with_manual())
