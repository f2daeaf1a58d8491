"""The checker of the derivatives beyond the gradient: it fails every deliberately wrong derivative, never
raises a false alarm at a kink, and reports as data (``.ok``, rows, ``str``, ``to_dict``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from derivative_helpers import kink_problem, make_problem, random_vector
from manual_backprop import DERIVATIVES, check_derivative, udl_network
from zoo import derivatives as zoo

# (derivative, wrong function, activation): each bug shows on a network of SIZES with this activation.
BROKEN = [
    ("jvp", zoo.jvp_without_domega_h, "relu"),
    ("jvp", zoo.jvp_without_slope, "tanh"),
    ("hvp", zoo.hvp_without_vt_delta, "relu"),
    ("hvp", zoo.hvp_without_vt_delta, "tanh"),
    ("hvp", zoo.hvp_without_delta_rh, "softplus"),
    ("hvp", zoo.hvp_without_curvature, "tanh"),
    ("hvp", zoo.hvp_without_curvature, "sigmoid"),
    ("hvp", zoo.hvp_wrong_curvature, "tanh"),
    ("hvp", zoo.hvp_wrong_curvature, "softplus"),
    ("ggn", zoo.ggn_as_hessian, "tanh"),
    ("ggn", zoo.ggn_as_hessian, "relu"),
    ("per_example", zoo.per_example_batch_mean, "relu"),
    ("input", zoo.input_gradient_with_slope_of_f0, "sigmoid"),
]


@pytest.mark.parametrize("derivative, wrong, activation", BROKEN,
                         ids=[f"{w.__name__}-{a}" for _, w, a in BROKEN])
def test_a_wrong_derivative_fails(derivative, wrong, activation):
    w, b, x, y = make_problem(51)
    report = check_derivative(w, b, x, y, derivative=derivative, activation=activation, manual=wrong)
    assert not report.ok, str(report)
    failing = report.failing
    assert failing and all(not r.manual_jax_ok for r in failing)
    assert all(r.jax_fd_ok for r in report.rows), "the witnesses themselves must still agree"
    assert str(report).splitlines()[-1].startswith("FAIL")


def test_dropped_curvature_is_right_for_relu():
    """a''(f) = 0 is no bug for relu (it is 0 almost everywhere): the check must not cry wolf."""
    w, b, x, y = make_problem(52)
    report = check_derivative(w, b, x, y, derivative="hvp", activation="relu",
                              manual=zoo.hvp_without_curvature)
    assert report.ok, str(report)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_exact_kinks_are_never_a_false_alarm(activation):
    one_sided = 0
    for seed in (3, 4):
        w, b, x, y = kink_problem(seed)
        for derivative in DERIVATIVES:
            report = check_derivative(w, b, x, y, derivative=derivative, activation=activation)
            assert report.ok, str(report)
            assert all(r.manual_jax <= 1e-14 for r in report.rows)  # same convention at a'(0), a''(0)
            one_sided += sum(r.one_sided for r in report.rows)
    assert one_sided > 0  # the kink rule was exercised, not just skipped


def test_report_renders_as_a_table_and_as_json():
    w, b = udl_network()
    report = check_derivative(w, b, np.array([[1.2]]), np.array([[20.0]]), derivative="hvp")
    text = str(report).splitlines()
    assert text[0] == ("hvp: H v, the loss's Hessian times v (Pearlmutter's R-operator); "
                       "network 1-6-6-6-6-6-1, batch 1")
    assert text[2].split() == ["tensor", "shape", "manual-jax", "manual-fd", "jax-fd", "1-sided", "excl"]
    assert text[3].startswith("Omega_0") and text[3].endswith("ok")
    assert text[-1] == "OK: manual, jax and finite differences agree on H v"
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True and data["derivative"] == "hvp" and len(data["rows"]) == 12
    assert data["tolerances"]["analytic"]["rtol"] == 1e-10


def test_a_given_vector_is_used_and_random_ones_are_seeded():
    w, b, x, y = make_problem(53)
    v = random_vector(w, b, 54)
    given = check_derivative(w, b, x, y, derivative="ggn", vector=v)
    again = check_derivative(w, b, x, y, derivative="ggn", vector=v)
    assert given.values["manual"][0].tolist() == again.values["manual"][0].tolist()
    seeded = check_derivative(w, b, x, y, derivative="ggn", rng=7)
    other = check_derivative(w, b, x, y, derivative="ggn", rng=8)
    assert seeded.values["manual"][0].tolist() != other.values["manual"][0].tolist()


def test_user_errors_name_the_argument():
    w, b, x, y = make_problem(55)
    v = random_vector(w, b, 56)
    with pytest.raises(ValueError, match="unknown derivative 'hessian'; choose one of jvp, hvp"):
        check_derivative(w, b, x, y, derivative="hessian")
    with pytest.raises(ValueError, match="vector is for jvp, hvp and ggn"):
        check_derivative(w, b, x, y, derivative="input", vector=v)
    with pytest.raises(TypeError, match="vector must be a pair"):
        check_derivative(w, b, x, y, derivative="hvp", vector=v[0])
    with pytest.raises(ValueError, match=r"vector\[0\]\[1\] has shape \(5, 4\), expected \(4, 5\)"):
        check_derivative(w, b, x, y, derivative="hvp", vector=([v[0][0], v[0][1].T, v[0][2]], v[1]))
    with pytest.raises(TypeError, match="manual must be a function"):
        check_derivative(w, b, x, y, derivative="hvp", manual="mine")


def test_a_wrong_shape_is_a_failing_row_not_an_exception():
    w, b, x, y = make_problem(57)

    def transposed(*args, **kwargs):
        from manual_backprop import manual_input_gradient

        return manual_input_gradient(*args, **kwargs).T

    report = check_derivative(w, b, x, y, derivative="input", manual=transposed)
    assert not report.ok and "wrong shape" in report.rows[0].message


def test_a_function_that_writes_into_its_arguments_cannot_corrupt_the_witnesses():
    w, b, x, y = make_problem(58)

    def vandal(all_weights, all_biases, net_input, v_weights, v_biases, *, activation):
        from manual_backprop import manual_jvp

        result = manual_jvp(all_weights, all_biases, net_input, v_weights, v_biases, activation=activation)
        for array in [*all_weights, *all_biases, net_input, *v_weights, *v_biases]:
            array[...] = 0.0
        return result

    before = [a.copy() for a in [*w, *b, x]]
    report = check_derivative(w, b, x, y, derivative="jvp", manual=vandal)
    assert report.ok, str(report)
    for original, now in zip(before, [*w, *b, x], strict=True):
        np.testing.assert_array_equal(original, now)
