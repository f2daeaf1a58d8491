"""Starting, timing and stopping one worker process: its folder, environment, output and whole process tree.

A worker (``worker.py``) runs in ``python -I`` (no user site, no ``PYTHONPATH``: our package's folder is
put on its path explicitly), in its own session, with stdin closed, a scrubbed environment whose ``HOME``
and ``TMPDIR`` are inside a fresh temporary folder, and that folder's copy of the submission's folder as
its working directory. Its stdout and stderr go to a pipe the parent drains: up to ``OUTPUT_CAP`` bytes are
passed on (to stderr, or dropped), the rest counted. ``stop`` kills with SIGKILL the worker's process group
and every process of its session or below it, then removes the folder. With a ``sandbox`` (``sandbox.py``)
the command line is wrapped (bubblewrap), which adds a PID namespace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from . import wire

OUTPUT_CAP = 2**20  # bytes of a worker's output passed on; the rest is counted
COPY_CAP = 100 * 2**20  # bytes of the submission's folder copied for the worker
STARTUP = 60.0  # seconds for a fresh worker to start and load our package (a loaded machine is slow)
_SKIPPED = {"__pycache__", "node_modules", "site-packages"}
_KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "MKL_NUM_THREADS", "JAX_PLATFORMS", "XLA_FLAGS")
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # src/
# The worker imports only the modules it needs, not the package's __init__ (half its start); the package
# itself is imported in full if the submission imports it.
BOOTSTRAP = ("import sys, types; root = sys.argv.pop(1); sys.path.insert(0, root); "
             "package = types.ModuleType('manual_backprop'); package.__path__ = [root + '/manual_backprop']; "
             "sys.modules['manual_backprop'] = package; from manual_backprop.grading.worker import main; "
             "del sys.modules['manual_backprop']; main()")


def copy_submission(folder: str, destination: str, keep: str, whole: bool = True) -> None:
    """Copy ``folder`` into ``destination`` (hidden folders, virtual environments and caches left out; links
    kept as links). Past ``COPY_CAP`` bytes only ``keep`` (the submission) and the ``.py`` files beside it
    are copied; with ``whole`` False, only ``keep`` (a folder of several students' submissions)."""
    total = 0
    plan = [] if whole else [os.path.join(folder, os.path.basename(keep))]
    for root, dirs, files in os.walk(folder) if whole else ():
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIPPED
                   and not os.path.exists(os.path.join(root, d, "pyvenv.cfg"))]
        for name in files:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                total += os.lstat(path).st_size
            plan.append(path)
        if total > COPY_CAP or len(plan) > 20_000:
            plan = [os.path.join(folder, n) for n in os.listdir(folder)
                    if n == os.path.basename(keep) or n.endswith(".py")]
            break
    for path in plan:
        target = os.path.join(destination, os.path.relpath(path, folder))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with contextlib.suppress(OSError):
            if os.path.islink(path):
                os.symlink(os.readlink(path), target)
            elif os.path.isfile(path):
                shutil.copyfile(path, target)


def _environment(home: str, scratch: str) -> dict:
    env = {name: os.environ[name] for name in _KEPT_ENVIRONMENT if name in os.environ}
    env.update(HOME=home, TMPDIR=scratch, TEMP=scratch, TMP=scratch, MPLBACKEND="Agg",
               MPLCONFIGDIR=os.path.join(scratch, "matplotlib"),
               XDG_CACHE_HOME=os.path.join(scratch, "cache"), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    env.setdefault("PATH", os.defpath)
    env.setdefault("LANG", "C.UTF-8")
    return env


class _Drain(threading.Thread):
    """Reads the worker's output pipe; passes on up to ``OUTPUT_CAP`` bytes, counts the rest."""

    def __init__(self, pipe, echo):
        super().__init__(name="manual-backprop worker output", daemon=True)
        self.pipe, self.echo = pipe, echo
        self.passed = self.dropped = 0

    def run(self) -> None:
        while True:
            try:
                chunk = self.pipe.read1(65536)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            room = max(OUTPUT_CAP - self.passed, 0)
            shown, self.dropped = chunk[:room], self.dropped + len(chunk) - len(chunk[:room])
            self.passed += len(shown)
            if shown and self.echo is not None:
                with contextlib.suppress(Exception):
                    self.echo.write(shown.decode("utf-8", "replace"))
                    self.echo.flush()


def _processes_of(pid: int) -> set[int]:
    """Every process whose session or process group is ``pid``'s, or that descends from ``pid``."""
    found, children = set(), {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        ppid, pgrp, session = int(fields[1]), int(fields[2]), int(fields[3])
        children.setdefault(ppid, []).append(int(entry))
        if pid in (pgrp, session):
            found.add(int(entry))
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found - {os.getpid()}


class WorkerProcess:
    """One running worker: ``sock`` to talk to it, ``stop()`` to end it and every process it started."""

    def __init__(self, submission: str, *, memory: int | None, echo=None, wrap=None, whole: bool = True,
                 folder: str | None = None):
        """``submission``: the file or notebook (or None for a module: the current folder is copied);
        ``memory``: RLIMIT_AS in bytes (None: none); ``echo``: where its output goes (None: counted only);
        ``wrap``: a function turning the command line and folders into a sandboxed one; ``whole``: copy
        the submission's whole folder (else the file alone)."""
        self.wrapped = wrap is not None
        self.folder = tempfile.mkdtemp(prefix="manual-backprop-")
        self.work = os.path.join(self.folder, "submission")
        home, scratch = (os.path.join(self.folder, n) for n in ("home", "tmp"))
        for path in (self.work, home, scratch):
            os.makedirs(path, exist_ok=True)
        source = os.path.dirname(os.path.abspath(submission)) if submission else (folder or os.getcwd())
        copy_submission(source, self.work, submission or "", whole or not submission)
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-I", "-c", BOOTSTRAP, PACKAGE_ROOT, str(theirs.fileno()),
                   str(memory or 0), str(0 if wrap else os.getpid())]
        if wrap is not None:
            command = wrap(command, work=self.work, folder=self.folder, submission_root=source)
        try:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, cwd=self.work,
                                            env=_environment(home, scratch), pass_fds=(theirs.fileno(),),
                                            start_new_session=True, close_fds=True)
        except BaseException:
            ours.close()
            theirs.close()
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        theirs.close()
        self.sock = ours
        self.drain = _Drain(self.process.stdout, echo)
        self.drain.start()
        self.stopped = False

    def request(self, header: dict, arrays=(), *, deadline: float | None, on_event=None,
                max_bytes: int = 2**30, meanwhile=None):
        """Send a message and wait for its answer (events go to ``on_event``, which may move the deadline
        by returning a new one); WireError (WireTimeout, WireClosed) when there is none. ``meanwhile``:
        called between the two (the worker works while we do)."""
        try:
            wire.send(self.sock, header, arrays)
        except OSError as exc:
            raise wire.WireClosed(f"the connection failed ({exc.strerror or exc})") from None
        if meanwhile is not None:
            started = time.monotonic()
            meanwhile()
            deadline = None if deadline is None else deadline + time.monotonic() - started
        while True:
            answer, received = wire.receive(self.sock, deadline, max_bytes)
            if "event" in answer and on_event is not None:
                deadline = on_event(answer)
                continue
            return answer, received

    def _status(self):
        """The worker's ``waitid`` status once it has ended, else None; it stays a zombie (not reaped), so
        that its process ID, which names its session and group, cannot be given to another process yet."""
        try:
            return os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return None

    def death(self, wait: float = 1.0) -> str:
        """How it ended, once its connection closed: "died with SIGSEGV", "exited with code 0", ..."""
        deadline = time.monotonic() + wait
        status = self._status()
        while status is None and time.monotonic() < deadline:
            time.sleep(0.02)
            status = self._status()
        if status is None:
            return "closed its connection to the grader"
        if status.si_code == os.CLD_EXITED and self.wrapped and status.si_status > 128:
            with contextlib.suppress(ValueError):  # bwrap passes on a signal as 128 + its number
                return f"died with {signal.Signals(status.si_status - 128).name}"
        if status.si_code == os.CLD_EXITED:
            return f"exited with code {status.si_status}"
        with contextlib.suppress(ValueError):
            return f"died with {signal.Signals(status.si_status).name}"
        return f"died with signal {status.si_status}"

    def stop(self) -> None:
        """SIGKILL the worker and everything it started (same session or group, or below it); remove its
        folder. Safe to call twice."""
        if self.stopped:
            return
        self.stopped = True
        with contextlib.suppress(OSError):
            self.sock.close()
        pid = self.process.pid
        for _ in range(3):  # a fork between the scan and the kill is caught on the next round
            targets = _processes_of(pid) | {pid}  # not reaped yet: the ID is still the worker's
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            for target in targets:
                with contextlib.suppress(OSError):
                    os.kill(target, signal.SIGKILL)
            if targets <= {pid}:
                break
            time.sleep(0.01)
        with contextlib.suppress(Exception):
            self.process.wait(5)
        self.drain.join(1)
        with contextlib.suppress(Exception):
            self.process.stdout.close()
        if self.drain.dropped and self.drain.echo is not None:
            with contextlib.suppress(Exception):
                self.drain.echo.write(f"manual-backprop: {self.drain.dropped:,} more bytes of the graded "
                                      "code's output were not shown\n")
        _remove(self.folder)


def _remove(folder: str) -> None:
    def retry(function, path, _):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
            function(path)

    shutil.rmtree(folder, onerror=retry)
