"""Steps and sizes of finite differences (issue 10, item 3): a step that cannot move the parameters is an
error naming the smallest usable one; the memory budget is a real number (inf: no limit); a full
finite-difference gradient whose cost or memory would be absurd is refused, with the estimate and the
directional check as the way out."""

import numpy as np
import pytest

from manual_backprop import numerical_gradients, random_network, three_way_check, udl_network
from manual_backprop.checks import three_way as three_way_module

X, Y = np.array([[1.2]]), np.array([[20.0]])


def _notebook(dtype=np.float64):
    weights, biases = udl_network()
    return [w.astype(dtype) for w in weights], [b.astype(dtype) for b in biases]


@pytest.mark.parametrize(("dtype", "step"), [(np.float64, 1e-20), (np.float32, 1e-50), (np.float32, 1e-9)])
def test_a_step_that_underflows_the_perturbation_names_the_smallest_usable_step(dtype, step):
    weights, biases = _notebook(dtype)
    with pytest.raises(ValueError, match=r"step=.* below the smallest usable step \d\.\d\de-\d\d"):
        numerical_gradients(weights, biases, X, Y, step=step)
    with pytest.raises(ValueError, match="smallest usable step"):
        three_way_check(weights, biases, X, Y, step=step)


def test_the_smallest_usable_step_moves_every_parameter():
    weights, biases = _notebook()
    largest = max(np.abs(a).max() for a in weights + biases)
    step = 2 * np.finfo(np.float64).eps * largest
    grads = numerical_gradients(weights, biases, X, Y, step=step, method="forward")
    assert all(np.isfinite(g).all() for part in grads for g in part)
    assert any(np.any(g) for part in grads for g in part)  # not all zeros: the step moved the network


def test_max_memory_inf_means_no_limit():
    weights, biases = random_network([3, 40, 40, 2], rng=0)
    x, y = np.ones((3, 5)), np.zeros((2, 5))
    expected = numerical_gradients(weights, biases, x, y, max_memory=2**12)  # many blocks
    unlimited = numerical_gradients(weights, biases, x, y, max_memory=float("inf"))  # one block
    for a, b in zip(expected[0] + expected[1], unlimited[0] + unlimited[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_an_absurd_cost_is_refused_with_the_estimate_and_the_way_out():
    weights, biases = random_network([1000, 1000, 1000], rng=0)
    x, y = np.ones((1000, 1000)), np.zeros((1000, 1000))
    with pytest.raises(ValueError, match=r"would cost 2\.0e\+15 multiply-adds.*fd='directional'"):
        numerical_gradients(weights, biases, x, y)
    with pytest.raises(ValueError, match=r"would cost .* multiply-adds.*fd='directional'"):
        three_way_check(weights, biases, x[:, :2], y[:, :2], fd_budget=float("inf"))


def test_an_absurd_block_is_refused_unless_max_memory_allows_it():
    """One perturbation of a 20-unit layer over a million examples: about 1.2 GiB of working arrays."""
    weights, biases = random_network([1, 20, 1], rng=0)
    x, y = np.ones((1, 10**6)), np.zeros((1, 10**6))
    with pytest.raises(ValueError, match=r"one perturbation .* needs about 1\.2 GiB.*fd='directional'"):
        numerical_gradients(weights, biases, x, y)


def test_three_way_switches_to_directional_when_one_perturbation_is_too_large(monkeypatch):
    monkeypatch.setattr(three_way_module, "FD_MAX_BLOCK_BYTES", 1024)
    weights, biases = random_network([3, 40, 2], rng=0)
    report = three_way_check(weights, biases, np.ones((3, 8)), np.zeros((2, 8)))
    assert report.fd == "directional" and any("GiB of working arrays" in n for n in report.notes)


@pytest.mark.parametrize("budget", ["a", -1, float("nan"), None, True])
def test_three_way_names_a_bad_fd_budget(budget):
    weights, biases = _notebook()
    with pytest.raises(ValueError, match="fd_budget must be a number"):
        three_way_check(weights, biases, X, Y, fd_budget=budget)
