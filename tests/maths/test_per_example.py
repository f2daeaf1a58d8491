"""Per-example gradients by hand (einsum over the deltas), against jax.vmap(jax.grad) and differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derivative_helpers import make_problem
from manual_backprop import (
    ACTIVATIONS,
    LOSSES,
    check_derivative,
    manual_gradients,
    manual_per_example_gradients,
)
from oracle import jax_per_example_gradients

SMALL = (3, 4, 3)  # finite differences per parameter and per example: small sizes


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_three_way_every_activation_and_loss(activation, loss):
    w, b, x, y = make_problem(31, sizes=SMALL, batch=3, loss=loss)
    report = check_derivative(w, b, x, y, derivative="per_example", activation=activation, loss=loss)
    assert report.ok, str(report)
    assert not report.inconclusive
    assert report.rows[0].shape == (3, 4, 3) and report.rows[1].shape == (3, 4, 1)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_three_way_float32(activation):
    w, b, x, y = make_problem(32, sizes=SMALL, batch=3, dtype=np.float32, loss="binary_cross_entropy")
    report = check_derivative(w, b, x, y, derivative="per_example", activation=activation,
                              loss="binary_cross_entropy")  # fmt: skip
    assert report.ok, str(report)


@pytest.mark.parametrize("sizes", [(4, 2), (2, 5, 1, 4, 3, 2, 3, 2)])
def test_depths_and_unequal_widths(sizes):
    w, b, x, y = make_problem(33, sizes=sizes, batch=2)
    report = check_derivative(w, b, x, y, derivative="per_example", activation="softplus")
    assert report.ok, str(report)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), batch=st.integers(1, 9), activation=st.sampled_from(sorted(ACTIVATIONS)),
       loss=st.sampled_from(LOSSES), dtype=st.sampled_from([np.float64, np.float32]))
def test_sum_over_the_batch_is_the_batch_gradient(seed, batch, activation, loss, dtype):
    w, b, x, y = make_problem(seed, sizes=(3, 6, 4, 3), batch=batch, dtype=dtype, loss=loss)
    per_w, per_b = manual_per_example_gradients(w, b, x, y, activation=activation, loss=loss)
    g_w, g_b = manual_gradients(w, b, x, y, activation=activation, loss=loss)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for per, g in zip(per_w + per_b, g_w + g_b, strict=True):
        assert per.shape == (batch, *g.shape) and per.dtype == dtype
        scale = max(np.abs(g).max(), np.abs(per).max(), 1e-30)
        np.testing.assert_allclose(per.sum(axis=0), g, rtol=rtol, atol=rtol * scale)


def test_one_example_is_the_gradient_of_its_column():
    w, b, x, y = make_problem(34, sizes=(3, 5, 2), batch=4)
    per_w, per_b = manual_per_example_gradients(w, b, x, y, activation="tanh")
    for n in range(4):
        g_w, g_b = manual_gradients(w, b, x[:, n:n + 1], y[:, n:n + 1], activation="tanh")
        for per, g in zip(per_w + per_b, g_w + g_b, strict=True):
            np.testing.assert_allclose(per[n], g, rtol=1e-13, atol=1e-15)


def test_class_indices_and_one_hot_give_the_same():
    w, b, x, labels = make_problem(35, loss="softmax_cross_entropy")
    one_hot = np.eye(3)[:, labels]
    by_index = manual_per_example_gradients(w, b, x, labels, loss="softmax_cross_entropy")
    by_one_hot = jax_per_example_gradients(w, b, x, one_hot, loss="softmax_cross_entropy")
    for a, c in zip(by_index[0] + by_index[1], by_one_hot[0] + by_one_hot[1], strict=True):
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-15)
