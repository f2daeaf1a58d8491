"""The published notebook's loss, sum((out - y)^2): exactly twice least_squares, for every witness."""

from __future__ import annotations

import numpy as np
import pytest

from manual_backprop import (
    LOSSES,
    compute_loss,
    compute_network_output,
    d_loss_d_output,
    manual_gradients,
    numerical_gradients,
    random_network,
    udl_network,
)
from oracle import LOSSES as ORACLE_LOSSES
from oracle import jax_gradients, jax_loss

NET_INPUT = np.array([[1.2]])
Y = np.array([[20.0]])


def test_sum_of_squares_is_a_loss_everywhere():
    assert "sum_of_squares" in LOSSES and "sum_of_squares" in ORACLE_LOSSES
    assert LOSSES == ORACLE_LOSSES


def test_the_published_notebooks_loss_is_327_371():
    weights, biases = udl_network()
    net_output, _, _ = compute_network_output(NET_INPUT, weights, biases)
    assert f"{compute_loss(net_output, Y, loss='sum_of_squares'):3.3f}" == "327.371"
    assert f"{compute_loss(net_output, Y):3.3f}" == "163.685"
    assert compute_loss(net_output, Y, loss="sum_of_squares") == 2 * compute_loss(net_output, Y)
    assert jax_loss(weights, biases, NET_INPUT, Y, loss="sum_of_squares") == pytest.approx(327.371, abs=5e-4)


def test_definition(rng):
    z, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert compute_loss(z, y, loss="sum_of_squares") == pytest.approx(np.sum((z - y) ** 2), rel=1e-15)
    np.testing.assert_array_equal(d_loss_d_output(z, y, loss="sum_of_squares"), 2 * (z - y))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_gradient_is_exactly_twice_least_squares(rng, dtype):
    weights, biases = random_network([3, 5, 4, 2], rng=rng, dtype=dtype)
    x = rng.standard_normal((3, 4)).astype(dtype)
    y = rng.standard_normal((2, 4)).astype(dtype)
    for witness in (manual_gradients, jax_gradients):
        half = witness(weights, biases, x, y, loss="least_squares")
        full = witness(weights, biases, x, y, loss="sum_of_squares")
        for h, f in zip([*half[0], *half[1]], [*full[0], *full[1]], strict=True):
            assert f.dtype == dtype
            # A factor 2 adds no rounding: the chain rule is linear in dL/d(output).
            np.testing.assert_array_equal(f, 2 * h, err_msg=witness.__name__)


def test_finite_differences_are_twice_least_squares(rng):
    weights, biases = random_network([2, 4, 1], rng=rng)
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((1, 3))
    half = numerical_gradients(weights, biases, x, y, loss="least_squares")
    full = numerical_gradients(weights, biases, x, y, loss="sum_of_squares")
    for h, f in zip([*half[0], *half[1]], [*full[0], *full[1]], strict=True):
        np.testing.assert_allclose(f, 2 * h, rtol=1e-12, atol=1e-14)
    manual = manual_gradients(weights, biases, x, y, loss="sum_of_squares")
    for m, f in zip([*manual[0], *manual[1]], [*full[0], *full[1]], strict=True):
        np.testing.assert_allclose(f, m, rtol=1e-6, atol=1e-8)


def test_the_notebooks_bias_gradient_doubles():
    weights, biases = udl_network()
    half = manual_gradients(weights, biases, NET_INPUT, Y)[1][0]
    full = manual_gradients(weights, biases, NET_INPUT, Y, loss="sum_of_squares")[1][0]
    np.testing.assert_array_equal(full, 2 * half)


def test_the_three_way_check_takes_it():
    from manual_backprop import three_way_check

    weights, biases = udl_network()
    report = three_way_check(weights, biases, NET_INPUT, Y, loss="sum_of_squares")
    assert report.ok and f"{report.loss_value:.3f}" == "327.371"
