"""Issue 9: on a zoo of backward passes written as students write them (``tests/zoo/students.py``), the
grader catches every wrong one, at the right first wrong layer, names its pattern and claims no other;
every right one passes every case with batch 1 and batch 4.

"Claims" are the diagnosis codes of a function: its story's (``BackwardReport.story``, the one explanation
over all failing cases), plus the codes at the first wrong layer of any failing case the story leaves out.
Codes that claim no cause (``NEUTRAL``) are never a wrong claim.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from manual_backprop import check_backward
from manual_backprop.maths.network import udl_network
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
    """The function's diagnosis codes: its story's, plus those at the first wrong layer of any failing case
    the story does not explain (no story: every failing case's)."""
    story = report.story
    codes = set(story.codes) if story is not None else set()
    for case in report.cases:
        if case.ok or (story is not None and case.name in story.cases):
            continue
        codes |= {d.code for d in case.diagnoses if d.code == "stale" or d.kind == "function"}
        codes |= {d.code for d in case.diagnoses if d.layer == case.first_wrong_layer}
    return codes


def wrong_claims(function) -> set:
    meta = function.meta
    return claimed_codes(_report(function)) - {meta.code, *meta.also} - NEUTRAL


def _params(check):
    return [pytest.param(fn, id=fn.__name__) for fn in students.WRONG]


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


# ------------------------------------------------------------------ the story: evidence and fallbacks

NOTEBOOK_OMEGA_0 = udl_network()[0][0]


def wrong_on_the_notebook_only(all_weights, all_biases, all_f, all_h, y):
    """Omega_5 and beta_5 times 0.337, only on the notebook's network (whose delta_5 is one number)."""
    dW, dB = students._plain(all_weights, all_f, all_h, y)
    if np.array_equal(all_weights[0], NOTEBOOK_OMEGA_0):
        dW[-1], dB[-1] = dW[-1] * 0.337, dB[-1] * 0.337
    return dW, dB


def cosine_added_to_omega_0(all_weights, all_biases, all_f, all_h, y):
    dW, dB = students._plain(all_weights, all_f, all_h, y)
    dW[0] = dW[0] + np.cos(np.arange(dW[0].size)).reshape(dW[0].shape)
    return dW, dB


def constant_added_to_delta(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_h[K + 1] - y
    for k in reversed(range(K + 1)):
        dW[k] = delta @ all_h[k].T
        dB[k] = delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = (all_weights[k].T @ delta) * (all_f[k - 1] > 0) + 0.01 * (k == K)
    return dW, dB


def test_one_nonzero_entry_on_one_network_proves_no_scale():
    # "notebook again" is the same network: two failing cases, one network, one independent entry.
    report = check_backward(wrong_on_the_notebook_only)
    assert [c.name for c in report.failing] == ["notebook", "notebook again"]
    assert report.story.codes == ("not_sure",)
    assert "only one entry is nonzero" in report.story.text and "see case 'notebook'" in report.story.text
    assert "yours -67.4556, right -200.165" in report.story.text
    assert claimed_codes(report) == {"not_sure"}
    assert "scaled" not in "\n".join(report.summary_lines())


def test_no_pattern_says_where_to_look_in_this_layers_gradient():
    story = check_backward(cosine_added_to_omega_0).story
    assert story.codes == ("unknown",)
    assert "first wrong layer 0 in case 'notebook'" in story.text
    assert "the worst entry is Omega_0[0, 0]: yours -1.69157, right -2.69157" in story.text
    assert "delta is right at layer 0 (beta_0 is right): look at the h_0 side" in story.text


def test_no_pattern_says_where_to_look_when_delta_is_wrong():
    story = check_backward(constant_added_to_delta).story
    assert story.codes == ("unknown",)
    assert "delta is wrong from layer 4 down (it propagates): look at the step from layer 5 to 4" in (
        story.text
    )


def test_twice_the_gradient_everywhere_is_the_other_loss_convention():
    report = _report(students.derivative_of_the_square)
    text = ("this is the gradient of sum((out - y)^2), the published notebook's loss; grade with "
            'loss="sum_of_squares"')  # fmt: skip
    assert report.story.text == text and "scaled" not in str(report)
    # one story: Omega_5 and beta_5 say the same thing, on every case, and the summary says it once
    for case in report.cases:
        if case.name.startswith("notebook"):
            assert case.first_layer_diagnoses() == [("Omega_5, beta_5", text)]
    lines = report.summary_lines()
    assert lines[1] == f"diagnosis (fits all 11 failing cases): {text}"
    assert report.to_dict()["diagnosis"]["codes"] == ["loss_convention"]


def test_a_story_names_each_cases_own_layers():
    report = _report(students.forgot_the_mask)
    assert report.story.codes == ("mask_missing",)
    k1 = _case(report, "K=1")
    assert k1.summary == (
        "Omega_0, beta_0: activation mask missing (delta from layer 1 not multiplied by a'(f_0))"
    )


@pytest.mark.parametrize(
    "function",
    [students.l2_on_everything, students.returns_new_parameters, students.clip_to_one,
     students.derivative_of_the_square],  # fmt: skip
    ids=lambda f: f.__name__,
)
def test_parametric_stories_hold_in_float32(function):
    # float32 reads lambda or lr to fewer digits, and the bug can be within rounding on some networks
    students.reset_state()
    report = check_backward(function, dtype=np.float32)
    assert report.story.codes == (function.meta.code,), report.story.text


def test_half_the_gradient_under_sum_of_squares_is_the_other_convention():
    # the 1/2 convention's right gradient, graded as sum((out - y)^2)
    def half_convention(all_weights, all_biases, all_f, all_h, y):
        return students._plain(all_weights, all_f, all_h, y)

    story = check_backward(half_convention, loss="sum_of_squares").story
    assert story.codes == ("loss_convention",)
    assert story.text == 'this is the gradient of 0.5 sum((out - y)^2); grade with loss="least_squares"'
