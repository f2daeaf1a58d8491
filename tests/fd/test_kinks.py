"""Pre-activations exactly 0: manual backprop and jax.grad take the same derivative at the kink, bit for bit.

relu'(0) = 0 (the notebook's ``f > 0``) and leaky_relu'(0) = 1 (``jax.nn.leaky_relu`` takes the ``f >= 0``
branch). The networks use small integer values, so every product and sum is exact in float64 and any
difference between the witnesses can only be a different convention at the kink.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from manual_backprop import compute_network_output, manual_gradients, numerical_gradients
from manual_backprop.maths.activations import ACTIVATIONS
from oracle import jax_gradients
from oracle.jax_network import ACTIVATIONS as JAX_ACTIVATIONS
from oracle.jax_network import _x64

KINKED = tuple(name for name, act in ACTIVATIONS.items() if act.kinked)
SMOOTH = tuple(name for name, act in ACTIVATIONS.items() if not act.kinked)


def zero_preactivation_network(rng, dtype=np.float64):
    """Omega_0 has zero rows 0 and 2, beta_0 = 0 there; the other layers are integer-valued.

    Layer 0's units 0 and 2 sit exactly on the kink for every example; the rest are on, away from it.
    """
    D_i, D, D_o, N = 3, 4, 2, 5
    omega_0 = rng.integers(1, 4, (D, D_i)).astype(dtype)
    omega_0[[0, 2]] = 0
    beta_0 = rng.integers(1, 3, (D, 1)).astype(dtype)
    beta_0[[0, 2]] = 0
    omega_1 = rng.integers(0, 4, (D, D)).astype(dtype)  # layer 1 stays >= 0: the slope 0.01 (inexact) unused
    beta_1 = rng.integers(0, 3, (D, 1)).astype(dtype)
    omega_2 = rng.integers(-3, 4, (D_o, D)).astype(dtype)
    beta_2 = rng.integers(-2, 3, (D_o, 1)).astype(dtype)
    net_input = rng.integers(1, 4, (D_i, N)).astype(dtype)  # positive: layer 0's live units stay on
    y = rng.integers(-5, 6, (D_o, N)).astype(dtype)
    return [omega_0, omega_1, omega_2], [beta_0, beta_1, beta_2], net_input, y


@pytest.mark.parametrize("activation", KINKED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_manual_and_jax_agree_exactly_at_zero(rng, activation, dtype):
    weights, biases, net_input, y = zero_preactivation_network(rng, dtype)
    _, all_f, _ = compute_network_output(net_input, weights, biases, activation=activation)
    assert np.array_equal(all_f[0][[0, 2]], np.zeros((2, net_input.shape[1])))
    manual_w, manual_b = manual_gradients(weights, biases, net_input, y, activation=activation)
    oracle_w, oracle_b = jax_gradients(weights, biases, net_input, y, activation=activation)
    for m, o in zip([*manual_w, *manual_b], [*oracle_w, *oracle_b], strict=True):
        assert m.dtype == o.dtype == dtype
        assert np.array_equal(m, o)


@pytest.mark.parametrize("activation", KINKED)
def test_derivative_convention_at_zero(rng, activation):
    weights, biases, net_input, y = zero_preactivation_network(rng)
    manual_w, manual_b = manual_gradients(weights, biases, net_input, y, activation=activation)
    # delta_0 = a'(f_0) * (Omega_1^T delta_1), with f_0 = 0 in rows 0 and 2.
    net_output, all_f, all_h = compute_network_output(net_input, weights, biases, activation=activation)
    delta_2 = net_output - y
    delta_1 = (weights[2].T @ delta_2) * ACTIVATIONS[activation].derivative(all_f[1])
    upstream = weights[1].T @ delta_1
    if activation == "relu":
        assert np.array_equal(manual_b[0][[0, 2]], np.zeros((2, 1)))
        assert np.array_equal(manual_w[0][[0, 2]], np.zeros((2, 3)))
    else:
        expected = upstream[[0, 2]].sum(axis=1, keepdims=True)  # slope 1 at 0
        assert np.array_equal(manual_b[0][[0, 2]], expected)
        assert np.any(expected != 0), "the check needs a non-zero upstream gradient to tell 1 from 0.01"


@pytest.mark.parametrize("activation", KINKED)
@pytest.mark.parametrize("method", ["central", "forward", "backward"])
def test_kink_entries_are_flagged(rng, activation, method):
    weights, biases, net_input, y = zero_preactivation_network(rng)
    *_, (kinks_w, kinks_b) = numerical_gradients(
        weights, biases, net_input, y, activation=activation, method=method, return_kinks=True
    )
    # Moving beta_0[i] or Omega_0[i, :] (input positive) for a unit at 0 goes up into f > 0 ("forward") or
    # down into f < 0 ("backward"). relu turns on going up (off is f <= 0); leaky_relu turns off going down
    # (on is f >= 0). Central differences go both ways.
    crosses = {
        ("relu", "central"): True,
        ("relu", "forward"): True,
        ("relu", "backward"): False,
        ("leaky_relu", "central"): True,
        ("leaky_relu", "forward"): False,
        ("leaky_relu", "backward"): True,
    }[activation, method]
    assert bool(kinks_b[0][0, 0]) is crosses and bool(kinks_b[0][2, 0]) is crosses
    assert bool(kinks_w[0][[0, 2]].all()) is crosses
    assert not kinks_b[0][[1, 3]].any()


def test_kink_flags_match_their_gradient_shapes(rng):
    weights, biases, net_input, y = zero_preactivation_network(rng)
    dl_dweights, dl_dbiases, (kinks_w, kinks_b) = numerical_gradients(
        weights, biases, net_input, y, return_kinks=True
    )
    for g, k in zip([*dl_dweights, *dl_dbiases], [*kinks_w, *kinks_b], strict=True):
        assert k.shape == g.shape and k.dtype == np.bool_


@pytest.mark.parametrize("activation", SMOOTH)
def test_smooth_activations_flag_nothing(rng, activation):
    weights, biases, net_input, y = zero_preactivation_network(rng)
    *_, (kinks_w, kinks_b) = numerical_gradients(
        weights, biases, net_input, y, activation=activation, return_kinks=True
    )
    assert not any(k.any() for k in [*kinks_w, *kinks_b])


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activation_derivatives_equal_jax_grad(activation, dtype):
    points = np.array([-30.0, -2.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 2.0, 30.0], dtype=dtype)
    manual = ACTIVATIONS[activation].derivative(points)
    with _x64(dtype == np.float64):
        grad = jax.vmap(jax.grad(JAX_ACTIVATIONS[activation]))
        expected = np.array(grad(points))
        values = np.array(JAX_ACTIVATIONS[activation](points))
    assert manual.dtype == dtype
    tol = tolerance = {np.float64: 1e-14, np.float32: 1e-6}[dtype]
    np.testing.assert_allclose(manual, expected, rtol=tolerance, atol=tol)
    np.testing.assert_allclose(ACTIVATIONS[activation].function(points), values, rtol=tolerance, atol=tol)


def test_relu_and_leaky_relu_at_zero_against_jax_grad():
    with _x64(True):
        relu_at_0 = float(jax.grad(jax.nn.relu)(0.0))
        leaky_at_0 = float(jax.grad(JAX_ACTIVATIONS["leaky_relu"])(0.0))
    zero = np.zeros(1)
    assert relu_at_0 == ACTIVATIONS["relu"].derivative(zero)[0] == 0.0
    assert leaky_at_0 == ACTIVATIONS["leaky_relu"].derivative(zero)[0] == 1.0


def test_sigmoid_keeps_its_tails():
    """1 / (1 + e^38) is 3.1e-17, not 0: gradients through saturated units stay nonzero, as in jax.grad."""
    f = np.array([-38.0, 38.0])
    with _x64(True):
        expected = np.array(jax.nn.sigmoid(f))
        slope = np.array(jax.vmap(jax.grad(jax.nn.sigmoid))(f))
    np.testing.assert_allclose(ACTIVATIONS["sigmoid"].function(f), expected, rtol=1e-12)
    assert ACTIVATIONS["sigmoid"].derivative(f)[0] == pytest.approx(slope[0], rel=1e-12)
    assert ACTIVATIONS["sigmoid"].derivative(f)[1] == pytest.approx(np.exp(-38.0), rel=1e-12)
