"""``manual-backprop grade`` over a class of mixed submissions, and the library's ``grade_notebook`` and
``grade_file``: one row per submission in the order given, the CSV and JSON files, the exit codes,
Ctrl-C keeping the finished rows, and nothing of a submission run in the grader's own process."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from published_style import BACKWARD, published_cells, write_notebook

SRC = Path(__file__).resolve().parents[2] / "src"
WRONG = BACKWARD.replace("return all_dl_dweights", "return [2 * w for w in all_dl_dweights]")


def grade(*args, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "manual_backprop", "grade", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _class(tmp_path: Path) -> list[str]:
    folder = tmp_path / "class"
    folder.mkdir()
    write_notebook(folder / "right.ipynb", published_cells())
    write_notebook(folder / "wrong.ipynb", published_cells(backward=WRONG))
    hostile = published_cells(backward=WRONG)
    hostile[1].source += "\nnp.abs = lambda x, *a, **k: np.zeros(np.shape(x))\nimport os\nos._exit(0)"
    write_notebook(folder / "hostile.ipynb", hostile)
    (folder / "broken.ipynb").write_text("{ not json")
    (folder / "jaxy.py").write_text("import jax\nfrom manual_backprop import backward_pass as _b\n"
                                    "def backward_pass(w, b, f, h, y):\n    jax.numpy.zeros(1)\n"
                                    "    return _b(w, b, f, h, y)\n")
    return [f"class/{name}" for name in ("wrong.ipynb", "right.ipynb", "hostile.ipynb", "broken.ipynb",
                                         "jaxy.py")]


def test_a_class_of_mixed_submissions_becomes_one_table_in_the_order_given(tmp_path):
    submissions = _class(tmp_path)
    result = grade(*submissions, "--jobs", "2", "--timeout", "5", "--out", "grades.csv", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["file", "forward", "backward", "first"]
    assert [line.split()[0] for line in lines[1:6]] == submissions
    assert lines[-1] == "5 graded: 2 pass, 3 fail"
    with open(tmp_path / "grades.csv", newline="") as file:
        rows = {row["file"]: row for row in csv.DictReader(file)}
    assert list(rows) == submissions
    assert rows["class/right.ipynb"]["ok"] == "True" and rows["class/right.ipynb"]["backward"] == "ok"
    assert rows["class/wrong.ipynb"]["backward"] == "FAIL" and rows["class/wrong.ipynb"]["forward"] == "ok"
    assert rows["class/wrong.ipynb"]["first_failing_case"] and rows["class/wrong.ipynb"]["diagnosis"]
    # os._exit in a cell ends the worker there: nothing after it is defined, and the row says so
    assert rows["class/hostile.ipynb"]["ok"] == "False"
    assert rows["class/broken.ipynb"]["backward"] == "error"
    assert "not a readable Jupyter notebook" in rows["class/broken.ipynb"]["diagnosis"]
    assert rows["class/jaxy.py"]["ok"] == "True" and "uses jax" in rows["class/jaxy.py"]["notes"]


def test_all_passing_is_exit_0_and_the_json_file_holds_the_rows(tmp_path):
    write_notebook(tmp_path / "right.ipynb", published_cells())
    result = grade("right.ipynb", "--out", "grades.json", "--jobs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "grades.json").read_text())
    assert document["ok"] is True and document["not_graded"] == 0
    assert [row["file"] for row in document["rows"]] == ["right.ipynb"]


def test_usage_errors_exit_2_with_one_line(tmp_path):
    for args, message in ((["missing.ipynb"], "no such file"),
                          (["x.ipynb", "--out", "grades.txt"], ".csv or .json"),
                          (["--jobs", "0", "x.ipynb"], "--jobs")):
        result = grade(*args, cwd=tmp_path, timeout=60)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)


def test_ctrl_c_keeps_the_finished_rows_and_says_how_many_are_missing(tmp_path):
    write_notebook(tmp_path / "right.ipynb", published_cells())
    mark = f"linger-{os.getpid()}-{time.time_ns()}"
    (tmp_path / "slow.py").write_text(
        "import os, sys, time\n"
        "def backward_pass(w, b, f, h, y):\n"
        "    if os.fork() == 0:\n"
        "        os.execv(sys.executable,\n"
        f"                 [sys.executable, '-c', 'import time; time.sleep(120)', {mark!r}])\n"
        "    time.sleep(120)\n")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    process = subprocess.Popen([sys.executable, "-m", "manual_backprop", "grade", "right.ipynb", "slow.py",
                                "--jobs", "2", "--timeout", "100"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _processes_with(mark):
        time.sleep(0.2)
    time.sleep(8)  # right.ipynb is graded meanwhile (a loaded machine is slow)
    process.send_signal(signal.SIGINT)  # to the grade process only, not its group
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "right.ipynb" in out and "interrupted: 1 of 2 not graded" in out
    time.sleep(0.5)
    assert not _processes_with(mark)


def _processes_with(mark: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and mark.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
                found += [int(entry)] if state != "Z" else []
        except OSError:
            continue
    return found


def test_grade_notebook_and_grade_file_return_the_reports_without_running_the_code_here(tmp_path):
    from manual_backprop import grade_file, grade_notebook

    cells = published_cells(backward=WRONG)
    cells[1].source += "\nnp.abs = lambda x, *a, **k: np.zeros(np.shape(x))"
    notebook = write_notebook(tmp_path / "nb.ipynb", cells)
    reports = grade_notebook(notebook, timeout=10)
    assert set(reports) == {"compute_network_output", "backward_pass"}
    assert reports["compute_network_output"].ok and not reports["backward_pass"].ok
    assert reports["backward_pass"].loss == "sum_of_squares"  # found by calling its loss, in the worker
    report = grade_file(f"{notebook}:compute_network_output", timeout=10)
    assert report.ok and type(report).__name__ == "ForwardReport"
    assert np.abs(-2.0) == 2.0


def test_the_isolation_benchmark_runs_end_to_end():
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_isolation.py"
    command = [sys.executable, str(script), "--repeats", "1", "--class-size", "2", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(SRC)))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["warm"]["ratio"] > 0 and result["cold"]["ratio_to_in_process"] > 0
    assert set(result["cold"]["class"]) == {"jobs_1", "jobs_2"}
