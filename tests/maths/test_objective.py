"""Objectives beyond the notebook's: an output activation, the mean over the batch, an L2 penalty.

Each is checked three ways (manual, jax.grad, finite differences) on every finite-difference witness, by
its closed form against the plain gradient, and in grading: a right function passes, the usual slip under
that convention fails, and the header states what was assumed.
"""

from functools import partial

import numpy as np
import pytest

from manual_backprop import backward_pass, check_backward, manual_gradients, three_way_check, udl_network
from manual_backprop.objective import objective_name, parse_objective

CONVENTIONS = [
    dict(output_activation="sigmoid"),
    dict(output_activation="tanh"),
    dict(reduction="mean"),
    dict(l2=0.1),
    dict(output_activation="sigmoid", reduction="mean", l2=0.05),
]


@pytest.fixture
def problem():
    rng = np.random.default_rng(3)
    weights, biases = udl_network(K=3, D=4)
    return weights, biases, rng.standard_normal((1, 5)), rng.standard_normal((1, 5))


def test_a_loss_name_carries_its_conventions_and_reads_back():
    name = objective_name("least_squares", "sigmoid", "mean", 0.01)
    assert name == "least_squares, output sigmoid, mean, l2 0.01"
    assert parse_objective(name) == ("least_squares", "sigmoid", "mean", 0.01)
    assert objective_name("sum_of_squares") == "sum_of_squares"
    assert "summed over the batch; no regularisation" in parse_objective("least_squares").assumptions()


@pytest.mark.parametrize(("arguments", "message"), [
    (("least_squares", "swish"), "unknown output activation 'swish'"),
    (("binary_cross_entropy", "sigmoid"), "taken on logits"),
    (("least_squares", None, "median"), "unknown reduction 'median'"),
    (("least_squares", None, "sum", -1.0), "l2 must be a finite number >= 0"),
    (("least_squares, mean", None, "mean"), "already names its conventions"),
])
def test_a_wrong_convention_is_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        objective_name(*arguments)


@pytest.mark.parametrize("fd", ["central", "forward", "directional", "taylor"])
@pytest.mark.parametrize("conventions", CONVENTIONS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_three_witnesses_agree_under_every_convention(problem, conventions, fd):
    report = three_way_check(*problem, fd=fd, **conventions)
    assert report.ok, str(report)
    assert report.loss == objective_name("least_squares", **conventions)


def test_each_convention_is_its_closed_form_of_the_plain_gradient(problem):
    weights, biases, x, y = problem
    plain_w, plain_b = manual_gradients(weights, biases, x, y)
    mean_w, mean_b = manual_gradients(weights, biases, x, y, loss="least_squares, mean")
    for p, m in zip(plain_w + plain_b, mean_w + mean_b, strict=True):
        np.testing.assert_allclose(m, p / x.shape[1], rtol=1e-13)
    l2_w, l2_b = manual_gradients(weights, biases, x, y, loss="least_squares, l2 0.3")
    for p, r, omega in zip(plain_w, l2_w, weights, strict=True):
        np.testing.assert_allclose(r, p + 0.3 * omega, rtol=1e-13)
    for p, r in zip(plain_b, l2_b, strict=True):
        np.testing.assert_array_equal(r, p)  # biases are not regularised


def _sigmoid_network(all_weights, all_biases, all_f, all_h, y, *, output_derivative=True):
    """A sigmoid on every layer, the output's too, and a quadratic cost (the style of Nielsen's network.py),
    written by hand; ``output_derivative=False`` drops sigmoid' at the output (the classic slip)."""
    K = len(all_weights) - 1
    s = 1 / (1 + np.exp(-all_f[K]))
    delta = (s - y) * (s * (1 - s) if output_derivative else 1)
    dW, db = [None] * (K + 1), [None] * (K + 1)
    for k in range(K, -1, -1):
        dW[k] = delta @ all_h[k].T
        db[k] = delta.sum(axis=1, keepdims=True)
        if k:
            a = 1 / (1 + np.exp(-all_f[k - 1]))
            delta = (all_weights[k].T @ delta) * a * (1 - a)
    return dW, db


def test_a_sigmoid_output_network_passes_when_graded_as_written():
    report = check_backward(_sigmoid_network, activation="sigmoid", output_activation="sigmoid")
    assert report.ok, str(report)
    assert "assumes: a sigmoid on the output; the loss summed over the batch" in str(report)


def test_dropping_sigmoid_prime_at_the_output_fails_and_the_header_shows_a_mismatch():
    slip = partial(_sigmoid_network, output_derivative=False)
    assert not check_backward(slip, activation="sigmoid", output_activation="sigmoid").ok
    # Graded as binary cross-entropy on logits (whose gradient is sigmoid(z) - y) the slip agrees, and the
    # header says that no activation on the output was assumed: the mismatch is in plain sight.
    lenient = check_backward(slip, activation="sigmoid", loss="binary_cross_entropy")
    assert "assumes: no activation on the output" in str(lenient)


def test_a_missing_l2_term_or_a_sum_where_the_mean_belongs_fails():
    right = partial(backward_pass, loss="least_squares, mean, l2 0.5")
    assert check_backward(right, reduction="mean", l2=0.5, batch=3).ok
    assert not check_backward(partial(backward_pass, loss="least_squares, mean"), reduction="mean", l2=0.5,
                              batch=3).ok
    assert not check_backward(partial(backward_pass, loss="least_squares, l2 0.5"), reduction="mean", l2=0.5,
                              batch=3).ok


def test_the_derivatives_beyond_the_gradient_refuse_a_loss_with_conventions(problem):
    with pytest.raises(ValueError, match="plain loss"):
        three_way_check(*problem, derivative="hvp", reduction="mean")


def test_examples_given_as_rows_are_refused_with_the_transpose_to_use(problem):
    weights, biases, x, y = problem
    with pytest.raises(ValueError, match=r"one row per example .* pass net_input\.T"):
        manual_gradients(weights, biases, x.T, y)
