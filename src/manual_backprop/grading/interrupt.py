"""Ctrl-C during the command: exit 130 with one line on stderr within a second, whatever is running.

Python's own Ctrl-C raises KeyboardInterrupt in the main thread at the next bytecode, wherever that is,
and while JAX loads that goes wrong in two ways (measured: SIGINT sent 0.3 to 1.2 s after start):

- JAX registers a garbage-collector callback (``gc.callbacks.append(_xla_gc_callback)`` in
  ``jax/_src/lib``); an exception raised inside a gc callback is printed as "Exception ignored in ..." and
  dropped, so the check ran on to its end (the collector runs all the time while modules import);
- raised inside Python code that jaxlib's C++ calls while it initialises, it becomes a C++ exception
  nobody catches: the process aborts (SIGABRT, a 60-line trace, maybe a core file).

So while the command runs, Ctrl-C does not raise: the handler writes the line and ends the process at once
(``os._exit(130)``; nothing of the command needs cleaning up). And while the main thread runs C code (XLA
compiling a deep network, a long NumPy call) no Python handler runs at all, so the C-level handler also
writes the signal's number to a socket (``signal.set_wakeup_fd``): a watcher thread reading it ends the
process itself if the main thread has not done so ``GRACE`` seconds later.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable

GRACE = 0.3  # seconds the main thread's handler has before the watcher acts; the line comes within 1 s
LINE = "manual-backprop: interrupted"
EXIT_CODE = 130  # the shell's code for a process ended by SIGINT (128 + 2)
_hard_exit = os._exit  # the real one: usercode.preserved_state replaces os._exit while user code runs
ON_STOP: list[Callable[[], None]] = []  # called before the end: isolation stops its worker processes
STDOUT_LINE: list[bytes] = []  # written to stdout before the end: the command's JSON document under --json


def run_interruptibly(command: Callable[[], int], *, own_sigint: bool = True) -> int:
    """``command()``'s exit code; on Ctrl-C, ``LINE`` on stderr and the process ends with 130 at once.

    Without ``own_sigint`` (the command called from a program, a kernel, a test), outside the main thread
    (no signal reaches it) or with SIGINT ignored (a background job) it is just ``command()``, but for a
    KeyboardInterrupt it raises: ``LINE`` and 130 as well. The previous SIGINT handler and wakeup
    descriptor are put back afterwards.
    """
    if (not own_sigint or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        return _run(command)
    claimed = threading.Lock()  # whoever takes it ends the process: the handler or the watcher
    previous = signal.signal(signal.SIGINT, lambda signum, frame: _stop(claimed))  # first of all
    finished = threading.Event()
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(reader, claimed, finished), daemon=True,
                               name="manual-backprop Ctrl-C watcher")  # fmt: skip
    watcher.start()
    try:
        return _run(command)
    finally:
        finished.set()
        signal.signal(signal.SIGINT, previous)
        signal.set_wakeup_fd(previous_fd)
        writer.close()  # the watcher's recv returns b"": it ends
        watcher.join(1.0)
        reader.close()


def _run(command: Callable[[], int]) -> int:
    try:
        return command()
    except KeyboardInterrupt:  # raised by code, not by Ctrl-C (whose handler does not raise)
        print(LINE, file=sys.stderr, flush=True)
        for line in STDOUT_LINE:
            sys.stdout.write(line.decode())
        sys.stdout.flush()
        return EXIT_CODE


def _stop(claimed: threading.Lock) -> None:
    """The line, then the end of the process with 130 (once: a second caller finds the lock taken)."""
    if not claimed.acquire(blocking=False):
        return
    for fd, text in ((2, (LINE + "\n").encode()), *((1, line) for line in STDOUT_LINE)):
        try:
            os.write(fd, text)
        except OSError:  # no stderr or stdout: the exit code says it
            pass
    for stop in list(ON_STOP):
        try:
            stop()
        except Exception:  # noqa: BLE001 (ending anyway)
            pass
    _hard_exit(EXIT_CODE)


def _watch(reader: socket.socket, claimed: threading.Lock, finished: threading.Event) -> None:
    """Wait for SIGINT's byte; if the process still runs ``GRACE`` seconds later, end it."""
    while True:
        try:
            data = reader.recv(64)
        except OSError:
            return
        if not data or finished.is_set():
            return
        if signal.SIGINT in data and not finished.wait(GRACE):  # other bytes: the time limit's SIGALRM
            _stop(claimed)
            return
