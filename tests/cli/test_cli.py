"""The command line through subprocess: output, exit codes, JSON, grading files, and the error paths."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ZOO = Path(__file__).parents[1] / "zoo"


def run(*args, env=None):
    environment = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "manual_backprop", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def test_default_check_reproduces_the_notebook():
    result = run("check")
    assert result.returncode == 0, result.stderr
    assert "output 1.907, loss 163.685" in result.stdout
    assert "Omega_5" in result.stdout and "manual-fd" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("OK")
    assert result.stderr == ""


def test_console_script_is_installed():
    import shutil

    script = shutil.which("manual-backprop")
    if script is None:
        pytest.fail("the manual-backprop console script is not on PATH: pip install -e .")
    result = subprocess.run([script, "check", "--fd", "taylor"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "fitted order" in result.stdout


def test_json_is_exactly_one_object():
    result = run("check", "--json", "--batch", "3", "--activation", "tanh", "--depth", "2", "--width", "4")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["report"]["batch"] == 3 and len(data["output"][0]) == 3


def test_options_shape_the_network():
    result = run(
        "check",
        "--depth",
        "3",
        "--width",
        "5",
        "--input-dim",
        "2",
        "--output-dim",
        "3",
        "--loss",
        "softmax_cross_entropy",
        "--dtype",
        "float32",
        "--fd",
        "forward",
        "--step",
        "1e-3",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "network 2-5-5-5-3" in result.stdout and "float32" in result.stdout


def test_verbose_prints_the_notebooks_arrays():
    result = run("check", "--verbose")
    assert result.returncode == 0
    assert "Bias 0, derivatives from backprop:" in result.stdout
    assert "Weight 5, derivatives from finite differences:" in result.stdout


def test_grading_a_correct_file():
    result = run("check", "--backward", f"{ZOO / 'passes.py'}:backward_pass")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "11/11 cases pass" in result.stdout


def test_grading_a_broken_file_says_where_and_what():
    result = run("check", "--backward", f"{ZOO / 'passes.py'}:no_mask", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["report"]["cases"][0]["first_wrong_layer"] == 4
    text = run("check", "--backward", f"{ZOO / 'passes.py'}:sign_flipped").stdout
    assert "first wrong layer" in text and "sign flipped" in text and "FAIL" in text


def test_grading_by_module_name():
    result = run(
        "check",
        "--backward",
        "zoo.passes:batch_backward",
        "--batch",
        "2",
        env={"PYTHONPATH": str(ZOO.parent)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tests/zoo/nope.py:backward_pass", "no such file"),
        (f"{ZOO / 'passes.py'}:not_there", "has no 'not_there'"),
        (f"{ZOO / 'bad_signature.py'}:backward_pass", "five"),
        (f"{ZOO / 'bad_import.py'}:backward_pass", "failed to import"),
        ("no_such_module_xyz:f", "failed to import"),
        ("justaname", "expected FILE.py:NAME"),
    ],
)
def test_bad_backward_specs_are_one_line_errors(spec, message):
    result = run("check", "--backward", spec)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_verbose_shows_the_traceback_of_a_bad_import():
    result = run("check", "--backward", f"{ZOO / 'bad_import.py'}:backward_pass", "--verbose")
    assert result.returncode == 2 and "Traceback" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("check", "--depth", "-1"),
        ("check", "--fd", "sideways"),
        ("check", "--step", "0"),
        ("check", "--seed", "99999999999"),
        ("check", "--loss", "softmax_cross_entropy", "--output-dim", "1"),
        ("check", "--fd", "taylor", "--step", "0.1"),
        ("check", "--backward", f"{ZOO / 'passes.py'}:backward_pass", "--depth", "3"),
        ("check", "--backward", f"{ZOO / 'passes.py'}:backward_pass", "--fd", "taylor"),
        ("frobnicate",),
        (),
    ],
)
def test_usage_errors_exit_2(args):
    result = run(*args)
    assert result.returncode == 2 and result.stderr and result.stdout == ""


def test_help_shows_examples():
    result = run("check", "--help")
    assert result.returncode == 0 and "examples:" in result.stdout and "--backward" in result.stdout


def test_what_the_graded_code_prints_does_not_spoil_the_json(tmp_path):
    (tmp_path / "noisy.py").write_text(
        "from manual_backprop import backward_pass\n"
        "print('imported')\n"
        "def backward(W, B, F, H, y):\n"
        "    print('debug', len(W))\n"
        "    return backward_pass(W, B, F, H, y)\n"
    )
    result = run("check", "--backward", f"{tmp_path / 'noisy.py'}:backward", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True
    assert "imported" in result.stderr and "debug" in result.stderr


def test_a_graded_file_imports_its_neighbours_and_modules_load_from_the_current_folder(tmp_path):
    (tmp_path / "helper.py").write_text(
        "from manual_backprop import backward_pass as correct\n"
    )
    (tmp_path / "mine.py").write_text("from helper import correct\n")
    elsewhere = run("check", "--backward", f"{tmp_path / 'mine.py'}:correct")
    assert elsewhere.returncode == 0, elsewhere.stderr
    script = [sys.executable, "-c", "import sys; from manual_backprop.cli import main; sys.exit(main())"]
    here = subprocess.run([*script, "check", "--backward", "helper:correct"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert here.returncode == 0, here.stderr


def test_softmax_gets_more_than_one_output_by_default():
    result = run("check", "--loss", "softmax_cross_entropy", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["report"]["sizes"][-1] == 3


def test_a_failing_witness_is_told_apart_from_a_failing_gradient():
    result = run("check", "--activation", "tanh", "--step", "1")
    assert result.returncode == 1
    assert "manual backprop and jax.grad agree, but the witness" in result.stdout
