"""Issue 9: on a zoo of backward passes written as students write them (``tests/zoo/students.py``), the
grader catches every wrong one, at the right first wrong layer, names its pattern and claims no other;
every right one passes every case with batch 1 and batch 4.

"Claims" are the diagnosis codes of a function: its story's (``BackwardReport.story``, the one explanation
over all failing cases), plus the codes at the first wrong layer of any failing case the story leaves out.
Codes that claim no cause (``NEUTRAL``) are never a wrong claim.
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
    """The function's diagnosis codes: its story's, plus those at the first wrong layer of any failing case
    the story does not explain (no story: every failing case's)."""
    story = report.story
    codes = set(story.codes) if story is not None else set()
    for case in report.cases:
        if case.ok or (story is not None and case.name in story.cases):
            continue
        codes |= {d.code for d in case.diagnoses
                  if d.layer == case.first_wrong_layer or d.code == "stale" or d.kind == "function"}  # fmt: skip
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
