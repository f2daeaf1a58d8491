"""The tolerance table's companions: the agreement formula, and the rounding allowance of float32 gradients
in large networks (two right gradients agree, bugs are still caught, float64 stays tight)."""

import numpy as np
import pytest

from manual_backprop import compare_gradients, manual_gradients, udl_network
from manual_backprop.maths.activations import ACTIVATIONS, get_activation
from manual_backprop.maths.backprop import backward, forward
from manual_backprop.maths.losses import loss_gradient
from manual_backprop.tolerances import agree, rounding_allowance
from oracle import jax_gradients


@pytest.fixture
def gradient():
    weights, biases = udl_network()
    return manual_gradients(weights, biases, np.array([[1.2]]), np.array([[20.0]]))


def test_agree_is_relative_to_the_entry_and_absolute_to_the_scale():
    expected = np.array([0.0, 1.0, 100.0, np.nan])
    actual = expected + np.array([0.5, 0.5, 0.5, 0.0])
    assert agree(actual, expected, rtol=0.0, atol=1.0, scale=0.5).tolist() == [True, True, True, False]
    assert agree(actual, expected, rtol=0.01, atol=0.0, scale=1.0).tolist() == [False, False, True, False]
    # the two parts add up: 0.5 <= 0.495 * 1 + 0.01 * |1.0|, though neither part alone allows it
    assert agree(actual, expected, rtol=0.01, atol=0.495, scale=1.0).tolist() == [False, True, True, False]


def _float32_network(depth=4, width=200, batch=8, seed=0):
    weights, biases = udl_network(seed=seed, K=depth, D=width)
    rng = np.random.default_rng(seed)
    x = np.full((1, batch), 1.2)
    x[:, 1:] += rng.standard_normal((1, batch - 1))
    y = np.full((1, batch), 20.0)
    cast = np.float32
    return [w.astype(cast) for w in weights], [b.astype(cast) for b in biases], x.astype(cast), y.astype(cast)


def _manual_jax_allowance(weights, biases, x, y, activation):
    act = get_activation(activation)
    out, all_f, all_h = forward(weights, biases, x, act)
    dl_df = loss_gradient("least_squares", out, y)
    manual = backward(weights, all_f, all_h, dl_df, act)
    oracle = jax_gradients(weights, biases, x, y, activation=activation)
    allowance = rounding_allowance(
        weights, all_f, all_h, dl_df, act.derivative, weights[0].dtype,
        loss_derivative=lambda z: loss_gradient("least_squares", z, y),
    )  # fmt: skip
    return manual, oracle, allowance


def test_two_right_float32_gradients_of_a_large_tanh_network_agree_and_bugs_are_still_caught():
    # manual-backprop check --depth 4 --width 200 --batch 8 --activation tanh --dtype float32 once failed
    # manual vs jax with 0.277 against 1e-5 x scale 8.9e3, before the rounding allowance.
    # (Whether the max|g|-only tolerance alone raises the false alarm depends on JAX's own float32
    # rounding, which changes between versions; the allowance must cover it either way.)
    manual, oracle, allowance = _manual_jax_allowance(*_float32_network(), "tanh")
    comparison = compare_gradients(oracle, manual, allowance=allowance, label="manual vs jax")
    assert comparison.ok, str(comparison)
    assert comparison.notes and "float32" in comparison.notes[0]
    for part, layer, change in ((0, 0, 2.0), (1, 2, -1.0), (0, 4, 1.01)):
        wrong = ([g.copy() for g in manual[0]], [g.copy() for g in manual[1]])
        wrong[part][layer] = wrong[part][layer] * np.float32(change)
        failing = compare_gradients(oracle, wrong, allowance=allowance).failing
        assert [(r.layer, r.kind) for r in failing] == [(layer, ("weights", "biases")[part])]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_the_allowance_covers_float32_rounding_against_a_float64_reference(activation):
    weights, biases, x, y = _float32_network(depth=3, width=100, batch=4, seed=3)
    manual, oracle, allowance = _manual_jax_allowance(weights, biases, x, y, activation)
    up = [[a.astype(np.float64) for a in part] for part in (weights, biases)]
    reference = jax_gradients(*up, x.astype(np.float64), y.astype(np.float64), activation=activation)
    for witness in (manual, oracle):
        for part in (0, 1):
            for got, ref, allowed in zip(witness[part], reference[part], allowance[part], strict=True):
                # an order of magnitude to spare, as ROUNDING_SIGMAS promises
                assert np.all(np.abs(got - ref) <= allowed / 8)


def test_the_allowance_leaves_float64_tight(gradient):
    weights, biases = udl_network()
    act = get_activation("relu")
    out, all_f, all_h = forward(weights, biases, np.array([[1.2]]), act)
    dl_df = loss_gradient("least_squares", out, np.array([[20.0]]))
    allowance = rounding_allowance(weights, all_f, all_h, dl_df, act.derivative, np.float64)
    scale = max(float(np.abs(g).max()) for part in gradient for g in part)
    assert max(float(a.max()) for part in allowance for a in part) < 1e-12 * scale
    nudged = ([g * (1 + 1e-8) for g in gradient[0]], [g * (1 + 1e-8) for g in gradient[1]])
    assert not compare_gradients(gradient, nudged, allowance=allowance).ok
