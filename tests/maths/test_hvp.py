"""Hessian-vector products by Pearlmutter's R-operator, against forward-over-reverse JAX and differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derivative_helpers import flat, kink_problem, make_problem, random_vector
from manual_backprop import ACTIVATIONS, LOSSES, check_derivative, manual_gradients, manual_hvp
from manual_backprop.maths.activations import get_activation
from manual_backprop.maths.derivatives.hvp import gradient_and_hvp
from oracle import jax_hvp


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_three_way_every_activation_and_loss(activation, loss):
    w, b, x, y = make_problem(11, loss=loss)
    report = check_derivative(w, b, x, y, derivative="hvp", activation=activation, loss=loss)
    assert report.ok, str(report)
    assert not report.inconclusive
    assert [r.name for r in report.rows][:3] == ["Omega_0", "beta_0", "Omega_1"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_three_way_float32(activation):
    w, b, x, y = make_problem(12, dtype=np.float32, loss="softmax_cross_entropy")
    report = check_derivative(w, b, x, y, derivative="hvp", activation=activation,
                              loss="softmax_cross_entropy")  # fmt: skip
    assert report.ok, str(report)
    hv = manual_hvp(w, b, x, y, *random_vector(w, b, 0, np.float32), activation=activation,
                    loss="softmax_cross_entropy")  # fmt: skip
    assert all(a.dtype == np.float32 for part in hv for a in part)


@pytest.mark.parametrize("sizes", [(4, 2), (2, 7, 3), (5, 1, 6, 2), (3, 8, 2, 9, 4, 6, 5, 2)])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_depths_and_unequal_widths(sizes, activation):
    w, b, x, y = make_problem(13, sizes=sizes, batch=3)
    report = check_derivative(w, b, x, y, derivative="hvp", activation=activation)
    assert report.ok, str(report)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), activation=st.sampled_from(sorted(ACTIVATIONS)),
       loss=st.sampled_from(LOSSES))
def test_hessian_is_symmetric(seed, activation, loss):
    """u . H v == v . H u: the R-operator must give a symmetric bilinear form."""
    w, b, x, y = make_problem(seed, sizes=(3, 5, 4, 3), batch=2, loss=loss)
    u = random_vector(w, b, seed + 1)
    v = random_vector(w, b, seed + 2)
    hv = flat(manual_hvp(w, b, x, y, *v, activation=activation, loss=loss))
    hu = flat(manual_hvp(w, b, x, y, *u, activation=activation, loss=loss))
    size = np.abs(flat(u)).max() * np.abs(hv).sum() + np.abs(flat(v)).max() * np.abs(hu).sum()
    assert flat(u) @ hv == pytest.approx(flat(v) @ hu, abs=1e-12 * size)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), layer=st.integers(0, 2))
def test_relu_least_squares_has_an_exact_difference_witness(seed, layer):
    """relu + least squares, v in one layer: away from kinks every entry of the gradient is a polynomial of
    degree <= 2 along v, so the central difference is exact whatever the step (up to rounding)."""
    w, b, x, y = make_problem(seed, sizes=(3, 6, 5, 2), batch=3)
    vw, vb = random_vector(w, b, seed + 1)
    vw = [v if k == layer else np.zeros_like(v) for k, v in enumerate(vw)]
    vb = [v if k == layer else np.zeros_like(v) for k, v in enumerate(vb)]
    act = get_activation("relu")

    def moved(s):
        mw = [a + s * v for a, v in zip(w, vw, strict=True)]
        mb = [a + s * v for a, v in zip(b, vb, strict=True)]
        h, states = x, []
        for omega, beta in zip(mw[:-1], mb[:-1], strict=True):
            f = omega @ h + beta
            states.append(act.is_on(f))
            h = np.maximum(f, 0)
        return flat(manual_gradients(mw, mb, x, y)), np.concatenate(states)

    base = moved(0.0)[1]
    for s in (1e-1, 1e-2, 1e-3):  # a large step, as long as no unit flips
        (plus, on_p), (minus, on_m) = moved(s), moved(-s)
        if (on_p == base).all() and (on_m == base).all():
            break
    else:
        return  # every step crossed a kink: nothing exact to say here
    difference = (plus - minus) / (2 * s)
    hv = flat(manual_hvp(w, b, x, y, vw, vb))
    assert np.abs(difference - hv).max() <= 1e-12 * max(1.0, np.abs(plus).max() / s)


def test_gradient_comes_along():
    w, b, x, y = make_problem(14, loss="binary_cross_entropy")
    v = random_vector(w, b, 15)
    act = get_activation("tanh")
    target = y
    gradient, hv = gradient_and_hvp(w, b, x, target, *v, act, "binary_cross_entropy")
    expected = manual_gradients(w, b, x, y, activation="tanh", loss="binary_cross_entropy")
    np.testing.assert_allclose(flat(gradient), flat(expected), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(flat(hv), flat(manual_hvp(w, b, x, y, *v, activation="tanh",
                                                         loss="binary_cross_entropy")), rtol=1e-15)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_exact_kinks_agree_with_jax_and_never_fail_on_differences(activation):
    """Pre-activations exactly 0: manual and JAX follow jax.nn's a'(0) and a''(0) = 0 alike; the
    differences go one-sided or are excluded, never a false alarm."""
    w, b, x, y = kink_problem(3)
    report = check_derivative(w, b, x, y, derivative="hvp", activation=activation)
    assert report.ok, str(report)
    assert all(r.manual_jax <= 1e-12 * max(1.0, r.manual_jax) for r in report.rows)


def test_nothing_is_changed_and_bad_vectors_are_named():
    w, b, x, y = make_problem(16)
    vw, vb = random_vector(w, b, 17)
    copies = [a.copy() for a in [*w, *b, x, y, *vw, *vb]]
    manual_hvp(w, b, x, y, vw, vb, activation="tanh")
    for before, after in zip(copies, [*w, *b, x, y, *vw, *vb], strict=True):
        np.testing.assert_array_equal(before, after)
    with pytest.raises(ValueError, match=r"v_biases\[0\] has shape \(5, 2\), expected \(5, 1\)"):
        manual_hvp(w, b, x, y, vw, [np.zeros((5, 2))] + vb[1:])
    with pytest.raises(ValueError, match=r"v_biases\[0\] has shape"):
        jax_hvp(w, b, x, y, vw, [np.zeros((5, 2))] + vb[1:])
    with pytest.raises(ValueError, match="unknown loss"):
        manual_hvp(w, b, x, y, vw, vb, loss="hinge")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_second_derivative_of_each_activation(activation):
    """a''(f) beside a(f): against jax.grad of jax.grad near 0, against the exact tails far from it (where
    jax.nn's sigmoid'' rounds to 0 at f = 40; ours keeps e^-40)."""
    import jax

    from oracle import ACTIVATIONS as JAX_ACTIVATIONS
    from oracle.jax_network import _x64

    act = get_activation(activation)
    middle = np.array([-5.0, -1.0, -1e-3, 0.0, 1e-3, 0.7, 3.0])
    with _x64(True):
        second = np.array(jax.vmap(jax.grad(jax.grad(JAX_ACTIVATIONS[activation])))(middle))
    np.testing.assert_allclose(act.curvature(middle), second, rtol=1e-12, atol=1e-300)
    tails = np.array([-800.0, -40.0, 40.0, 800.0])
    exact = {"sigmoid": -np.sign(tails) * np.exp(-np.abs(tails)), "softplus": np.exp(-np.abs(tails))}
    ours = act.curvature(tails)
    assert ours.dtype == np.float64 and np.isfinite(ours).all()
    np.testing.assert_allclose(ours, exact.get(activation, np.zeros(4)), rtol=1e-12, atol=1e-30)


@pytest.mark.parametrize("loss", [*LOSSES, "sum_of_squares"])
def test_loss_hessian_times_a_vector_against_jax(loss):
    """H_L dz per column against jax.hessian of the loss in one column's output."""
    import jax
    import jax.numpy as jnp

    from manual_backprop.maths.losses import loss_hessian_vector
    from oracle.jax_network import _x64

    rng = np.random.default_rng(61)
    z, dz = rng.standard_normal((4, 3)) * 3, rng.standard_normal((4, 3))
    target = np.eye(4)[:, [0, 2, 3]] if loss == "softmax_cross_entropy" else rng.uniform(0, 1, (4, 3))

    def column_loss(z_n, y_n):
        if loss == "least_squares":
            return 0.5 * jnp.sum((z_n - y_n) ** 2)
        if loss == "sum_of_squares":
            return jnp.sum((z_n - y_n) ** 2)
        if loss == "binary_cross_entropy":
            return jnp.sum(jax.nn.softplus(z_n) - y_n * z_n)
        return -jnp.sum(y_n * jax.nn.log_softmax(z_n))

    with _x64(True):
        blocks = np.array(jax.vmap(jax.hessian(column_loss), in_axes=(1, 1))(z, target))  # (N, D_o, D_o)
    expected = np.einsum("nij,jn->in", blocks, dz)
    np.testing.assert_allclose(loss_hessian_vector(loss, z, target, dz), expected, rtol=1e-12, atol=1e-15)
