"""A zoo of broken backward passes: each is flagged, at the right first wrong layer, with the right words.

Expectations are for the battery's notebook case (K = 5, D = 6, D_i = D_o = 1) unless a case is named:
the highest failing layer is where the bug is, since the layers below inherit its error.
"""

import json

import numpy as np
import pytest

from manual_backprop import check_backward
from manual_backprop.grading.battery import make_battery
from zoo import passes


def _case(report, name="notebook"):
    (case,) = [c for c in report.cases if c.name == name]
    return case


def _codes(case):
    return {d.code for d in case.diagnoses if d.layer == case.first_wrong_layer}


# (function, case name, first wrong layer, diagnosis codes of which one must be found)
VALUE_BUGS = [
    (passes.sign_flipped, "notebook", 5, {"sign"}),
    # 2 (out - y) at every tensor is the published notebook's loss, sum((out - y)^2): issue 8's story.
    (passes.factor_two, "notebook", 5, {"loss_convention"}),
    (passes.no_mask, "notebook", 4, {"mask_missing"}),
    (passes.no_mask, "K=4", 3, {"mask_missing"}),
    # f_5 is the 1-unit output, positive here: its "mask" is all ones, the same as no mask at all.
    (passes.mask_wrong_layer, "notebook", 4, {"mask_wrong_layer", "mask_missing"}),
    (passes.mask_wrong_layer, "K=3 square", 2, {"mask_wrong_layer"}),
    (passes.missing_transpose, "K=3 square", 2, {"missing_transpose"}),
    (passes.transposed_weight_gradient, "notebook", 5, {"transposed"}),
    (passes.transposed_weight_gradient, "K=3 square", 3, {"transposed"}),
    (passes.bias_after_propagation, "notebook", 5, {"other_layer"}),
    (passes.skipped_layer, "notebook", 0, {"missing"}),
    (passes.skipped_layer, "K=8", 0, {"missing"}),
    # Bugs the diagnoses were not designed around:
    (passes.h_instead_of_mask, "notebook", 4, {"h_instead_of_mask"}),
    (passes.h_instead_of_mask, "K=2", 1, {"h_instead_of_mask"}),
    (passes.off_by_one_activation, "notebook", 5, {"wrong_activations"}),
    (passes.off_by_one_activation, "K=3 square", 3, {"wrong_activations"}),
    (passes.weights_twice, "notebook", 5, {"other_layer"}),
    (passes.returns_nan, "notebook", 0, {"nan"}),
]


@pytest.mark.parametrize(
    ("function", "case_name", "layer", "codes"),
    VALUE_BUGS,
    ids=[f"{f.__name__}-{c}" for f, c, _, _ in VALUE_BUGS],
)
def test_broken_pass_is_flagged_at_the_right_layer_with_the_right_diagnosis(
    function, case_name, layer, codes
):
    report = check_backward(function)
    assert not report.ok
    case = _case(report, case_name)
    assert not case.ok
    assert case.first_wrong_layer == layer, case.summary
    assert _codes(case) & codes, case.summary


def test_missing_transpose_fails_as_an_exception_where_widths_differ():
    case = _case(check_backward(passes.missing_transpose), "K=2")
    assert case.error_kind == "exception"
    assert "ValueError" in case.error and "passes.py:" in case.error  # the user's own line


def test_a_harmless_change_of_the_forward_lists_is_a_note():
    report = check_backward(passes.in_place)  # overwrites all_f with its masks; every gradient is right
    assert report.ok, str(report)
    assert _case(report).notes == ("all_f[0] was modified in place: harmless for the gradient here, but the "
                                   "caller's copy changed",)
    assert any(note.startswith("all_f[0] was modified in place") for note in report.notes)


def test_changing_the_callers_parameters_fails_and_names_the_argument():
    report = check_backward(passes.gradient_step_inside)
    case = _case(report)
    assert case.error_kind == "mutation" and not case.ok and not report.ok
    assert case.error == "all_weights[0] was modified in place: the notebook reuses it in its next cells"


def test_state_kept_between_calls_is_caught_by_same_shaped_networks():
    passes._CACHE.clear()
    report = check_backward(passes.stateful)
    assert _case(report, "notebook").ok  # the first call is right...
    stale = _case(report, "notebook shapes, seed 1")  # ...the second network of those shapes is not
    assert not stale.ok and "keeps state between calls" in stale.summary
    assert not _case(report, "K=8, seed 16").ok


@pytest.mark.parametrize("function", [passes.returns_none, passes.raises])
def test_structure_and_exception_errors_are_failed_cases_with_messages(function):
    report = check_backward(function)
    assert not report.ok and all(not c.ok for c in report.cases)
    case = _case(report)
    if function is passes.returns_none:
        assert case.error_kind == "structure" and "expected a pair" in case.error
    else:
        assert case.error_kind == "exception" and "ZeroDivisionError" in case.error and "1 / 0" in case.error


def test_averaging_over_the_batch_is_named_with_its_factor():
    case = _case(check_backward(passes.mean_over_batch, batch=3))
    assert case.first_wrong_layer == 5
    assert "scaled" in _codes(case) and "1/N = 1/3" in case.summary


def test_the_notebooks_backward_pass_passes_every_case():
    report = check_backward(passes.backward_pass)
    assert report.ok, str(report)
    assert len(report.cases) >= 8
    assert {len(c.sizes) - 2 for c in report.cases} >= {0, 1, 2, 3, 4, 5, 8}  # K from 0 to 8
    assert all(c.witnesses_agree for c in report.cases)
    json.dumps(report.to_dict(), allow_nan=False)


def test_a_batch_aware_pass_passes_with_a_batch_and_the_notebooks_is_told_to_sum():
    assert check_backward(passes.batch_backward, batch=4).ok
    case = _case(check_backward(passes.backward_pass, batch=4))
    assert case.first_wrong_layer == 5 and _codes(case) == {"bias_not_summed"}


def test_every_zoo_member_fails_somewhere():
    broken = [
        passes.sign_flipped,
        passes.factor_two,
        passes.no_mask,
        passes.mask_wrong_layer,
        passes.missing_transpose,
        passes.transposed_weight_gradient,
        passes.bias_after_propagation,
        passes.skipped_layer,
        passes.gradient_step_inside,
        passes.stateful,
        passes.h_instead_of_mask,
        passes.off_by_one_activation,
        passes.weights_twice,
    ]
    passes._CACHE.clear()
    assert len(broken) >= 10
    assert not any(check_backward(f).ok for f in broken)


def test_no_false_alarm_and_no_hidden_bug_on_networks_full_of_exact_kinks():
    rng = np.random.default_rng(5)
    cases = []
    for case in make_battery(batch=2)[2:8]:
        weights = [rng.integers(-2, 3, w.shape).astype(float) for w in case.weights]
        biases = [rng.integers(-1, 2, b.shape).astype(float) for b in case.biases]
        x = rng.integers(-2, 3, case.net_input.shape).astype(float)
        cases.append(type(case)(case.name, weights, biases, x, np.round(case.y)))
    good = check_backward(passes.batch_backward, cases=cases)
    assert good.ok, str(good)
    assert sum(c.kinks_excluded for c in good.cases) > 0  # the kinks are really there
    assert not check_backward(passes.sign_flipped, cases=cases).ok


@pytest.mark.parametrize(
    ("activation", "loss", "layer", "code"),
    [
        ("relu", "binary_cross_entropy", 5, "wrong_loss_derivative"),
        ("relu", "softmax_cross_entropy", 5, "wrong_loss_derivative"),
        ("tanh", "least_squares", 4, "wrong_derivative"),
    ],
)
def test_a_relu_least_squares_pass_on_other_networks_is_told_what_it_assumed(activation, loss, layer, code):
    case = _case(check_backward(passes.batch_backward, activation=activation, loss=loss, batch=2))
    assert case.first_wrong_layer == layer and code in _codes(case), case.summary
