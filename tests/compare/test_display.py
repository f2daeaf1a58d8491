"""Every report drawn: _repr_html_ (verdict on top, rows coloured, details folded, escaped, self-contained),
repr as the text table, _repr_pretty_; and grade_notebook_here's one report of a notebook's namespace."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from IPython.lib.pretty import pretty

import manual_backprop
from display_helpers import NO_MASK, namespace
from manual_backprop import (
    BackwardReport,
    Comparison,
    DerivativeReport,
    ForwardReport,
    NotebookReport,
    ThreeWayReport,
    check_backward,
    check_derivative,
    check_forward,
    compare_gradients,
    grade_notebook_here,
    three_way_check,
    udl_network,
)
from manual_backprop.compare.display import STATUS, Displayed, Row, Table, to_html
from manual_backprop.compare.report import SCHEMA_VERSION

X, Y = np.array([[1.2]]), np.array([[20.0]])
FAIL_TINT, OK_TINT = STATUS["fail"][0], STATUS["ok"][0]


@pytest.fixture(scope="module")
def reports():
    """One report of each kind, passing and failing where cheap."""
    right, wrong = namespace(), namespace(backward=NO_MASK)
    weights, biases = udl_network()
    off = [w.copy() for w in weights]
    off[2][0, 0] += 1.0
    return {
        "backward ok": check_backward(right["backward_pass"]),
        "backward fail": check_backward(wrong["backward_pass"]),
        "forward ok": check_forward(right["compute_network_output"]),
        "forward fail": check_forward(lambda x, w, b: right["compute_network_output"](x, w[::-1], b[::-1])),
        "three-way": three_way_check(weights, biases, X, Y),
        "derivative": check_derivative(weights, biases, X, Y, derivative="jvp"),
        "comparison fail": compare_gradients((weights, biases), (off, biases)),
        "notebook": grade_notebook_here(right),
    }


def _verdict(report) -> str:
    verdict = getattr(report, "verdict", None)
    if callable(verdict):
        return verdict()
    if verdict is not None:
        return verdict
    if isinstance(report, BackwardReport):
        return report.summary_lines()[-1]
    return "ok" if report.ok else "FAIL"


@pytest.mark.parametrize("cls", [ThreeWayReport, BackwardReport, ForwardReport, DerivativeReport, Comparison,
                                 NotebookReport])
def test_every_report_is_displayed_and_its_repr_is_not_the_dataclass_dump(cls):
    assert issubclass(cls, Displayed)
    assert cls.__repr__ is Displayed.__repr__  # its dataclass says repr=False
    assert cls.__name__ in manual_backprop.__all__


def test_the_reports_and_check_forward_are_exported():
    for name in ("check_forward", "ForwardReport", "ForwardCaseResult", "CaseResult", "BackwardReport",
                 "ThreeWayReport", "DerivativeReport", "DerivativeRow", "Comparison", "TensorComparison",
                 "NotebookReport", "grade_notebook_here"):
        assert name in manual_backprop.__all__ and hasattr(manual_backprop, name)


@pytest.mark.parametrize("which", ["backward ok", "backward fail", "forward ok", "forward fail", "three-way",
                                   "derivative", "comparison fail", "notebook"])
def test_each_report_shows_its_verdict_in_html_and_its_table_as_text(reports, which):
    report = reports[which]
    assert repr(report) == str(report)
    assert str(report) in pretty(report)  # IPython's plain text: the table (and the verdict lines after it)
    page = report._repr_html_()
    assert re.sub(r"\s+", " ", _verdict(report).split(";")[0]) in page
    assert (FAIL_TINT in page) != report.ok or which == "notebook"  # the notebook's forward section passes
    for forbidden in ("<script", "<style", "<link", "<img", "src=", "http:", "https:", "javascript:"):
        assert forbidden not in page.lower()
    assert page.count("<table") == page.count("</table>")
    assert page.count("<details") == page.count("</details>")


def test_a_failing_backward_report_puts_the_story_and_the_first_wrong_layer_on_top(reports):
    page = reports["backward fail"]._repr_html_()
    verdict, story, table = page.index("FAIL: 10 of 11 cases fail"), page.index("first wrong layer: 4"), \
        page.index("<table")
    assert verdict < story < table
    assert page.index("diagnosis (fits all 10 failing cases): activation mask missing") < table
    first_row = page[table:].split("<tr>")[2]  # after the header row: the notebook case, failing
    assert "notebook" in first_row and FAIL_TINT in first_row and "<b>FAIL</b>" in first_row
    assert "activation mask missing" in first_row and "<details" in first_row  # its diagnosis, its detail


def test_text_is_escaped(reports):
    report = reports["forward fail"]  # a lambda: its name ends in <lambda>
    assert report.function.endswith("<lambda>")
    page = report._repr_html_()
    assert "&lt;lambda&gt;" in page and "<lambda>" not in page


def test_cases_beyond_the_notebook_are_shown_under_their_own_heading_and_do_not_fail(reports):
    report = reports["backward fail"]
    cases = tuple(dataclasses.replace(case, group="task" if i < 3 else "beyond")
                  for i, case in enumerate(report.cases))
    page = dataclasses.replace(report, cases=cases, strict=False)._repr_html_()
    assert page.count('colspan="6"') == 2  # two headings across the five columns and the details
    task = page.index(">the notebook&#x27;s task (1/3 pass)<")
    beyond = page.index(">beyond the notebook (0/8 pass; not counted")
    assert task < beyond
    assert page[task:beyond].count("<b>FAIL</b>") == 2  # the task's failing cases are failures
    assert FAIL_TINT not in page[beyond:] and STATUS["warn"][0] in page[beyond:]  # the others warn
    assert page[beyond:].count(">FAIL<") == 8


def test_a_new_report_type_plugs_in_with_one_method():
    @dataclasses.dataclass(frozen=True, repr=False)
    class Verdicts(Displayed):
        values: tuple

        def __str__(self):
            return "\n".join(f"{name}: {ok}" for name, ok in self.values)

        def display_table(self) -> Table:
            ok = all(ok for _, ok in self.values)
            rows = tuple(Row((name, "ok" if ok else "FAIL"), "ok" if ok else "fail", f"about {name}")
                         for name, ok in self.values)
            return Table("verdicts", ok, "OK" if ok else "FAIL: b <wrong>", str(self), story=("b first",),
                         columns=("name", "verdict"), rows=rows, notes=("a note",))

    report = Verdicts((("a", True), ("b", False)))
    page = report._repr_html_()
    assert repr(report) == "a: True\nb: False" == pretty(report)
    assert "FAIL: b &lt;wrong&gt;" in page and "b first" in page and "note: a note" in page
    assert page.count("<details") == 2 and OK_TINT in page and FAIL_TINT in page


def test_sections_nest_each_with_its_own_verdict():
    inner = [Table(f"part {i}", ok, f"{'OK' if ok else 'FAIL'}: part {i}", "")
             for i, ok in ((1, True), (2, False))]
    page = to_html(Table("whole", False, "FAIL: part 2 fails", "", sections=tuple(inner)))
    assert page.index("FAIL: part 2 fails") < page.index("OK: part 1") < page.rindex("FAIL: part 2<")


# ------------------------------------------------------------------------------------- grade_notebook_here


def test_the_notebook_report_grades_both_functions_and_keeps_k(reports):
    names = namespace()
    report = grade_notebook_here(names)
    assert report.ok
    assert [name for name, _, _ in report.sections] == ["compute_network_output", "backward_pass"]
    assert names["K"] == 5
    assert str(report).splitlines()[-1] == "OK: compute_network_output and backward_pass pass"


def test_a_wrong_function_fails_the_notebook():
    report = grade_notebook_here(namespace(backward=NO_MASK))
    assert not report.ok
    assert report.verdict == "FAIL: backward_pass fails; compute_network_output passes"
    assert "first wrong layer: 4" in report._repr_html_()


def test_a_missing_function_fails_and_says_so():
    names = namespace()
    del names["backward_pass"]
    names["compute_network_output"] = manual_backprop.compute_network_output  # the package's, not theirs
    report = grade_notebook_here(names)
    assert not report.ok and report.sections == ()
    assert [name for name, _, _ in report.missing] == ["compute_network_output", "backward_pass"]
    text = str(report)
    assert "FAIL: backward_pass is not defined in this notebook" in text
    assert "manual_backprop's own reference" in text
    assert "is not defined in this notebook" in report._repr_html_()


def test_by_default_it_grades_the_callers_globals():
    names = namespace()
    names["grade_notebook_here"] = grade_notebook_here
    exec("def last_cell():\n    return grade_notebook_here()", names)
    report = names["last_cell"]()
    assert report.ok and len(report.sections) == 2


def test_the_notebook_document_is_plain_json(reports):
    document = reports["notebook"].to_dict()
    assert document["schema_version"] == SCHEMA_VERSION and document["ok"] is True
    assert set(document["reports"]) == {"compute_network_output", "backward_pass"}
    assert json.loads(json.dumps(document, allow_nan=False)) == document


@pytest.mark.parametrize("bad", [42, "globals", [("K", 5)]])
def test_a_namespace_that_is_not_globals_is_refused(bad):
    with pytest.raises(TypeError, match="namespace must be a dict of globals or a module"):
        grade_notebook_here(bad)


def test_a_loss_given_wins_over_the_convention():
    import published_style

    report = grade_notebook_here(namespace(loss=published_style.LOSS), loss="sum_of_squares")
    assert report.ok and report.sections[1][2].loss == "sum_of_squares"


def test_in_a_notebook_the_task_decides_unless_strict():
    import published_style

    names = namespace(loss=published_style.LOSS, notebook=True)  # the published loss, read from the notebook
    report = grade_notebook_here(names)
    backward = report.sections[1][2]
    assert report.ok and backward.loss == "sum_of_squares" and len(backward.counted) < len(backward.cases)
    page = report._repr_html_()
    assert "the notebook&#x27;s task (8/8 pass)" in page
    assert "beyond the notebook (8/9 pass; not counted" in page
    strict = grade_notebook_here(names, strict=True)
    assert not strict.ok and strict.sections[1][2].summary_lines()[-1] == "FAIL: 1 of 17 cases fail"
