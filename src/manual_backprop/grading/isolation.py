"""Grading code without running it here: a ``Session`` of worker processes and proxies of their functions.

``Session.load`` and ``Session.load_notebook`` answer as ``loading.load`` and ``loading.load_notebook`` do
(``Loaded`` records, ``LoadError``), but the file, module or notebook is loaded in a worker process
(``worker.py``, started by ``worker_process``), and each function it defines is a ``RemoteFunction``: a
proxy whose calls send plain arrays to the worker and read plain arrays back (``wire``: never a pickle).
``usercode.call_user`` hands a proxy's calls to it, so the graders (``check_backward``, ``check_forward``,
``find_loss_convention``) run here unchanged: every reference, comparison and verdict is computed in this
process, which the graded code cannot reach.

Limits are enforced from outside: a call (or a notebook cell, or a file's import) that has not answered
``GRACE`` after its time limit gets its worker's whole process tree killed with SIGKILL; a worker that dies
(a signal, an exit, a closed connection, a memory limit) fails that call with its cause, and the next call
starts a fresh worker that loads the submission again (the notebook cells that hung or crashed are
skipped, and recorded as cell errors). ``close`` stops every worker and removes its folder.
"""

from __future__ import annotations

import os
import re
import sys
import time

from ..usercode import DEFAULT_TIMEOUT, CallResult
from . import wire
from .loading import BACKWARD_ARGUMENTS, Loaded, LoadError, is_path, module_folder, parse_spec
from .notebook import CellError, NotebookRun
from .worker_process import STARTUP, WorkerProcess

MAX_RESTARTS = 30  # fresh workers for one submission, after which its remaining calls fail at once
LOAD_SLACK = 15.0  # seconds for our own loading work in the worker (reading the notebook, nbformat)
MAX_REPLY = 2**30  # bytes of arrays in one answer


def grace(timeout: float) -> float:
    """Seconds past a time limit before the worker is stopped from outside: the worker's own limit (an
    alarm) answers first when it can, with the same "did not return within" message."""
    return max(1.0, 0.25 * timeout)


class UserCodeError(Exception):
    """An exception raised by the graded code in its worker, re-raised here under the same type name."""

    user_line: str | None = None


_ERRORS: dict[str, type] = {}


def user_exception(type_name: str, message: str, user_line: str | None = None) -> UserCodeError:
    valid = isinstance(type_name, str) and re.fullmatch(r"[A-Za-z_]\w{0,79}", type_name)
    name = type_name if valid else "Error"
    cls = _ERRORS.get(name) or _ERRORS.setdefault(name, type(name, (UserCodeError,), {}))
    exc = cls(message or "")
    exc.user_line = user_line
    return exc


STDERR = object()  # Session's default echo: sys.stderr as it is when the session starts


class RemoteFunction:
    """A function of the submission, called in its worker. ``proxy(*args)`` returns its result (plain data:
    None, arrays, numbers, strings, lists, tuples, or an ``UnreadableObject``) or raises ``UserCodeError``;
    ``usercode.call_user(proxy, ...)`` gets a ``CallResult`` with the time limit enforced from outside.
    Arrays passed in that the function changes in place are changed here too, as are lists it changes."""

    def __init__(self, submission: _Submission, name: str, qualname: str, read: tuple, frameworks=(),
                 source=None):
        self._submission, self.__name__, self.__qualname__ = submission, name, qualname
        self._read = frozenset(read)
        self.frameworks = tuple(frameworks)  # which of jax, torch, autograd it uses (not backprop by hand)
        self._source = source

    in_worker = True  # for the checks that cannot trace it (``checks.user_jax``)
    def __repr__(self) -> str:
        return f"<function {self.__qualname__} in its worker>"

    def source_lines(self) -> tuple:
        """``(lines, first line number, file name)`` of its source, as ``inspect.getsourcelines`` gives
        them (read in its worker); OSError where there is none."""
        if self._source is None:
            raise OSError(f"no source for {self.__qualname__}")
        return self._source

    def globals_read(self) -> frozenset:
        """The global names the function reads (``user_globals.globals_read``, computed in its worker)."""
        return self._read

    def __call__(self, *args):
        result = self._call_remote(args, timeout=self._submission.timeout)
        if result.ok:
            return result.value
        raise result.exception or UserCodeError(result.error)

    def _call_remote(self, args, *, timeout=DEFAULT_TIMEOUT, globals_to_set=None) -> CallResult:
        return self._submission.call(self.__name__, tuple(args), timeout, globals_to_set)


class _Submission:
    """One submission: how to load it, its current worker (started on demand) and what loading gave."""

    def __init__(self, session: Session, request: dict, submission: str | None, shown: str,
                 folder: str | None = None):
        self.session, self.request, self.submission, self.shown = session, request, submission, shown
        self.folder = folder  # a module's: the folder its top-level package is imported from
        self.timeout = request.get("timeout")
        self.process: WorkerProcess | None = None
        self.skip: dict[int, str] = {}
        self.restarts = 0
        self.answer: dict | None = None
        self.values: list = []
        self.namespace: dict = {}
        self.notebook: NotebookRun | None = None

    def _limit(self) -> float | None:
        return None if self.timeout is None else self.timeout + grace(self.timeout)

    def _fix(self, text):
        """A message of the worker's with its copy's path shown as the user gave it."""
        if not isinstance(text, str) or self.process is None:
            return text
        if self.submission:
            copy = os.path.join(self.process.work, os.path.basename(self.submission))
            text = text.replace(copy, self.shown)
        return text.replace(self.process.work + os.sep, "")

    def _stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def start(self) -> dict:
        """A fresh worker with the submission loaded: its answer; LoadError when loading fails."""
        while True:
            self._stop()
            self.process = WorkerProcess(self.submission, memory=self.session.memory, echo=self.session.echo,
                                         wrap=self.session.wrap, whole=self.session.whole_folder,
                                         folder=self.folder)
            request = dict(self.request, skip={str(k): v for k, v in self.skip.items()})
            if self.submission:
                copy = os.path.join(self.process.work, os.path.basename(self.submission))
                request.update(path=copy) if "path" in request else request.update(
                    spec=f"{copy}:{request['spec'].rpartition(':')[2]}")
            cell: list = [None]
            prepare, self.session.prepare = self.session.prepare, None
            try:
                answer, arrays = self.process.request(request, deadline=time.monotonic() + STARTUP,
                                                      on_event=self._on_event(cell), max_bytes=MAX_REPLY,
                                                      meanwhile=prepare)
            except wire.WireError as exc:
                why = self._failure(exc)
                if type(cell[0]) is int and cell[0] not in self.skip and self.restarts < MAX_RESTARTS:
                    self.skip[cell[0]] = why  # "Run all" goes on past a cell that hung or crashed
                    self.restarts += 1
                    continue
                self._stop()
                what = self.shown
                raise LoadError(f"{self.request['option']}: {what} failed to load: {why}") from None
            if not answer.get("ok"):
                message = self._fix(str(answer.get("error")))
                self._stop()
                raise LoadError(message)
            self.answer, self.values = answer, arrays
            return answer

    def _on_event(self, cell: list):
        """The deadline after each event of a load: per notebook cell, and for the rest of the load."""
        limit = self._limit()

        def on_event(event):
            if event.get("event") == "cell":
                cell[0] = event.get("number")
                return None if limit is None else time.monotonic() + limit
            return None if limit is None else time.monotonic() + limit + LOAD_SLACK

        return on_event

    def _failure(self, exc: wire.WireError) -> str:
        """What stopped the worker, in words; the worker is stopped."""
        if isinstance(exc, wire.WireTimeout):
            why = f"did not finish within {self.timeout:g} s; its worker was stopped"
        elif isinstance(exc, wire.WireClosed):
            why = f"the worker {self.process.death()}"
        else:
            why = f"the worker sent a malformed answer ({exc})"
        self._stop()
        return why

    def call(self, name: str, args: tuple, timeout, globals_to_set) -> CallResult:
        if self.process is None:
            if self.restarts >= MAX_RESTARTS:
                return CallResult("crash", error=f"not run: its worker was restarted {MAX_RESTARTS} times")
            self.restarts += 1
            try:
                self.start()
            except LoadError as exc:
                return CallResult("crash", error=f"a fresh worker could not load the submission again: {exc}")
        nodes, arrays, originals = wire.encode_arguments(args)
        globals_to_set = {k: int(v) for k, v in globals_to_set.items()} if globals_to_set else None
        header = {"op": "call", "name": name, "args": nodes, "timeout": timeout, "globals": globals_to_set}
        limit = None if timeout is None else timeout + grace(timeout)
        try:
            answer, received = self.process.request(
                header, arrays, deadline=None if limit is None else time.monotonic() + limit,
                max_bytes=MAX_REPLY)
            try:  # whatever came, it is read as plain data or refused
                value = wire.decode(answer.get("value", {"t": "none"}), received)
                wire.mirror_changes(args, originals, answer, received)
                return _result(answer, value)
            except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
                raise wire.WireError(f"{type(exc).__name__}") from None
        except wire.WireTimeout:
            self._stop()
            return CallResult("timeout",
                              error=f"did not return within {timeout:g} s (its worker was stopped)")
        except wire.WireError as exc:
            why = (f"the worker {self.process.death()} while running {name}"
                   if isinstance(exc, wire.WireClosed)
                   else f"the worker sent a malformed answer while running {name} ({exc})")
            self._stop()
            return CallResult("crash", error=why)

    def close(self) -> None:
        self._stop()


def _text(value):
    return value if isinstance(value, str) else None


def _result(answer: dict, value) -> CallResult:
    status = answer.get("status")
    read = tuple(n for n in answer.get("globals_set") or () if isinstance(n, str))
    if status == "returned":
        return CallResult("returned", value=value, globals_set=read)
    if status not in ("raised", "timeout", "exit"):
        return CallResult("crash", error=_text(answer.get("error")) or "the worker failed", globals_set=read)
    exception = (user_exception(answer.get("error_type"), _text(answer.get("message")) or "",
                                _text(answer.get("user_line"))) if status == "raised" else None)
    return CallResult(status, error=_text(answer.get("error")) or status, exception=exception,
                      error_type=_text(answer.get("error_type")), message=_text(answer.get("message")),
                      user_line=_text(answer.get("user_line")), globals_set=read)


class Session:
    """Workers for the submissions loaded through it; ``close()`` (or ``with``) stops them all.

    ``memory``: each worker's address-space limit in bytes (None: none); ``echo``: where the workers'
    output goes (default stderr; None: counted and dropped); ``sandbox``: run each worker under bubblewrap
    (``sandbox.py``); ``whole_folder``: the worker gets a copy of the submission's folder (False: of the
    file alone, for a folder that holds other students' submissions); ``prepare``: called once, while the
    first worker starts and loads (the command line imports JAX meanwhile)."""

    def __init__(self, *, memory: int | None = None, echo=STDERR, sandbox: bool = False,
                 whole_folder: bool = True, prepare=None):
        self.memory, self.whole_folder = memory, whole_folder
        self.echo = sys.stderr if echo is STDERR else echo  # stderr as it is now, not at import
        self.prepare = prepare
        self.wrap = None
        if sandbox:
            from .sandbox import require_bwrap, wrap_command

            require_bwrap()  # SandboxUnavailable (a ValueError, exit 2) saying how to install it
            self.wrap = wrap_command
        self.submissions: list[_Submission] = []

    def __enter__(self) -> Session:
        from .interrupt import ON_STOP  # Ctrl-C ends the command at once: the workers with it

        ON_STOP.append(self.close)
        return self

    def __exit__(self, *exc) -> None:
        from .interrupt import ON_STOP

        self.close()
        if self.close in ON_STOP:
            ON_STOP.remove(self.close)

    def close(self) -> None:
        for submission in self.submissions:
            submission.close()

    def _open(self, request: dict, submission: str | None, shown: str,
              folder: str | None = None) -> _Submission:
        handle = _Submission(self, request, submission, shown, folder)
        self.submissions.append(handle)
        handle.start()
        try:
            handle.namespace = _namespace(handle)
            if isinstance(handle.namespace.get("__file__"), str) and submission:  # the user's, not the copy's
                handle.namespace["__file__"] = os.path.abspath(submission)
            handle.notebook = _notebook(handle, shown, handle.namespace)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError, RecursionError) as exc:
            handle.close()
            raise LoadError(f"{request['option']}: {shown} failed to load: its worker sent a malformed "
                            f"answer ({type(exc).__name__})") from None
        return handle

    def load(self, spec, *, option: str = "--backward", arguments: tuple = BACKWARD_ARGUMENTS,
             timeout: float | None = DEFAULT_TIMEOUT) -> Loaded:
        """As ``loading.load``: ``FILE.py:NAME``, ``MODULE:NAME`` or ``NOTEBOOK.ipynb:NAME``, loaded in a
        worker; the ``Loaded`` holds a ``RemoteFunction`` and a namespace of proxies."""
        target, name = parse_spec(spec, option)
        path = target if is_path(target) else None
        request = {"op": "load", "spec": spec, "option": option, "arguments": list(arguments),
                   "timeout": timeout}
        handle = self._open(request, path, target, None if path else module_folder(target))
        kind = handle.answer.get("kind")
        if not isinstance(handle.namespace.get(name), RemoteFunction):
            handle.close()
            raise LoadError(f"{option}: {target} has no function {name!r}")
        return Loaded(handle.namespace[name], name, target, kind if isinstance(kind, str) else "file",
                      handle.namespace, handle.notebook)

    def load_notebook(self, path, names=("compute_network_output", "backward_pass"), *,
                      option: str = "--notebook", timeout: float | None = DEFAULT_TIMEOUT) -> dict:
        """As ``loading.load_notebook``: ``{name: Loaded}`` of those of ``names`` the notebook defines."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise LoadError(f"{option}: no such notebook {path!r}")
        request = {"op": "load_notebook", "path": path, "names": list(names), "option": option,
                   "timeout": timeout}
        handle = self._open(request, path, path)
        namespace = handle.namespace
        found = [n for n in names if isinstance(namespace.get(n), RemoteFunction)]
        if not found:
            handle.close()
            raise LoadError(f"{option}: {path} defines none of {', '.join(names)}")
        return {name: Loaded(namespace[name], name, str(path), "notebook", namespace, handle.notebook)
                for name in found}


def _namespace(handle: _Submission) -> dict:
    namespace = {}
    for name, entry in (handle.answer.get("namespace") or {}).items():
        if not isinstance(entry, dict):
            continue
        if entry.get("kind") == "function":
            read = tuple(n for n in entry.get("globals") or () if isinstance(n, str))
            qualname = entry.get("qualname") if isinstance(entry.get("qualname"), str) else name
            used = tuple(n for n in entry.get("frameworks") or () if isinstance(n, str))
            namespace[name] = RemoteFunction(handle, name, qualname, read, used, _source_entry(entry))
        elif entry.get("kind") == "value":
            try:
                namespace[name] = wire.decode(entry.get("value"), handle.values)
            except wire.WireError:
                continue
    return namespace


def _source_entry(entry: dict):
    source = entry.get("source")
    if (isinstance(source, list) and len(source) == 3 and isinstance(source[0], list)
            and all(isinstance(line, str) for line in source[0]) and type(source[1]) is int
            and isinstance(source[2], str)):
        return list(source[0]), source[1], source[2]
    return None


def _notebook(handle: _Submission, path: str, namespace: dict) -> NotebookRun | None:
    entry = handle.answer.get("notebook")
    if not isinstance(entry, dict):
        return None
    errors = []
    for item in entry.get("errors") or ():
        cell, line, source, error = (list(item) + [None] * 4)[:4]
        errors.append(CellError(cell if type(cell) is int else 0, line if type(line) is int else None,
                                _text(source) or "", handle._fix(_text(error)) or "error"))
    counts = [entry.get(k) if type(entry.get(k)) is int else 0
              for k in ("skipped_lines", "skipped_cells", "code_cells")]
    output = _text(entry.get("output")) or ""
    return NotebookRun(os.path.abspath(path), namespace, tuple(errors), *counts, output)


def import_jax() -> None:
    """JAX and the oracle imported (with the command line's compilation cache), for ``prepare``: the
    parent's import overlaps the worker's start; errors are left to the grading's own import."""
    try:
        from .jax_cache import use_compilation_cache

        use_compilation_cache()
        import oracle  # noqa: F401
    except Exception:  # noqa: BLE001 (reported, if it matters, where the oracle is used)
        pass


def session_options(args) -> dict:
    """The ``Session`` options of the command line's ``--memory GIB`` and ``--sandbox`` (either may be
    absent): by default each worker may use ``limits.memory_limit()``, half the machine's memory. When
    a backward pass is graded, JAX is imported while the worker starts."""
    from ..limits import GIB, memory_limit

    gib = getattr(args, "memory", None)
    memory = int(gib * GIB) if gib else memory_limit()
    backward = getattr(args, "backward", None) or getattr(args, "notebook", None)
    return {"memory": memory, "sandbox": bool(getattr(args, "sandbox", False)),
            "prepare": import_jax if backward else None}
