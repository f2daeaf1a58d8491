"""check_gradient on hand-written gradients of one's own: right ones pass, each bug fails at its leaf."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manual_backprop import GradientReport, assert_gradient_correct, check_gradient, check_loss_and_grad
from manual_backprop.compare.pytree import flatten, leaves_like, tree_from_names
from zoo.hand_written import (
    nested_grads,
    nested_loss,
    nested_params,
    sigmoid_backprop,
    sigmoid_cost,
    sigmoid_net,
    two_layer_grads,
    two_layer_loss,
    two_layer_loss_numpy,
    two_layer_params,
)

LOSSES = {"numpy": two_layer_loss_numpy, "array api": two_layer_loss}


@pytest.fixture
def net(rng):
    return two_layer_params(rng)


def _check(loss, params, X, y, bug=None, **options) -> GradientReport:
    return check_gradient(lambda p: loss(p, X, y), lambda p: two_layer_grads(p, X, y, bug=bug), params,
                          **options)


@pytest.mark.parametrize("style", LOSSES)
def test_the_two_layer_net_right_passes_with_its_witnesses(net, style):
    params, X, y = net
    report = check_gradient(lambda p: LOSSES[style](p, X, y), lambda p: two_layer_grads(p, X, y), params)
    assert report.ok, report
    assert [row.name for row in report.rows] == ["W1", "b1", "W2", "b2"]
    both = ("finite differences", "jax")
    assert report.witnesses == (both if style == "array api" else both[:1])
    assert report.reference == ("jax" if style == "array api" else "finite differences")
    assert not report.warnings and not report.diagnoses and report.excluded == 0
    assert "witnesses: finite differences" in str(report)


@pytest.mark.parametrize("style", LOSSES)
@pytest.mark.parametrize(("bug", "leaf", "words"), [
    ("no_reg", "W1", "lambda = 1/20"),
    ("sum", "b2", "N = 8"),
    ("transpose", "W2", "transpose"),
    ("missing", "b2", None),
])  # fmt: skip
def test_each_bug_of_the_two_layer_net_fails_at_its_leaf_only(net, style, bug, leaf, words):
    params, X, y = net
    report = _check(LOSSES[style], params, X, y, bug)
    assert report.failing == (leaf,), report
    if words:
        assert words in report.diagnosis(leaf), report
    else:
        assert "grad_fn returned a dict without 'b2'" in str(report)


def test_relu_prime_at_zero_taken_as_one_is_not_a_bug(net):
    params, X, y = net
    assert _check(two_layer_loss_numpy, params, X, y, "relu_ge").ok


@pytest.fixture
def on_kinks(rng):
    """Example 0 sits exactly on every hidden unit's kink (dyadic numbers: X[0] W1 + b1 == 0 exactly)."""
    params, X, y = two_layer_params(rng)
    X[0] = rng.choice([-1.0, -0.5, 0.5, 1.0], size=X.shape[1])
    params["W1"] = np.round(params["W1"] * 4) / 4
    params["b1"] = -(X[0] @ params["W1"])
    assert np.all(X[0] @ params["W1"] + params["b1"] == 0)
    return params, X, y


@pytest.mark.parametrize("style", LOSSES)
@pytest.mark.parametrize("convention", [None, "relu_ge"])
def test_relu_units_exactly_at_zero_pass_either_way_and_are_counted(on_kinks, style, convention):
    params, X, y = on_kinks
    report = _check(LOSSES[style], params, X, y, convention)
    assert report.ok, report
    assert report.one_sided + report.excluded > 0
    assert not report.warnings, report.warnings


def test_a_bug_beside_the_kinks_is_still_caught(on_kinks):
    params, X, y = on_kinks
    assert _check(two_layer_loss_numpy, params, X, y, "sum").failing == ("b2",)


@pytest.mark.parametrize(("bug", "failing"), [
    (None, ()),
    ("no_prime", ("[0][0]", "[0][1]", "[1][0]", "[1][1]")),
    ("last_w", ("[1][1]",)),
])  # fmt: skip
def test_the_sigmoid_network_of_column_vectors(rng, bug, failing):
    net, x, y = sigmoid_net(rng), rng.standard_normal((3, 5)), rng.uniform(size=(2, 5))
    report = check_gradient(lambda n: sigmoid_cost(n, x, y), lambda n: sigmoid_backprop(n, x, y, bug), net)
    assert report.failing == failing, report


@pytest.mark.parametrize("bug", [None, "b1_sign"])
def test_a_nested_tree_with_a_0d_leaf_names_leaves_by_path(rng, bug):
    params, X, t = nested_params(rng), rng.standard_normal((6, 3)), rng.standard_normal(6)
    report = check_gradient(lambda p: nested_loss(p, X, t), lambda p: nested_grads(p, X, t, bug), params)
    names = [row.name for row in report.rows]
    assert names == ["encoder.layers[0].W", "encoder.layers[0].b", "encoder.layers[1].W",
                     "encoder.layers[1].b", "head[0]", "head[1]"]  # fmt: skip
    if bug:
        assert report.failing == ("encoder.layers[1].b",)
        assert "sign" in report.diagnosis("encoder.layers[1].b")
    else:
        assert report.ok, report


def test_float32_parameters_are_differenced_on_float64_copies(rng):
    params, X, y = two_layer_params(rng, dtype=np.float32)
    right = _check(two_layer_loss_numpy, params, X, y)
    assert right.ok, right
    assert right.dtypes == ("float32",) and any("float64 copies" in note for note in right.notes)
    assert _check(two_layer_loss_numpy, params, X, y, "no_reg").failing == ("W1",)


def test_one_leaf_returned_in_another_ones_place(rng):
    a, b = rng.standard_normal(4), rng.standard_normal(4)

    def loss(p):
        return float(np.sum(p["a"] ** 3) + np.sum(np.sin(p["b"])))

    report = check_gradient(loss, lambda p: {"a": np.cos(p["b"]), "b": np.cos(p["b"])}, {"a": a, "b": b})
    assert report.failing == ("a",)
    assert "equals the gradient of b" in report.diagnosis("a")


def test_structure_mismatches_are_named_as_such(rng):
    params = [rng.standard_normal(3) for _ in range(4)]

    def loss(p):
        return sum(float(np.sum(q**2)) for q in p)

    report = check_gradient(loss, lambda p: [2 * q for q in p[:3]], params)
    assert report.failing == ("[0]", "[1]", "[2]", "[3]")
    assert "grad_fn returned a list of 3 where params has 4" in str(report)


def test_the_callers_arrays_are_never_touched(net):
    params, X, y = net
    before = {k: v.copy() for k, v in params.items()}
    for v in params.values():
        v.flags.writeable = False

    def scribbling_grads(p):
        grads = two_layer_grads(p, X, y)
        for v in p.values():
            v += 1.0  # the user's code writes into what it was given: our copies, not the caller's
        return grads

    report = check_gradient(lambda p: two_layer_loss_numpy(p, X, y), scribbling_grads, params)
    assert report.ok, report
    for key, value in params.items():
        assert np.array_equal(value, before[key]) and not value.flags.writeable


def test_the_report_is_json_safe_even_with_nan(net):
    params, X, y = net

    def nan_grads(p):
        grads = two_layer_grads(p, X, y)
        grads["b1"] = np.full_like(grads["b1"], np.nan)
        return grads

    report = check_gradient(lambda p: two_layer_loss(p, X, y), nan_grads, params)
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["failing"] == ["b1"] and document["witnesses"] == ["finite differences", "jax"]
    assert document["schema_version"] >= 1 and document["ok"] is False


def test_jax_agrees_with_finite_differences_where_both_run(net):
    params, X, y = net
    report = _check(two_layer_loss, params, X, y, fd="coordinates")
    assert report.witnesses == ("finite differences", "jax") and not report.warnings


def test_jax_loss_fn_that_is_another_function_is_refused(net):
    params, X, y = net
    with pytest.raises(ValueError, match="not the same function"):
        _check(two_layer_loss_numpy, params, X, y, jax_loss_fn=lambda p: two_layer_loss(p, X, y, reg=0.0))


def test_jax_loss_fn_witnesses_a_numpy_loss(net):
    params, X, y = net
    report = _check(two_layer_loss_numpy, params, X, y, "sum", jax_loss_fn=lambda p: two_layer_loss(p, X, y))
    assert report.reference == "jax" and report.failing == ("b2",)


@pytest.mark.parametrize(("bug", "failing"), [(None, ()), ("no_reg", ("W1",)), ("sum", ("b2",))])
def test_the_directional_fallback_still_names_the_leaf(net, bug, failing):
    params, X, y = net
    report = _check(two_layer_loss_numpy, params, X, y, bug, fd="directional", seed=3)
    assert report.fd == "directional" and report.failing == failing, report


def test_assert_gradient_correct_and_check_loss_and_grad(net):
    params, X, y = net
    assert_gradient_correct(lambda p: two_layer_loss(p, X, y), lambda p: two_layer_grads(p, X, y), params)
    with pytest.raises(AssertionError, match=r"gradient wrong in b2\n"):
        assert_gradient_correct(lambda p: two_layer_loss_numpy(p, X, y),
                                lambda p: two_layer_grads(p, X, y, bug="sum"), params)  # fmt: skip
    report = check_loss_and_grad(lambda p: (two_layer_loss_numpy(p, X, y), two_layer_grads(p, X, y)), params)
    assert report.ok, report


def test_leaf_names_round_trip_through_an_npz_style_mapping(rng):
    tree = nested_params(rng)
    names, leaves, structure = flatten(tree)
    rebuilt = tree_from_names(dict(zip(names, leaves, strict=True)))
    assert flatten(rebuilt)[0] == names
    got, notes = leaves_like(structure, {"encoder": {"layers": []}, "head": (1.0, 2.0), "extra": 1})
    assert "grad_fn returned a list of 0 at encoder.layers where params has 2" in got[0].message
    assert notes == ["grad_fn returned keys params lacks: 'extra'"]


@pytest.mark.parametrize(("params", "words"), [
    ({"W": np.arange(3)}, "W is an array of dtype int64"),
    ({"W": np.array([1.0, np.nan])}, "NaN"),
    ({}, "empty dict"),
])  # fmt: skip
def test_bad_params_are_refused_naming_the_leaf(params, words):
    with pytest.raises((TypeError, ValueError), match=words):
        check_gradient(lambda p: 0.0, lambda p: p, params)


def test_a_loss_computing_in_float32_is_differenced_at_float32_steps(rng):
    params, X, y = two_layer_params(rng, dtype=np.float32)

    def loss32(p):
        return two_layer_loss_numpy({k: np.asarray(v, np.float32) for k, v in p.items()}, X, y)

    assert _check(lambda p, X, y: loss32(p), params, X, y).ok
    wrong = _check(lambda p, X, y: loss32(p), params, X, y, "no_reg")
    assert wrong.failing == ("W1",) and "lambda = 1/20" in wrong.diagnosis("W1")
    assert any("differenced at float32 steps" in note for note in wrong.notes)


def test_finite_differences_disagreeing_with_jax_are_a_warning_naming_the_leaf(net):
    params, X, y = net
    b2 = params["b2"].copy()

    def other(p):  # the same value at params, another gradient in b2
        return two_layer_loss(p, X, y) + 0.3 * (p["b2"] - b2).sum()

    report = _check(two_layer_loss_numpy, params, X, y, jax_loss_fn=other)
    assert len(report.warnings) == 1 and report.warnings[0].startswith("b2: finite differences disagree")


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**16), sizes=st.tuples(st.integers(1, 4), st.integers(1, 5), st.integers(2, 4),
                                                   st.integers(1, 6)))
def test_properties_untouched_json_safe_and_the_witnesses_agree(seed, sizes):
    D, H, C, N = sizes
    params, X, y = two_layer_params(np.random.default_rng(seed), D=D, H=H, C=C, N=N)
    before = {k: v.copy() for k, v in params.items()}
    for v in params.values():
        v.flags.writeable = False
    report = _check(two_layer_loss, params, X, y)
    assert report.ok and report.witnesses == ("finite differences", "jax") and not report.warnings, report
    assert all(np.array_equal(params[k], before[k]) for k in params)
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_missing_leaf_along_directions_fails_that_leaf_only(net):
    params, X, y = net
    report = _check(two_layer_loss_numpy, params, X, y, "missing", fd="directional")
    assert report.failing == ("b2",) and "without 'b2'" in str(report)
    transposed = _check(two_layer_loss_numpy, params, X, y, "transpose", fd="directional")
    assert transposed.failing == ("W2",) and "wrong shape" in str(transposed)


def test_a_gradient_that_should_be_zero_gets_no_invented_factor():
    params = {"W": np.ones((2, 2)), "b": np.zeros(3)}

    def loss(p):
        return float(np.sum(p["W"] ** 2) + np.sum(p["b"] ** 3))  # d/db = 3 b^2 = 0 at b = 0

    report = check_gradient(loss, lambda p: {"W": 2 * p["W"], "b": 3 * p["b"] ** 2 + 1}, params)
    assert report.failing == ("b",)
    assert report.diagnosis("b") is None  # the reference is rounding noise there: no "c times" claim


def test_the_report_draws_itself_in_a_notebook():
    params = {"W": np.ones((2, 2))}
    report = check_gradient(lambda p: float(np.sum(p["W"] ** 2)), lambda p: {"W": 3 * p["W"]}, params)
    page = report._repr_html_()
    assert "FAIL" in page and "W" in page and "<script" not in page
    assert repr(report) == str(report)


def test_a_leaf_that_nothing_witnesses_is_never_a_pass():
    # |W| with every entry within reach of its kink: no entry can be compared, so the leaf cannot pass
    W = 1e-7 * np.random.default_rng(0).standard_normal((3, 3))
    report = check_gradient(lambda q: float(np.abs(q["W"]).sum()), lambda q: {"W": -5 * np.sign(q["W"])},
                            {"W": W})
    assert not report.ok and report.failing == ("W",) and "nothing witnesses" in str(report)


def test_units_sharing_a_kink_accept_any_slope_between_the_one_sided_ones():
    # One weight feeds two units exactly on their kink: ReLU'(0) = 0 (jax.nn's) lies between the one-sided
    # derivatives of the weight, and is a valid subgradient
    X = np.array([[1.0, 0.5], [2.0, -1.0], [-1.0, 0.3]])
    t = np.array([0.5, -1.0, 2.0])
    params = {"W": np.array([[0.3, 0.0], [0.1, 0.0]]), "b": np.zeros(2), "v": np.array([1.0, -2.0])}

    def loss(q):
        return 0.5 * float(np.sum((np.maximum(X @ q["W"] + q["b"], 0) @ q["v"] - t) ** 2))

    def grad(q):
        z = X @ q["W"] + q["b"]
        h = np.maximum(z, 0)
        r = h @ q["v"] - t
        dz = np.outer(r, q["v"]) * (z > 0)
        return {"W": X.T @ dz, "b": dz.sum(0), "v": h.T @ r}

    assert check_gradient(loss, grad, params).ok
