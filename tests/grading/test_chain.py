"""Issue 18: backprop's chain checked link by link on the student's own values, at batch 1.

On a zoo of bugs no named pattern describes (``tests/zoo/chain_students.py``) the story names the first
broken link (top, weights or bias at layer k, the step down to layer k) with its numbers and what they say,
claims no pattern, shows the effective slope of an elementwise step, and points at the student's line.
Right passes (the kink's other one-sided slope included) break no link; a named pattern stays on top.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from manual_backprop import check_backward
from manual_backprop.compare.compare import compare_gradients
from manual_backprop.grading.battery import make_battery
from manual_backprop.grading.chain import follow
from manual_backprop.grading.chain_lines import likely_line
from manual_backprop.grading.diagnose import case_context
from manual_backprop.grading.story import Seen, tell
from manual_backprop.maths.activations import get_activation
from manual_backprop.maths.backprop import backward, forward
from manual_backprop.maths.losses import loss_gradient
from manual_backprop.validate import check_target
from zoo import chain_students, passes, students

NEUTRAL = frozenset({"unknown", "not_sure"})


@functools.cache
def _report(function):
    return check_backward(function, activation=function.chain.activation)


def _chain(report):
    return report.story.chain


def _k(report, name):
    (case,) = [c for c in report.cases if c.name == name]
    return len(case.sizes) - 2


def _claimed(report) -> set:
    """The story's codes, plus the first wrong layer's codes of every failing case it does not explain."""
    codes = set(report.story.codes)
    for case in report.cases:
        if not case.ok and case.name not in report.story.cases:
            codes |= {d.code for d in case.diagnoses if d.layer == case.first_wrong_layer}
    return codes


def _seen(function, case, columns=None, activation="relu", loss="least_squares"):
    """A ``story.Seen`` of ``function`` called on ``case`` (only the example ``columns`` where given), as
    the grader records it."""
    act = get_activation(activation)
    x, y = (case.net_input, case.y) if columns is None else (case.net_input[:, columns], case.y[:, columns])
    fp = forward(case.weights, case.biases, x, act)
    target = check_target(y, loss, case.sizes[-1], x.shape[1], np.float64)
    expected = backward(case.weights, fp[1], fp[2], loss_gradient(loss, fp[0], target), act)
    ctx = case_context(case.weights, fp, act, loss, target, expected, np.float64, case.biases)
    lists = [[a.copy() for a in part] for part in (case.weights, case.biases, fp[1], fp[2])]
    result = function(*lists, y.copy())
    return Seen(case.name, expected, result, ctx, compare_gradients(expected, result, dtype=np.float64), None)


def _chains_of(function, activation="relu", loss="least_squares", cases=None):
    """Every batch-1 battery case's Chain for ``function``, computed here as the grader would."""
    out = {}
    for case in cases or make_battery(activation, loss):
        seen = _seen(function, case, activation=activation, loss=loss)
        out[case.name] = follow(case.name, seen.ctx, seen.result, loss)
    return out


WRONG = [pytest.param(fn, id=fn.__name__) for fn in chain_students.CHAIN_WRONG]


def test_the_chain_zoo_is_big_enough_and_covers_every_link():
    assert len(chain_students.CHAIN_WRONG) >= 25
    assert {fn.chain.kind for fn in chain_students.CHAIN_WRONG} == {"top", "step", "weights", "bias"}


@pytest.mark.parametrize("function", WRONG)
def test_the_first_broken_link_is_named_with_its_reading(function):
    meta, report = function.chain, _report(function)
    assert not report.ok
    chain = _chain(report)
    assert chain is not None, report.story.text
    first = chain.first
    got = (first.kind, first.layer - _k(report, chain.case), first.code)
    assert got == (meta.kind, meta.offset, meta.code), chain.headline()
    assert not first.holds and first.words
    # the links below hold given what they received, or the same mistake repeats (no other kind of link)
    assert {link.kind for link in chain.broken} <= {first.kind, "weights", "bias", "step"}


@pytest.mark.parametrize("function", WRONG)
def test_no_pattern_is_claimed_and_the_headline_is_the_link(function):
    report = _report(function)
    assert set(report.story.codes) <= NEUTRAL, report.story.text
    assert not (_claimed(report) - NEUTRAL - set(function.chain.also)), str(report)
    chain = _chain(report)
    assert report.story.text.startswith(f"the chain breaks at {chain.first.name} (case '{chain.case}')")
    lines = "\n".join(report.summary_lines())
    assert "yours: " in lines and "from your own upstream value" in lines and "what the numbers say" in lines
    doc = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    link = doc["diagnosis"]["chain"]["link"]
    first = chain.first
    assert (link["kind"], link["layer"], link["code"]) == (first.kind, first.layer, first.code)


ELEMENTWISE = [pytest.param(fn, id=fn.__name__) for fn in chain_students.CHAIN_WRONG if fn.chain.slope]


@pytest.mark.parametrize("function", ELEMENTWISE)
def test_an_elementwise_step_shows_the_students_effective_slope(function):
    first = _chain(_report(function)).first
    assert first.kind == "step" and first.slope is not None and first.back is not None
    units = np.abs(first.back) > 1e-12 * np.max(np.abs(first.back))
    expected = function.chain.slope(first.f, first.back)
    np.testing.assert_allclose(first.slope[units], expected[units], rtol=1e-9, atol=1e-12)
    # the slope the student's own line applies reproduces their delta from their Omega^T delta
    np.testing.assert_allclose(first.yours[units], (expected * first.back)[units], rtol=1e-9, atol=1e-12)
    assert np.all(np.isnan(first.slope[~units]))


@pytest.mark.parametrize("function", WRONG)
def test_the_likely_line_is_the_students_own(function):
    link = _chain(_report(function)).first
    line = likely_line(function, link)
    assert line is not None and line.startswith("chain_students.py:")
    number = int(line.split(":")[1])
    source = Path(function.__code__.co_filename).read_text().splitlines()
    assert source[number - 1].strip().startswith(line.split(": ", 1)[1][:30])


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (chain_students.loss_where_its_derivative_belongs, "dl_df = np.full_like(all_f[K], least_squares_"),
        (chain_students.mask_as_sign, "return np.sign(all_f[layer - 1]) * (all_weights[layer].T @ delta)"),
        (chain_students.through_the_weight_gradient, "indicator_function(all_f[layer - 1]) * (dw.T @ delta)"),
        (chain_students.delta_divided_by_its_norm, "return delta / (np.linalg.norm(delta) + 1e-12)"),
        (chain_students.weight_gradient_of_squared_activations, "return delta @ (all_h[layer] ** 2).T"),
    ],
    ids=lambda x: getattr(x, "__name__", "words"),
)
def test_the_likely_line_is_the_statement_of_that_link(function, words):
    assert words in likely_line(function, _chain(_report(function)).first)


def test_the_issues_examples_read_as_the_issue_says():
    top = _chain(_report(chain_students.loss_where_its_derivative_belongs)).first
    assert "yours equals the loss itself" in top.words
    assert "you used least_squares_loss where d_loss_d_output belongs" in top.words
    assert "out - y = [" in top.numbers and "the loss L = " in top.numbers
    sign = _chain(_report(chain_students.mask_as_sign)).first
    assert sign.words.startswith("your slope is -1 where the unit is off: np.sign(f)?")
    inverted = _chain(_report(chain_students.mask_inverted)).first
    assert inverted.words.startswith("1 - mask: the mask is inverted")
    norm = _chain(_report(chain_students.delta_divided_by_its_norm)).first
    assert "a per-layer constant" in norm.words and "divided by its norm?" in norm.words
    assert "weight gradient" in _chain(_report(chain_students.through_the_weight_gradient)).first.words
    rows = _chain(_report(chain_students.bias_from_the_weight_rows)).first
    assert rows.kind == "bias" and "row sums of your Omega" in rows.words


# ------------------------------------------------------------------------------- what holds


@pytest.mark.parametrize("function", [passes.backward_pass, students.with_np_where, students.recursive],
                         ids=lambda f: f.__name__)  # fmt: skip
def test_a_right_pass_breaks_no_link_on_any_case(function):
    for name, chain in _chains_of(function).items():
        assert chain is not None and chain.first is None, (name, chain.headline())
        assert len(chain.links) >= 3


def test_either_one_sided_slope_at_a_kink_holds():
    # the >= 0 mask takes ReLU'(0) = 1 on the kink network: a valid subgradient, never a broken link
    chain = _chains_of(students.mask_greater_equal)["exact kinks"]
    assert chain.first is None
    notes = [link.note for link in chain.links if link.note]
    assert notes and all("a'(0) = 1 where f_" in note for note in notes)


def test_the_half_slope_at_a_kink_breaks_the_step():
    first = _chains_of(students.heaviside_half)["exact kinks"].first
    assert first.kind == "step" and first.code == "kink_half"
    assert np.all(first.slope[(first.f == 0).ravel() & (np.abs(first.back) > 0).ravel()] == 0.5)


def test_leaky_relus_other_side_at_the_kink_holds():
    def leaky_zero_at_kink(all_weights, all_biases, all_f, all_h, y):
        K = len(all_weights) - 1
        dW, dB = [None] * (K + 1), [None] * (K + 1)
        delta = all_f[K] - y
        for k in range(K, -1, -1):
            dW[k], dB[k] = delta @ all_h[k].T, delta.copy()
            if k > 0:
                delta = np.where(all_f[k - 1] > 0, 1.0, 0.01) * (all_weights[k].T @ delta)  # a'(0) = 0.01
        return dW, dB

    chain = _chains_of(leaky_zero_at_kink, activation="leaky_relu")["exact kinks"]
    assert chain.first is None
    assert any("a'(0) = 0.01" in (link.note or "") for link in chain.links)


def test_the_other_least_squares_convention_holds_at_the_top():
    top = _chains_of(students.derivative_of_the_square)["K=2"].links[0]
    assert top.kind == "top" and top.holds and "sum_of_squares convention" in top.note


def test_a_right_delta_formed_into_wrong_tensors_breaks_the_layer_not_the_step():
    def top_layer_halved(all_weights, all_biases, all_f, all_h, y):
        dW, dB = students._plain(all_weights, all_f, all_h, y)
        dW[-1], dB[-1] = dW[-1] * 0.3, dB[-1] * 0.3
        return dW, dB

    chain = _chains_of(top_layer_halved)["K=2"]
    assert [(link.kind, link.layer) for link in chain.broken] == [("weights", 2), ("bias", 2)]
    assert chain.links[0].kind == "top" and chain.links[0].holds
    assert chain.headline().startswith("the chain breaks at the weight gradient of layer 2 (dL/dOmega_2) "
                                       "(case 'K=2'): yours is 0.3 x delta_2 h_2^T")  # fmt: skip


def sign_mask_batched(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    dW, dB = [None] * (K + 1), [None] * (K + 1)
    delta = all_f[K] - y
    for k in range(K, -1, -1):
        dW[k], dB[k] = delta @ all_h[k].T, delta.sum(axis=1, keepdims=True)
        if k > 0:
            delta = np.sign(all_f[k - 1]) * (all_weights[k].T @ delta)
    return dW, dB


def test_batch_above_one_reads_the_chain_on_one_example_called_alone():
    # at batch N > 1 the bias gradient sums N deltas: no delta_k to read, so check_backward calls the
    # function again on one example of its first failing case, and the chain is read there
    report = check_backward(sign_mask_batched, batch=3)
    assert not report.ok and report.story.chain is not None
    assert report.story.chain.case.endswith(", example 0")
    # the same, by hand: the function called on one example of each batch case (``tell(..., examples=)``)
    cases = make_battery(batch=3)[:6]
    seen = [_seen(sign_mask_batched, case) for case in cases]
    examples = [_seen(sign_mask_batched, case, columns=[0]) for case in cases]
    assert tell(seen, "least_squares").chain is None
    story = tell(seen, "least_squares", examples=examples)
    assert story.chain.first.kind == "step" and story.chain.first.code == "np_sign"
    assert story.cases == () and story.text.startswith("the chain breaks at the step from layer")


# ---------------------------------------------------------------------------- the story's rules


def test_a_named_pattern_stays_on_top_of_its_link():
    report = check_backward(students.forgot_the_mask)
    assert report.story.codes == ("mask_missing",)
    assert not report.story.text.startswith("the chain")
    first = report.story.chain.first
    assert first.kind == "step" and first.code == "no_mask"
    assert any(line.startswith("the chain, link by link") for line in report.summary_lines())


WHOLE = [students.biases_first, students.returns_new_parameters, students.derivative_of_the_square]


@pytest.mark.parametrize("function", WHOLE, ids=lambda f: f.__name__)
def test_a_story_of_the_whole_function_shows_no_link(function):
    students.reset_state()
    story = check_backward(function).story
    assert story.codes == (function.meta.code,) and story.chain is None


def test_a_headline_never_describes_a_minority_of_the_failing_cases():
    report = check_backward(passes.missing_transpose)
    failing = len(report.failing)
    assert len(report.story.cases) * 2 < failing
    assert report.story.text.startswith(f"{failing - len(report.story.cases)} of {failing} failing cases "
                                        "raise an exception")  # fmt: skip
    assert "in the other 1 ('K=3 square'): missing transpose" in report.story.text


def test_a_link_on_one_case_never_heads_a_function_that_mostly_raises():
    def square_only(all_weights, all_biases, all_f, all_h, y):
        if all_weights[0].shape[0] != all_weights[0].shape[1]:
            raise ValueError("only square layers")
        return chain_students.mask_as_sign(all_weights, all_biases, all_f, all_h, y)

    report = check_backward(square_only)
    failing = len(report.failing)
    assert report.story.codes[0] in NEUTRAL and report.story.chain.case == "K=3 square"
    head = (f"{failing - 1} of {failing} failing cases raise an exception (see each case's line); in the "
            "other 1 ('K=3 square'): the chain breaks at ")
    assert report.story.text.startswith(head)


def test_the_old_fallback_words_follow_the_link():
    def constant_added(all_weights, all_biases, all_f, all_h, y):
        dW, dB = students._plain(all_weights, all_f, all_h, y)
        dW[0] = dW[0] + np.cos(np.arange(dW[0].size)).reshape(dW[0].shape)
        return dW, dB

    story = check_backward(constant_added).story
    assert story.codes == ("unknown",)
    assert story.text.startswith("the chain breaks at the weight gradient of layer 0 (dL/dOmega_0)")
    assert "no known bug pattern fits" in story.text


def test_the_likely_line_of_a_notebooks_function_names_its_cell(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    from manual_backprop.grading.notebook import run_notebook

    source = Path(chain_students.__file__).read_text()
    body = source[source.index("def indicator_function"):source.index("# ===", source.index("def indicator"))]
    cell = "import numpy as np\n\n\n" + body + (
        "def backward_pass(all_weights, all_biases, all_f, all_h, y):\n"
        "    K = len(all_weights) - 1\n"
        "    dW, dB = [None] * (K + 1), [None] * (K + 1)\n"
        "    delta = all_f[K] - y\n"
        "    for k in range(K, -1, -1):\n"
        "        dW[k], dB[k] = delta @ all_h[k].T, delta.copy()\n"
        "        if k > 0:\n"
        "            delta = np.sign(all_f[k - 1]) * (all_weights[k].T @ delta)\n"
        "    return dW, dB\n")  # fmt: skip
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# 7.2"), nbformat.v4.new_code_cell(cell)]
    path = tmp_path / "7_2.ipynb"
    nbformat.write(notebook, path)
    function = run_notebook(str(path)).namespace["backward_pass"]
    line = likely_line(function, check_backward(function).story.chain.first)
    assert line.startswith("7_2.ipynb, cell ") and line.endswith(
        "delta = np.sign(all_f[k - 1]) * (all_weights[k].T @ delta)")
