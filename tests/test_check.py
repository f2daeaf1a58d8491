"""three_way_check: three witnesses per layer, the kink rule, the large-network modes, the reports."""

import json

import numpy as np
import pytest

from manual_backprop import (
    backward_pass,
    check_backward,
    compute_network_output,
    numerical_gradients,
    random_network,
    three_way_check,
    udl_network,
)
from manual_backprop.check import CONVENTIONS, fd_cost, make_battery
from manual_backprop.tolerances import tolerance_for

X, Y = np.array([[1.2]]), np.array([[20.0]])


def test_notebook_network_agrees_three_ways():
    weights, biases = udl_network()
    report = three_way_check(weights, biases, X, Y)
    assert report.ok and report.fd == "central"
    assert round(report.loss_value, 3) == 163.685
    assert len(report.manual_vs_jax.rows) == len(report.manual_vs_fd.rows) == len(report.jax_vs_fd.rows) == 12
    assert report.kinks_crossed == 0
    assert report.conventions == CONVENTIONS and "ReLU'(0) = 0" in " ".join(report.conventions)
    text = str(report)
    assert "manual-jax" in text and "Omega_5" in text and "e-" in text
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["ok"] is True and data["manual_vs_fd"]["rows"][0]["kind"] == "weights"


def test_inputs_are_not_modified():
    weights, biases = udl_network()
    before = [w.copy() for w in weights] + [b.copy() for b in biases]
    three_way_check(weights, biases, X, Y)
    assert all(np.array_equal(a, b) for a, b in zip(before, weights + biases, strict=False))


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "softplus"])
@pytest.mark.parametrize("loss", ["least_squares", "binary_cross_entropy", "softmax_cross_entropy"])
def test_every_activation_and_loss_agree(activation, loss):
    rng = np.random.default_rng(3)
    weights, biases = random_network([3, 5, 4, 3], rng=rng, bias_std=0.5)
    x = rng.standard_normal((3, 4))
    y = {
        "least_squares": rng.standard_normal((3, 4)),
        "binary_cross_entropy": rng.uniform(size=(3, 4)),
        "softmax_cross_entropy": np.array([0, 2, 1, 2]),
    }[loss]
    assert three_way_check(weights, biases, x, y, activation=activation, loss=loss).ok


def test_float32_uses_its_own_tolerances():
    weights, biases = random_network([2, 6, 6, 1], rng=1, dtype=np.float32)
    report = three_way_check(weights, biases, np.ones((2, 3), np.float32), np.ones((1, 3), np.float32))
    assert report.ok and report.dtype == "float32" and report.manual_vs_jax.rtol == 1e-4


def _one_unit_on_its_kink():
    """The notebook's network with unit 2 of layer 0 exactly at f = 0 (Omega x + beta rounds to 0)."""
    weights, biases = udl_network()
    biases = [b.copy() for b in biases]
    biases[0][2, 0] = -(weights[0][2, 0] * 1.2)
    f0 = compute_network_output(X, weights, biases)[1][0]
    assert f0[2, 0] == 0.0
    return weights, biases


def test_a_unit_exactly_on_its_kink_is_compared_one_sided_on_the_convention_side():
    weights, biases = _one_unit_on_its_kink()
    report = three_way_check(weights, biases, X, Y)
    assert report.ok, str(report)
    assert report.kinks_crossed > 0 and report.kinks_one_sided == report.kinks_crossed
    assert report.kinks_excluded == 0
    assert report.manual_vs_fd.row(0, "biases").one_sided >= 1
    # The analytic value is the "off" side's (ReLU'(0) = 0): the backward difference, not the forward one.
    manual = report.gradients["manual"][1][0][2, 0]
    forward = numerical_gradients(weights, biases, X, Y, method="forward")[1][0][2, 0]
    backward = numerical_gradients(weights, biases, X, Y, method="backward")[1][0][2, 0]
    assert manual == 0.0 and backward == pytest.approx(0.0, abs=1e-6)
    assert abs(forward - manual) > 1e-2


def test_a_wrong_value_beside_a_kink_is_not_hidden():
    weights, biases = _one_unit_on_its_kink()
    report = three_way_check(weights, biases, X, Y)
    fd = report.gradients["fd"]
    manual = [[g.copy() for g in part] for part in report.gradients["manual"]]
    manual[1][0][2, 0] = 1.0  # the forward (wrong) side's slope would be about this size
    from manual_backprop.check import _compare_fd, _fd_witness

    values, rtol, atol, include, sided, _ = _fd_witness(
        weights, biases, X, Y, "relu", "least_squares", "central", None, np.dtype(np.float64)
    )
    main = tolerance_for(np.float64, "central")
    assert _compare_fd(report.gradients["manual"], values, rtol, atol, include, sided, "fd", main).ok
    assert not _compare_fd(manual, values, rtol, atol, include, sided, "fd", main).row(0, "biases").ok
    assert fd is not None


@pytest.mark.parametrize("seed", range(6))
def test_no_false_alarm_with_many_exact_kinks(seed):
    rng = np.random.default_rng(seed)
    sizes = [2, 4, 3, 2]
    weights = [rng.integers(-2, 3, (o, i)).astype(float) for i, o in zip(sizes[:-1], sizes[1:], strict=False)]
    biases = [rng.integers(-1, 2, (o, 1)).astype(float) for o in sizes[1:]]
    x, y = rng.integers(-2, 3, (2, 3)).astype(float), rng.integers(-2, 3, (2, 3)).astype(float)
    for fd in ("central", "forward", "backward"):
        report = three_way_check(weights, biases, x, y, fd=fd)
        assert report.ok, str(report)
        assert report.kinks_crossed == report.kinks_one_sided + report.kinks_excluded


@pytest.mark.parametrize("fd", ["directional", "taylor"])
def test_large_network_modes_on_the_notebook(fd):
    weights, biases = udl_network()
    report = three_way_check(weights, biases, X, Y, fd=fd)
    assert report.ok and report.manual_vs_fd is None and report.manual_directional is not None
    json.dumps(report.to_dict(), allow_nan=False)
    assert fd in str(report)


def test_over_budget_switches_to_directional_and_says_so():
    weights, biases = random_network([64, 128, 128, 4], rng=0)
    x, y = np.ones((64, 8)), np.zeros((4, 8))
    assert fd_cost(weights, 8) > 1e6
    report = three_way_check(weights, biases, x, y, fd_budget=1e6)
    assert report.fd == "directional" and report.requested_fd == "central"
    assert report.ok and "switched to directional" in report.notes[0]


def test_bad_arguments_raise_with_names():
    weights, biases = udl_network()
    with pytest.raises(ValueError, match="fd"):
        three_way_check(weights, biases, X, Y, fd="sideways")
    with pytest.raises(ValueError, match="all_biases"):
        three_way_check(weights, biases[:-1], X, Y)
    with pytest.raises(TypeError, match="function"):
        check_backward("not a function")
    with pytest.raises(ValueError, match="batch"):
        check_backward(lambda *a: None, batch=0)


def test_check_backward_grades_against_the_chosen_activation():
    from zoo import passes

    assert check_backward(passes.batch_backward, activation="relu").ok
    # A ReLU backward pass graded on tanh networks is wrong, and is said to be.
    report = check_backward(passes.batch_backward, activation="tanh")
    assert not report.ok and report.cases[0].first_wrong_layer == 4


@pytest.mark.parametrize(
    ("activation", "loss"),
    [("tanh", "binary_cross_entropy"), ("leaky_relu", "softmax_cross_entropy"), ("sigmoid", "least_squares")],
)
def test_check_backward_passes_a_right_function_for_other_activations_and_losses(activation, loss):
    from functools import partial

    from manual_backprop import backward_pass

    right = partial(backward_pass, activation=activation, loss=loss)
    report = check_backward(right, activation=activation, loss=loss, batch=2, dtype=np.float32)
    assert report.ok, str(report)


def _backward_with_slope(slope):
    """The notebook's batch-aware backward pass with a'(f) given as ``slope(f)``."""

    def backward(all_weights, all_biases, all_f, all_h, y):
        K = len(all_weights) - 1
        dW, dB = [None] * (K + 1), [None] * (K + 1)
        delta = all_h[-1] - y
        for layer in reversed(range(K + 1)):
            dW[layer] = delta @ all_h[layer].T
            dB[layer] = delta.sum(axis=1, keepdims=True)
            if layer > 0:
                delta = (all_weights[layer].T @ delta) * slope(all_f[layer - 1])
        return dW, dB

    return backward


def test_the_battery_tests_the_derivative_convention_at_the_kink():
    report = check_backward(_backward_with_slope(lambda f: f >= 0))  # ReLU'(0) taken as 1, not 0
    failing = [case.name for case in report.failing]
    assert failing == ["exact kinks"], failing
    assert "derivative at the kink: a'(0) taken as 1" in report.failing[0].summary


def test_leaky_relu_with_the_relu_side_at_the_kink_is_named():
    strict = _backward_with_slope(lambda f: np.where(f > 0, 1.0, 0.01))  # leaky ReLU'(0) as 0.01, not 1
    report = check_backward(strict, activation="leaky_relu")
    assert [case.name for case in report.failing] == ["exact kinks"]
    assert "a'(0) taken as 0.01" in report.failing[0].summary


def test_the_battery_gives_softmax_more_than_one_output():
    cases = make_battery(loss="softmax_cross_entropy")
    assert all(case.sizes[-1] >= 2 for case in cases)
    def zeros(W, B, F, H, y):
        return [np.zeros_like(w) for w in W], [np.zeros_like(b) for b in B]

    report = check_backward(zeros, loss="softmax_cross_entropy")
    assert not any(case.ok for case in report.cases)


def test_check_backward_refuses_an_empty_battery_and_a_bad_seed():
    with pytest.raises(ValueError, match="cases is empty"):
        check_backward(backward_pass, cases=[])
    with pytest.raises(ValueError, match="seed must be at least 0"):
        check_backward(backward_pass, seed=-1)


def test_an_overflowing_forward_pass_is_an_error_not_a_failed_gradient():
    weights, biases = udl_network()
    with pytest.raises(ValueError, match=r"forward pass overflows: all_f\[\d\]"):
        three_way_check([w * 1e200 for w in weights], biases, [[1.2]], [[20.0]])
