"""The battery of networks a backward pass is graded on: deterministic cases, K = 0..8, one on its kinks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import get_activation, other_side_at_kink
from .backprop import backward, forward
from .losses import loss_gradient
from .network import _check_seed, random_network, udl_network
from .validate import check_loss_name, check_target


@dataclass(frozen=True)
class Case:
    """One network of the battery: parameters, input (D_i, N) and target (D_o, N)."""

    name: str
    weights: list
    biases: list
    net_input: np.ndarray
    y: np.ndarray

    @property
    def sizes(self) -> tuple:
        return (self.weights[0].shape[1],) + tuple(w.shape[0] for w in self.weights)


# (name, layer sizes, seed): unequal widths so that a missing transpose cannot hide, K = 0..8, one square
# network (where a missing transpose runs and must be caught by value), pairs with equal shapes but
# different values (a function that remembers a previous call is caught), and a network sitting on its
# kinks.
BATTERY = (
    ("notebook", None, 0),
    ("notebook shapes, seed 1", None, 1),
    ("K=0", (3, 2), 10),
    ("K=1", (4, 7, 3), 11),
    ("K=2", (2, 5, 3, 4), 12),
    ("K=3 square", (4, 4, 4, 4, 4), 13),
    ("K=4", (3, 6, 2, 5, 4, 2), 14),
    ("K=8", (2, 3, 5, 4, 6, 3, 5, 2, 4, 3), 15),
    ("K=8, seed 16", (2, 3, 5, 4, 6, 3, 5, 2, 4, 3), 16),
    ("exact kinks", "kinks", 17),
    ("notebook again", None, 0),
)
# The "exact kinks" network has integer-valued parameters and input, so that pre-activations are exactly 0
# and the derivative convention at the kink (ReLU'(0) = 0, leaky ReLU'(0) = 1) decides the gradient.
KINK_SIZES = (3, 5, 4, 3)


def _target(loss: str, rng, rows: int, columns: int, dtype, least_squares=None):
    if loss in ("least_squares", "sum_of_squares"):
        return (2 * rng.standard_normal((rows, columns)) if least_squares is None else least_squares).astype(
            dtype
        )
    if loss == "binary_cross_entropy":
        return rng.uniform(size=(rows, columns)).astype(dtype)
    one_hot = np.zeros((rows, columns), dtype)
    one_hot[rng.integers(0, rows, columns), np.arange(columns)] = 1
    return one_hot


def _live(weights, x, act) -> bool:
    """Every layer's input has a live unit, so that no layer's gradient is zero by accident."""
    h = x
    for omega in weights[:-1]:
        h = act.function(omega @ h)
        if not np.any(h):
            return False
    return True


def _flipped_at_kink(act):
    """a'(f) with the other one-sided derivative at f = 0 (ReLU: 1 instead of 0): the classic slip."""
    _, other = other_side_at_kink(act.derivative)
    return lambda f: np.where(f == 0, f.dtype.type(other), act.derivative(f))


def _kink_network(act, loss: str, batch: int, seed: int, dtype):
    """Integer-valued parameters and input with pre-activations exactly 0 where a'(0) changes the gradient.

    For a smooth activation any such network does (a'(0) is no convention there).
    """
    flipped = _flipped_at_kink(act) if act.kinked else None
    for attempt in range(500):
        rng = np.random.default_rng([seed, 17, attempt])
        shapes = zip(KINK_SIZES[1:], KINK_SIZES[:-1], strict=True)
        weights = [rng.integers(-1, 2, shape).astype(float) for shape in shapes]
        biases = [rng.integers(-1, 2, (o, 1)).astype(float) for o in KINK_SIZES[1:]]
        x = rng.integers(-1, 2, (KINK_SIZES[0], batch)).astype(float)
        y = _target(loss, rng, KINK_SIZES[-1], batch, dtype, rng.integers(-2, 3, (KINK_SIZES[-1], batch)))
        net_output, all_f, all_h = forward(weights, biases, x, act)
        if not any((f == 0).any() for f in all_f[:-1]) or not _live(weights, x, act):
            continue
        if flipped is None:
            break
        delta = loss_gradient(loss, net_output, check_target(y, loss, KINK_SIZES[-1], batch, np.float64))
        right_w, right_b = backward(weights, all_f, all_h, delta, act)
        slipped_w, slipped_b = backward(weights, all_f, all_h, delta, act._replace(slope=flipped))
        pairs = zip(right_w + right_b, slipped_w + slipped_b, strict=True)
        if any(not np.allclose(a, b) for a, b in pairs):
            break
    return weights, biases, x, y


def make_battery(
    activation: str = "relu", loss: str = "least_squares", batch: int = 1, dtype=np.float64, seed: int = 0
) -> list:
    """The deterministic battery of ``Case``s (see ``BATTERY``)."""
    act = get_activation(activation)
    loss = check_loss_name(loss)
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be an integer >= 1, got {batch!r}")
    seed = _check_seed(seed)
    dtype = np.dtype(dtype)
    # A softmax over one output is constant (its gradient is 0): the notebook's shapes get 3 outputs there.
    notebook_outputs = 3 if loss == "softmax_cross_entropy" else 1
    cases = []
    for name, sizes, case_seed in BATTERY:
        rng = np.random.default_rng([seed, case_seed])
        if sizes is None:
            weights, biases = udl_network(seed=(seed + case_seed) % 2**32, D_o=notebook_outputs)
            x = np.full((1, batch), 1.2)
            x[:, 1:] += rng.standard_normal((1, batch - 1))
            y = _target(loss, rng, notebook_outputs, batch, dtype, np.full((notebook_outputs, batch), 20.0))
        elif sizes == "kinks":
            weights, biases, x, y = _kink_network(act, loss, batch, seed, dtype)
        else:
            for attempt in range(50):
                weights, biases = random_network(
                    sizes, rng=np.random.default_rng([seed, case_seed, attempt]), bias_std=0.5
                )
                x = rng.standard_normal((sizes[0], batch))
                if _live(weights, x, act):
                    break
            y = _target(loss, rng, sizes[-1], batch, dtype)
        cases.append(
            Case(
                name,
                [w.astype(dtype) for w in weights],
                [b.astype(dtype) for b in biases],
                x.astype(dtype),
                y,
            )
        )
    return cases
