"""Calling a user's function so that nothing it does escapes: ``call_user`` and its guards.

A graded function may raise (even an exception whose ``str`` raises), loop or sleep forever, call
``sys.exit``, print to file descriptor 1 under our ``--json``, or change process-wide state (NumPy's error
handling and print options, the legacy random stream, warning filters, the working directory, ``sys.path``,
JAX's flags). ``call_user`` turns each into data (a ``CallResult``) and puts the process back as it was;
only Ctrl-C (``KeyboardInterrupt``) goes through, for a clean exit 130 at the command line.

Notebook globals (``user_globals``): the names that describe the network which a function reads as globals
are set to the case's values for the call (``globals_to_set``) and put back after; the result says which.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .user_globals import globals_set

DEFAULT_TIMEOUT = 30.0  # seconds per call of a user's function
_RETRIGGER = 0.05  # seconds between repeated alarms, so that a bare ``except:`` cannot swallow the limit


class _TimeLimit(BaseException):
    """Raised inside the user's code when its time is up (a BaseException: ``except Exception`` skips it)."""


class TimeLimitExceeded(Exception):
    """Raised by ``run_with_time_limit`` when the code has not returned in time (never by user code)."""


@dataclass(frozen=True)
class CallResult:
    """What a call of user code did.

    ``status``: "returned" (``value`` holds the result), "raised" (``exception``, ``error_type``, ``message``
    and ``user_line``), "timeout" or "exit" (``sys.exit``). ``error`` is one line saying what went wrong (None
    when it returned). ``globals_set``: the network globals that were set for the call (see ``call_user``).
    """

    status: str
    value: Any = None
    error: str | None = None
    exception: BaseException | None = None
    error_type: str | None = None
    message: str | None = None
    user_line: str | None = None
    globals_set: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "returned"


def safe_str(value) -> str:
    """``str(value)``, or ``<unprintable TypeName>`` when its ``__str__`` raises (or returns a non-string)."""
    try:
        text = str(value)
        if isinstance(text, str):
            return text
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 (user objects: anything may come out of __str__)
        pass
    return f"<unprintable {type(value).__name__}>"


def safe_repr(value) -> str:
    """``repr(value)``, or ``<unprintable TypeName>`` when its ``__repr__`` raises."""
    try:
        text = repr(value)
        if isinstance(text, str):
            return text
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001
        pass
    return f"<unprintable {type(value).__name__}>"


def describe_exception(exc: BaseException) -> str:
    """``TypeName: message`` in one line, safe for any exception object."""
    message = safe_str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0]}" if message and message[0] else type(exc).__name__


def user_line(exc: BaseException, function=None) -> str:
    """`` (at file.py:12: the line)`` of the innermost frame in ``function``'s file, else the innermost."""
    try:
        frames = traceback.extract_tb(exc.__traceback__)
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001
        return ""
    filename = getattr(getattr(function, "__code__", None), "co_filename", None)
    mine = [f for f in frames if f.filename == filename] or frames[-1:]
    if not mine:
        return ""
    frame = mine[-1]
    return f" (at {os.path.basename(frame.filename)}:{frame.lineno}: {(frame.line or '').strip()})"


# ------------------------------------------------------------------------------------------ process state


def _jax_flags():
    jax = sys.modules.get("jax")
    if jax is None:
        return None
    flags = {}
    for name in ("jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion",
                 "jax_debug_nans", "jax_debug_infs", "jax_disable_jit", "jax_numpy_dtype_promotion"):
        try:
            flags[name] = getattr(jax.config, name)
        except Exception:  # noqa: BLE001 (a flag this JAX version does not have)
            continue
    return jax, flags


@contextlib.contextmanager
def preserved_state():
    """Put back, on leaving, the process state user code may change: NumPy's error handling, print options
    and legacy random stream, warning filters, the working directory, ``sys.stdout``/``sys.stderr``,
    ``sys.path``, ``sys.argv``, the recursion limit, the environment, the SIGINT handler, JAX's flags."""
    err, errcall = np.geterr(), np.geterrcall()
    printoptions = np.get_printoptions()
    random_state = np.random.get_state()  # noqa: NPY002 (the legacy stream is what notebooks seed)
    cwd = os.getcwd()
    stdout, stderr = sys.stdout, sys.stderr
    path, argv = list(sys.path), list(sys.argv)
    recursion = sys.getrecursionlimit()
    environ = dict(os.environ)
    main_thread = threading.current_thread() is threading.main_thread()
    sigint = signal.getsignal(signal.SIGINT) if main_thread else None
    jax_state = _jax_flags()
    os_exit = os._exit
    os._exit = _refuse_os_exit  # would end our process on the spot, with its exit code (0: "all passed")
    try:
        with warnings.catch_warnings():
            yield
    finally:
        os._exit = os_exit
        np.seterr(**err)
        np.seterrcall(errcall)
        np.set_printoptions(**printoptions)
        np.random.set_state(random_state)  # noqa: NPY002
        with contextlib.suppress(OSError):
            os.chdir(cwd)
        sys.stdout, sys.stderr = stdout, stderr
        sys.path[:] = path
        sys.argv[:] = argv
        sys.setrecursionlimit(recursion)
        if os.environ != environ:
            os.environ.clear()
            os.environ.update(environ)
        if main_thread and sigint is not None and signal.getsignal(signal.SIGINT) is not sigint:
            signal.signal(signal.SIGINT, sigint)
        if jax_state is not None:
            jax, flags = jax_state
            for name, value in flags.items():
                with contextlib.suppress(Exception):
                    if getattr(jax.config, name) != value:
                        jax.config.update(name, value)


class OsExit(SystemExit):
    """``os._exit(code)`` called by user code: refused, and reported as an exit of the user's code."""


def _refuse_os_exit(code=0):
    raise OsExit(code)


@contextlib.contextmanager
def stdout_to_stderr():
    """While inside: whatever is written to stdout, by ``print``, ``sys.__stdout__`` or ``os.write(1, ...)``,
    goes to stderr (file descriptor 1 is pointed at descriptor 2), so that our stdout (one JSON object with
    ``--json``) carries only our results."""
    for stream in (sys.stdout, sys.__stdout__):
        with contextlib.suppress(Exception):
            stream.flush()  # our pending output goes out first, to the real stdout
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no descriptor 1 or 2 (an embedded interpreter): Python-level redirection only
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for stream in (sys.stdout, sys.__stdout__, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()  # the user's buffered output goes out while 1 still points at 2
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


# ------------------------------------------------------------------------------------------- time limits


def _run_with_alarm(thunk, seconds: float):
    """``thunk()`` in the main thread, interrupted by SIGALRM after ``seconds`` (``_TimeLimit``)."""
    armed = [True]

    def on_alarm(signum, frame):
        if armed[0]:
            raise _TimeLimit

    previous = signal.signal(signal.SIGALRM, on_alarm)
    started = time.monotonic()
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds, _RETRIGGER)
    try:
        try:
            return thunk()
        finally:
            armed[0] = False  # from here on the alarm does nothing; a raise just before lands below
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay > 0:  # someone else's timer was running: give it back what is left of it
            left = max(outer_delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def _run_in_thread(thunk, seconds: float):
    """``thunk()`` in a daemon thread, waited for ``seconds``: off the main thread no signal can interrupt
    it, so a call past its limit is abandoned (it runs on in the background) and reported as a timeout."""
    outcome: dict[str, Any] = {}

    def target():
        try:
            outcome["value"] = thunk()
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread)
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="manual-backprop user code", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise _TimeLimit
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def run_with_time_limit(thunk, seconds: float | None):
    """``thunk()``, raising ``TimeLimitExceeded`` when it has not returned after ``seconds`` (None: none)."""
    if seconds is None:
        return thunk()
    in_main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    try:
        return (_run_with_alarm if in_main else _run_in_thread)(thunk, seconds)
    except _TimeLimit:
        raise TimeLimitExceeded(f"did not return within {seconds:g} s") from None


# ------------------------------------------------------------------------------------------------ call_user


def call_user(function, args=(), *, timeout: float | None = DEFAULT_TIMEOUT, globals_to_set=None,
              redirect_stdout: bool = True) -> CallResult:
    """Call ``function(*args)`` so that nothing it does escapes: returns a ``CallResult``.

    - ``timeout`` seconds (None: no limit): past it the call is a "timeout" result, "did not return within
      30 s". In the main thread SIGALRM interrupts Python code and sleeps (not a long NumPy C call, which
      is interrupted when it returns); elsewhere the call runs in a daemon thread that is abandoned.
    - ``globals_to_set``: a dict such as ``network_globals(all_weights)``; those of its names that
      ``function`` reads as globals are set in its module for the call and put back after (``globals_set``).
      A NameError names the missing global.
    - process state is put back after the call (``preserved_state``), and with ``redirect_stdout`` whatever
      the function writes to stdout goes to stderr (``stdout_to_stderr``).
    - ``sys.exit`` is an "exit" result ("called sys.exit(3)"); an exception a "raised" one with its type,
      message and the user's line, even if its ``__str__`` raises. ``KeyboardInterrupt`` is re-raised.
    - a proxy of a function loaded in a worker process (``isolation.RemoteFunction``) is called there,
      with the time limit enforced from outside; a worker that dies is a "crash" result.
    """
    remote = getattr(type(function), "_call_remote", None)
    if remote is not None:  # a function of a submission loaded in a worker (``isolation.RemoteFunction``)
        return remote(function, args, timeout=timeout, globals_to_set=globals_to_set)
    set_names: tuple[str, ...] = ()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(preserved_state())
            if redirect_stdout:
                stack.enter_context(stdout_to_stderr())
            set_names = stack.enter_context(globals_set(function, globals_to_set))
            value = run_with_time_limit(lambda: function(*args), timeout)
    except KeyboardInterrupt:
        raise
    except TimeLimitExceeded as exc:
        return CallResult("timeout", error=exc.args[0], globals_set=set_names)
    except SystemExit as exc:
        code = "" if exc.code is None else str(exc.code) if isinstance(exc.code, int) else safe_repr(exc.code)
        called = "os._exit" if isinstance(exc, OsExit) else "sys.exit"
        return CallResult("exit", error=f"called {called}({code})", exception=exc, error_type="SystemExit",
                          message=code, globals_set=set_names)
    except BaseException as exc:  # noqa: BLE001 (the user's bug is data, never our crash)
        return _raised(exc, function, set_names)
    return CallResult("returned", value=value, globals_set=set_names)


def _raised(exc: BaseException, function, set_names) -> CallResult:
    message = safe_str(exc).strip()
    if isinstance(exc, NameError) and getattr(exc, "name", None):
        message = (f"{message}: the function reads the global {exc.name!r}, which its file or notebook "
                   "does not define")
    line = user_line(exc, function)
    first = message.splitlines()[0] if message else ""
    error = f"raised {type(exc).__name__}" + (f": {first}" if first else "") + line
    return CallResult("raised", error=error, exception=exc, error_type=type(exc).__name__, message=message,
                      user_line=line.strip(" ()") or None, globals_set=set_names)
