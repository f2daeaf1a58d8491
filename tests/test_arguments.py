"""Every argument of every public function is checked (issue 10, item 4): a TypeError or ValueError naming
the argument, never an AttributeError, IndexError, KeyError, MemoryError or a NumPy internal."""

import importlib.util
import json

import numpy as np
import pytest

from manual_backprop import (
    backward_pass,
    compare_gradients,
    compute_network_output,
    directional_check,
    manual_gradients,
    numerical_gradients,
    random_network,
    taylor_check,
    three_way_check,
    udl_network,
)
from oracle.jax_network import jax_gradients, jax_loss, jax_network_output

X, Y = np.array([[1.2]]), np.array([[20.0]])


@pytest.fixture
def network():
    weights, biases = udl_network()
    return weights, biases, manual_gradients(weights, biases, X, Y)


# ---- compare_gradients takes what a user has ----------------------------------------------------------


def test_compare_gradients_compares_a_list_of_arrays_like_with_like(network):
    _, _, (g_w, _) = network
    assert compare_gradients(g_w, [g.copy() for g in g_w]).ok
    wrong = [g.copy() for g in g_w]
    wrong[2] = 2 * wrong[2] + 1
    comparison = compare_gradients(g_w, wrong)
    assert [row.name for row in comparison.failing] == ["[2]"]
    short = compare_gradients(g_w, g_w[:-1])
    assert [row.name for row in short.failing] == [f"[{len(g_w) - 1}]"]
    assert "missing" in short.failing[0].message


def test_compare_gradients_compares_a_dict_of_arrays_by_key(network):
    _, _, (g_w, g_b) = network
    expected = {"Omega_0": g_w[0], "beta_0": g_b[0]}
    assert compare_gradients(expected, {"beta_0": g_b[0], "Omega_0": g_w[0]}).ok  # by key, not order
    missing = compare_gradients(expected, {"Omega_0": g_w[0], "beta_9": g_b[0]})
    assert [row.name for row in missing.failing] == ["beta_0"]
    assert "missing key 'beta_0'" in missing.rows[1].message
    assert any("beta_9" in note for note in missing.notes)
    assert not compare_gradients(expected, [g_w[0], g_b[0]]).ok  # another structure: failing rows
    json.dumps(missing.to_dict())


def test_tolerances_of_a_dict_are_given_per_key():
    expected = {"a": np.ones((2, 2)), "b": np.ones(3)}
    actual = {"a": np.ones((2, 2)) + 1e-3, "b": np.ones(3)}
    assert not compare_gradients(expected, actual).ok
    assert compare_gradients(expected, actual, atol={"a": 1e-2, "b": 0.0}).ok
    assert compare_gradients(expected, actual, allowance={"a": np.full((2, 2), 1e-2), "b": np.zeros(3)}).ok
    with pytest.raises(ValueError, match="rtol must be a number >= 0"):
        compare_gradients(expected, actual, rtol={"a": -1.0, "b": 0.0})


def test_compare_gradients_compares_a_single_array(network):
    _, _, (g_w, _) = network
    assert compare_gradients(g_w[1], g_w[1].copy()).ok
    assert not compare_gradients(g_w[1], -g_w[1] - 1).ok
    assert compare_gradients(g_w[1], g_w[1].tolist()).rows[0].message.startswith("expected a NumPy array")


@pytest.mark.parametrize(
    "expected", [None, "abc", 3.0, [[1.0, 2.0], [3.0]], [], {"a": "text"}], ids=repr
)  # fmt: skip
def test_a_malformed_expected_is_an_error_naming_it(network, expected):
    _, _, gradient = network
    with pytest.raises((TypeError, ValueError), match="expected"):
        compare_gradients(expected, gradient)


@pytest.mark.parametrize("include", [3, [[True]], ([np.ones(3, bool)] * 6, [np.ones(3, bool)] * 6), "all"],
                         ids=["int", "short", "wrong-shapes", "str"])  # fmt: skip
def test_a_malformed_include_is_an_error_naming_it(network, include):
    _, _, gradient = network
    with pytest.raises(ValueError, match="include"):
        compare_gradients(gradient, gradient, include=include)


def test_a_malformed_include_of_a_dict_is_an_error_naming_it(network):
    _, _, (g_w, _) = network
    with pytest.raises(ValueError, match=r"include\['a'\] must be a boolean mask of shape \(6, 1\)"):
        compare_gradients({"a": g_w[0]}, {"a": g_w[0]}, include={"a": np.ones(3)})


# ---- steps of the large-network checks -----------------------------------------------------------------


def test_fd_taylor_takes_no_step(network):
    weights, biases, _ = network
    with pytest.raises(ValueError, match="step does not apply to fd='taylor'"):
        three_way_check(weights, biases, X, Y, fd="taylor", step=1e-3)


def test_relative_steps_too_small_to_move_theta_are_inconclusive_not_errors(network):
    """The directional and Taylor checks already say "inconclusive" for a step that moves nothing (their
    reports are honest about it: tests/test_directional.py); only per-parameter steps raise."""
    weights, biases, gradient = network
    assert directional_check(weights, biases, X, Y, gradient, step=1e-300).verdict == "inconclusive"


# ---- reports are JSON with NumPy scalars everywhere ----------------------------------------------------


def test_every_to_dict_is_json_with_numpy_scalars_as_arguments(network):
    weights, biases, gradient = network
    reports = [
        three_way_check(weights, biases, X, Y, step=np.float32(1e-5)),
        three_way_check(weights, biases, X, Y, fd="forward", step=np.float64(1e-7)),
        three_way_check(weights, biases, X, Y, fd="directional", step=np.float32(1e-8),
                        directions=np.int64(2), rng=np.int64(3)),  # fmt: skip
        three_way_check(weights, biases, X, Y, fd="taylor", rng=np.int32(1)),
        three_way_check(weights, biases, X, Y, fd_budget=np.float32(1e3)),
        compare_gradients(gradient, gradient, rtol=np.float32(1e-3), atol=np.float16(1e-4),
                          scale=np.float32(2)),
        directional_check(weights, biases, X, Y, gradient, step=np.float32(1e-8), directions=np.int64(2)),
        taylor_check(weights, biases, X, Y, gradient, start=np.float32(1e-2), points=np.int64(12)),
    ]
    for report in reports:
        text = json.dumps(report.to_dict(), allow_nan=False)
        assert json.loads(text)
    assert json.loads(json.dumps(reports[0].to_dict()))["step"] == pytest.approx(1e-5, rel=1e-6)


# ---- tensors that track gradients (torch) are detached -------------------------------------------------


class TrackedTensor:
    """A stand-in for a torch tensor with ``requires_grad=True``: ``__array__`` raises as torch's does
    until ``.detach()`` is called (torch is not a dependency of the tests)."""

    def __init__(self, array, tracked=True):
        self.array, self.tracked = np.asarray(array), tracked

    def detach(self):
        return TrackedTensor(self.array, tracked=False)

    def __array__(self, dtype=None, copy=None):
        if self.tracked:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy()")
        return self.array if dtype is None else self.array.astype(dtype)


def test_tensors_that_track_gradients_are_detached(network):
    weights, biases, gradient = network
    tracked_w, tracked_b = [TrackedTensor(w) for w in weights], [TrackedTensor(b) for b in biases]
    x, y = TrackedTensor(X), TrackedTensor(Y)
    for got in (manual_gradients(tracked_w, tracked_b, x, y), jax_gradients(tracked_w, tracked_b, x, y)):
        assert compare_gradients(gradient, got).ok
    assert compare_gradients(gradient, ([TrackedTensor(g) for g in gradient[0]],
                                        [TrackedTensor(g) for g in gradient[1]])).ok  # fmt: skip
    _, all_f, all_h = compute_network_output(x, tracked_w, tracked_b)
    assert compare_gradients(gradient, backward_pass(tracked_w, tracked_b, all_f, all_h, y)).ok
    assert np.isfinite(jax_loss(tracked_w, tracked_b, x, y))
    assert three_way_check(tracked_w, tracked_b, x, y).ok


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (optional)")
def test_real_torch_tensors_that_require_grad():
    import torch

    weights, biases = udl_network()
    tracked_w = [torch.tensor(w, requires_grad=True) for w in weights]
    tracked_b = [torch.tensor(b, requires_grad=True) for b in biases]
    expected = manual_gradients(weights, biases, X, Y)
    assert compare_gradients(expected, manual_gradients(tracked_w, tracked_b, torch.tensor(X), Y)).ok


# ---- sizes and names -----------------------------------------------------------------------------------


def test_a_network_too_large_to_build_is_a_value_error_with_the_size():
    with pytest.raises(ValueError, match=r"udl_network\(K=5, D=4294967296.* parameters \(.* GiB"):
        udl_network(D=2**32)
    with pytest.raises(ValueError, match=r"random_network.* parameters"):
        random_network([3, 2**20, 2**20])


UNHASHABLE = ["relu"]
CALLS = {
    "manual_gradients": lambda w, b: manual_gradients(w, b, X, Y, activation=UNHASHABLE),
    "numerical_gradients": lambda w, b: numerical_gradients(w, b, X, Y, activation=UNHASHABLE),
    "compute_network_output": lambda w, b: compute_network_output(X, w, b, activation=UNHASHABLE),
    "three_way_check": lambda w, b: three_way_check(w, b, X, Y, activation=UNHASHABLE),
    "three_way_check jvp": lambda w, b: three_way_check(w, b, X, Y, activation=UNHASHABLE, derivative="jvp"),
    "jax_gradients": lambda w, b: jax_gradients(w, b, X, Y, activation=UNHASHABLE),
    "jax_loss": lambda w, b: jax_loss(w, b, X, Y, activation=UNHASHABLE),
    "jax_network_output": lambda w, b: jax_network_output(X, w, b, activation=UNHASHABLE),
}


@pytest.mark.parametrize("name", CALLS)
def test_an_unhashable_activation_is_an_unknown_activation(network, name):
    weights, biases, _ = network
    with pytest.raises(ValueError, match=r"unknown activation \['relu'\]"):
        CALLS[name](weights, biases)
