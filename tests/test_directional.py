"""directional_check and taylor_check: right gradients pass, wrong ones fail, on 10^6-parameter networks."""

import json

import numpy as np
import pytest

from manual_backprop import directional_check, manual_gradients, random_network, taylor_check, udl_network


def _big(weight_std=None, dtype=np.float64):
    sizes = [256, 1024, 1024, 10]
    weights, biases = random_network(sizes, rng=1, weight_std=weight_std, dtype=dtype)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((sizes[0], 8)).astype(dtype)
    y = rng.standard_normal((sizes[-1], 8)).astype(dtype)
    assert sum(w.size + b.size for w, b in zip(weights, biases, strict=False)) > 10**6
    return weights, biases, x, y


@pytest.fixture(scope="module")
def big():
    weights, biases, x, y = _big()
    return weights, biases, x, y, manual_gradients(weights, biases, x, y)


def _wrong(gradient, layer=1, factor=-1.0):
    weights = [g.copy() for g in gradient[0]]
    weights[layer] = weights[layer] * factor
    return weights, list(gradient[1])


def test_directional_passes_a_right_gradient_of_a_large_network(big):
    *args, gradient = big
    report = directional_check(*args, gradient)
    assert report.ok and len(report.rows) == 3 and report.inconclusive == 0
    json.dumps(report.to_dict(), allow_nan=False)
    assert "directional check: ok" in str(report)


@pytest.mark.parametrize(("layer", "factor"), [(1, -1.0), (0, 2.0), (2, 1.01)])
def test_directional_flags_a_wrong_gradient_of_a_large_network(big, layer, factor):
    *args, gradient = big
    assert not directional_check(*args, _wrong(gradient, layer, factor)).ok


def test_taylor_order_is_two_when_right_and_one_when_wrong(big):
    *args, gradient = big
    right = taylor_check(*args, gradient)
    assert right.ok and 1.8 < right.order < 2.2
    wrong = taylor_check(*args, _wrong(gradient))
    assert not wrong.ok and 0.8 < wrong.order < 1.3
    assert "fitted order" in str(wrong)
    json.dumps(wrong.to_dict(), allow_nan=False)


def test_unit_normal_weights_do_not_cause_false_alarms():
    weights, biases, x, y = _big(weight_std=1.0)
    gradient = manual_gradients(weights, biases, x, y)
    assert directional_check(weights, biases, x, y, gradient).ok
    assert taylor_check(weights, biases, x, y, gradient).ok
    assert not directional_check(weights, biases, x, y, _wrong(gradient)).ok


def test_float32_large_network():
    weights, biases, x, y = _big(dtype=np.float32)
    gradient = manual_gradients(weights, biases, x, y)
    assert directional_check(weights, biases, x, y, gradient).ok
    assert not directional_check(weights, biases, x, y, _wrong(gradient)).ok


def test_exact_kinks_are_handled_not_failed_nor_hiding_bugs():
    conclusive, flagged = 0, 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        sizes = [2, 4, 3, 2]
        weights = [
            rng.integers(-2, 3, (o, i)).astype(float) for i, o in zip(sizes[:-1], sizes[1:], strict=False)
        ]
        biases = [rng.integers(-1, 2, (o, 1)).astype(float) for o in sizes[1:]]
        x, y = rng.integers(-2, 3, (2, 3)).astype(float), rng.integers(-2, 3, (2, 3)).astype(float)
        gradient = manual_gradients(weights, biases, x, y)
        report = directional_check(weights, biases, x, y, gradient, directions=4)
        assert report.ok, str(report)
        assert taylor_check(weights, biases, x, y, gradient).ok
        conclusive += len(report.rows) - report.inconclusive
        wrong = ([2 * g for g in gradient[0]], gradient[1])
        flagged += not directional_check(weights, biases, x, y, wrong, directions=4).ok
    # Most directions avoid or step around the kinks (one-sided), and a wrong gradient is still caught.
    assert conclusive >= 16 and flagged >= 5


def test_notebook_network_small_steps():
    weights, biases = udl_network()
    x, y = np.array([[1.2]]), np.array([[20.0]])
    gradient = manual_gradients(weights, biases, x, y)
    assert directional_check(weights, biases, x, y, gradient).ok
    assert not directional_check(weights, biases, x, y, _wrong(gradient, 5, 2.0)).ok
    assert not taylor_check(weights, biases, x, y, _wrong(gradient, 5, 2.0)).ok


def test_bad_gradients_raise():
    weights, biases = udl_network()
    x, y = np.array([[1.2]]), np.array([[20.0]])
    gradient = manual_gradients(weights, biases, x, y)
    with pytest.raises(ValueError, match=r"weights\[0\] has shape \(1, 6\)"):
        directional_check(weights, biases, x, y, ([gradient[0][0].T] + gradient[0][1:], gradient[1]))
    with pytest.raises(TypeError, match="pair"):
        taylor_check(weights, biases, x, y, None)
