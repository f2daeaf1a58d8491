"""The loss convention is read from the user's own least_squares_loss / d_loss_d_output."""

from __future__ import annotations

import types

import pytest

from manual_backprop.grading.conventions import find_loss_convention
from manual_backprop.grading.notebook import run_notebook
from published_style import published_cells, write_notebook

SOLVED = """
import numpy as np
def least_squares_loss(net_output, y):
    return 0.5 * np.sum((net_output - y) ** 2)
def d_loss_d_output(net_output, y):
    return net_output - y
"""
PUBLISHED = """
import numpy as np
def least_squares_loss(net_output, y):
  return np.sum((net_output-y) * (net_output-y))
def d_loss_d_output(net_output, y):
    return 2*(net_output -y);
"""


def namespace_of(source: str) -> dict:
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102
    return namespace


def test_the_solved_notebooks_convention():
    found = find_loss_convention(namespace_of(SOLVED))
    assert found.loss == "least_squares" and found.note is None
    assert found.header() == "loss: 0.5 * sum((out - y)^2), from your least_squares_loss and d_loss_d_output"


def test_the_published_notebooks_convention_from_a_module():
    module = types.ModuleType("student")
    exec(PUBLISHED, vars(module))  # noqa: S102
    found = find_loss_convention(module)
    assert found.loss == "sum_of_squares" and found.note is None
    assert found.header().startswith("loss: sum((out - y)^2), from your least_squares_loss")


def test_the_published_style_notebook_run(tmp_path):
    run = run_notebook(write_notebook(tmp_path / "nb.ipynb", published_cells()))
    assert find_loss_convention(run.namespace).loss == "sum_of_squares"


def test_one_function_is_enough():
    found = find_loss_convention(namespace_of("def d_loss_d_output(out, y):\n    return 2 * (out - y)"))
    assert (found.loss, found.source) == ("sum_of_squares", "d_loss_d_output")


def test_nothing_defined_is_no_convention():
    assert find_loss_convention({}) == find_loss_convention(namespace_of("x = 1"))
    assert find_loss_convention({}).loss is None and find_loss_convention({}).note is None


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("import numpy as np\ndef least_squares_loss(o, y):\n    return np.mean((o - y) ** 2)",
         "matches neither 0.5 * sum((out - y)^2) nor sum((out - y)^2)"),
        ("def least_squares_loss(o, y):\n    raise RuntimeError('todo')", "raised RuntimeError: todo"),
        ("def least_squares_loss(o, y):\n    return 'text'", "could not be read"),
    ],
)
def test_a_loss_that_fits_neither_is_a_note_and_the_default(source, why):
    found = find_loss_convention(namespace_of(source))
    assert found.loss is None and found.header() is None
    assert found.note.startswith("your least_squares_loss ") and why in found.note
    assert found.note.endswith("grading with the default loss") and "\n" not in found.note


def test_a_loss_for_one_output_only_is_probed_on_one():
    source = "def least_squares_loss(o, y):\n    return ((o - y) ** 2).item()"  # (2, 3): ValueError
    assert find_loss_convention(namespace_of(source)).loss == "sum_of_squares"


def test_disagreeing_functions_follow_the_loss():
    # The gradient to grade is the loss's: a d_loss_d_output off by 2 is a bug in the notebook's helper
    source = SOLVED.replace("return net_output - y", "return 2 * (net_output - y)")
    found = find_loss_convention(namespace_of(source))
    assert found.loss == "least_squares" and found.source == "least_squares_loss"
    assert "your least_squares_loss is 0.5 * sum((out - y)^2)" in found.note and "factor 2" in found.note
