"""Generalized Gauss-Newton products G v = J^T H_L J v: three witnesses, symmetry, PSD, G = H for K = 0."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derivative_helpers import flat, make_problem, random_vector
from manual_backprop import ACTIVATIONS, LOSSES, check_derivative, manual_ggn_vp, manual_hvp
from oracle import jax_ggn_vp


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_three_way_every_activation_and_loss(activation, loss):
    w, b, x, y = make_problem(21, loss=loss)
    report = check_derivative(w, b, x, y, derivative="ggn", activation=activation, loss=loss)
    assert report.ok, str(report)
    assert not report.inconclusive


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_three_way_float32(activation):
    w, b, x, y = make_problem(22, dtype=np.float32)
    report = check_derivative(w, b, x, y, derivative="ggn", activation=activation)
    assert report.ok, str(report)


@pytest.mark.parametrize("sizes", [(2, 7, 3), (3, 8, 2, 9, 4, 6, 5, 2)])
def test_depths_and_unequal_widths(sizes):
    w, b, x, y = make_problem(23, sizes=sizes, batch=3, loss="softmax_cross_entropy")
    report = check_derivative(w, b, x, y, derivative="ggn", activation="leaky_relu",
                              loss="softmax_cross_entropy")  # fmt: skip
    assert report.ok, str(report)


@pytest.mark.parametrize("loss", LOSSES)
def test_equals_the_hessian_for_a_linear_network(loss):
    """K = 0: f_0 = Omega_0 x + beta_0 is linear in the parameters, so H = J^T H_L J exactly."""
    w, b, x, y = make_problem(24, sizes=(4, 3), batch=5, loss=loss)
    v = random_vector(w, b, 25)
    gv = flat(manual_ggn_vp(w, b, x, y, *v, loss=loss))
    hv = flat(manual_hvp(w, b, x, y, *v, loss=loss))
    np.testing.assert_allclose(gv, hv, rtol=1e-13, atol=1e-14 * np.abs(hv).max())


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_differs_from_the_hessian_where_the_network_curves(activation):
    w, b, x, y = make_problem(26, sizes=(3, 6, 2), batch=4)
    v = random_vector(w, b, 27)
    gv = flat(manual_ggn_vp(w, b, x, y, *v, activation=activation))
    hv = flat(manual_hvp(w, b, x, y, *v, activation=activation))
    assert np.abs(gv - hv).max() > 1e-2 * np.abs(hv).max()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), activation=st.sampled_from(sorted(ACTIVATIONS)),
       loss=st.sampled_from(LOSSES))
def test_symmetric_and_positive_semidefinite(seed, activation, loss):
    w, b, x, y = make_problem(seed, sizes=(3, 5, 4, 3), batch=2, loss=loss)
    u = random_vector(w, b, seed + 1)
    v = random_vector(w, b, seed + 2)
    gv = flat(manual_ggn_vp(w, b, x, y, *v, activation=activation, loss=loss))
    gu = flat(manual_ggn_vp(w, b, x, y, *u, activation=activation, loss=loss))
    size = np.abs(flat(u)).max() * np.abs(gv).sum() + np.abs(flat(v)).max() * np.abs(gu).sum()
    assert flat(u) @ gv == pytest.approx(flat(v) @ gu, abs=1e-12 * size)
    assert flat(u) @ gu >= -1e-12 * np.abs(flat(u)).max() * np.abs(gu).sum()


def test_bad_vectors_are_named():
    w, b, x, y = make_problem(28)
    vw, vb = random_vector(w, b, 29)
    with pytest.raises(ValueError, match=r"v_weights has 2 entries, expected 3"):
        manual_ggn_vp(w, b, x, y, vw[:2], vb)
    with pytest.raises(ValueError, match=r"v_weights has 2 entries, expected 3"):
        jax_ggn_vp(w, b, x, y, vw[:2], vb)
    with pytest.raises(TypeError, match=r"v_weights\[1\] is complex"):
        manual_ggn_vp(w, b, x, y, [vw[0], vw[1] + 0j, vw[2]], vb)
