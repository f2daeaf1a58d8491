"""The losses and dL/d(output): their definitions, JAX's gradient, and stability at logits of +-1000."""

from __future__ import annotations

import numpy as np
import pytest

from manual_backprop import LOSSES, compute_loss, d_loss_d_output, least_squares_loss, manual_gradients
from oracle import jax_gradients, jax_loss

CROSS_ENTROPIES = tuple(loss for loss in LOSSES if loss.endswith("cross_entropy"))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_least_squares_is_the_notebooks(rng):
    z, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    assert least_squares_loss(z, y) == pytest.approx(0.5 * np.sum((z - y) ** 2), rel=1e-15)
    np.testing.assert_array_equal(d_loss_d_output(z, y), z - y)


def test_binary_cross_entropy_definition(rng):
    z, y = rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))
    p = _sigmoid(z)
    expected = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert compute_loss(z, y, loss="binary_cross_entropy") == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(
        d_loss_d_output(z, y, loss="binary_cross_entropy"), p - y, rtol=1e-12, atol=1e-15
    )


def test_softmax_cross_entropy_definition(rng):
    z, labels = rng.standard_normal((4, 5)), rng.integers(0, 4, 5)
    softmax = np.exp(z) / np.exp(z).sum(axis=0)
    expected = -np.sum(np.log(softmax[labels, np.arange(5)]))
    one_hot = np.eye(4)[:, labels]
    for y in (labels, one_hot):
        assert compute_loss(z, y, loss="softmax_cross_entropy") == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(
            d_loss_d_output(z, y, loss="softmax_cross_entropy"), softmax - one_hot, rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_d_loss_d_output_is_jax_grad(rng, loss, dtype):
    z = (3 * rng.standard_normal((3, 4))).astype(dtype)
    y = {
        "least_squares": rng.standard_normal((3, 4)),
        "sum_of_squares": rng.standard_normal((3, 4)),
        "binary_cross_entropy": rng.uniform(0, 1, (3, 4)),
        "softmax_cross_entropy": np.eye(3)[:, rng.integers(0, 3, 4)],
    }[loss].astype(dtype)
    # the output z is the network [I] z + 0 on input z: JAX's gradient w.r.t. beta column n is dL/dz summed
    # over n, so use one column at a time
    for n in range(4):
        zn, yn = z[:, [n]], y[:, [n]]
        _, (dl_dbeta,) = jax_gradients([np.eye(3, dtype=dtype)], [zn], np.zeros((3, 1), dtype), yn, loss=loss)
        got = d_loss_d_output(zn, yn, loss=loss)
        assert got.dtype == dtype
        tol = 1e-14 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(got, dl_dbeta, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_loss_dtype_follows_the_output(dtype):
    z = np.ones((2, 3), dtype)
    for loss in LOSSES:
        y = (
            np.eye(2, 3, dtype=dtype)[:, [0, 1, 0]]
            if loss == "softmax_cross_entropy"
            else np.zeros((2, 3), dtype)
        )
        assert compute_loss(z, y, loss=loss).dtype == dtype
        assert d_loss_d_output(z, y, loss=loss).dtype == dtype


def _saturated(dtype):
    """K = 0 network whose logits are +-1000 for the two examples."""
    weights = [np.array([[1000.0], [-1000.0]], dtype)]
    biases = [np.zeros((2, 1), dtype)]
    net_input = np.array([[1.0, -1.0]], dtype)
    return weights, biases, net_input


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("loss", CROSS_ENTROPIES)
def test_logits_of_1000_stay_finite_and_match_jax(loss, dtype):
    weights, biases, net_input = _saturated(dtype)
    # z = [[1000, -1000], [-1000, 1000]]; targets chosen so that each example is confidently wrong
    if loss == "binary_cross_entropy":
        y = np.array([[0.0, 1.0], [1.0, 0.0]], dtype)
        expected_loss = 4000.0  # each term softplus(1000) = 1000
    else:
        y = np.array([1, 0])
        expected_loss = 4000.0  # each column logsumexp = 1000, minus the chosen -1000
    z = weights[0] @ net_input
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        value = compute_loss(z, y, loss=loss)
        manual = manual_gradients(weights, biases, net_input, y, loss=loss)
    assert np.isfinite(value) and value == pytest.approx(expected_loss, rel=1e-6)
    assert float(jax_loss(weights, biases, net_input, y, loss=loss)) == pytest.approx(expected_loss, rel=1e-6)
    oracle = jax_gradients(weights, biases, net_input, y, loss=loss)
    for m, o in zip([*manual[0], *manual[1]], [*oracle[0], *oracle[1]], strict=True):
        assert np.all(np.isfinite(m)) and m.dtype == dtype
        np.testing.assert_allclose(m, o, rtol=1e-6, atol=1e-6)
    # dL/dz = sigmoid/softmax - y is -1 or +1 on every entry here: the gradient is not lost to overflow
    assert np.allclose(np.abs(d_loss_d_output(z, y, loss=loss)), 1)


@pytest.mark.parametrize("loss", CROSS_ENTROPIES)
def test_confidently_right_logits_give_a_zero_loss(loss):
    z = np.array([[1000.0], [-1000.0]])
    y = np.array([[1.0], [0.0]]) if loss == "binary_cross_entropy" else np.array([0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        assert compute_loss(z, y, loss=loss) == 0.0
        np.testing.assert_array_equal(d_loss_d_output(z, y, loss=loss), np.zeros((2, 1)))


def test_class_indices_and_one_hot_agree(rng):
    z, labels = rng.standard_normal((3, 6)), rng.integers(0, 3, 6)
    one_hot = np.eye(3)[:, labels]
    assert compute_loss(z, labels, loss="softmax_cross_entropy") == compute_loss(
        z, one_hot, loss="softmax_cross_entropy"
    )
    weights, biases, net_input = (
        [rng.standard_normal((3, 2))],
        [rng.standard_normal((3, 1))],
        rng.standard_normal((2, 6)),
    )
    for gradients in (manual_gradients, jax_gradients):
        by_index = gradients(weights, biases, net_input, labels, loss="softmax_cross_entropy")
        by_one_hot = gradients(weights, biases, net_input, one_hot, loss="softmax_cross_entropy")
        for a, b in zip([*by_index[0], *by_index[1]], [*by_one_hot[0], *by_one_hot[1]], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)
