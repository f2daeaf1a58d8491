"""The gradient in the input, dL/d(net_input) = Omega_0^T delta_0, against jax.grad and differences."""

from __future__ import annotations

import numpy as np
import pytest

from derivative_helpers import make_problem
from manual_backprop import ACTIVATIONS, LOSSES, check_derivative, manual_input_gradient
from oracle import jax_input_gradient


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_three_way_every_activation_and_loss(activation, loss):
    w, b, x, y = make_problem(41, loss=loss)
    report = check_derivative(w, b, x, y, derivative="input", activation=activation, loss=loss)
    assert report.ok, str(report)
    assert not report.inconclusive
    assert report.rows[0].name == "net_input" and report.rows[0].shape == x.shape


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_three_way_float32(activation):
    w, b, x, y = make_problem(42, dtype=np.float32)
    report = check_derivative(w, b, x, y, derivative="input", activation=activation)
    assert report.ok, str(report)
    assert manual_input_gradient(w, b, x, y, activation=activation).dtype == np.float32


@pytest.mark.parametrize("sizes", [(4, 2), (6, 1, 3), (3, 8, 2, 9, 4, 6, 5, 2)])
def test_depths_and_unequal_widths(sizes):
    w, b, x, y = make_problem(43, sizes=sizes, batch=5)
    report = check_derivative(w, b, x, y, derivative="input", activation="relu")
    assert report.ok, str(report)


def test_each_column_is_its_own_examples_gradient():
    w, b, x, y = make_problem(44, sizes=(3, 5, 2), batch=4)
    whole = manual_input_gradient(w, b, x, y, activation="sigmoid")
    for n in range(4):
        alone = manual_input_gradient(w, b, x[:, n:n + 1], y[:, n:n + 1], activation="sigmoid")
        np.testing.assert_allclose(whole[:, n:n + 1], alone, rtol=1e-14, atol=1e-16)


def test_nothing_is_changed_and_integers_are_promoted():
    w = [np.array([[1, -2], [0, 3]]), np.array([[2, 1]])]
    b = [np.array([[1], [0]]), np.array([[-1]])]
    x = np.array([[1], [3]])
    y = np.array([[2]])
    copies = [a.copy() for a in [*w, *b, x, y]]
    gradient = manual_input_gradient(w, b, x, y)
    assert gradient.dtype == np.float64 and gradient.shape == (2, 1)
    for before, after in zip(copies, [*w, *b, x, y], strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(gradient, jax_input_gradient(w, b, x, y))
    with pytest.raises(ValueError, match=r"net_input has shape \(3, 1\), expected \(2, N\)"):
        manual_input_gradient(w, b, np.ones((3, 1)), y)
