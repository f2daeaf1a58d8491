"""check_forward: a user's compute_network_output graded on the battery, each known mistake named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from manual_backprop.grading.battery import make_battery
from manual_backprop.grading.forward import check_forward
from zoo import forwards


@pytest.mark.parametrize(("function", "convention"), [(forwards.published, "K+1"), (forwards.project, "K+2")])
def test_a_right_forward_pass_passes_in_both_conventions(function, convention):
    report = check_forward(function)
    assert report.ok, str(report)
    assert {case.convention for case in report.cases} == {convention}
    assert report.verdict == f"OK: {function.__name__} agrees with the forward pass on all 11 cases"
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


def test_float32_and_a_batch_pass():
    assert check_forward(forwards.project, dtype=np.float32, batch=3).ok


def test_the_global_k_is_set_and_said():
    report = check_forward(forwards.reads_global_k)
    assert report.ok and report.globals_set == ("K",)
    assert report.notes == ("reads_global_k reads the global K; it was set to each network's depth. "
                            "K = len(all_weights) - 1 inside the function makes it self-contained.",)
    assert forwards.K == 5


@pytest.mark.parametrize(
    ("function", "case", "first_wrong", "pattern"),
    [
        (forwards.bias_missing, "notebook", "all_f[0]", "bias_missing"),
        (forwards.relu_missing, "notebook", "all_h[1]", "activation_missing"),
        (forwards.activation_after_last, "K=0", "net_output", "activation_after_last"),
        (forwards.no_matmul, "notebook", "all_f[1]", "no_matmul"),
        (forwards.wrong_layer_order, "K=3 square", "all_f[0]", "wrong_layer_order"),
        (forwards.activation_before_weights, "K=1", "all_f[0]", "activation_before_weights"),
        (forwards.tanh_instead, "notebook", "all_h[1]", "other_activation"),
    ],
)
def test_each_mistake_is_named(function, case, first_wrong, pattern):
    report = check_forward(function)
    assert not report.ok
    result = next(c for c in report.cases if c.name == case)
    assert (result.ok, result.first_wrong, result.pattern) == (False, first_wrong, pattern), str(report)
    assert result.diagnosis in str(report)
    assert report.verdict.startswith(f"FAIL: {len(report.failing)} of 11 cases fail")


def test_the_diagnoses_read_well():
    report = check_forward(forwards.wrong_layer_order)
    square = next(c for c in report.cases if c.name == "K=3 square")
    assert square.diagnosis == "the weights and biases of layer 3 used at layer 0 (wrong layer order)"
    relu = check_forward(forwards.relu_missing).cases[0]
    assert relu.diagnosis == "relu missing: all_h[1] = all_f[0]; use all_h[1] = relu(all_f[0])"


def test_a_shape_error_from_an_elementwise_product_gets_a_hint():
    report = check_forward(forwards.no_matmul)
    k1 = next(c for c in report.cases if c.name == "K=1")
    assert k1.error_kind == "exception" and "could not be broadcast" in k1.error
    assert k1.error.endswith("(an elementwise * where a matrix product belongs? use np.matmul or @)")


def test_a_sleeping_forward_pass_hits_the_time_limit():
    report = check_forward(forwards.sleeps, cases=make_battery()[:2], timeout=0.2)
    assert [c.error for c in report.cases] == ["did not return within 0.2 s"] * 2
    assert [c.error_kind for c in report.cases] == ["timeout"] * 2


@pytest.mark.parametrize(
    ("function", "kind", "error"),
    [
        (forwards.changes_its_input, "mutation", "all_weights[0] was modified in place"),
        (forwards.returns_two, "structure",
         "returned a tuple of length 2; expected a triple (net_output, all_f, all_h)"),
        (forwards.unmeasurable, "structure",
         "returned an object that could not be read: ValueError: len says no"),
    ],
)
def test_misbehaviour_is_a_failed_case(function, kind, error):
    report = check_forward(function, cases=make_battery()[:1])
    (case,) = report.cases
    assert (case.ok, case.error_kind, case.error) == (False, kind, error)


def test_the_battery_is_left_alone():
    cases = make_battery()
    before = [w.copy() for w in cases[0].weights]
    check_forward(forwards.changes_its_input, cases=cases[:1])
    for w, b in zip(cases[0].weights, before, strict=True):
        np.testing.assert_array_equal(w, b)


def test_bad_arguments_name_themselves():
    with pytest.raises(TypeError, match="function must be callable"):
        check_forward("compute_network_output")
    with pytest.raises(ValueError, match="cases is empty"):
        check_forward(forwards.project, cases=[])
    with pytest.raises(TypeError, match="cases must be a list of battery Case"):
        check_forward(forwards.project, cases=[1])
