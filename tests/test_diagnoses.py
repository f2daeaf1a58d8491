"""Issue 9: on a zoo of backward passes written as students write them (``tests/zoo/students.py``), the
grader catches every wrong one, at the right first wrong layer, names its pattern and claims no other;
every right one passes every case with batch 1 and batch 4.

"Claims" are the diagnosis codes of a function: today, the union over its failing cases of the codes at
each case's first wrong layer (the README: read from the top layer down). Codes that claim no cause
(``NEUTRAL``) are never a wrong claim.
"""

from __future__ import annotations

import functools

import pytest

from manual_backprop import check_backward
from zoo import students

NEUTRAL = frozenset({"unknown", "not_sure"})


@functools.cache
def _report(function):
    students.reset_state()
    meta = function.meta
    return check_backward(function, activation=meta.activation, batch=meta.batch)


def _case(report, name):
    (case,) = [c for c in report.cases if c.name == name]
    return case


def claimed_codes(report) -> set:
    """The function-level diagnosis codes (to be replaced by the one-story API when it exists)."""
    codes = set()
    for case in report.cases:
        if case.ok:
            continue
        codes |= {d.code for d in case.diagnoses if d.layer == case.first_wrong_layer or d.code == "stale"}
    return codes


def wrong_claims(function) -> set:
    meta = function.meta
    return claimed_codes(_report(function)) - {meta.code, *meta.also} - NEUTRAL


# Expectations that today's diagnose.py does not meet (measured; see tests/zoo/DIAGNOSES.md). Phase 2
# removes every entry: the issue is done when this dict is empty.
TODAY = {
    "delta_is_the_output": {"named", "no_other"},
    "loss_derivative_without_y": {"named", "no_other"},
    "delta_is_the_output_batched": {"named", "no_other"},
    "clip_to_one": {"named", "no_other"},
    "clip_to_five_in_the_loop": {"named", "no_other"},
    "clip_with_min_max": {"named", "no_other"},
    "l2_on_weights": {"named"},
    "l2_on_everything": {"named"},
    "l2_derivative_two_lambda": {"named"},
    "returns_new_parameters": {"named"},
    "returns_the_step": {"named"},
    "sgd_step_in_the_loop": {"named"},
    "tanh_derivative_on_relu": {"named"},
    "sigmoid_derivative_on_relu": {"named", "no_other"},
    "sigmoid_of_f_derivative_on_relu": {"named"},
    "sigmoid_derivative_on_tanh": {"named"},
    "sign_step": {"named"},
    "heaviside_half": {"named"},
    "half_at_zero_by_hand": {"named"},
    "mask_from_omega_h": {"named", "no_other"},
    "recomputed_preactivation": {"named", "no_other"},
    "mask_without_bias_batched": {"named", "no_other"},
    "mask_of_h_in_weight_gradient": {"named", "no_other"},
    "relu_derivative_as_weight_input": {"named", "no_other"},
    "tanh_derivative_in_weight_gradient": {"named"},
    "tanh_derivative_twice": {"named"},
    "sigmoid_derivative_twice": {"named"},
    "leaky_slope_twice": {"named"},
    "rounded_to_int": {"named", "no_other"},
    "integer_buffers": {"named", "no_other"},
    "cached_on_the_function": {"no_other"},
    "running_sums": {"named"},
    "global_gradient_buffers": {"named"},
    "default_lists_insert": {"named"},
    "default_lists_append": {"named"},
    "per_example_overwrites": {"named", "no_other"},
    "zeros_inside_the_loop": {"named", "no_other"},
    "per_example_helper": {"named", "no_other"},
    "biases_first": {"named", "no_other"},
    "swapped_through_a_dict": {"named", "no_other"},
    "appended_not_reversed": {"named", "no_other"},
    "reversed_twice": {"named", "no_other"},
    "mask_of_this_layer": {"no_other"},
    "einsum_without_transpose": {"no_other"},
    "mask_from_h_of_the_layer_above": {"no_other"},
}


def _params(check):
    out = []
    for fn in students.WRONG:
        marks = ()
        if check in TODAY.get(fn.__name__, ()):
            marks = pytest.mark.xfail(strict=True, reason=f"issue 9: {check} not met today")
        out.append(pytest.param(fn, id=fn.__name__, marks=marks))
    return out


@pytest.mark.parametrize("function", _params("caught"))
def test_wrong_pass_is_caught(function):
    assert not _report(function).ok


@pytest.mark.parametrize("function", _params("layer"))
def test_wrong_pass_has_the_right_first_wrong_layer(function):
    case = _case(_report(function), function.meta.case)
    assert not case.ok
    assert case.first_wrong_layer == function.meta.layer, case.summary


@pytest.mark.parametrize("function", _params("named"))
def test_wrong_pass_is_named_by_its_pattern(function):
    report = _report(function)
    assert function.meta.code in claimed_codes(report), str(report)


@pytest.mark.parametrize("function", _params("no_other"))
def test_wrong_pass_gets_no_confident_claim_of_another_pattern(function):
    assert not wrong_claims(function), str(_report(function))


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("function", students.RIGHT, ids=lambda f: f.__name__)
def test_right_pass_passes_every_case(function, batch):
    report = check_backward(function, batch=batch)
    assert report.ok, str(report)


def test_the_zoo_is_big_enough():
    assert len(students.WRONG) >= 30 and len(students.RIGHT) >= 10
    assert all(fn.meta.code for fn in students.WRONG) and not any(fn.meta.code for fn in students.RIGHT)
