"""The grading commands end to end (--notebook, --backward/--forward on notebooks and files, --timeout,
the loss convention found from the user's code, Ctrl-C), through subprocess as a student runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from manual_backprop import backward_pass, check_backward
from manual_backprop.grading.battery import make_battery
from published_style import (
    BACKWARD,
    FORWARD,
    numpy_2_refuses_formatting_a_matrix,
    published_cells,
    write_notebook,
)

ZOO = Path(__file__).parents[1] / "zoo"
SOURCE = str(Path(__file__).parents[2] / "src")


def run(*args, cwd=None):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([SOURCE, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "manual_backprop", "check", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd, env=environment)  # fmt: skip


def test_a_solved_published_notebook_passes_with_its_own_loss_and_k(published):
    result = run("--notebook", published.name, cwd=published.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.count("8/8 cases of the notebook's task pass") == 2
    assert ("backward_pass: 8/8 cases of the notebook's task pass (relu, sum_of_squares, batch 1, "
            "float64)") in out
    assert "lists: all_h of K+1 entries, the output in all_f[K] (the published notebook's)" in out
    assert "loss: sum((out - y)^2), from your least_squares_loss and d_loss_d_output" in out
    assert ("note: backward_pass reads the global K; it was set to each network's depth. "
            "K = len(all_weights) - 1 inside the function makes it self-contained.") in out
    assert out.rstrip().endswith("OK: compute_network_output and backward_pass pass")
    if numpy_2_refuses_formatting_a_matrix():  # the print cell's error is a short note, not a failure
        assert "note: a cell raised: cell 8, line 3" in out and "TypeError" in out
    assert "Traceback" not in result.stderr
    verbose = run("--notebook", str(published), "--verbose").stdout
    assert "True output = 1.907, Your answer = 1.907" in verbose and "8 code cells run" in verbose


def test_a_notebooks_backward_pass_graded_alone_passes(published):
    result = run("--backward", f"{published}:backward_pass", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    report = data["report"]
    assert data["ok"] and report["loss"] == "sum_of_squares" and len(report["groups"]["task"]) == 8
    assert not report["strict"] and report["cases"][0]["group"] == "task"
    assert report["loss_source"] == "loss: sum((out - y)^2), from your least_squares_loss and d_loss_d_output"
    assert "reads the global K" in report["notes"][0]
    # --loss given explicitly wins: the same right function is then twice the least_squares gradient.
    explicit = run("--backward", f"{published}:backward_pass", "--loss", "least_squares")
    assert explicit.returncode == 1 and "loss: sum" not in explicit.stdout


def test_one_wrong_line_in_the_notebook_fails_at_the_right_layer(tmp_path):
    wrong = BACKWARD.replace("indicator_function(all_f[layer-1]) * all_dl_dh[layer]", "all_dl_dh[layer]")
    assert wrong != BACKWARD
    path = write_notebook(tmp_path / "nb.ipynb", published_cells(backward=wrong))
    result = run("--notebook", str(path), "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    backward = data["reports"]["backward_pass"]
    assert data["reports"]["compute_network_output"]["ok"] and not backward["ok"]
    assert backward["cases"][0]["first_wrong_layer"] == 4  # K = 5: the mask of layer 4 is the first missing
    text = run("--backward", f"{path}:backward_pass").stdout
    assert "first wrong layer: 4" in text and "activation mask missing" in text


def test_a_notebook_whose_forward_is_wrong_and_backward_right_exits_1_and_says_which(tmp_path):
    wrong = FORWARD.replace("all_biases[layer] + np.matmul", "np.matmul")
    assert wrong != FORWARD
    path = write_notebook(tmp_path / "nb.ipynb", published_cells(forward=wrong))
    result = run("--notebook", str(path))
    assert result.returncode == 1
    assert result.stdout.rstrip().endswith("FAIL: compute_network_output fails; backward_pass passes")
    assert "bias missing" in result.stdout


def test_a_py_solution_with_the_half_convention(tmp_path):
    (tmp_path / "mine.py").write_text(
        "import numpy as np\n"
        "from manual_backprop import backward_pass as ours\n"
        "def least_squares_loss(net_output, y):\n"
        "    return 0.5 * np.sum((net_output - y) ** 2)\n"
        "def d_loss_d_output(net_output, y):\n"
        "    return net_output - y\n"
        "def backward_pass(all_weights, all_biases, all_f, all_h, y):\n"
        "    return ours(all_weights, all_biases, all_f, all_h, y)\n"
    )
    result = run("--backward", f"{tmp_path / 'mine.py'}:backward_pass")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "loss: 0.5 * sum((out - y)^2), from your least_squares_loss and d_loss_d_output" in result.stdout
    assert "note:" not in result.stdout  # self-contained: no globals set


def test_a_user_loss_matching_neither_convention_is_a_note_and_the_default_is_used(tmp_path):
    (tmp_path / "mine.py").write_text(
        "import numpy as np\n"
        "from manual_backprop import backward_pass\n"
        "def least_squares_loss(net_output, y):\n"
        "    return np.mean((net_output - y) ** 2)\n"
    )
    result = run("--backward", f"{tmp_path / 'mine.py'}:backward_pass")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(relu, least_squares," in result.stdout
    notes = [line for line in result.stdout.splitlines() if line.startswith("note: your least_squares_loss")]
    assert len(notes) == 1 and "grading with the default loss" in notes[0]


def test_the_published_gradient_graded_under_least_squares_names_the_other_convention():
    result = run("--backward", f"{ZOO / 'passes.py'}:factor_two", "--loss", "least_squares")
    assert result.returncode == 1
    # The hint is in the command line's language: an option, not a Python keyword.
    assert "the published notebook's loss; grade with --loss sum_of_squares" in result.stdout


def test_a_function_past_the_time_limit_fails_that_case_and_grading_goes_on(tmp_path):
    (tmp_path / "slow.py").write_text(
        "import time\n"
        "from manual_backprop import backward_pass as ours\n"
        "def backward_pass(all_weights, all_biases, all_f, all_h, y):\n"
        "    if len(all_weights) == 6:  # the notebook's depth: three cases of the battery\n"
        "        time.sleep(60)\n"
        "    return ours(all_weights, all_biases, all_f, all_h, y)\n"
    )
    started = time.monotonic()
    result = run("--backward", f"{tmp_path / 'slow.py'}:backward_pass", "--timeout", "1", "--json")
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    cases = json.loads(result.stdout)["report"]["cases"]
    slow = [c for c in cases if c["sizes"] == [1, 6, 6, 6, 6, 6, 1]]
    assert len(slow) == 3 and all(c["error_kind"] == "timeout" for c in slow)
    assert all(c["error"] == "did not return within 1 s" for c in slow)
    assert all(c["ok"] for c in cases if c not in slow)


@pytest.mark.parametrize("option", ["--notebook", "--backward"])
@pytest.mark.parametrize("text", ["{not json", None])
def test_a_notebook_that_does_not_parse_or_never_defines_the_function_is_one_line(tmp_path, option, text):
    path = tmp_path / "nb.ipynb"
    if text is None:
        write_notebook(path, [nbformat.v4.new_code_cell("x = 1")])
        words = "defines none of" if option == "--notebook" else "never defines 'backward_pass'"
    else:
        path.write_text(text, encoding="utf-8")
        words = "is not a readable Jupyter notebook"
    result = run(option, str(path) if option == "--notebook" else f"{path}:backward_pass")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr, result.stderr


def test_ctrl_c_stops_cleanly_with_130(tmp_path):
    (tmp_path / "sleeps.py").write_text(
        "import sys, time\n"
        "def backward_pass(all_weights, all_biases, all_f, all_h, y):\n"
        "    print('started', flush=True)\n"
        "    time.sleep(60)\n"
    )
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([SOURCE, os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-m", "manual_backprop", "check", "--backward",
                                f"{tmp_path / 'sleeps.py'}:backward_pass"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=environment)  # fmt: skip
    try:
        assert process.stderr.readline().strip() == "started"  # the user's print goes to stderr
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and out == ""


# ----------------------------------------------------------------------------------- check_backward itself


@pytest.mark.parametrize("cases", [[1], 3, "cases"])
def test_check_backward_refuses_cases_that_are_not_cases(cases):
    with pytest.raises(TypeError, match="cases"):
        check_backward(backward_pass, cases=cases)


def test_check_backward_refuses_a_bad_timeout():
    with pytest.raises(ValueError, match="timeout"):
        check_backward(backward_pass, timeout=0)


def test_a_returned_object_whose_len_raises_is_a_failed_case():
    class Unmeasurable(list):
        def __len__(self):
            raise RuntimeError("no length")

    def user_backward(all_weights, all_biases, all_f, all_h, y):
        return Unmeasurable(backward_pass(all_weights, all_biases, all_f, all_h, y))

    case = check_backward(user_backward, cases=make_battery()[:1]).cases[0]
    assert not case.ok and case.error_kind == "structure"
    assert case.error == "returned an object that could not be read: RuntimeError: no length"


def test_sys_exit_and_a_time_limit_through_the_api():
    def exits(*args):
        sys.exit(3)

    case = check_backward(exits, cases=make_battery()[:1]).cases[0]
    assert (case.error_kind, case.error) == ("exit", "called sys.exit(3)")

    def sleeps(*args):
        time.sleep(5)

    case = check_backward(sleeps, cases=make_battery()[:1], timeout=0.2).cases[0]
    assert (case.error_kind, case.error) == ("timeout", "did not return within 0.2 s")


def test_a_global_other_than_the_networks_is_a_failed_case_naming_it():
    namespace = {}
    exec("def backward_pass(all_weights, all_biases, all_f, all_h, y):\n"  # noqa: S102
         "    return d_loss_d_output(all_f[K], y)\n", namespace)
    report = check_backward(namespace["backward_pass"], cases=make_battery()[:1])
    assert "NameError" in report.cases[0].error and "'d_loss_d_output'" in report.cases[0].error
    assert report.notes == (
        "backward_pass reads the global K; it was set to each network's depth. K = len(all_weights) - 1 "
        "inside the function makes it self-contained.",
    )
    assert "K" not in namespace  # put back as it was



def test_forward_grades_a_file_and_says_what_is_wrong():
    right = run("--forward", f"{ZOO / 'forwards.py'}:published")
    assert right.returncode == 0, right.stdout + right.stderr
    wrong = run("--forward", f"{ZOO / 'forwards.py'}:bias_missing", "--json")
    assert wrong.returncode == 1
    data = json.loads(wrong.stdout)
    assert data["forward"].endswith("forwards.py:bias_missing") and data["report"]["cases"][0]["pattern"] == (
        "bias_missing")


def test_the_compiled_programs_are_kept_on_disk_only_where_asked(tmp_path):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([SOURCE, os.environ.get("PYTHONPATH", "")]),
                       MANUAL_BACKPROP_CACHE_DIR=str(tmp_path / "cache"))  # fmt: skip
    environment.pop("JAX_COMPILATION_CACHE_DIR", None)
    command = [sys.executable, "-m", "manual_backprop", "check", "--backward",
               f"{ZOO / 'passes.py'}:backward_pass"]
    assert subprocess.run(command, env=environment, capture_output=True, timeout=300).returncode == 0
    assert any((tmp_path / "cache").iterdir())
    environment["MANUAL_BACKPROP_CACHE_DIR"] = ""  # empty: no cache
    environment["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    assert subprocess.run(command, env=environment, capture_output=True, timeout=300).returncode == 0
    assert not (tmp_path / "xdg").exists()


def test_a_notebook_whose_backward_pass_cell_does_not_compile_fails_and_says_so(tmp_path):
    broken = BACKWARD.replace("np.array(all_dl_df[layer])", "np.array(all_dl_df[layer]", 1)
    assert broken != BACKWARD
    path = write_notebook(tmp_path / "nb.ipynb", published_cells(backward=broken))
    result = run("--notebook", str(path))
    assert result.returncode == 1  # never a pass for the exercise the student has not solved
    assert "FAIL: the notebook does not define backward_pass" in result.stdout
    assert "SyntaxError" in result.stdout  # every cell that raised is named, not only the first
    assert result.stdout.rstrip().endswith("FAIL: backward_pass fails; compute_network_output passes")
    document = json.loads(run("--notebook", str(path), "--json").stdout)
    assert document["missing"] == ["backward_pass"] and document["ok"] is False


def test_os_exit_in_user_code_is_a_failed_case_not_the_end_of_the_grader():
    def exits(*args):
        os._exit(0)

    case = check_backward(exits, cases=make_battery()[:1]).cases[0]
    assert (case.error_kind, case.error) == ("exit", "called os._exit(0)")
    assert os._exit.__module__ == "posix"  # put back after the call


def test_lower_layers_are_not_said_to_inherit_an_error_when_delta_is_right():
    def zero_bias_gradients(all_weights, all_biases, all_f, all_h, y):
        weights, _ = backward_pass(all_weights, all_biases, all_f, all_h, y)
        return weights, [np.zeros_like(b) for b in all_biases]

    report = check_backward(zero_bias_gradients)
    assert report.story.codes == ("zeros",)  # one fact for the function, not a scale c = 0 nor "not sure"
    assert "all zeros (the bias gradients that fail)" in report.story.text
    lines = report.summary_lines()
    assert "  first wrong layer: 5" in lines
    assert not any("as a consequence" in line for line in lines)
    assert any("each on its own" in line for line in lines)
