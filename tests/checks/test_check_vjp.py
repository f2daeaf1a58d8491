"""check_vjp on cache-style layers written by hand: each right one passes, each bug fails at its input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from manual_backprop import check_vjp
from zoo import hand_written as hw


def _layers(rng):
    """name -> (forward, backward(dout, cache, bug), inputs, the bug, the inputs it breaks)."""
    labels = rng.integers(0, 4, 5)
    return {
        "affine": (hw.affine_forward, hw.affine_backward,
                   (rng.standard_normal((4, 3, 2)), rng.standard_normal((6, 5)), rng.standard_normal(5)),
                   "db_mean", ("[2]",)),
        "relu": (hw.relu_forward, hw.relu_backward, (rng.standard_normal((3, 4)),), "no_mask", ("[0]",)),
        "softmax loss": (lambda x: hw.softmax_loss_forward(x, labels), hw.softmax_loss_backward,
                         (rng.standard_normal((5, 4)),), "sum", ("[0]",)),
        "batch norm": (hw.batchnorm_forward, hw.batchnorm_backward,
                       (rng.standard_normal((6, 3)) * 2 + 1, rng.standard_normal(3), rng.standard_normal(3)),
                       "dgamma", ("[1]",)),
        "convolution": (hw.conv_forward, hw.conv_backward,
                        (rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((3, 2, 2, 2)),
                         rng.standard_normal(3)), "flip", ("[1]",)),
        "rnn step": (hw.rnn_step_forward, hw.rnn_step_backward,
                     (rng.standard_normal((3, 4)), rng.standard_normal((3, 5)),
                      0.5 * rng.standard_normal((4, 5)), 0.5 * rng.standard_normal((5, 5)),
                      rng.standard_normal(5)), "wh_next", ("[3]",)),
    }  # fmt: skip


LAYERS = ("affine", "relu", "softmax loss", "batch norm", "convolution", "rnn step")


@pytest.mark.parametrize("layer", LAYERS)
def test_a_right_layer_passes(rng, layer):
    forward, backward, inputs, _, _ = _layers(rng)[layer]
    report = check_vjp(forward, backward, inputs)
    assert report.ok, report
    assert [row.name for row in report.rows] == [f"[{i}]" for i in range(len(inputs))]
    assert report.kind == "vjp" and not report.warnings


@pytest.mark.parametrize("layer", LAYERS)
def test_a_buggy_layer_fails_at_the_input_it_breaks(rng, layer):
    forward, backward, inputs, bug, broken = _layers(rng)[layer]
    report = check_vjp(forward, lambda dout, cache: backward(dout, cache, bug), inputs)
    assert report.failing == broken, report


def test_the_affine_bug_is_named_and_jax_witnesses_a_generic_forward(rng):
    forward, backward, inputs, _, _ = _layers(rng)["affine"]
    report = check_vjp(forward, lambda dout, cache: backward(dout, cache, "db_mean"), inputs)
    assert report.witnesses == ("finite differences", "jax")
    assert "N = 4 examples, a mean where the loss sums" in report.diagnosis("[2]")


def test_without_a_cache_backward_takes_the_inputs(rng):
    x = rng.standard_normal((3, 4))
    assert check_vjp(np.tanh, lambda dout, x: dout * (1 - np.tanh(x) ** 2), x).ok
    assert check_vjp(np.tanh, lambda dout, x: dout * (1 - np.tanh(x)), x).failing == ("[0]",)


def test_relu_inputs_exactly_at_zero_accept_either_side():
    x = np.array([[0.0, 1.0, -1.0], [2.0, 0.0, -3.0]])
    for backward in (lambda d, c: d * (c > 0), lambda d, c: d * (c >= 0)):
        report = check_vjp(hw.relu_forward, backward, (x,))
        assert report.ok and report.one_sided == 2, report


def test_the_cotangent_can_be_given_and_is_checked(rng):
    x = rng.standard_normal((2, 3))
    dout = np.ones((2, 3))
    assert check_vjp(np.sin, lambda d, x: d * np.cos(x), (x,), cotangent=dout).ok
    with pytest.raises(ValueError, match=r"cotangent has shape \(3,\)"):
        check_vjp(np.sin, lambda d, x: d * np.cos(x), (x,), cotangent=np.ones(3))


def test_inputs_are_untouched_and_the_report_is_json_safe(rng):
    forward, backward, inputs, bug, _ = _layers(rng)["batch norm"]
    before = [a.copy() for a in inputs]
    for a in inputs:
        a.flags.writeable = False
    report = check_vjp(forward, lambda dout, cache: backward(dout, cache, bug), inputs, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(inputs, before, strict=True))
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["kind"] == "vjp" and document["failing"] == ["[1]"]


def test_a_forward_that_returns_no_array_is_refused(rng):
    with pytest.raises(TypeError, match="forward must return an array or a pair"):
        check_vjp(lambda x: "out", lambda d, x: d, (rng.standard_normal(2),))


@pytest.mark.parametrize("layer", ["affine", "batch norm", "rnn step"])
def test_float32_inputs_pass_right_and_fail_wrong(rng, layer):
    forward, backward, inputs, bug, broken = _layers(rng)[layer]
    inputs = tuple(a.astype(np.float32) for a in inputs)
    right = check_vjp(forward, backward, inputs)
    assert right.ok and right.dtypes == ("float32",), right
    assert check_vjp(forward, lambda dout, cache: backward(dout, cache, bug), inputs).failing == broken


def test_a_transposed_gradient_is_caught_with_inputs_from_the_default_seed():
    # The cotangent comes from a stream of its own: inputs drawn from default_rng(0) are not it (x^T x would
    # be symmetric, and a transposed dW would pass).
    x = np.random.default_rng(0).standard_normal((4, 3))
    w = np.random.default_rng(1).standard_normal((3, 3))
    report = check_vjp(lambda x, w: (x @ w, (x, w)), lambda d, c: (d @ c[1].T, (c[0].T @ d).T), (x, w))
    assert report.failing == ("[1]",)
