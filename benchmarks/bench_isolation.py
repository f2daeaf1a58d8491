"""What running the graded code in a worker process costs: one notebook, a cold command, a class.

    python benchmarks/bench_isolation.py [--repeats 5] [--class-size 6] [--json]

- **One notebook, warm** (JAX loaded, in one process): grading a right notebook in this process as before
  the worker existed (``loading.load_notebook``, then the same graders) against through a worker
  (``isolation.Session``), alternated, ``--repeats`` of each; medians and their ratio.
- **Cold**: ``python -m manual_backprop check --notebook NB`` in a fresh process against ``python -c "import
  jax"`` and against the same grading done in process as before the worker (``IN_PROCESS``), alternated
  (warm compilation cache, bytecode compiled); medians and their ratios.
- **A class**: ``manual-backprop grade`` over ``--class-size`` copies of the notebook with ``--jobs 1`` and
  ``--jobs 2``, each against the cold ``check`` of one notebook: how many notebooks' time a class takes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The command as it was before the worker: the notebook run in the grading process itself, then graded.
IN_PROCESS = """\
import sys
from manual_backprop.cli.class_grading import _options
from manual_backprop.cli.grading_cli import SECTIONS, _grade
from manual_backprop.grading.jax_cache import use_compilation_cache
from manual_backprop.grading.loading import load_notebook
found = load_notebook(sys.argv[1], tuple(SECTIONS))
use_compilation_cache()
for name, loaded in found.items():
    print(_grade(_options(), loaded, "forward" if name == "compute_network_output" else "backward"))
"""
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]


def _notebook(folder: Path) -> Path:
    from published_style import published_cells, write_notebook

    return write_notebook(folder / "7_2_Backpropagation.ipynb", published_cells())


def _grade_in_process(path, args):
    from manual_backprop.cli.grading_cli import SECTIONS, _grade
    from manual_backprop.grading.loading import load_notebook

    found = load_notebook(path, tuple(SECTIONS), timeout=args.timeout)
    return [_grade(args, loaded, "forward" if name == "compute_network_output" else "backward")
            for name, loaded in found.items()]


def _grade_in_worker(path, args):
    from manual_backprop.cli.grading_cli import SECTIONS, _grade
    from manual_backprop.grading.isolation import Session

    with Session(echo=None) as session:
        found = session.load_notebook(path, tuple(SECTIONS), timeout=args.timeout)
        return [_grade(args, loaded, "forward" if name == "compute_network_output" else "backward")
                for name, loaded in found.items()]


def warm(path, repeats: int) -> dict:
    from manual_backprop.cli.class_grading import _options

    args = _options(timeout=30)
    for grade in (_grade_in_process, _grade_in_worker):  # compile, import, fill caches
        assert all(report.ok for report in grade(path, args))
    times: dict = {"in_process": [], "worker": []}
    for repeat in range(repeats):
        order = (("in_process", _grade_in_process), ("worker", _grade_in_worker))
        for name, grade in order if repeat % 2 == 0 else reversed(order):
            start = time.perf_counter()
            grade(path, args)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {"seconds": times, "median": medians, "ratio": medians["worker"] / medians["in_process"]}


def _seconds(command, env, cwd) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd,
                          check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0,):
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def cold(path: Path, scratch: Path, repeats: int, class_size: int) -> dict:
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(scratch / "pycache"), PYTHONPATH=str(ROOT / "src"),
               MANUAL_BACKPROP_CACHE_DIR=str(scratch / "cache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    jax_command = [sys.executable, "-c", "import jax"]
    check = [sys.executable, "-m", "manual_backprop", "check", "--notebook", str(path)]
    before = [sys.executable, "-c", IN_PROCESS, str(path)]
    school = scratch / "class"
    school.mkdir()
    for index in range(class_size):
        shutil.copy(path, school / f"student_{index:02d}.ipynb")
    grade = [sys.executable, "-m", "manual_backprop", "grade", str(school)]
    for command in (jax_command, check, before):  # bytecode and the compilation cache
        _seconds(command, env, scratch)
    times: dict = {"import_jax": [], "check_notebook": [], "in_process": []}
    for _ in range(repeats):
        times["import_jax"].append(_seconds(jax_command, env, scratch))
        times["check_notebook"].append(_seconds(check, env, scratch))
        times["in_process"].append(_seconds(before, env, scratch))
    medians = {name: statistics.median(values) for name, values in times.items()}
    one = medians["check_notebook"]
    classes = {}
    for jobs in (1, 2):
        seconds = _seconds([*grade, "--jobs", str(jobs)], env, scratch)
        classes[f"jobs_{jobs}"] = {"seconds": seconds, "notebooks_worth": seconds / one}
    return {"seconds": times, "median": medians, "ratio_to_import_jax": one / medians["import_jax"],
            "ratio_to_in_process": one / medians["in_process"],
            "class_size": class_size, "class": classes}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--class-size", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-isolation-"))
    path = _notebook(scratch)
    result = {"warm": warm(path, args.repeats), "cold": cold(path, scratch, args.repeats, args.class_size),
              "repeats": args.repeats, "cores": os.cpu_count(),
              "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
        return 0
    w, c = result["warm"], result["cold"]
    print(f"one notebook, warm: in process {w['median']['in_process']:.3f} s, through a worker "
          f"{w['median']['worker']:.3f} s: ratio {w['ratio']:.2f} (medians of {args.repeats}, alternated)")
    print(f"cold: check --notebook {c['median']['check_notebook']:.3f} s, import jax "
          f"{c['median']['import_jax']:.3f} s: ratio {c['ratio_to_import_jax']:.2f}")
    print(f"cold: the same grading in process (as before the worker) {c['median']['in_process']:.3f} s: "
          f"check --notebook takes {c['ratio_to_in_process']:.2f} times as long")
    for jobs, entry in c["class"].items():
        print(f"a class of {c['class_size']}, grade --{jobs.replace('_', ' ')}: {entry['seconds']:.1f} s = "
              f"{entry['notebooks_worth']:.1f} x one notebook's check")
    print(f"{result['cores']} cores, load average {result['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
