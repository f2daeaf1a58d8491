"""The diagnosis of a wrong tensor at the level of precision: a lower dtype, a relative error just above
the tolerance, a transpose only where it differs, and unknown wrong values counted."""

import numpy as np
import pytest

from manual_backprop import check_backward, udl_network
from manual_backprop.grading.diagnose import diagnose_tensor, make_context
from manual_backprop.maths.activations import get_activation
from manual_backprop.maths.backprop import backward, forward
from manual_backprop.maths.losses import loss_gradient
from zoo.returns import first_layer, returning


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_a_lower_dtype_is_diagnosed_as_such(dtype):
    report = check_backward(returning(lambda g: g.astype(dtype)))
    for case in report.cases:
        if case.ok or case.error:
            continue
        texts = [d.text for d in first_layer(case)]
        # "notebook again" repeats "notebook": matching its right gradient is not keeping state.
        assert not any(d.code == "stale" for d in case.diagnoses), case.summary
        assert {d.code for d in first_layer(case)} == {"dtype"}, case.summary
        assert all(f"returned {np.dtype(dtype).name} where the parameters are float64" in t for t in texts)
        assert "scaled" not in case.summary and "transposed" not in case.summary
        row = case.comparison.failing[0]
        assert row.message == f"returned {np.dtype(dtype).name}, expected float64"


def test_a_float64_return_on_the_float32_battery_passes():
    assert check_backward(returning(lambda g: g.astype(np.float64)), dtype=np.float32).ok


def test_a_precision_level_difference_says_what_failed():
    report = check_backward(returning(lambda g: g * (1 + 1e-8)))
    assert not report.ok
    for case in report.cases:
        assert not any(d.code == "stale" for d in case.diagnoses), case.summary
        assert {d.code for d in first_layer(case)} == {"precision"}, case.summary
        assert "exceeds the tolerance 1e-10" in case.summary
        assert " 0 of " not in case.summary and "transposed" not in case.summary


def _context(weights, biases, x, y):
    act = get_activation("relu")
    out, all_f, all_h = forward(weights, biases, x, act)
    dl_df = loss_gradient("least_squares", out, y)
    expected = backward(weights, all_f, all_h, dl_df, act)
    return expected, make_context(weights, all_f, all_h, dl_df, act, expected, np.float64)


def test_transposed_only_where_the_transpose_differs():
    weights, biases = udl_network()
    expected, ctx = _context(weights, biases, np.array([[1.2]]), np.array([[20.0]]))
    # beta_5 is 1x1: its own transpose. A value off in the 8th digit is not "transposed".
    diagnosis = diagnose_tensor(expected[1][5] * (1 + 1e-8), 5, "biases", ctx)
    assert diagnosis.code == "precision"
    # A truly transposed square gradient is still named.
    rng = np.random.default_rng(0)
    square = [rng.standard_normal((4, 4)) for _ in range(3)]
    bias = [rng.standard_normal((4, 1)) for _ in range(3)]
    expected, ctx = _context(square, bias, rng.standard_normal((4, 1)), rng.standard_normal((4, 1)))
    assert diagnose_tensor(expected[0][1].T.copy(), 1, "weights", ctx).code == "transposed"


def test_unknown_wrong_values_count_what_failed():
    weights, biases = udl_network()
    expected, ctx = _context(weights, biases, np.array([[1.2]]), np.array([[20.0]]))
    actual = expected[0][3].copy()
    actual[actual != 0] += np.arange(1, np.count_nonzero(actual) + 1) ** 2  # no pattern, O(1) off
    diagnosis = diagnose_tensor(actual, 3, "weights", ctx)
    assert diagnosis.code == "unknown"
    assert f"wrong values in {np.count_nonzero(actual != expected[0][3])} of 36 entries" in diagnosis.text
