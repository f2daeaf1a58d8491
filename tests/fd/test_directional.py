"""directional_check and taylor_check: right gradients pass, wrong ones fail, on 10^6-parameter networks."""

import json

import numpy as np
import pytest

from manual_backprop import (
    ACTIVATIONS,
    directional_check,
    manual_gradients,
    random_network,
    taylor_check,
    udl_network,
)


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


# Regressions: a Taylor fit over a fixed range of large h passed gradients 57% wrong (curvature hid the
# linear term) and failed right ones of deep tanh networks (h far beyond the smooth range, r ~ h |v . g|).


def _deep(activation, weight_std=None, sizes=(10, 200, 200, 200, 5), seed=1):
    sizes = list(sizes)
    weights, biases = random_network(
        sizes, rng=seed, weight_std=weight_std, bias_std=0.1 if weight_std is None else 1.0
    )
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((sizes[0], 8)), rng.standard_normal((sizes[-1], 8))
    return weights, biases, x, y, manual_gradients(weights, biases, x, y, activation=activation)


def _bug(gradient, kind):
    weights, biases = [g.copy() for g in gradient[0]], [g.copy() for g in gradient[1]]
    if kind == "beta_0 sign":
        biases[0] = -biases[0]
    elif kind == "Omega_0 sign":
        weights[0] = -weights[0]
    elif kind == "Omega_0 x1.5":
        weights[0] = 1.5 * weights[0]
    elif kind == "Omega_2 zero":
        weights[2] = np.zeros_like(weights[2])
    return weights, biases


@pytest.fixture(scope="module", params=["relu", "tanh"])
def medium(request):
    return request.param, _deep(request.param)


@pytest.mark.parametrize("kind", ["beta_0 sign", "Omega_0 sign", "Omega_0 x1.5", "Omega_2 zero"])
def test_wrong_gradients_fail_in_both_modes(medium, kind):
    activation, (*args, gradient) = medium
    wrong = _bug(gradient, kind)
    taylor = taylor_check(*args, wrong, activation=activation)
    assert taylor.verdict == "FAIL" and not taylor.ok and 0.5 < taylor.order < 1.5, str(taylor)
    assert "fitted order" in str(taylor) and "FAIL" in str(taylor)
    assert directional_check(*args, wrong, activation=activation).verdict == "FAIL"


def test_right_gradient_of_the_medium_network_passes(medium):
    activation, (*args, gradient) = medium
    taylor = taylor_check(*args, gradient, activation=activation)
    assert taylor.verdict == "ok" and 1.75 < taylor.order < 2.25, str(taylor)
    assert directional_check(*args, gradient, activation=activation).verdict == "ok"


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("weight_std", [None, 1.0], ids=["he", "unit-normal"])
def test_right_gradients_of_deep_networks_pass(activation, weight_std):
    *args, gradient = _deep(activation, weight_std, sizes=(10, 100, 100, 100, 100, 100, 100, 5), seed=2)
    taylor = taylor_check(*args, gradient, activation=activation)
    assert taylor.verdict == "ok", str(taylor)
    json.dumps(taylor.to_dict(), allow_nan=False)
    assert directional_check(*args, gradient, activation=activation).verdict == "ok"
    wrong = _bug(gradient, "Omega_2 zero")
    assert taylor_check(*args, wrong, activation=activation).verdict == "FAIL"
    assert directional_check(*args, wrong, activation=activation).verdict == "FAIL"


def test_the_command_lines_deep_tanh_network_passes():
    # manual-backprop check --depth 6 --width 100 --batch 4 --activation tanh --fd taylor: unit-normal
    # weights and biases; the old sweep's h = 1e-2 |theta| was far outside the range where L is smooth.
    weights, biases = udl_network(K=6, D=100)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((1, 4)), rng.standard_normal((1, 4))
    gradient = manual_gradients(weights, biases, x, y, activation="tanh")
    report = taylor_check(weights, biases, x, y, gradient, activation="tanh")
    assert report.verdict == "ok" and 1.75 < report.order < 2.25, str(report)
    wrong = taylor_check(weights, biases, x, y, _bug(gradient, "beta_0 sign"), activation="tanh")
    assert wrong.verdict == "FAIL", str(wrong)


@pytest.fixture
def notebook():
    weights, biases = udl_network()
    x, y = np.array([[1.2]]), np.array([[20.0]])
    gradient = manual_gradients(weights, biases, x, y)
    return weights, biases, x, y, gradient, ([2 * g for g in gradient[0]], [2 * g for g in gradient[1]])


@pytest.mark.parametrize(
    ("keyword", "value", "error", "message"),
    [
        ("directions", 0, ValueError, "directions must be at least 1, got 0"),
        ("directions", -1, ValueError, "directions must be at least 1, got -1"),
        ("directions", 1.5, TypeError, "directions must be an integer"),
        ("directions", True, TypeError, "directions must be an integer"),
        ("step", float("nan"), ValueError, "step must be a finite number > 0.*got nan"),
        ("step", float("inf"), ValueError, "step must be a finite number > 0.*got inf"),
        ("step", 0, ValueError, "step must be a finite number > 0.*got 0"),
        ("step", -1e-8, ValueError, "step must be a finite number > 0.*got -1e-08"),
        ("step", "1e-8", TypeError, "step must be a number"),
    ],
)
def test_directional_arguments_are_validated(notebook, keyword, value, error, message):
    *args, gradient, _ = notebook
    with pytest.raises(error, match=message):
        directional_check(*args, gradient, **{keyword: value})


@pytest.mark.parametrize(
    ("keyword", "value", "error", "message"),
    [
        ("points", 2, ValueError, "points must be at least 3, got 2"),
        ("points", 8.0, TypeError, "points must be an integer"),
        ("start", 0.0, ValueError, "start must be a finite number > 0.*got 0.0"),
        ("start", float("nan"), ValueError, "start must be a finite number > 0.*got nan"),
        ("start", -0.01, ValueError, "start must be a finite number > 0.*got -0.01"),
    ],
)
def test_taylor_arguments_are_validated(notebook, keyword, value, error, message):
    *args, gradient, _ = notebook
    with pytest.raises(error, match=message):
        taylor_check(*args, gradient, **{keyword: value})


def test_three_way_check_rejects_a_negative_directional_step(notebook):
    from manual_backprop import three_way_check

    *args, _, _ = notebook
    with pytest.raises(ValueError, match="step must be a finite number > 0"):
        three_way_check(*args, fd="directional", step=-1)


@pytest.mark.parametrize("step", [1e6, 1e-14, 1e-300])
def test_a_meaningless_step_is_never_ok(notebook, step):
    *args, gradient, wrong = notebook
    for g in (gradient, wrong):
        report = directional_check(*args, g, step=step)
        assert report.verdict == "inconclusive" and report.inconclusive == len(report.rows), str(report)
        assert "inconclusive" in str(report) and report.notes


def test_a_step_too_small_for_rounding_is_inconclusive_even_for_a_right_gradient(notebook):
    *args, gradient, wrong = notebook
    assert taylor_check(*args, gradient, start=1e-300).verdict == "inconclusive"
    assert taylor_check(*args, wrong, start=1e-300).verdict == "inconclusive"
    # Far too large a start still halves down into the smooth range within the default points.
    assert taylor_check(*args, gradient, start=1e6).verdict == "ok"
    assert taylor_check(*args, wrong, start=1e6).verdict == "FAIL"



@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_unchecked_cores_give_the_public_reports(dtype):
    # A caller that has validated once (the three-way check) builds one line and runs both gradients on it.
    from manual_backprop.fd.directional import _directional
    from manual_backprop.fd.directions import as_float64, loss_line
    from manual_backprop.fd.taylor import _taylor

    weights, biases = random_network([3, 20, 20, 4], rng=3, dtype=dtype)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 5)).astype(dtype), rng.standard_normal((4, 5))
    gradient = manual_gradients(weights, biases, x, y)
    act = ACTIVATIONS["relu"]
    line = loss_line(weights, biases, x, y, act, "least_squares")
    assert line.dtype == dtype and line.weights[0].dtype == line.x.dtype == np.float64  # the loss in float64
    for g in (gradient, _wrong(gradient)):
        core = _directional(line, as_float64(g), directions=4, rng=7)
        assert core.to_dict() == directional_check(weights, biases, x, y, g, directions=4, rng=7).to_dict()
        core = _taylor(line, as_float64(g), rng=7)
        assert core.to_dict() == taylor_check(weights, biases, x, y, g, rng=7).to_dict()
