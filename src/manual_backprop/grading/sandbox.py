"""``--sandbox``: the worker under bubblewrap (``bwrap``): files read-only or absent, no network, own PIDs.

Inside the sandbox the worker sees the system's libraries and the Python environment read-only, its own
temporary folder (the copy of the submission's folder, its ``HOME`` and ``TMPDIR``) writable, fresh
``/proc``, ``/dev`` and ``/tmp``, and nothing else: not the teacher's home, the other submissions or the
answer key. It has no network (``--unshare-net``), its own PID namespace (so every process it starts dies
with it) and dies with the grading process (``--die-with-parent``). Linux only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

INSTALL = ("--sandbox needs bubblewrap (bwrap), which is not installed: sudo apt-get install bubblewrap "
           "(Debian, Ubuntu), sudo dnf install bubblewrap (Fedora)")
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc/ld.so.cache", "/etc/ld.so.conf",
           "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime", "/etc/passwd", "/etc/group")
_usable: dict[str, str | None] = {}


class SandboxUnavailable(ValueError):
    """bwrap is missing or cannot create namespaces here: one line, exit 2."""


def require_bwrap() -> str:
    """The path of a bwrap that works here; ``SandboxUnavailable`` saying how to get one otherwise."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(INSTALL)
    if bwrap not in _usable:
        try:
            probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent",
                                    "true"], capture_output=True, text=True, timeout=30)
            failure = None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["failed"])[-1]
        except (OSError, subprocess.TimeoutExpired) as exc:
            failure = str(exc)
        _usable[bwrap] = failure
    if _usable[bwrap] is not None:
        raise SandboxUnavailable(f"--sandbox: bubblewrap cannot create its namespaces here "
                                 f"({_usable[bwrap]}); grade inside a container instead")
    return bwrap


def python_paths() -> list[str]:
    """The folders the worker's Python needs, read-only: the interpreter, the environment, our package."""
    from .worker_process import PACKAGE_ROOT

    here = os.path.realpath(os.getcwd())
    found = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(sys.executable), PACKAGE_ROOT]
    found += [p for p in sys.path if p and os.path.isdir(p) and os.path.realpath(p) != here]
    paths = sorted({os.path.abspath(p) for p in found} | {os.path.realpath(p) for p in found})
    kept: list[str] = []
    for path in paths:  # a folder inside one already kept is already visible
        if path != "/" and not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


def wrap_command(command: list[str], *, work: str, folder: str, submission_root: str) -> list[str]:
    """``command`` run under bwrap, seeing only the system, the Python environment and ``folder`` (the
    worker's temporary folder, writable, ``work`` its working directory). ``submission_root``, the
    submission's own folder, stays hidden: the worker has its copy."""
    wrapped = [require_bwrap(), "--die-with-parent", "--new-session", "--unshare-all", "--proc", "/proc",
               "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in _SYSTEM:
        if os.path.islink(path):
            wrapped += ["--symlink", os.readlink(path), path]
        else:
            wrapped += ["--ro-bind-try", path, path]
    for path in python_paths():
        wrapped += ["--ro-bind-try", path, path]
    wrapped += ["--bind", folder, folder, "--remount-ro", "/", "--chdir", work, "--"]
    return wrapped + command
