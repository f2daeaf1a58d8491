"""Three witnesses agree: manual backprop, jax.grad, and central finite differences.

For every activation x loss (softmax cross-entropy with class indices and with one-hot targets), in
float64 and float32, over random architectures (K = 0..6 hidden layers, widths 1..16, batches 1..8):
manual vs JAX under the "analytic" tolerance, each vs central differences under the "central" one.
Finite-difference entries whose perturbation crossed a ReLU kink are excluded from that comparison, but
counted: every example must still compare some entries, and smooth activations must flag none.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from manual_backprop import manual_gradients, numerical_gradients, random_network
from manual_backprop.maths.activations import ACTIVATIONS
from manual_backprop.tolerances import agree, gradient_scale, tolerance_for
from oracle import jax_gradients

ACTIVATION_NAMES = tuple(ACTIVATIONS)
LOSS_VARIANTS = ("least_squares", "binary_cross_entropy", "softmax_indices", "softmax_one_hot")
KINKED = tuple(name for name, act in ACTIVATIONS.items() if act.kinked)


def make_problem(seed, sizes, batch, dtype, loss_variant):
    """A random network, input and target; returns (weights, biases, net_input, y, loss name)."""
    rng = np.random.default_rng(seed)
    all_weights, all_biases = random_network(sizes, rng=rng, dtype=dtype)
    net_input = rng.standard_normal((sizes[0], batch)).astype(dtype)
    D_o = sizes[-1]
    if loss_variant == "least_squares":
        return (
            all_weights,
            all_biases,
            net_input,
            rng.standard_normal((D_o, batch)).astype(dtype),
            loss_variant,
        )
    if loss_variant == "binary_cross_entropy":
        return all_weights, all_biases, net_input, rng.uniform(0, 1, (D_o, batch)).astype(dtype), loss_variant
    labels = rng.integers(0, D_o, size=batch)
    if loss_variant == "softmax_indices":
        return all_weights, all_biases, net_input, labels, "softmax_cross_entropy"
    one_hot = np.zeros((D_o, batch), dtype=dtype)
    one_hot[labels, np.arange(batch)] = 1
    return all_weights, all_biases, net_input, one_hot, "softmax_cross_entropy"


def flat(gradients):
    weights, biases = gradients
    return np.concatenate([np.ravel(g) for g in [*weights, *biases]])


def disagreements(expected, actual, kind, dtype, compared=None):
    """(entries compared, entries outside the tolerance, worst error / allowed) of two gradients."""
    tolerance = tolerance_for(dtype, kind)
    scale = gradient_scale(expected)
    e, a = flat(expected), flat(actual)
    compared = np.ones(e.shape, bool) if compared is None else compared
    ok = agree(a[compared], e[compared], rtol=tolerance.rtol, atol=tolerance.atol, scale=scale)
    allowed = tolerance.atol * scale + tolerance.rtol * np.abs(e[compared])
    worst = float(np.max(np.abs(a[compared] - e[compared]) / allowed, initial=0.0))
    return int(compared.sum()), int((~ok).sum()), worst


architectures = st.tuples(
    st.integers(0, 6),  # K hidden layers
    st.lists(st.integers(1, 16), min_size=8, max_size=8),  # widths, the first K + 2 used
    st.integers(1, 8),  # batch
    st.integers(0, 2**32 - 1),  # seed
)


@pytest.mark.parametrize("loss_variant", LOSS_VARIANTS)
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
@settings(max_examples=10, deadline=None)
@given(architecture=architectures, dtype=st.sampled_from([np.float64, np.float32]))
def test_three_way_agreement(activation, loss_variant, architecture, dtype):
    K, widths, batch, seed = architecture
    sizes = widths[: K + 2]
    if loss_variant.startswith("softmax") and sizes[-1] == 1:
        sizes[-1] = 2  # one class is a constant loss: nothing to check
    weights, biases, net_input, y, loss = make_problem(seed, sizes, batch, dtype, loss_variant)
    kw = {"activation": activation, "loss": loss}
    manual = manual_gradients(weights, biases, net_input, y, **kw)
    oracle = jax_gradients(weights, biases, net_input, y, **kw)
    *central, (kinks_w, kinks_b) = numerical_gradients(weights, biases, net_input, y, return_kinks=True, **kw)
    kinks = np.concatenate([k.ravel() for k in [*kinks_w, *kinks_b]])
    note(f"sizes={sizes} batch={batch} dtype={np.dtype(dtype).name} kinked={int(kinks.sum())}/{kinks.size}")

    for gradients in (manual, oracle, central):
        for g, p in zip([*gradients[0], *gradients[1]], [*weights, *biases], strict=True):
            assert g.shape == p.shape and g.dtype == p.dtype

    n, bad, worst = disagreements(oracle, manual, "analytic", dtype)
    assert bad == 0, f"manual vs JAX: {bad}/{n} entries outside tolerance (worst {worst:.3g}x allowed)"

    if activation not in KINKED:
        assert not kinks.any(), "a smooth activation has no kinks to cross"
    compared = ~kinks
    assert compared.sum() > 0, f"every one of {kinks.size} entries crossed a kink: nothing was compared"
    for name, exact in (("manual", manual), ("JAX", oracle)):
        n, bad, worst = disagreements(exact, central, "central", dtype, compared)
        assert bad == 0, (
            f"{name} vs central: {bad}/{n} entries outside tolerance (worst {worst:.3g}x allowed), "
            f"{int(kinks.sum())} kinked entries excluded"
        )


@pytest.mark.parametrize("activation", KINKED)
def test_kink_exclusions_are_a_minority(activation):
    """Kinks are flagged only where a perturbation flips a unit: rarely, for random networks."""
    total = kinked = 0
    for seed in range(10):
        weights, biases, net_input, y, loss = make_problem(
            seed, [3, 8, 8, 8, 2], 4, np.float64, "least_squares"
        )
        *_, (kinks_w, kinks_b) = numerical_gradients(
            weights, biases, net_input, y, activation=activation, return_kinks=True
        )
        flags = np.concatenate([k.ravel() for k in [*kinks_w, *kinks_b]])
        total += flags.size
        kinked += int(flags.sum())
    assert total > 0
    assert kinked / total < 0.05, f"{kinked}/{total} entries flagged as kinked"


def test_kinks_are_flagged_when_a_unit_sits_next_to_its_kink():
    """A pre-activation within the step of 0 must be flagged, or the exclusion would hide nothing."""
    weights = [np.array([[0.0], [2.0]]), np.array([[1.0, 1.0]])]
    biases = [np.array([[-1e-9], [0.5]]), np.array([[0.0]])]
    net_input, y = np.ones((1, 1)), np.zeros((1, 1))
    *_, (kinks_w, kinks_b) = numerical_gradients(weights, biases, net_input, y, return_kinks=True)
    assert kinks_b[0][0, 0] and kinks_w[0][0, 0]
    assert not kinks_b[0][1, 0] and not kinks_w[0][1, 0]
    assert not kinks_b[1].any()


@pytest.mark.parametrize("wrong", [lambda g: -g, lambda g: 2 * g], ids=["sign_flipped", "factor_2"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_comparison_fails_on_a_wrong_gradient(wrong, dtype):
    weights, biases, net_input, y, loss = make_problem(5, [3, 6, 6, 2], 4, dtype, "least_squares")
    kw = {"activation": "tanh", "loss": loss}
    oracle = jax_gradients(weights, biases, net_input, y, **kw)
    central = numerical_gradients(weights, biases, net_input, y, **kw)
    manual_w, manual_b = manual_gradients(weights, biases, net_input, y, **kw)
    broken = ([wrong(g) for g in manual_w], [wrong(g) for g in manual_b])
    n, bad, _ = disagreements(oracle, broken, "analytic", dtype)
    assert bad > n // 2
    n, bad, _ = disagreements(broken, central, "central", dtype)
    assert bad > n // 2
    # and one wrong layer alone is caught
    one_wrong = (manual_w[:-1] + [wrong(manual_w[-1])], manual_b)
    assert disagreements(oracle, one_wrong, "analytic", dtype)[1] > 0


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32])
def test_result_dtypes_follow_the_parameters(dtype):
    rng = np.random.default_rng(0)
    weights = [rng.integers(-3, 4, (4, 2)).astype(dtype), rng.integers(-3, 4, (1, 4)).astype(dtype)]
    biases = [rng.integers(-3, 4, (4, 1)).astype(dtype), rng.integers(-3, 4, (1, 1)).astype(dtype)]
    net_input = rng.integers(-3, 4, (2, 3)).astype(dtype)
    y = rng.integers(-3, 4, (1, 3)).astype(dtype)
    expected = np.float32 if dtype == np.float32 else np.float64
    for method in (manual_gradients, jax_gradients, numerical_gradients):
        dl_dweights, dl_dbiases = method(weights, biases, net_input, y)
        for g, p in zip([*dl_dweights, *dl_dbiases], [*weights, *biases], strict=True):
            assert g.shape == p.shape, method.__name__
            assert g.dtype == expected, method.__name__


def test_mixed_float32_and_float64_parameters_compute_in_float64():
    weights, biases, net_input, y, _ = make_problem(1, [2, 3, 1], 2, np.float64, "least_squares")
    weights = [weights[0].astype(np.float32), weights[1]]
    for method in (manual_gradients, jax_gradients, numerical_gradients):
        dl_dweights, dl_dbiases = method(weights, biases, net_input, y)
        assert all(g.dtype == np.float64 for g in [*dl_dweights, *dl_dbiases]), method.__name__
