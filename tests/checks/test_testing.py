"""``assert_gradients_close``: silent when two gradients agree, an AssertionError with the table if not."""

from __future__ import annotations

import numpy as np
import pytest

import manual_backprop
from manual_backprop import compare_gradients, manual_gradients, numerical_gradients, udl_network
from manual_backprop.checks.testing import assert_gradients_close
from oracle import jax_gradients


@pytest.fixture
def gradients():
    W, B = udl_network()  # the notebook's network, input 1.2, target 20
    x, y = np.array([[1.2]]), np.array([[20.0]])
    return jax_gradients(W, B, x, y), manual_gradients(W, B, x, y), (W, B, x, y)


def _with_flipped_sign(gradient, layer):
    weights, biases = [w.copy() for w in gradient[0]], [b.copy() for b in gradient[1]]
    weights[layer] = -weights[layer]
    return weights, biases


def test_exported_from_the_package():
    assert manual_backprop.assert_gradients_close is assert_gradients_close
    assert "assert_gradients_close" in manual_backprop.__all__


def test_manual_against_jax_passes_and_returns_none(gradients):
    oracle, manual, _ = gradients
    assert assert_gradients_close(oracle, manual) is None


def test_a_wrong_gradient_raises_with_the_comparison_table(gradients):
    oracle, manual, _ = gradients
    wrong = _with_flipped_sign(manual, layer=2)
    with pytest.raises(AssertionError) as raised:
        assert_gradients_close(oracle, wrong)
    message = str(raised.value)
    table = str(compare_gradients(oracle, wrong, label="expected vs actual"))
    assert table in message
    assert message.splitlines()[0] == "gradients differ in Omega_2"
    failing = [line for line in message.splitlines() if line.endswith("FAIL")]
    assert [line.split()[0] for line in failing] == ["Omega_2"]


def test_a_wrong_shape_or_missing_tensor_fails_rather_than_crashing(gradients):
    oracle, manual, _ = gradients
    transposed = ([w.T for w in manual[0]], manual[1])
    with pytest.raises(AssertionError, match="Omega_1"):
        assert_gradients_close(oracle, transposed)
    with pytest.raises(AssertionError, match="beta_5"):
        assert_gradients_close(oracle, (manual[0], manual[1][:-1]))


def test_tolerances_are_the_callers(gradients):
    """Finite differences are off by ~1e-9 of the scale: the default (two analytic gradients, rtol 1e-10)
    refuses them, rtol=1e-5 (the table's value against central differences) accepts them."""
    oracle, _, args = gradients
    fd = numerical_gradients(*args)
    with pytest.raises(AssertionError):
        assert_gradients_close(oracle, fd)
    assert_gradients_close(oracle, fd, rtol=1e-5, atol=1e-5)


def test_float32_gradients_use_the_float32_row(gradients):
    oracle, manual, _ = gradients
    as32 = [[np.asarray(g, np.float32) for g in part] for part in manual]
    assert_gradients_close([[np.asarray(g, np.float32) for g in part] for part in oracle], as32)
