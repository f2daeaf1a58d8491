"""Forward mode: the JVP of the output and of the loss, by hand, against jax.jvp and central differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derivative_helpers import BATCH, SIZES, flat, make_problem, random_vector
from manual_backprop import (
    ACTIVATIONS,
    LOSSES,
    check_derivative,
    compute_network_output,
    manual_gradients,
    manual_jvp,
    manual_loss_jvp,
)
from oracle import jax_jvp, jax_loss_jvp


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_three_way_every_activation_and_loss(activation, loss):
    w, b, x, y = make_problem(1, loss=loss)
    report = check_derivative(w, b, x, y, derivative="jvp", activation=activation, loss=loss)
    assert report.ok, str(report)
    assert not report.inconclusive
    assert [r.name for r in report.rows] == ["d_output", "dL"]
    assert report.rows[0].shape == (SIZES[-1], BATCH)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_three_way_float32(activation):
    w, b, x, y = make_problem(2, dtype=np.float32, loss="binary_cross_entropy")
    report = check_derivative(w, b, x, y, derivative="jvp", activation=activation,
                              loss="binary_cross_entropy")
    assert report.ok, str(report)
    assert report.dtype == "float32"


@pytest.mark.parametrize("sizes", [(4, 2), (2, 7, 3), (5, 1, 6, 2), (3, 8, 2, 9, 4, 6, 5, 2)])
def test_depths_and_unequal_widths(sizes):
    w, b, x, y = make_problem(3, sizes=sizes, batch=2)
    report = check_derivative(w, b, x, y, derivative="jvp", activation="tanh")
    assert report.ok, str(report)


def test_output_is_the_forward_pass_and_dtype_is_kept():
    for dtype in (np.float64, np.float32):
        w, b, x, _ = make_problem(4, dtype=dtype)
        tw, tb = random_vector(w, b, 5, dtype)
        out, d_out = manual_jvp(w, b, x, tw, tb, activation="softplus")
        expected = compute_network_output(x, w, b, activation="softplus")[0]
        np.testing.assert_array_equal(out, expected)
        assert out.dtype == d_out.dtype == dtype and d_out.shape == out.shape


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), a=st.floats(-3, 3), c=st.floats(-3, 3),
       activation=st.sampled_from(sorted(ACTIVATIONS)))
def test_linear_in_the_tangent(seed, a, c, activation):
    w, b, x, _ = make_problem(seed, sizes=(3, 6, 2), batch=2)
    uw, ub = random_vector(w, b, seed + 1)
    vw, vb = random_vector(w, b, seed + 2)
    mixed_w = [a * u + c * v for u, v in zip(uw, vw, strict=True)]
    mixed_b = [a * u + c * v for u, v in zip(ub, vb, strict=True)]
    d_u = manual_jvp(w, b, x, uw, ub, activation=activation)[1]
    d_v = manual_jvp(w, b, x, vw, vb, activation=activation)[1]
    d_mixed = manual_jvp(w, b, x, mixed_w, mixed_b, activation=activation)[1]
    scale = max(1.0, np.abs(d_u).max() * abs(a), np.abs(d_v).max() * abs(c))
    np.testing.assert_allclose(d_mixed, a * d_u + c * d_v, rtol=1e-12, atol=1e-12 * scale)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), activation=st.sampled_from(sorted(ACTIVATIONS)),
       loss=st.sampled_from(LOSSES))
def test_loss_jvp_is_the_gradient_dotted_with_the_tangent(seed, activation, loss):
    """The identity jvp(v) . 1 == grad . v: forward mode against reverse mode, both by hand."""
    w, b, x, y = make_problem(seed, sizes=(2, 5, 3), batch=3, loss=loss)
    vw, vb = random_vector(w, b, seed + 1)
    d_loss = manual_loss_jvp(w, b, x, y, vw, vb, activation=activation, loss=loss)
    gradient = manual_gradients(w, b, x, y, activation=activation, loss=loss)
    dot = flat(gradient) @ flat((vw, vb))
    assert d_loss == pytest.approx(dot, rel=1e-11, abs=1e-12 * np.abs(flat(gradient)).sum())


def test_loss_jvp_against_jax():
    w, b, x, y = make_problem(6, loss="softmax_cross_entropy")
    vw, vb = random_vector(w, b, 7)
    manual = manual_loss_jvp(w, b, x, y, vw, vb, activation="sigmoid", loss="softmax_cross_entropy")
    oracle = jax_loss_jvp(w, b, x, y, vw, vb, activation="sigmoid", loss="softmax_cross_entropy")
    assert manual == pytest.approx(float(oracle), rel=1e-12)


def test_integers_are_promoted_and_nothing_is_changed():
    w = [np.array([[1, -2], [0, 3]]), np.array([[2, 1]])]
    b = [np.array([[1], [0]]), np.array([[-1]])]
    x = np.array([[1, 2], [3, -1]])
    tw = [np.ones((2, 2), int), np.ones((1, 2), int)]
    tb = [np.zeros((2, 1), int), np.ones((1, 1), int)]
    copies = [a.copy() for a in [*w, *b, x, *tw, *tb]]
    out, d_out = manual_jvp(w, b, x, tw, tb)
    assert out.dtype == d_out.dtype == np.float64
    for before, after in zip(copies, [*w, *b, x, *tw, *tb], strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_allclose(d_out, jax_jvp(w, b, x, tw, tb)[1], rtol=1e-14)


def test_bad_tangents_are_named():
    w, b, x, _ = make_problem(8)
    tw, tb = random_vector(w, b, 9)
    wrong = list(tw)
    wrong[2] = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"tangent_weights\[2\] has shape \(4, 3\), expected \(3, 4\)"):
        manual_jvp(w, b, x, wrong, tb)
    with pytest.raises(ValueError, match=r"tangent_biases has 2 entries, expected 3"):
        manual_jvp(w, b, x, tw, tb[:2])
    with pytest.raises(TypeError, match="tangent_weights must be a list"):
        manual_jvp(w, b, x, np.zeros(3), tb)
    nan = [t.copy() for t in tb]
    nan[1][0, 0] = np.nan
    with pytest.raises(ValueError, match=r"tangent_biases\[1\] contains nan"):
        manual_jvp(w, b, x, tw, nan)
    with pytest.raises(ValueError, match=r"tangent_weights\[2\] has shape"):
        jax_jvp(w, b, x, wrong, tb)
    with pytest.raises(ValueError, match="unknown activation"):
        manual_jvp(w, b, x, tw, tb, activation="gelu")
