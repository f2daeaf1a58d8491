"""check_backward: a user's backward pass graded on the battery, whatever it returns, for every activation
and loss; the battery itself (the derivative convention at kinks, softmax's outputs)."""

from functools import partial
from itertools import cycle

import jax.numpy as jnp
import numpy as np
import pytest

from manual_backprop import backward_pass, check_backward, compare_gradients, manual_gradients, udl_network
from manual_backprop.grading.battery import make_battery
from manual_backprop.maths.activations import ACTIVATIONS
from manual_backprop.validate import LOSSES
from zoo import passes
from zoo.returns import ArrayLike, Unconvertible, first_layer, returning

# Users return np.matrix; NumPy warns that the class is discouraged, which is what we test around.
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")


@pytest.fixture
def gradient():
    weights, biases = udl_network()
    return manual_gradients(weights, biases, np.array([[1.2]]), np.array([[20.0]]))


def test_bad_arguments_raise_with_names():
    with pytest.raises(TypeError, match="function"):
        check_backward("not a function")
    with pytest.raises(ValueError, match="batch"):
        check_backward(lambda *a: None, batch=0)


def test_check_backward_grades_against_the_chosen_activation():
    assert check_backward(passes.batch_backward, activation="relu").ok
    # A ReLU backward pass graded on tanh networks is wrong, and is said to be.
    report = check_backward(passes.batch_backward, activation="tanh")
    assert not report.ok and report.cases[0].first_wrong_layer == 4


# Every activation once, and every loss at least once (all pairs would grade the battery 15 times).
@pytest.mark.parametrize(("activation", "loss"), list(zip(ACTIVATIONS, cycle(LOSSES))))
def test_check_backward_passes_a_right_function_for_every_activation_and_loss(activation, loss):
    right = partial(backward_pass, activation=activation, loss=loss)
    report = check_backward(right, activation=activation, loss=loss, batch=2, dtype=np.float32)
    assert report.ok, str(report)


def _backward_with_slope(slope):
    """The batch-aware backward pass with a'(f) given as ``slope(f)``."""

    def backward(all_weights, all_biases, all_f, all_h, y):
        return passes._backward(all_weights, all_f, all_h, y, mask=lambda f, h, layer: slope(f[layer - 1]))

    return backward


def test_either_one_sided_derivative_at_the_kink_passes_and_is_named():
    report = check_backward(_backward_with_slope(lambda f: f >= 0))  # ReLU'(0) taken as 1, not jax's 0
    assert report.ok, str(report)
    kinks = next(case for case in report.cases if case.name == "exact kinks")
    assert kinks.notes and "ReLU'(0) = 1" in kinks.notes[0] and "valid subgradients" in kinks.notes[0]
    assert any("your mask uses f >= 0" in note for note in report.notes)


def test_leaky_relu_with_the_relu_side_at_the_kink_passes_and_is_named():
    other_side = _backward_with_slope(lambda f: np.where(f > 0, 1.0, 0.01))  # leaky ReLU'(0) = 0.01
    report = check_backward(other_side, activation="leaky_relu")
    assert report.ok, str(report)
    assert any("leaky ReLU'(0) = 0.01" in note for note in report.notes)


def test_a_slope_of_one_half_at_the_kink_is_still_named_and_fails():
    half = _backward_with_slope(lambda f: np.where(f == 0, 0.5, (f > 0).astype(float)))
    report = check_backward(half)
    assert [case.name for case in report.failing] == ["exact kinks"]
    assert "a'(0) = 0.5" in report.failing[0].summary


def test_the_battery_gives_softmax_more_than_one_output():
    cases = make_battery(loss="softmax_cross_entropy")
    assert all(case.sizes[-1] >= 2 for case in cases)
    def zeros(W, B, F, H, y):
        return [np.zeros_like(w) for w in W], [np.zeros_like(b) for b in B]

    report = check_backward(zeros, loss="softmax_cross_entropy")
    assert not any(case.ok for case in report.cases)


def test_check_backward_refuses_an_empty_battery_and_a_bad_seed():
    with pytest.raises(ValueError, match="cases is empty"):
        check_backward(backward_pass, cases=[])
    with pytest.raises(ValueError, match="seed must be at least 0"):
        check_backward(backward_pass, seed=-1)


# ------------------------------------------------------------ what a user's function returns


def test_np_matrix_is_graded_as_a_plain_array(gradient):
    assert check_backward(returning(np.matrix)).ok
    matrices = ([np.matrix(w) for w in gradient[0]], gradient[1])
    assert compare_gradients(gradient, matrices).ok
    wrong = ([np.matrix(2 * w) for w in gradient[0]], gradient[1])
    comparison = compare_gradients(gradient, wrong)
    assert {r.kind for r in comparison.failing} == {"weights"}
    assert all(r.max_abs_error > 0 for r in comparison.failing)


@pytest.mark.parametrize("convert", [jnp.asarray, ArrayLike], ids=["jax", "array-like (torch)"])
def test_arrays_of_other_libraries_are_converted_and_graded(convert):
    # jax's default is 32-bit, so the float32 battery: the values are graded, not called "missing".
    report = check_backward(returning(convert), dtype=np.float32)
    assert report.ok, str(report)


def test_jax_float32_on_the_float64_battery_is_diagnosed_as_its_dtype_not_as_missing():
    report = check_backward(returning(jnp.asarray))
    case = report.cases[0]
    assert not case.ok and "missing" not in case.summary
    assert {d.code for d in first_layer(case)} == {"dtype"}


@pytest.mark.parametrize(
    ("value", "words"),
    [(None, "missing"), ([[1.0]], "expected a NumPy array, got list"), (Unconvertible(), "could not be")],
)
def test_check_backward_names_what_came_instead_of_an_array(value, words):
    def user_backward(all_weights, all_biases, all_f, all_h, y):
        dW, dB = backward_pass(all_weights, all_biases, all_f, all_h, y)
        dB[-1] = value
        return dW, dB

    case = check_backward(user_backward).cases[0]
    assert not case.ok and words in case.summary, case.summary
