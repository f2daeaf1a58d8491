"""The worker: a child process that loads one submission and runs its functions for the grading parent.

Started by ``worker_process`` (``python -I``, a scrubbed environment, its own session, the copy of the
submission's folder as its working directory) with its socket to the parent on a file descriptor. It sets
its own limits (``RLIMIT_AS``, no core files), then serves messages (``wire``: JSON and ``.npy``, never a
pickle):

- ``load`` / ``load_notebook``: loads the file, module or notebook with ``loading``'s loaders (a ``cell``
  event before each notebook cell, so that the parent can time every cell), and answers with the
  functions and plain values the submission defines, or the ``LoadError``'s line;
- ``call``: calls one of them through ``usercode.call_user`` (its guards: a time limit, stdout to stderr,
  the network globals it reads) and answers with the result, the arguments as they are after the call (so
  that the parent sees changes made in place) or the error;
- ``exit``.

Nothing here decides a grade: the parent grades what comes back, and trusts none of it.
"""

from __future__ import annotations

import dis
import hashlib
import inspect
import os
import resource
import socket
import sys
import types

import numpy as np

from ..user_globals import globals_read
from ..usercode import call_user, describe_exception
from . import wire
from .loading import LoadError, load, load_notebook

_VALUE_BYTES = 64 * 2**20  # the notebook's plain values sent with its functions, at most
FRAMEWORKS = ("jax", "torch", "autograd")  # automatic differentiation: not backprop by hand


def _set_limits(memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def _codes(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def frameworks(function, read) -> list[str]:
    """Which of jax, torch and autograd ``function`` uses: a global it (or a helper of its module) reads
    that comes from one, or an ``import`` in its code."""
    module_globals = getattr(function, "__globals__", None) or {}
    found = set()
    for name in read:
        value = module_globals.get(name)
        origin = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", "")
        found.add(str(origin).split(".")[0])
        if isinstance(value, types.FunctionType) and value.__globals__ is module_globals:
            found.update(i.argval.split(".")[0] for c in _codes(value.__code__)
                         for i in dis.get_instructions(c) if i.opname == "IMPORT_NAME")
    code = getattr(function, "__code__", None)
    if isinstance(code, types.CodeType):
        found.update(i.argval.split(".")[0] for c in _codes(code) for i in dis.get_instructions(c)
                     if i.opname == "IMPORT_NAME")
    return sorted(found & set(FRAMEWORKS))


def _function_entry(name: str, function) -> dict:
    qualname = getattr(function, "__qualname__", None)
    try:
        read = sorted(globals_read(function))
        used = frameworks(function, read)
    except Exception:  # noqa: BLE001 (a callable whose code cannot be read: it reads none we know of)
        read, used = [], []
    return {"kind": "function", "name": name, "qualname": qualname if isinstance(qualname, str) else name,
            "globals": read, "frameworks": used, "source": _source(function)}


def _source(function) -> list | None:
    """``[lines, first line number, file name]`` of the function's source (for the chain's likely line)."""
    try:
        lines, start = inspect.getsourcelines(function)
        filename = os.path.basename(function.__code__.co_filename)
    except Exception:  # noqa: BLE001 (a builtin, a lambda typed at a prompt, a user object)
        return None
    return [lines, start, filename] if sum(map(len, lines)) < 200_000 else None


def describe_namespace(namespace: dict, arrays: list) -> dict:
    """``{name: entry}``: each function (``kind`` "function", with the globals it reads) and each plain
    value (``kind`` "value": numbers, strings, arrays and lists of them) the submission defines."""
    entries: dict = {}
    for name, value in list(namespace.items()):
        if not isinstance(name, str) or (name.startswith("__") and name not in ("__file__", "__name__")):
            continue
        if isinstance(value, (type, types.ModuleType)):
            continue
        if callable(value):
            entries[name] = _function_entry(name, value)
            continue
        if not isinstance(value, (bool, int, float, str, list, tuple, np.ndarray, np.generic)):
            continue
        mark = len(arrays)
        node = wire.encode(value, arrays)
        if node["t"] == "object" or sum(a.nbytes for a in arrays) > _VALUE_BYTES:
            del arrays[mark:]
            continue
        entries[name] = {"kind": "value", "value": node}
    return entries


def _notebook_entry(run) -> dict | None:
    if run is None:
        return None
    return {"errors": [[e.cell, e.line, e.source, e.error] for e in run.errors],
            "skipped_lines": run.skipped_lines, "skipped_cells": run.skipped_cells,
            "code_cells": run.code_cells, "output": run.output[: wire.MAX_TEXT * 10]}


class Worker:
    """The loaded submission: its callables by name, served over ``sock``."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.functions: dict = {}

    def _cell(self, number: int) -> None:
        wire.send(self.sock, {"event": "cell", "number": number})

    def load(self, header: dict) -> None:
        options = dict(timeout=header.get("timeout"), on_cell=self._cell,
                       skip={int(k): v for k, v in (header.get("skip") or {}).items()})
        arrays: list = []
        wire.send(self.sock, {"event": "started"})
        try:
            if header["op"] == "load_notebook":
                found = load_notebook(header["path"], tuple(header["names"]), option=header["option"],
                                      **options)
                loaded = next(iter(found.values()))
                names = list(found)
            else:
                loaded = load(header["spec"], option=header["option"], arguments=tuple(header["arguments"]),
                              **options)
                names = [loaded.name]
        except LoadError as exc:
            wire.send(self.sock, {"ok": False, "error": str(exc)})
            return
        self.functions = {name: value for name, value in loaded.namespace.items()
                          if isinstance(name, str) and callable(value)}
        self.functions.update({name: loaded.namespace[name] for name in names})
        namespace = describe_namespace(loaded.namespace, arrays)
        for name in names:
            namespace[name] = _function_entry(name, loaded.namespace[name])
        wire.send(self.sock, {"ok": True, "names": names, "kind": loaded.kind, "namespace": namespace,
                              "notebook": _notebook_entry(loaded.notebook)}, arrays)

    def call(self, header: dict, arrays: list) -> None:
        function = self.functions.get(header.get("name"))
        if function is None:
            wire.send(self.sock, {"status": "crash", "error": f"no function {header.get('name')!r}"})
            return
        args = [wire.decode(node, arrays) for node in header["args"]]
        before = [_digest(array) for array in arrays]
        result = call_user(function, tuple(args), timeout=header.get("timeout"),
                           globals_to_set=header.get("globals"))
        out: list = []
        value = _safe_encode(result.value, out) if result.ok else {"t": "none"}
        refs = {id(array): index for index, array in enumerate(arrays)}
        # Only the arguments the call changed in place travel back ("none": unchanged).
        after = [_safe_encode(array, out) if _digest(array) != digest else {"t": "none"}
                 for array, digest in zip(arrays, before, strict=True)]
        structure = [_safe_encode(arg, out, refs) for arg in args]
        wire.send(self.sock, {"status": result.status, "error": result.error, "error_type": result.error_type,
                              "message": result.message, "user_line": result.user_line,
                              "globals_set": list(result.globals_set), "value": value,
                              "arrays_after": after, "args_after": structure}, out)


def _digest(array: np.ndarray) -> bytes:
    """What identifies an array's contents, to tell whether a call changed it in place."""
    digest = hashlib.blake2b(f"{array.dtype.str}{array.shape}".encode(), digest_size=16)
    digest.update(np.ascontiguousarray(array).view(np.uint8).reshape(-1) if array.size else b"")
    return digest.digest()


def _safe_encode(value, out: list, refs=None) -> dict:
    mark = len(out)
    try:
        return wire.encode(value, out, refs)
    except BaseException as exc:  # noqa: BLE001 (a user object's __iter__ or __len__ raised)
        del out[mark:]
        return {"t": "object", "type": type(value).__name__, "repr": "?",
                "why": f"reading it raised {describe_exception(exc)}"}


def serve(sock: socket.socket) -> None:
    """Answer the parent's messages until ``exit`` or a closed connection."""
    worker = Worker(sock)
    while True:
        try:
            header, arrays = wire.receive(sock)
        except wire.WireError:
            return
        op = header.get("op")
        if op in ("load", "load_notebook"):
            worker.load(header)
        elif op == "call":
            worker.call(header, arrays)
        else:
            return


def _die_with_parent(parent: int) -> None:
    """SIGKILL for us when the grading process ends, however it ends (Linux ``PR_SET_PDEATHSIG``)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:  # noqa: BLE001 (not Linux: the parent's stop() is the only way out)
        return
    if parent and os.getppid() != parent:  # it ended before we asked
        os._exit(1)


def main(argv: list[str] | None = None) -> None:
    """``worker FD MEMORY PARENT``: serve on the socket at descriptor ``FD`` with ``RLIMIT_AS`` = ``MEMORY``
    bytes (0: none), and die with the process ``PARENT`` (0: with whichever parent we have)."""
    fd, memory, parent = (int(a) for a in (argv or sys.argv[1:])[:3])
    _die_with_parent(parent)
    _set_limits(memory)
    sock = socket.socket(fileno=fd)
    try:
        serve(sock)
    finally:
        sys.stdout.flush()
        os._exit(0)  # no atexit or thread of the submission's runs after the parent is done with us
