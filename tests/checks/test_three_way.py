"""three_way_check: three witnesses per layer, the kink rule, the large-network modes, the reports."""

import json
import sys
from collections import Counter

import numpy as np
import pytest

from manual_backprop import (
    compute_network_output,
    numerical_gradients,
    random_network,
    three_way_check,
    udl_network,
    validate,
)
from manual_backprop.checks.three_way import _compare_fd
from manual_backprop.compare.report import CONVENTIONS
from manual_backprop.fd.fd_limits import fd_cost
from manual_backprop.fd.fd_witness import fd_witness
from manual_backprop.maths import backprop
from manual_backprop.maths.activations import ACTIVATIONS, get_activation
from manual_backprop.maths.backprop import forward
from manual_backprop.tolerances import tolerance_for
from manual_backprop.validate import LOSSES

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


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
def test_every_activation_and_loss_agree(activation, loss):
    rng = np.random.default_rng(3)
    weights, biases = random_network([3, 5, 4, 3], rng=rng, bias_std=0.5)
    x = rng.standard_normal((3, 4))
    y = {
        "least_squares": rng.standard_normal((3, 4)),
        "sum_of_squares": rng.standard_normal((3, 4)),
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
    act = get_activation("relu")
    forward_pass = forward(weights, biases, X, act)
    witness = fd_witness(weights, biases, Y, act, "least_squares", forward_pass, "central", None)
    main = tolerance_for(np.float64, "central")
    assert _compare_fd(report.gradients["manual"], witness, "fd", main).ok
    assert not _compare_fd(manual, witness, "fd", main).row(0, "biases").ok
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


def test_an_overflowing_forward_pass_is_an_error_not_a_failed_gradient():
    weights, biases = udl_network()
    with pytest.raises(ValueError, match=r"forward pass overflows: all_f\[\d\]"):
        three_way_check([w * 1e200 for w in weights], biases, [[1.2]], [[20.0]])


def _calls(function, watched):
    """How often each function of ``watched`` ran during ``function()``: a profile of the call itself."""
    codes = {f.__code__: f.__name__ for f in watched}
    calls = Counter()

    def profile(frame, event, arg):
        if event == "call" and frame.f_code in codes:
            calls[codes[frame.f_code]] += 1

    sys.setprofile(profile)
    try:
        function()
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize("fd", ["central", "forward"])
def test_the_parameters_are_checked_once_and_the_network_runs_forward_once(fd):
    weights, biases = _one_unit_on_its_kink()  # kinks: the witness takes three sets of differences
    calls = _calls(lambda: three_way_check(weights, biases, X, Y, fd=fd),
                   [validate.check_parameters, backprop.forward])  # fmt: skip
    assert calls == {"check_parameters": 1, "forward": 1}


def test_the_report_carries_the_network_output():
    weights, biases = udl_network()
    report = three_way_check(weights, biases, X, Y)
    np.testing.assert_array_equal(report.net_output, compute_network_output(X, weights, biases)[0])
    assert report.headline() == "network 1-6-6-6-6-6-1, batch 1: output 1.907, loss 163.685"
    assert report.verdict().startswith("OK: manual backprop, jax.grad and central finite differences agree")

