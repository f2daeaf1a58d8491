"""Grading a class: ``grade_notebook``, ``grade_file`` and ``manual-backprop grade`` over many submissions.

``grade_notebook(path)`` and ``grade_file("file.py:backward_pass")`` grade as ``manual-backprop check``
does, the graded code in a worker process (``isolation``): they return the same reports, and nothing the
submission does reaches the caller's process. ``manual-backprop grade SUBMISSION...`` grades each
notebook or file in a grading process of its own (which starts the submission's worker), ``--jobs`` at a
time, into one row each: the table on stdout, the rows in ``--out`` (CSV or JSON), in the order given.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict

from ..grading.isolation import Session, import_jax
from ..grading.loading import BACKWARD_ARGUMENTS, FORWARD_ARGUMENTS, LoadError
from ..grading.worker_process import PACKAGE_ROOT
from ..usercode import DEFAULT_TIMEOUT
from .class_table import Row, table, write_rows
from .grading_cli import SECTIONS, _grade

_CHILD = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
          "from manual_backprop.cli.class_grading import child_main; child_main()")


def _options(**given) -> argparse.Namespace:
    options = dict(activation="relu", loss=None, batch=1, dtype="float64", seed=0, timeout=DEFAULT_TIMEOUT,
                   strict=False, memory=None, sandbox=False, verbose=False, json=False, whole_folder=True,
                   output_activation=None, reduction="sum", l2=0.0)
    unknown = set(given) - set(options)
    if unknown:
        raise TypeError(f"unexpected option {sorted(unknown)[0]!r}; the options are {', '.join(options)}")
    options.update({k: v for k, v in given.items() if v is not None or k == "loss"})
    return argparse.Namespace(**options)


def _session(args, prepare=None) -> Session:
    from ..limits import GIB, memory_limit

    return Session(memory=int(args.memory * GIB) if args.memory else memory_limit(), sandbox=args.sandbox,
                   echo=None, whole_folder=args.whole_folder, prepare=prepare)


def _role(name: str) -> str:
    return "forward" if name == "compute_network_output" else "backward"


def _load(session: Session, target: str, args):
    """([(role, Loaded)], missing names, notebook run or None) for a notebook, ``FILE.py`` (both
    functions, where defined) or ``FILE.py:NAME`` / ``MODULE:NAME`` (that one)."""
    if target.endswith(".ipynb"):
        found = session.load_notebook(target, tuple(SECTIONS), timeout=args.timeout)
        sections = [(_role(n), found[n]) for n in SECTIONS if n in found]
        return sections, [n for n in SECTIONS if n not in found], sections[0][1].notebook
    if not target.endswith(".py"):
        name = target.rpartition(":")[2]
        arguments = FORWARD_ARGUMENTS if _role(name) == "forward" else BACKWARD_ARGUMENTS
        loaded = session.load(target, arguments=arguments, timeout=args.timeout)
        return [(_role(name), loaded)], [], loaded.notebook
    try:
        loaded = session.load(f"{target}:backward_pass", timeout=args.timeout)
    except LoadError as exc:
        if "has no 'backward_pass'" not in str(exc):
            raise
        loaded = session.load(f"{target}:compute_network_output", option="--forward",
                              arguments=FORWARD_ARGUMENTS, timeout=args.timeout)
        return [("forward", loaded)], ["backward_pass"], None
    forward = loaded.namespace.get("compute_network_output")
    sections = [("backward", loaded)]
    if callable(forward):
        sections.insert(0, ("forward", loaded.__class__(forward, "compute_network_output", target, "file",
                                                        loaded.namespace)))
    return sections, [] if callable(forward) else ["compute_network_output"], None


def grade_notebook(path, **options) -> dict:
    """Grade the notebook at ``path`` as ``manual-backprop check --notebook`` does, its code in a worker
    process: ``{name: report}`` for ``compute_network_output`` (a ``ForwardReport``) and ``backward_pass``
    (a ``BackwardReport``), those it defines. Options: ``activation``, ``loss``, ``batch``, ``dtype``,
    ``seed``, ``timeout`` (seconds per call and per cell), ``memory`` (GiB; default half the machine's),
    ``sandbox``, ``strict``, ``whole_folder`` (False: the worker gets a copy of the notebook alone).
    ``LoadError`` (a ValueError) when it cannot be read or defines neither function."""
    args = _options(**options)
    with _session(args) as session:
        sections, _, _ = _load(session, os.fspath(path), args)
        return {loaded.name: _grade(args, loaded, role) for role, loaded in sections}


def grade_file(spec: str, **options):
    """Grade ``FILE.py:NAME``, ``MODULE:NAME`` or ``NOTEBOOK.ipynb:NAME`` as ``check --backward`` (or
    ``--forward`` for ``compute_network_output``) does, its code in a worker process: the report. Options
    as ``grade_notebook``'s."""
    args = _options(**options)
    name = str(spec).rpartition(":")[2]
    arguments = FORWARD_ARGUMENTS if _role(name) == "forward" else BACKWARD_ARGUMENTS
    with _session(args) as session:
        loaded = session.load(spec, option=f"--{_role(name)}", arguments=arguments, timeout=args.timeout)
        return _grade(args, loaded, _role(name))


# ------------------------------------------------------------------------------------------------- rows


def _one_line(report) -> str:
    if report.ok:
        return ""
    story = getattr(report, "story", None)
    if story is not None and getattr(story, "text", None):
        return story.text
    return report.failing[0].summary


def grade_row(target: str, args) -> Row:
    """The row of one submission, graded in this process's own ``Session``."""
    started = time.monotonic()
    columns = {"forward": "-", "backward": "-"}
    try:
        with _session(args, import_jax) as session:
            sections, missing, notebook = _load(session, target, args)
            graded = [(role, loaded, _grade(args, loaded, role)) for role, loaded in sections]
    except LoadError as exc:
        return Row(target, "error", "error", "", str(exc), "", round(time.monotonic() - started, 2), False)
    notes = []
    if notebook is not None and notebook.errors:
        notes.append(f"{len(notebook.errors)} cell(s) raised (first: {notebook.errors[0]})")
    for role, loaded, report in graded:
        columns[role] = "ok" if report.ok else "FAIL"
        notes += list(report.notes)
        used = getattr(loaded.function, "frameworks", ())
        if used:
            notes.append(f"{loaded.name} uses {' and '.join(used)}: not backprop by hand?")
    for name in missing if target.endswith(".ipynb") else ():
        columns[_role(name)] = "missing"
    failing = [report for _, _, report in graded if not report.ok]
    backward_first = sorted(failing, key=lambda r: not hasattr(r, "story"))
    first = backward_first[0] if backward_first else None
    ok = not failing and "missing" not in columns.values()
    return Row(target, columns["forward"], columns["backward"], first.failing[0].name if first else "",
               _one_line(first) if first else ("" if ok else "the notebook defines no such function"),
               "; ".join(notes), round(time.monotonic() - started, 2), ok)


def child_main() -> None:
    """A grading process of ``grade``: ``OPTIONS_JSON`` in argv, then one request per line on stdin
    (``{"target": ..., "whole_folder": ...}``), one JSON row per line on stdout. JAX is imported once, for
    every submission this process grades; each submission's code runs in workers of its own."""
    from ..grading.jax_cache import use_compilation_cache

    options = json.loads(sys.argv[1])
    use_compilation_cache()
    import_jax()
    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        row = grade_row(request["target"], _options(**dict(options, whole_folder=request["whole_folder"])))
        sys.stdout.write(json.dumps(asdict(row)) + "\n")
        sys.stdout.flush()


# ------------------------------------------------------------------------------------------- the command


def add_worker_options(parser, positive_float) -> None:
    """``--memory`` and ``--sandbox``, for ``check`` and ``grade``."""
    parser.add_argument("--memory", type=positive_float, metavar="GIB",
                        help="memory limit of each worker that runs graded code (half the machine's)")
    parser.add_argument("--sandbox", action="store_true",
                        help="run the graded code under bubblewrap: read-only files, no network (Linux)")


def add_grade_parser(commands, positive_int, positive_float) -> None:
    """The ``grade`` subcommand's arguments (``cli.build_parser`` calls this)."""
    from ..maths.activations import ACTIVATIONS
    from ..validate import LOSSES

    grade = commands.add_parser(
        "grade", help="grade many notebooks or files, each in its own worker process, into one table",
        description="Grade each submission (a notebook, a .py file, FILE.py:NAME, or a folder: its "
        "notebooks) as 'check --notebook' would, in a process of its own, --jobs at a time. Exit 0: every "
        "submission passes; 1: one fails; 2: usage error; 130: interrupted (the finished rows are printed).")
    grade.set_defaults(verbose=False, json=False)
    grade.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    grade.add_argument("--jobs", type=positive_int(1), default=os.cpu_count() or 1,
                       help="submissions graded at once (the number of cores)")
    grade.add_argument("--out", metavar="FILE", help="also write the rows to grades.csv or grades.json")
    grade.add_argument("--strict", action="store_true", help="as check --strict")
    grade.add_argument("--timeout", type=positive_float, metavar="SECONDS",
                       help="time limit per call of a submission's code, and per notebook cell (30)")
    add_worker_options(grade, positive_float)
    grade.add_argument("--activation", choices=tuple(ACTIVATIONS), default="relu")
    grade.add_argument("--loss", choices=LOSSES, help="as check --loss (default: the submission's own)")
    grade.add_argument("--batch", type=positive_int(1), default=1)
    grade.add_argument("--seed", type=positive_int(0, 2**32 - 1), default=0)
    grade.add_argument("--dtype", choices=("float64", "float32"), default="float64")


def _targets(submissions) -> list[str]:
    targets = []
    for given in submissions:
        if os.path.isdir(given):
            found = sorted(n for n in os.listdir(given) if n.endswith(".ipynb"))
            if not found:
                raise ValueError(f"{given}: a folder with no notebook (.ipynb) in it")
            targets += [os.path.join(given, n) for n in found]
        elif given.endswith((".ipynb", ".py")) and not os.path.isfile(given):
            raise ValueError(f"no such file {given!r}")
        elif ":" not in given and not os.path.exists(given):  # not FILE.py:NAME or MODULE:NAME either
            raise ValueError(f"no such file or folder {given!r} (give notebooks, .py files, FILE.py:NAME, "
                             "or a folder of notebooks)")
        else:
            targets.append(given)
    return targets


class _Grader:
    """One grading process (``child_main``) of ``grade``, grading one submission after another."""

    def __init__(self, options: dict):
        self.errors = tempfile.TemporaryFile()
        self.ready = False
        command = [sys.executable, "-I", "-c", _CHILD, PACKAGE_ROOT, json.dumps(options)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.errors, text=True, errors="replace")

    def grade(self, target: str, whole_folder: bool) -> Row:
        """The submission's row; its seconds count from when this process is ready (JAX imported)."""
        started = time.monotonic()
        try:
            if not self.ready:
                self.ready = json.loads(self.process.stdout.readline())["ready"]
                started = time.monotonic()
            self.process.stdin.write(json.dumps({"target": target, "whole_folder": whole_folder}) + "\n")
            self.process.stdin.flush()
            row = json.loads(self.process.stdout.readline())
            row["seconds"] = round(time.monotonic() - started, 2)  # as the teacher waits for it
            return Row(**{k: row[k] for k in Row.__dataclass_fields__})
        except (OSError, ValueError, KeyError, TypeError):
            self.close()
            self.errors.seek(0)
            lines = self.errors.read().decode(errors="replace").strip().splitlines() or [""]
            failed = f"the grading process failed (exit {self.process.returncode}): {lines[-1][:200]}"
            return Row(target, "error", "error", "", failed, "", round(time.monotonic() - started, 2), False)

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _job(pending: queue.Queue, targets, whole, options, rows, graders: list, stopping, done) -> None:
    """A thread of ``grade``: its own grading process, fed submissions until none is left."""
    grader = None
    try:
        while not stopping.is_set():
            try:
                index = pending.get_nowait()
            except queue.Empty:
                return
            if grader is None or not grader.alive():
                grader = _Grader(options)
                graders.append(grader)
            row = grader.grade(targets[index], whole[index])
            if not stopping.is_set():
                rows[index] = row
                done()
    finally:
        if grader is not None and not stopping.is_set():
            grader.close()


def run_class(args, out=None) -> int:
    """``manual-backprop grade``: grade every submission, print the table, write ``--out``; the exit code."""
    out = out or sys.stdout
    if args.out and not args.out.endswith((".csv", ".json")):
        raise ValueError(f"--out {args.out}: expected a file name ending in .csv or .json")
    if args.sandbox:
        from ..grading.sandbox import require_bwrap

        require_bwrap()
    targets = _targets(args.submissions)
    names = ("activation", "loss", "batch", "dtype", "seed", "timeout", "strict", "memory", "sandbox")
    options = {name: getattr(args, name) for name in names}
    folders = [os.path.dirname(os.path.abspath(t.rpartition(":")[0] if ":" in t else t)) for t in targets]
    # A folder holding several of the submissions: each worker gets a copy of its own file only.
    whole = [folders.count(folder) == 1 for folder in folders]
    rows: list = [None] * len(targets)
    pending: queue.Queue = queue.Queue()
    for index in range(len(targets)):
        pending.put(index)
    graders: list = []
    stopping = threading.Event()
    bar = _bar(len(targets))
    lock = threading.Lock()

    def done():
        with lock:
            bar.update()

    job = (pending, targets, whole, options, rows, graders, stopping, done)
    jobs = min(args.jobs, len(targets))
    threads = [threading.Thread(target=_job, args=job, daemon=True) for _ in range(jobs)]
    interrupted = False
    try:
        with _own_ctrl_c():
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
    except KeyboardInterrupt:
        interrupted = True
        stopping.set()
        _stop_children([grader.process for grader in graders])
    finally:
        bar.close()
    done = [row for row in rows if row is not None]
    missing = len(rows) - len(done)
    print(table(done), file=out)
    passed = sum(r.ok for r in done)
    summary = f"{len(done)} graded: {passed} pass, {len(done) - passed} fail"
    print(summary + (f"; interrupted: {missing} of {len(rows)} not graded" if missing else ""), file=out)
    if args.out:
        write_rows(args.out, done, missing)
    if interrupted:
        return 130
    return 0 if passed == len(rows) else 1


def _bar(total: int):
    from tqdm import tqdm  # type: ignore[import-untyped]

    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError):
        terminal = False
    return tqdm(total=total, desc="grading", unit="submission", file=sys.stderr, disable=not terminal,
                dynamic_ncols=True, leave=False)


@contextlib.contextmanager
def _own_ctrl_c():
    """Ctrl-C is a KeyboardInterrupt here, not the command's exit at once (``interrupt.py``): this process
    only waits for its grading processes, so it can stop them and print the rows finished."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):  # a background job: Ctrl-C is not ours
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_fd = signal.set_wakeup_fd(-1)  # the command's watcher is not woken
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        signal.signal(signal.SIGINT, previous)


def _stop_children(running: list) -> None:
    """Ctrl-C: each grading process is asked to stop (it stops its worker), then killed if it lingers."""
    for process in running:
        with contextlib.suppress(OSError):
            process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 5
    for process in running:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
