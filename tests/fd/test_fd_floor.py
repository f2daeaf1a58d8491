"""The finite-difference witness follows the rounding floor of the loss it differences (issue 10, item 1).

Targets, inputs or weights far from 1 make the loss (~|y|^2) grow faster than the gradient (~|y|): the
floor, eps times the magnitudes each perturbed evaluation rounds, over the step, must join the tolerance,
or a right gradient fails. And it must not swallow bugs: a gradient x2, of the wrong sign or x1.01 still
fails wherever the differences can resolve it.
"""

import numpy as np
import pytest

from manual_backprop import random_network, three_way_check
from manual_backprop.checks.three_way import _compare_fd
from manual_backprop.fd.fd_witness import fd_witness
from manual_backprop.maths.activations import ACTIVATIONS, get_activation
from manual_backprop.maths.backprop import backward, forward
from manual_backprop.maths.losses import loss_gradient, loss_terms
from manual_backprop.tolerances import gradient_scale, tolerance_for
from manual_backprop.validate import LOSSES, check_target

# (input factor, target factor, parameter factor)
SCALES = {
    "targets x1e6": (1.0, 1e6, 1.0),
    "inputs x1e6": (1e6, 1.0, 1.0),
    "weights x1e3": (1.0, 1.0, 1e3),
    "weights x1e-3": (1.0, 1.0, 1e-3),
}
SHAPES = ([3, 4, 2], [2, 5, 5, 3], [4, 3])


def test_the_issues_example_unnormalised_targets_is_not_a_false_alarm():
    rng = np.random.default_rng(0)
    weights, biases = random_network([3, 4, 2], rng=0)
    x = rng.standard_normal((3, 3))
    y = 1e6 * rng.standard_normal((2, 3))
    report = three_way_check(weights, biases, x, y)
    assert report.manual_vs_jax.ok and report.manual_vs_fd.ok and report.jax_vs_fd.ok, str(report)
    assert report.ok


@pytest.mark.parametrize("seed", range(10))
def test_targets_x1e6_pass_on_ten_networks(seed):
    rng = np.random.default_rng(seed)
    weights, biases = random_network([3, 4, 2], rng=rng)
    x = rng.standard_normal((3, 3))
    assert three_way_check(weights, biases, x, 1e6 * rng.standard_normal((2, 3))).ok


def _case(seed, activation, loss, dtype, scale):
    rng = np.random.default_rng(seed)
    sizes = SHAPES[seed % len(SHAPES)]
    weights, biases = random_network(sizes, rng=rng)
    xs, ys, ws = SCALES[scale]
    n = int(rng.integers(1, 5))
    x = xs * rng.standard_normal((sizes[0], n))
    if loss in ("least_squares", "sum_of_squares"):
        y = ys * rng.standard_normal((sizes[-1], n))
    elif loss == "binary_cross_entropy":
        y = rng.uniform(0, 1, (sizes[-1], n))
    else:
        y = rng.integers(0, sizes[-1], n)
    weights = [(ws * w).astype(dtype) for w in weights]
    biases = [(ws * b).astype(dtype) for b in biases]
    return weights, biases, x.astype(dtype), y


def _witness_and_gradient(weights, biases, x, y, activation, loss):
    act = get_activation(activation)
    target = check_target(y, loss, weights[-1].shape[0], x.shape[1], weights[0].dtype)
    forward_pass = forward(weights, biases, x, act)
    with np.errstate(over="ignore"):
        if not np.isfinite(loss_terms(loss, forward_pass[0], target).sum()):
            return None
    manual = backward(weights, [f.copy() for f in forward_pass[1]], forward_pass[2],
                      loss_gradient(loss, forward_pass[0], target), act)  # fmt: skip
    return fd_witness(weights, biases, target, act, loss, forward_pass, "central", None), manual


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", SCALES)
def test_no_false_alarm_at_any_scale_and_bugs_still_fail(scale, dtype):
    """Every activation and loss, 4 networks each: the right gradient passes against finite differences;
    x2 and a flipped sign fail wherever the differences resolve the gradient (floor below 10% of its
    scale), and x1.01 fails in float64 wherever the floor is below 0.1% of it (float32's table allows 3%)."""
    main = tolerance_for(dtype, "central")
    resolved = 0
    for activation in ACTIVATIONS:
        for loss in LOSSES:
            for seed in range(4):
                made = _witness_and_gradient(*_case(seed, activation, loss, dtype, scale), activation, loss)
                if made is None:
                    continue
                witness, manual = made
                label = f"{scale} {np.dtype(dtype).name} {activation} {loss} seed {seed}"
                assert _compare_fd(manual, witness, "manual vs fd", main).ok, label
                scale_of = gradient_scale(manual)
                floor = max(float(np.max(f)) for part in witness.floor for f in part)
                if not np.any([np.any(g) for part in manual for g in part]) or floor > 0.1 * scale_of:
                    continue  # nothing the differences can resolve: manual vs jax decides there
                resolved += 1
                small_bug = dtype == np.float64 and floor < 1e-3 * scale_of
                for wrong in (2.0, -1.0) + ((1.01,) if small_bug else ()):
                    bad = [[wrong * g for g in part] for part in manual]
                    assert not _compare_fd(bad, witness, "bad vs fd", main).ok, (label, wrong)
    assert resolved >= 20  # the bug half of the test is not vacuous


def test_a_floor_that_loosens_the_check_says_so():
    rng = np.random.default_rng(0)
    weights, biases = random_network([3, 4, 2], rng=0)
    x = rng.standard_normal((3, 3))
    report = three_way_check(weights, biases, x, 1e6 * rng.standard_normal((2, 3)))
    assert any("resolve no better" in note for note in report.manual_vs_fd.notes)
    plain = three_way_check(weights, biases, x, rng.standard_normal((2, 3)))
    assert not any("resolve no better" in note for note in plain.manual_vs_fd.notes)


@pytest.mark.parametrize("scale", SCALES)
def test_three_way_in_float32_at_scale(scale):
    for activation, loss in (("relu", "least_squares"), ("tanh", "binary_cross_entropy")):
        weights, biases, x, y = _case(1, activation, loss, np.float32, scale)
        assert three_way_check(weights, biases, x, y, activation=activation, loss=loss).ok
