"""compare_gradients: one row per tensor, the worst entry named, tolerances from the one table."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manual_backprop import compare_gradients, manual_gradients, udl_network
from manual_backprop.tolerances import tolerance_for
from zoo.returns import Unconvertible


@pytest.fixture
def gradient():
    weights, biases = udl_network()
    return manual_gradients(weights, biases, np.array([[1.2]]), np.array([[20.0]]))


def _copy(gradient):
    return [g.copy() for g in gradient[0]], [g.copy() for g in gradient[1]]


def test_identical_gradients_agree_with_zero_error(gradient):
    comparison = compare_gradients(gradient, _copy(gradient))
    assert comparison.ok and len(comparison.rows) == 12
    assert all(row.max_abs_error == 0 and row.max_rel_error == 0 for row in comparison.rows)
    assert (comparison.rtol, comparison.atol) == (
        tolerance_for(np.float64).rtol,
        tolerance_for(np.float64).atol,
    )
    assert [(r.layer, r.kind) for r in comparison.rows[:2]] == [(0, "weights"), (0, "biases")]


def test_one_wrong_entry_is_found_with_both_values(gradient):
    actual = _copy(gradient)
    actual[0][2][3, 4] += 1e-3
    comparison = compare_gradients(gradient, actual)
    assert not comparison.ok
    (row,) = comparison.failing
    assert (row.layer, row.kind, row.shape, row.worst_index) == (2, "weights", (6, 6), (3, 4))
    assert row.expected_value == gradient[0][2][3, 4] and row.actual_value == actual[0][2][3, 4]
    assert row.max_abs_error == pytest.approx(1e-3)
    assert comparison.row(2, "biases").ok


def test_a_looser_tolerance_accepts_what_the_default_rejects(gradient):
    actual = _copy(gradient)
    actual[1][0] *= 1 + 1e-7
    assert not compare_gradients(gradient, actual).ok
    assert compare_gradients(gradient, actual, rtol=1e-6).ok
    assert compare_gradients(gradient, actual, kind="central").ok


@pytest.mark.parametrize(
    ("value", "message"),
    [(None, "missing"), (np.zeros((1, 6)), "wrong shape"), ("junk", "expected a NumPy array, got str")],
)
def test_wrong_structure_is_a_failing_row_not_an_exception(gradient, value, message):
    actual = _copy(gradient)
    actual[0][1] = value
    row = compare_gradients(gradient, actual).row(1, "weights")
    assert not row.ok and message in row.message and row.max_abs_error is None


def test_missing_layers_and_nan_fail(gradient):
    actual = _copy(gradient)
    actual[1][3] = actual[1][3] * np.nan
    comparison = compare_gradients(gradient, (actual[0][:4], actual[1]))
    assert {(r.layer, r.kind) for r in comparison.failing} == {(3, "biases"), (4, "weights"), (5, "weights")}
    assert comparison.row(3, "biases").message == "NaN or inf"
    json.dumps(comparison.to_dict(), allow_nan=False)  # NaN becomes a string


def test_excluded_entries_are_counted(gradient):
    actual = _copy(gradient)
    actual[0][1][0, 0] += 5.0
    include = ([np.ones(g.shape, bool) for g in gradient[0]], [np.ones(g.shape, bool) for g in gradient[1]])
    include[0][1][0, 0] = False
    comparison = compare_gradients(gradient, actual, include=include)
    assert comparison.ok and comparison.excluded == 1 and comparison.row(1, "weights").excluded == 1


def test_table_is_aligned_and_scientific(gradient):
    actual = _copy(gradient)
    actual[0][0][0, 0] += 1.0
    text = str(compare_gradients(gradient, actual, label="manual vs jax"))
    lines = text.splitlines()
    assert lines[0].startswith("manual vs jax: FAIL")
    assert "e-" in text or "e+" in text
    header = lines[1]
    for line in lines[2:]:
        # every number column ends where its header ends
        assert line.index("x") < header.index("max abs err") + len("max abs err")
    assert "FAIL" in lines[2] and lines[3].rstrip().endswith("ok")


@settings(deadline=None, max_examples=30)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=5), st.floats(1e-3, 1.0), st.integers(0, 10**6))
def test_any_relative_change_beyond_the_tolerance_is_caught(sizes, change, seed):
    rng = np.random.default_rng(seed)
    expected = (
        [rng.standard_normal((o, i)) + 3 for i, o in zip(sizes[:-1], sizes[1:], strict=False)],
        [rng.standard_normal((o, 1)) + 3 for o in sizes[1:]],
    )
    assert compare_gradients(expected, expected).ok
    actual = ([g.copy() for g in expected[0]], [g.copy() for g in expected[1]])
    layer = int(rng.integers(len(actual[0])))
    actual[0][layer].flat[0] *= 1 + change
    comparison = compare_gradients(expected, actual)
    assert [(r.layer, r.kind, r.worst_index) for r in comparison.failing] == [(layer, "weights", (0, 0))]


def test_a_value_that_cannot_be_an_array_is_a_failing_row_with_a_message(gradient):
    actual = ([Unconvertible()] + list(gradient[0][1:]), [[1.0]] + list(gradient[1][1:]))
    comparison = compare_gradients(gradient, actual)
    weights, biases = comparison.row(0, "weights"), comparison.row(0, "biases")
    assert not weights.ok and "could not be converted" in weights.message
    assert "RuntimeError" in weights.message
    assert not biases.ok and "expected a NumPy array, got list" in biases.message
    assert comparison.row(1, "weights").ok


@pytest.mark.parametrize(
    ("argument", "value"), [("rtol", -1.0), ("atol", -1e-3), ("rtol", float("nan")), ("scale", -2.0)]
)
def test_a_negative_or_nan_tolerance_is_refused(gradient, argument, value):
    doubled = ([2 * g for g in gradient[0]], [2 * g for g in gradient[1]])
    with pytest.raises(ValueError, match=argument):
        compare_gradients(gradient, doubled, **{argument: value})


def test_a_zero_tolerance_is_allowed_and_exact(gradient):
    assert compare_gradients(gradient, gradient, rtol=0, atol=0).ok


def test_rows_built_in_bulk_are_the_dataclass_itself(gradient):
    """The vectorised comparison builds its rows without ``TensorComparison.__init__`` (compare.flat_rows):
    each row has exactly the dataclass's fields and equals the row ``__init__`` makes of the same values."""
    from dataclasses import fields, replace

    wrong = _copy(gradient)
    wrong[0][2][1, 3] += 1.0
    for row in compare_gradients(gradient, wrong).rows:
        assert list(vars(row)) == [f.name for f in fields(row)]
        assert row == replace(row) and hash(row) == hash(replace(row)) and repr(row) == repr(replace(row))
