"""Time one gradient method in a fresh process that imports only what the method needs.

    python benchmarks/cold.py METHOD CASE.npz [--block S] [--repeats N] [--budget S]

As a user's training script does: NumPy and the one library, nothing else, so the allocator starts cold
(in the harness's own process, JAX, matplotlib and every other method have warmed it). The case's arrays
come from an ``.npz`` the harness wrote (``W0..WK``, ``B0..BK``, ``x``, ``y``). Prints one JSON object:
the timing (``timing.time_round_robin``) and which of jax, torch and manual_backprop the process imported.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from timing import time_round_robin

METHODS = ("manual", "jax_jit", "torch_eager")


def load(path: str):
    data = np.load(path)
    layers = sum(1 for name in data.files if name.startswith("W"))
    return ([data[f"W{k}"] for k in range(layers)], [data[f"B{k}"] for k in range(layers)],
            data["x"], data["y"])


def gradient_function(method: str):
    if method == "manual":
        from manual_backprop import manual_gradients

        return manual_gradients
    if method == "jax_jit":
        from oracle import jax_gradients

        return jax_gradients
    if method == "torch_eager":
        from peers import torch_gradients

        return torch_gradients
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("method", choices=METHODS)
    parser.add_argument("case", help="the .npz of the case's arrays")
    parser.add_argument("--block", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--budget", type=float, default=1.5)
    args = parser.parse_args(argv)
    all_weights, all_biases, net_input, y = load(args.case)
    gradients = gradient_function(args.method)
    stats = time_round_robin({args.method: lambda: gradients(all_weights, all_biases, net_input, y)},
                             args.block, args.repeats, args.budget)[args.method]
    stats["imported"] = {name: name in sys.modules for name in ("jax", "torch", "manual_backprop",
                                                                 "matplotlib")}
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
