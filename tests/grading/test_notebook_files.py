"""Notebooks as the reader has them: run as "Run all" would, their functions loaded and graded."""

from __future__ import annotations

import json
import os

import nbformat
import numpy as np
import pytest

from manual_backprop import manual_gradients, udl_network
from manual_backprop.grading.loading import FORWARD_ARGUMENTS, LoadError, load, load_function, load_notebook
from manual_backprop.grading.notebook import python_source, run_notebook
from manual_backprop.user_globals import network_globals
from manual_backprop.usercode import call_user
from published_style import numpy_2_refuses_formatting_a_matrix, write_notebook


def test_the_published_style_notebook_runs_and_defines_its_functions(published):
    run = run_notebook(published)
    for name in ("compute_network_output", "backward_pass", "least_squares_loss", "d_loss_d_output", "K"):
        assert name in run.namespace
    assert run.code_cells == 8  # the %%bash cell is skipped, not run
    assert run.skipped_cells == 1
    assert run.skipped_lines == 3  # %matplotlib, !pip, np.sum?
    assert "True output = 1.907, Your answer = 1.907" in run.output
    raised = [str(e) for e in run.errors]
    if numpy_2_refuses_formatting_a_matrix():
        assert len(run.errors) == 1, raised
        error = run.errors[0]
        assert (error.cell, error.line) == (8, 3) and error.error.startswith("TypeError")
        assert error.source == 'print("y = %3.3f Loss = %3.3f"%(y, loss))'
    else:
        assert not run.errors, raised
    # The cells after the failing one still ran: the IPython cell's call used the backward pass.
    assert len(run.namespace["result"][0]) == 6


def test_running_a_notebook_leaves_the_process_as_it_was(published, capfd):
    state = np.random.get_state()[1].copy()  # noqa: NPY002
    cwd = os.getcwd()
    run_notebook(published)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002 (the notebook seeded 0)
    assert os.getcwd() == cwd
    out, _ = capfd.readouterr()
    assert out == ""  # the notebook's prints are captured, not on our stdout


def test_the_published_backward_pass_reads_the_global_k_and_is_right_with_it_set(published):
    backward_pass = load_function(f"{published}:backward_pass")
    weights, biases = udl_network(K=2, D=4, seed=3)
    x, y = np.array([[0.7]]), np.array([[2.0]])
    forward = load_function(f"{published}:compute_network_output", arguments=FORWARD_ARGUMENTS)
    _, all_f, all_h = forward(x, weights, biases)
    args = (weights, biases, all_f, all_h, y)
    result = call_user(backward_pass, args, globals_to_set=network_globals(weights))
    assert result.ok and result.globals_set == ("K",)
    expected = manual_gradients(weights, biases, x, y, loss="sum_of_squares")
    for got, want in zip(result.value[0] + result.value[1], expected[0] + expected[1], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert backward_pass.__globals__["K"] == 5  # put back
    # Without the global set, K = 5 on a K = 2 network indexes out of range.
    unset = call_user(backward_pass, args)
    assert unset.status == "raised" and unset.error_type == "IndexError"
    assert "7_2_Backpropagation.ipynb, cell 9" in unset.error


def test_load_reports_the_notebook_run(published):
    loaded = load(f"{published}:backward_pass")
    assert loaded.kind == "notebook" and loaded.notebook is not None
    assert loaded.namespace["K"] == 5 and loaded.function is loaded.namespace["backward_pass"]
    assert "8 code cells run" in loaded.notebook.summary()


def test_a_version_3_notebook_runs(tmp_path):
    v3 = nbformat.v3
    cell = v3.new_code_cell(input="def backward_pass(a, b, c, d, e):\n    return 3")
    worksheet = v3.new_worksheet(cells=[cell])
    path = tmp_path / "old.ipynb"
    path.write_text(v3.writes_json(v3.new_notebook(worksheets=[worksheet])), encoding="utf-8")
    assert json.loads(path.read_text())["nbformat"] == 3
    assert load_function(f"{path}:backward_pass")(1, 2, 3, 4, 5) == 3


@pytest.mark.parametrize("text", ["{not json", '{"cells": 3}', ""])
def test_a_notebook_that_does_not_parse_is_one_line(tmp_path, text):
    path = tmp_path / "broken.ipynb"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken.ipynb is not a readable Jupyter notebook") as info:
        run_notebook(path)
    assert "\n" not in str(info.value)
    with pytest.raises(LoadError, match=r"^--backward: .*broken.ipynb is not a readable"):
        load_function(f"{path}:backward_pass")


def test_a_notebook_that_never_defines_the_function_names_it(tmp_path):
    path = write_notebook(tmp_path / "empty.ipynb", [nbformat.v4.new_code_cell("x = 1\n1 / 0")])
    with pytest.raises(LoadError, match=r"empty.ipynb never defines 'backward_pass' \(a cell raised: cell 1, "
                       r"line 2 \(1 / 0\): ZeroDivisionError"):
        load_function(f"{path}:backward_pass")


def test_a_cell_past_its_time_limit_is_recorded_and_the_next_runs(tmp_path):
    cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(30)"), nbformat.v4.new_code_cell("done = 1")]
    run = run_notebook(write_notebook(tmp_path / "slow.ipynb", cells), timeout=0.2)
    assert [e.error for e in run.errors] == ["did not finish within 0.2 s"]
    assert run.namespace["done"] == 1


def test_sys_exit_in_a_cell_is_recorded(tmp_path):
    cells = [nbformat.v4.new_code_cell("import sys\nsys.exit(3)"), nbformat.v4.new_code_cell("done = 1")]
    run = run_notebook(write_notebook(tmp_path / "exits.ipynb", cells))
    assert [e.error for e in run.errors] == ["called sys.exit(3)"] and run.namespace["done"] == 1


def test_matplotlib_is_non_interactive(tmp_path):
    pytest.importorskip("matplotlib")
    cells = [nbformat.v4.new_code_cell(
        "import matplotlib\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n"
        "backend = matplotlib.get_backend()")]
    run = run_notebook(write_notebook(tmp_path / "plots.ipynb", cells))
    assert not run.errors and run.namespace["backend"].lower() == "agg"


def test_ipython_lines_become_pass_and_valid_python_is_kept():
    source, skipped, whole = python_source("x = 1\n%time y = 2\nfiles = !ls\nif x:\n    !echo hi\nnp.sum??")
    assert skipped == 4 and not whole
    assert source.splitlines() == ["x = 1", "pass", "pass", "if x:", "    pass", "pass"]
    kept = 'text = """\n%not a magic\n"""'
    assert python_source(kept) == (kept, 0, False)
    assert python_source("%%bash\nls") == ("", 0, True)


def test_loading_a_file_restores_sys_path_and_keeps_the_messages(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("import sys\nprint('loading')\ndef backward_pass(a, b, c, d, e):\n    return None\n")
    before = list(os.sys.path)
    assert load_function(f"{path}:backward_pass")(1, 2, 3, 4, 5) is None
    assert os.sys.path == before
    with pytest.raises(LoadError, match="has no 'nope'"):
        load_function(f"{path}:nope")
    with pytest.raises(LoadError, match=r"--forward: backward_pass\(a, b, c, d, e\) does not take the "
                       r"notebook's three arguments \(net_input, all_weights, all_biases\)"):
        load_function(f"{path}:backward_pass", option="--forward", arguments=FORWARD_ARGUMENTS)
    with pytest.raises(LoadError, match="expected FILE.py:NAME or MODULE:NAME"):
        load_function("justaname")
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(4)\n")
    with pytest.raises(LoadError, match=r"failed to import: it called sys.exit\(4\)"):
        load_function(f"{exits}:f")


def test_load_notebook_runs_it_once_and_loads_both_functions(published):
    found = load_notebook(published)
    assert set(found) == {"compute_network_output", "backward_pass"}
    assert found["backward_pass"].namespace is found["compute_network_output"].namespace
    with pytest.raises(LoadError, match=r"^--notebook: .*defines none of compute_network_output, backward"):
        load_notebook(write_notebook(published.parent / "none.ipynb", [nbformat.v4.new_code_cell("x = 1")]))


def test_a_published_style_notebook_grades_forward_with_its_own_k(published):
    from manual_backprop.grading.forward import check_forward

    report = check_forward(load_notebook(published)["compute_network_output"].function)
    assert report.ok and report.globals_set == ()  # it computes K = len(all_weights) - 1 itself
