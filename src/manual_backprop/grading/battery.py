"""The battery of networks a backward pass is graded on: deterministic cases, K = 0..8, one on its kinks.

Two batteries: ``make_battery``, every case counted (a ``.py`` file or a module: the function is meant to be
general), and ``make_notebook_battery``, the notebook's task first (its network's family: D_i = D_o = 1,
depths and widths through the globals K and D, batch 1) with the rest of the battery in a second group,
"beyond the notebook", that counts toward the verdict only when grading is strict.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..maths.activations import get_activation, other_side_at_kink
from ..maths.backprop import backward, forward
from ..maths.losses import loss_gradient
from ..maths.network import _check_seed, random_network, udl_network
from ..objective import parse_objective
from ..validate import check_loss_name, check_target


@dataclass(frozen=True)
class Case:
    """One network of the battery: parameters, input (D_i, N) and target (D_o, N)."""

    name: str
    weights: list
    biases: list
    net_input: np.ndarray
    y: np.ndarray
    group: str = "task"  # "task": counts toward the verdict; "beyond": beyond the notebook (see --strict)

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
    loss = parse_objective(loss).base  # the target's form is the base loss's
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


def flipped_at_kink(act):
    """a'(f) with the other one-sided derivative at f = 0 (ReLU: 1 instead of 0): the classic slip."""
    _, other = other_side_at_kink(act.derivative)
    return lambda f: np.where(f == 0, f.dtype.type(other), act.derivative(f))


def _kink_network(act, loss: str, batch: int, seed: int, dtype):
    """Integer-valued parameters and input with pre-activations exactly 0 where a'(0) changes the gradient.

    For a smooth activation any such network does (a'(0) is no convention there).
    """
    flipped = flipped_at_kink(act) if act.kinked else None
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
    notebook_outputs = 3 if parse_objective(loss).base == "softmax_cross_entropy" else 1
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


# The notebook's task (notebook 7.2): the family of its network at batch 1: D_i = D_o = 1, as the notebook
# has them, depths and widths through the globals K and D, several seeds. Apart from the notebook's own
# network (output 1.907), each is drawn until its output has the sign asked for and every hidden layer has
# units on and off, so that a ReLU after the last layer, or a mask that ignores the sign of f, cannot pass.
# (name, K, D, output sign or None for the notebook's own network)
NOTEBOOK_FAMILY = (
    ("notebook", 5, 6, None),
    ("notebook shapes, negative output", 5, 6, -1),
    ("notebook shapes, positive output", 5, 6, 1),
    ("K=1, D=3", 1, 3, -1),
    ("K=2, D=4", 2, 4, 1),
    ("K=3, D=6", 3, 6, -1),
    ("K=8, D=5", 8, 5, -1),
    ("notebook again", 5, 6, None),
)
BEYOND_NOTEBOOK = "beyond"


def _on_and_off(weights, biases, x, act) -> bool:
    """Every hidden layer has a unit with f > 0 and one with f < 0 (so that its mask matters)."""
    _, all_f, _ = forward(weights, biases, x, act)
    return all(bool((f > 0).any() and (f < 0).any()) for f in all_f[:-1])


def _family_case(name, K, D, sign, act, loss, dtype, seed, index):
    outputs = 3 if parse_objective(loss).base == "softmax_cross_entropy" else 1  # else a constant softmax
    rng = np.random.default_rng([seed, 7, index])
    if sign is None:
        weights, biases = udl_network(seed=seed, K=K, D=D, D_o=outputs)
        x = np.full((1, 1), 1.2)
        y = _target(loss, rng, outputs, 1, dtype, np.full((outputs, 1), 20.0))
        return Case(name, weights, biases, x, y)
    for attempt in range(1000):
        network_seed = int(rng.integers(0, 2**31)) if attempt else (seed * 7919 + 101 * index) % 2**31
        weights, biases = udl_network(seed=network_seed, K=K, D=D, D_o=outputs)
        x = rng.standard_normal((1, 1))
        output, _, _ = forward(weights, biases, x, act)
        if np.sign(output[0, 0]) == sign and _on_and_off(weights, biases, x, act):
            break
    y = _target(loss, rng, outputs, 1, dtype)
    return Case(name, weights, biases, x, y)


def make_notebook_battery(
    activation: str = "relu", loss: str = "least_squares", dtype=np.float64, seed: int = 0,
    beyond: bool = True,
) -> list:
    """The notebook's task (``NOTEBOOK_FAMILY``, group "task", batch 1), then with ``beyond`` the cases
    beyond it (group "beyond": the battery's other shapes, its exact kinks, and the notebook's shapes on a
    batch of 3), each a ``Case`` with its ``group``."""
    act = get_activation(activation)
    loss = check_loss_name(loss)
    seed = _check_seed(seed)
    dtype = np.dtype(dtype)
    cases = []
    for index, (name, K, D, sign) in enumerate(NOTEBOOK_FAMILY):
        case = _family_case(name, K, D, sign, act, loss, dtype, seed, index)
        cases.append(_as_dtype(case, dtype))
    if beyond:
        notebook_names = {name for name, sizes, _ in BATTERY if sizes is None}
        others = [c for c in make_battery(activation, loss, 1, dtype, seed) if c.name not in notebook_names]
        batch = [c for c in make_battery(activation, loss, 3, dtype, seed) if c.name == "notebook"]
        for case in others + [dataclasses.replace(c, name="notebook shapes, batch 3") for c in batch]:
            cases.append(dataclasses.replace(case, group=BEYOND_NOTEBOOK))
    return cases


def _as_dtype(case: Case, dtype) -> Case:
    return dataclasses.replace(case, weights=[w.astype(dtype) for w in case.weights],
                               biases=[b.astype(dtype) for b in case.biases],
                               net_input=case.net_input.astype(dtype), y=np.asarray(case.y).astype(dtype))
