"""The JAX oracle: accurate in float64, leaves the importer's JAX setting alone, compiles once per shape."""

from __future__ import annotations

import ast
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import oracle
from manual_backprop import compute_loss, compute_network_output, manual_gradients, random_network
from oracle import jax_gradients, jax_loss, jax_network_output
from oracle import jax_network as jn


def _problem(rng, sizes=(3, 5, 5, 2), batch=4, dtype=np.float64):
    weights, biases = random_network(list(sizes), rng=rng, dtype=dtype)
    net_input = rng.standard_normal((sizes[0], batch)).astype(dtype)
    y = rng.standard_normal((sizes[-1], batch)).astype(dtype)
    return weights, biases, net_input, y


def test_float64_matches_the_closed_form_of_a_linear_layer(rng):
    # K = 0: z = Omega x + beta, L = 0.5 |z - y|^2, dL/dOmega = (z - y) x^T, dL/dbeta = sum_n (z - y).
    omega, beta = rng.standard_normal((2, 3)), rng.standard_normal((2, 1))
    net_input, y = rng.standard_normal((3, 6)), rng.standard_normal((2, 6))
    (dl_domega,), (dl_dbeta,) = jax_gradients([omega], [beta], net_input, y)
    residual = omega @ net_input + beta - y
    np.testing.assert_allclose(dl_domega, residual @ net_input.T, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dl_dbeta, residual.sum(axis=1, keepdims=True), rtol=1e-12, atol=1e-13)
    # float32 arithmetic would be off by ~1e-7 relative: this bound is only met in float64
    assert dl_domega.dtype == np.float64


def test_float64_is_really_computed_in_float64():
    # 1 + 1e-10 is 1 in float32: the gradient (z - y) x^T with z = 1 + 1e-10, y = 1 is 1e-10 only in float64.
    (g,), _ = jax_gradients([np.ones((1, 1))], [np.full((1, 1), 1e-10)], np.ones((1, 1)), np.ones((1, 1)))
    assert abs(g[0, 0] - 1e-10) < 1e-16


@pytest.mark.parametrize("activation", list(oracle.ACTIVATIONS))
@pytest.mark.parametrize("loss", list(oracle.LOSSES))
def test_float64_agrees_with_manual_to_1e_12(rng, activation, loss):
    weights, biases, net_input, y = _problem(rng)
    if loss == "binary_cross_entropy":
        y = (y > 0).astype(float)
    elif loss == "softmax_cross_entropy":
        y = np.array([0, 1, 1, 0])
    kw = {"activation": activation, "loss": loss}
    got = jax_gradients(weights, biases, net_input, y, **kw)
    expected = manual_gradients(weights, biases, net_input, y, **kw)
    scale = max(np.abs(g).max() for g in [*expected[0], *expected[1]])
    for g, e in zip([*got[0], *got[1]], [*expected[0], *expected[1]], strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12 * scale)
    out, _, _ = compute_network_output(net_input, weights, biases, activation=activation)
    np.testing.assert_allclose(
        jax_network_output(net_input, weights, biases, activation=activation), out, rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(
        jax_loss(weights, biases, net_input, y, **kw), compute_loss(out, y, loss=loss), rtol=1e-12
    )


def test_the_importers_jax_default_is_unchanged(rng):
    assert jax.config.jax_enable_x64 is False  # this suite runs JAX in its default, 32-bit mode
    weights, biases, net_input, y = _problem(rng)
    grads = jax_gradients(weights, biases, net_input, y)
    jax_loss(weights, biases, net_input, y)
    jax_network_output(net_input, weights, biases)
    assert grads[0][0].dtype == np.float64
    assert jax.config.jax_enable_x64 is False
    assert jnp.ones(1).dtype == jnp.float32
    assert jnp.asarray(np.ones(1)).dtype == jnp.float32


def test_float32_is_computed_in_float32(rng):
    weights, biases, net_input, y = _problem(rng, dtype=np.float32)
    dl_dweights, dl_dbiases = jax_gradients(weights, biases, net_input, y)
    assert all(g.dtype == np.float32 for g in [*dl_dweights, *dl_dbiases])
    assert jax_network_output(net_input, weights, biases).dtype == np.float32


@pytest.mark.parametrize(
    ("sizes", "program"),
    [((2, 7, 3), "_jit_padded_grad"), ((2, 65, 3), "_jit_grad")],
    ids=["small: the shared padded program", "wide: its own program"],
)
def test_repeated_calls_do_not_retrace(rng, sizes, program):
    compiled_function = getattr(jn, program)
    # Batch sizes no other test uses: the programs' caches are shared by the whole test session.
    weights, biases, net_input, y = _problem(rng, sizes=sizes, batch=29)
    jax_gradients(weights, biases, net_input, y, activation="softplus")
    compiled = compiled_function._cache_size()
    for _ in range(3):
        w, b, x, t = _problem(rng, sizes=sizes, batch=29)
        jax_gradients(w, b, x, t, activation="softplus")
    assert compiled_function._cache_size() == compiled
    # the counter does count: a new batch size compiles once more
    w, b, x, t = _problem(rng, sizes=sizes, batch=31)
    jax_gradients(w, b, x, t, activation="softplus")
    assert compiled_function._cache_size() == compiled + 1


def test_small_networks_of_many_shapes_share_one_program(rng):
    before = jn._jit_padded_grad._cache_size()
    for sizes in [(1, 6, 6, 6, 6, 6, 1), (3, 2), (4, 7, 3), (2, 3, 5, 4, 6, 3, 5, 2, 4, 3)]:
        weights, biases, net_input, y = _problem(rng, sizes=sizes, batch=2)
        jax_gradients(weights, biases, net_input, y, activation="tanh", loss="sum_of_squares")
    assert jn._jit_padded_grad._cache_size() <= before + 1


@pytest.mark.parametrize(
    ("activation", "loss"),
    [(a, "least_squares") for a in oracle.ACTIVATIONS] + [("tanh", loss) for loss in oracle.LOSSES[1:]],
)
def test_the_padded_program_is_the_networks_own(rng, activation, loss):
    for sizes in [(1, 6, 6, 6, 6, 6, 1), (2, 5, 9, 4)]:
        weights, biases, net_input, y = _problem(rng, sizes=sizes, batch=3)
        if loss == "binary_cross_entropy":
            y = (y > 0).astype(float)
        elif loss == "softmax_cross_entropy":
            y = rng.integers(0, sizes[-1], 3)
        w, b, x, t, dtype = jn._prepare(weights, biases, net_input, y, loss)
        assert jn._use_padded(w, dtype)
        with jn._x64(True):
            padded = jn._padded_gradients(w, b, x, t, dtype, activation, loss)
            own = jn._jit_grad((w, b), x, t, activation=activation, loss=loss)
        own = [np.asarray(g) for g in own[0]], [np.asarray(g) for g in own[1]]
        scale = max(np.abs(g).max() for g in own[0] + own[1])
        for p, o in zip(padded[0] + padded[1], own[0] + own[1], strict=True):
            assert p.shape == o.shape and p.dtype == o.dtype
            # the same sums, perhaps in another order: a few ulps of the largest entry (measured 1.3e-14)
            np.testing.assert_allclose(p, o, rtol=0, atol=1e-13 * scale)


def test_float32_and_eager_calls_take_the_networks_own_program(rng):
    weights, biases, _, _ = _problem(rng)
    assert jn._use_padded(weights, np.dtype(np.float64))
    assert not jn._use_padded(weights, np.dtype(np.float32))
    with jax.disable_jit():
        assert not jn._use_padded(weights, np.dtype(np.float64))


def test_the_oracle_borrows_no_manual_code():
    for module in (oracle, jn):
        tree = ast.parse(inspect.getsource(module))
        imported = [
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        ]
        imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert imported and not any(name.startswith("manual_backprop") for name in imported)


def test_the_unchecked_entry_gives_what_the_checked_one_gives(rng):
    weights, biases, net_input, y = _problem(rng)
    expected = jax_gradients(weights, biases, net_input, y, activation="tanh")
    got = jn.gradients_of_checked(weights, biases, net_input, y, activation="tanh", loss="least_squares")
    for g, e in zip([*got[0], *got[1]], [*expected[0], *expected[1]], strict=True):
        np.testing.assert_array_equal(g, e)

