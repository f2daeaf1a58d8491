"""Overflow is an error everywhere (issue 10, item 2): a ValueError naming the layer, never a silent inf or
NaN with only a NumPy RuntimeWarning, from every public forward, loss and gradient function."""

import warnings

import numpy as np
import pytest

from manual_backprop import (
    backward_pass,
    compute_loss,
    compute_network_output,
    d_loss_d_output,
    least_squares_loss,
    manual_gradients,
    numerical_gradients,
    three_way_check,
    udl_network,
)
from oracle.jax_network import jax_gradients, jax_loss, jax_network_output

X, Y = np.array([[1.2]]), np.array([[20.0]])


def _huge():
    weights, biases = udl_network()
    return [w * 1e200 for w in weights], biases


GRADIENT_AND_FORWARD = {
    "manual_gradients": lambda w, b: manual_gradients(w, b, X, Y),
    "numerical_gradients": lambda w, b: numerical_gradients(w, b, X, Y),
    "compute_network_output": lambda w, b: compute_network_output(X, w, b),
    "three_way_check": lambda w, b: three_way_check(w, b, X, Y),
    "jax_gradients": lambda w, b: jax_gradients(w, b, X, Y),
    "jax_loss": lambda w, b: jax_loss(w, b, X, Y),
    "jax_network_output": lambda w, b: jax_network_output(X, w, b),
}


@pytest.mark.parametrize("name", GRADIENT_AND_FORWARD)
def test_an_overflowing_forward_pass_raises_naming_the_layer(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way to the error
        with pytest.raises(ValueError, match=r"forward pass overflows.*(all_f\[1\]|layer 1)"):
            GRADIENT_AND_FORWARD[name](*_huge())


def test_backward_pass_that_overflows_raises_naming_the_layer():
    """The forward pass is finite (tanh saturates), dL/df_K is 1e200: the deltas overflow on the way down."""
    weights, biases = udl_network()
    weights = [w * 1e200 if k == len(weights) - 1 else w for k, w in enumerate(weights)]
    weights[-2] = weights[-2] * 1e200
    _, all_f, all_h = compute_network_output(X, weights, biases, activation="tanh")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"backward pass overflows at layer \d: dL/d"):
            backward_pass(weights, biases, all_f, all_h, Y, activation="tanh")
        with pytest.raises(ValueError, match=r"overflows at layer \d: dL/d"):
            manual_gradients(weights, biases, X, Y, activation="tanh")
        with pytest.raises(ValueError, match="overflows"):
            jax_gradients(weights, biases, X, Y, activation="tanh")


def test_a_step_that_overflows_the_perturbed_loss_raises():
    weights, biases = udl_network()
    with pytest.raises(ValueError, match=r"finite-difference gradient overflows at layer \d.*smaller step"):
        numerical_gradients(weights, biases, X, Y, step=1e300)


@pytest.mark.parametrize("function", [compute_loss, least_squares_loss, d_loss_d_output],
                         ids=lambda f: f.__name__)  # fmt: skip
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_losses_given_a_non_finite_output_raise(function, bad):
    with pytest.raises(ValueError, match=r"net_output contains"):
        function(np.array([[1.0, bad]]), np.array([[0.0, 0.0]]))


def test_losses_that_overflow_raise():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="the loss overflows"):
            compute_loss(np.array([[1e200]]), np.array([[-1e200]]))
        with pytest.raises(ValueError, match="the loss overflows"):
            least_squares_loss(np.array([[1e200]]), np.array([[0.0]]))
        with pytest.raises(ValueError, match=r"dL/d\(net_output\) overflows"):
            d_loss_d_output(np.array([[1e308]]), np.array([[-1e308]]))


def test_a_saturated_but_finite_network_is_not_an_error():
    """tanh saturates: huge weights give a finite output and a finite, right gradient (0 below the top)."""
    weights, biases = udl_network()
    grads = manual_gradients([w * 1e100 for w in weights], biases, X, Y, activation="tanh")
    assert all(np.isfinite(g).all() for part in grads for g in part)
