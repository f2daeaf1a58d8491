"""A newcomer's first minutes with the command: Ctrl-C, typos, a notebook named without its function, --json.

Ctrl-C at any moment of ``main`` (the JAX import included) ends the process with 130 and one line within
a second; a mistyped option or file name gets its close match; ``--backward NB.ipynb`` without ``:NAME``
points at ``--notebook``; with ``--json`` a usage error is a JSON object on stdout too (exit 2); the exit
codes of ``check --help`` are the README's table.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from manual_backprop.cli.command import EXIT_CODES, main
from manual_backprop.cli.usage import file_hint
from manual_backprop.grading.interrupt import LINE

ROOT = Path(__file__).resolve().parents[2]
SOURCE = str(ROOT / "src")


def run_main(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------------ exit codes


def test_the_exit_codes_of_check_help_are_the_readmes_table(capsys):
    rows = re.findall(r"^\| `(\d+)` \| (.+?) \|$", (ROOT / "README.md").read_text(), re.M)
    assert [(int(code), meaning) for code, meaning in rows] == list(EXIT_CODES)
    code, out, _ = run_main(capsys, "check", "--help")
    assert code == 0 and "exit codes:" in out
    for number, meaning in EXIT_CODES:
        assert f"  {number:<4} {meaning}\n" in out


# -------------------------------------------------------------------------------------- mistyped options


@pytest.mark.parametrize(("args", "hint"), [
    (["--widht", "8"], "did you mean --width (not --widht)?"),
    (["--widht=8"], "did you mean --width (not --widht)?"),
    (["--activaton", "tanh", "--jsno"],
     "did you mean --activation (not --activaton) and --json (not --jsno)?"),
    (["--bakcward", "x.py:f"], "did you mean --backward (not --bakcward)?"),
])
def test_a_mistyped_option_gets_its_close_match(capsys, args, hint):
    code, out, err = run_main(capsys, "check", *args)
    assert code == 2 and out == ""
    assert err.splitlines()[-1].startswith("manual-backprop: error: unrecognized arguments") and hint in err


def test_an_option_like_none_gets_no_guess(capsys):
    code, _, err = run_main(capsys, "check", "--zzzzzzzz")
    assert code == 2 and "unrecognized arguments: --zzzzzzzz" in err and "did you mean" not in err


# -------------------------------------------------------------------------------- files and their names


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "7_2_Backpropagation.ipynb").write_text("{}")
    (tmp_path / "my_backprop.py").write_text("def backward_pass(w, b, f, h, y):\n    return w, b\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(("args", "message"), [
    (["--notebook", "7_2_Backpropagation"],
     "--notebook: no such file '7_2_Backpropagation'; did you mean 7_2_Backpropagation.ipynb?"),
    (["--notebook", "7_2_backpropgation.ipynb"],
     "--notebook: no such file '7_2_backpropgation.ipynb'; did you mean 7_2_Backpropagation.ipynb?"),
    (["--backward", "my_backprp.py:backward_pass"],
     "--backward: no such file 'my_backprp.py'; did you mean my_backprop.py?"),
    (["--backward", "7_2_Backpropagation:backward_pass"],
     "--backward 7_2_Backpropagation:backward_pass: no module '7_2_Backpropagation'; did you mean "
     "7_2_Backpropagation.ipynb:backward_pass?"),
    (["--backward", "7_2_Backpropagation.ipynb"],
     "--backward 7_2_Backpropagation.ipynb: which function? Use --notebook 7_2_Backpropagation.ipynb to "
     "grade every function it defines, or --backward 7_2_Backpropagation.ipynb:backward_pass"),
    (["--forward", "my_backprop.py"],
     "--forward my_backprop.py: which function? Use --forward my_backprop.py:compute_network_output"),
])
def test_a_file_named_not_quite_right_points_at_the_right_one(capsys, folder, args, message):
    code, out, err = run_main(capsys, "check", *args)
    assert code == 2 and out == ""
    assert err == f"manual-backprop: error: {message}\n"


def test_a_missing_file_with_nothing_close_gets_no_guess(folder):
    assert file_hint(str(folder / "something_else_entirely"), ".ipynb") == ""
    assert file_hint(str(folder / "no_dir" / "x"), ".py") == ""


def test_a_module_spec_is_left_to_the_loader(capsys, folder):
    code, _, err = run_main(capsys, "check", "--backward", "no_such_module_xyz:backward_pass")
    assert code == 2 and "failed to import" in err and "did you mean" not in err


# ------------------------------------------------------------------------------ usage errors with --json


@pytest.mark.parametrize("args", [
    ["--json", "--widht", "8"],  # argparse's
    ["--json", "--depth", "100000"],  # the command's own refusal
    ["--json", "--backward", "nowhere.py:backward_pass"],  # the file
    ["--json", "--backward", "my_backprop.py:not_there"],  # the loader's
])
def test_with_json_a_usage_error_is_a_json_object_too(capsys, folder, args):
    code, out, err = run_main(capsys, "check", *args)
    document = json.loads(out)
    assert code == 2 and document["ok"] is False and document["exit_code"] == 2
    assert document["schema_version"] == 1 and document["command"] == "check"
    assert document["error"] and f"manual-backprop: error: {document['error']}" in err


# --------------------------------------------------------------------------------------------- Ctrl-C

READY = "import sys; from manual_backprop import cli; print('ready', file=sys.stderr, flush=True); "


def interrupt(code: str, delay: float, *args: str) -> tuple[int | None, str, float]:
    """Run ``code`` in a fresh Python; SIGINT ``delay`` s after it says 'ready' on stderr.

    (exit code, stderr after 'ready', seconds from SIGINT to exit); exit code None if it had already
    ended when the signal was due."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([SOURCE, os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-c", READY + code, *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=environment)  # fmt: skip
    try:
        assert process.stderr.readline() == "ready\n"
        time.sleep(delay)
        if process.poll() is not None:
            return None, process.stderr.read(), 0.0
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        return process.returncode, process.stderr.read(), time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_ctrl_c_while_jax_loads_and_compiles_is_130_and_one_line_within_a_second():
    # Before: a KeyboardInterrupt landing in JAX's gc callback was dropped and the check ran on; one
    # landing in code jaxlib's C++ calls aborted the process (SIGABRT). The JAX import takes ~0.5-1 s.
    tried = 0
    for delay in (0.02, 0.1, 0.2, 0.35, 0.5, 0.7):  # after main's first line
        code, err, seconds = interrupt("sys.argv[1:] = ['check']; sys.exit(cli.main())", delay)
        if code is None:
            continue  # the check had finished: nothing to interrupt
        tried += 1
        assert (code, err) == (130, LINE + "\n"), f"SIGINT {delay} s in: exit {code}, stderr:\n{err}"
        assert seconds < 1.0, f"SIGINT {delay} s in: {seconds:.2f} s to exit"
    assert tried >= 3


SWALLOWS = """
def swallow():  # as JAX's gc callback does: every KeyboardInterrupt is dropped
    while True:
        try:
            time.sleep(0.01)
        except KeyboardInterrupt:
            pass
import time
from manual_backprop.grading.interrupt import run_interruptibly
sys.exit(run_interruptibly(swallow))
"""

OWN_HANDLER = """
import signal, time
from manual_backprop.grading.interrupt import run_interruptibly
def command():  # code that takes Ctrl-C for itself (or C code, where no Python handler runs)
    signal.signal(signal.SIGINT, lambda *a: None)
    time.sleep(20)
sys.exit(run_interruptibly(command))
"""


@pytest.mark.parametrize("code", [SWALLOWS, OWN_HANDLER], ids=["swallowing-code", "a-handler-of-its-own"])
def test_ctrl_c_ends_the_command_whatever_it_runs(code):
    exit_code, err, seconds = interrupt(code, 0.2)
    assert (exit_code, err) == (130, LINE + "\n") and seconds < 1.0, (exit_code, err, seconds)


def test_called_with_argv_the_command_leaves_sigint_alone(capsys, monkeypatch):
    # In a Jupyter kernel SIGINT is the "interrupt" button: it must raise there, not end the kernel.
    seen = []
    monkeypatch.setattr("manual_backprop.cli.command._main",
                        lambda argv: seen.append(signal.getsignal(signal.SIGINT)))
    main(["check"])
    assert seen == [signal.default_int_handler]


def test_a_keyboard_interrupt_raised_by_code_is_130_too(capsys):
    from manual_backprop.grading.interrupt import run_interruptibly

    def raises():
        raise KeyboardInterrupt

    assert run_interruptibly(raises) == 130
    assert capsys.readouterr().err == LINE + "\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
    assert signal.set_wakeup_fd(-1) == -1


@pytest.mark.slow
def test_ctrl_c_under_json_still_prints_one_json_document(tmp_path):
    from nbformat import v4

    from published_style import write_notebook

    notebook = write_notebook(tmp_path / "loop.ipynb", [v4.new_code_cell("while True:\n    pass")])
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([SOURCE, os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-m", "manual_backprop", "check", "--notebook", str(notebook),
                                "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment)  # fmt: skip
    time.sleep(4)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130 and LINE in err
    document = json.loads(out)  # exactly one document
    assert document["ok"] is False and document["error"] == "interrupted" and document["exit_code"] == 130
    from manual_backprop.compare.report import SCHEMA_VERSION

    assert document["schema_version"] == SCHEMA_VERSION


def test_a_folder_given_to_notebook_points_at_grade(tmp_path, capsys):
    from manual_backprop.cli import main

    assert main(["check", "--notebook", str(tmp_path)]) == 2
    assert f"is a folder; name one notebook in it, or grade them all with manual-backprop grade {tmp_path}" \
        in capsys.readouterr().err
