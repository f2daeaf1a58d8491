"""Loading the function to grade from ``FILE.py:NAME``, ``package.module:NAME`` or ``NOTEBOOK.ipynb:NAME``.

A file is imported as ``python file.py`` would see it (its folder and the current folder on the import
path while it loads); a module is imported by name; a notebook is run cell by cell (``notebook.py``). The
user's code runs with the guards of ``usercode`` (a time limit, stdout to stderr, process state put back).
Every failure is a ``LoadError`` (a ``ValueError``) with one line naming the option and what to fix.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
from dataclasses import dataclass

from ..usercode import (
    DEFAULT_TIMEOUT,
    TimeLimitExceeded,
    describe_exception,
    preserved_state,
    run_with_time_limit,
    stdout_to_stderr,
)
from .notebook import NotebookRun, run_notebook

BACKWARD_ARGUMENTS = ("all_weights", "all_biases", "all_f", "all_h", "y")
FORWARD_ARGUMENTS = ("net_input", "all_weights", "all_biases")
_COUNTS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


class LoadError(ValueError):
    """The file, module, notebook, name or signature given cannot be graded: one line, exit 2."""


@dataclass(frozen=True)
class Loaded:
    """The function to grade and where it came from: ``kind`` is "file", "module" or "notebook";
    ``namespace`` the module's (or notebook's) globals, where the loss convention is looked for;
    ``notebook`` the ``NotebookRun`` for a notebook (its cell errors and captured output), else None."""

    function: object
    name: str
    target: str
    kind: str
    namespace: dict
    notebook: NotebookRun | None = None


def is_path(target: str) -> bool:
    return target.endswith((".py", ".ipynb")) or os.sep in target or os.path.exists(target)


def _import(target: str, option: str, timeout):
    """The module of a file or a name, imported under the guards; LoadError when it fails."""
    # As `python file.py` and `python -m module` would: the file's folder (for its own imports) and the
    # current folder (for MODULE:NAME) come first on the import path while it loads.
    folders = [os.getcwd()]
    is_file = is_path(target)
    if is_file:
        folders.insert(0, os.path.dirname(os.path.abspath(target)))
    what = f"{target}" if is_file else f"module {target!r}"
    with preserved_state(), stdout_to_stderr():
        for folder in reversed(folders):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        try:
            if is_file:
                module_spec = importlib.util.spec_from_file_location(f"_graded_{abs(hash(target))}", target)
                module = importlib.util.module_from_spec(module_spec)
                run_with_time_limit(lambda: module_spec.loader.exec_module(module), timeout)
                return module
            return run_with_time_limit(lambda: importlib.import_module(target), timeout)
        except KeyboardInterrupt:
            raise
        except TimeLimitExceeded:
            raise LoadError(
                f"{option}: {what} failed to import: did not finish within {timeout:g} s"
            ) from None
        except SystemExit as exc:
            raise LoadError(f"{option}: {what} failed to import: it called sys.exit({exc.code!r})") from None
        except BaseException as exc:  # noqa: BLE001 (the user's file: any failure is a usage error, not our crash)
            raise LoadError(f"{option}: {what} failed to import: {describe_exception(exc)}") from exc


def parse_spec(spec, option: str = "--backward") -> tuple[str, str]:
    """``(target, name)`` of ``FILE.py:NAME``, ``MODULE:NAME`` or ``NOTEBOOK.ipynb:NAME``; LoadError when it
    is not of that form or names a file that does not exist. Runs nothing."""
    if not isinstance(spec, str):
        raise LoadError(f"{option}: expected FILE.py:NAME, MODULE:NAME or NOTEBOOK.ipynb:NAME, got {spec!r}")
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise LoadError(f"{option} {spec!r}: expected FILE.py:NAME or MODULE:NAME (or NOTEBOOK.ipynb:NAME)")
    if is_path(target) and not os.path.isfile(target):
        raise LoadError(f"{option}: no such file {target!r}")
    return target, name


def load(spec: str, *, option: str = "--backward", arguments: tuple[str, ...] = BACKWARD_ARGUMENTS,
         timeout: float | None = DEFAULT_TIMEOUT, **run_options) -> Loaded:
    """Load ``FILE.py:NAME``, ``MODULE:NAME`` or ``NOTEBOOK.ipynb:NAME``; LoadError naming ``option``.

    The function must take the positional ``arguments`` (the notebook's five of ``backward_pass`` by
    default; ``FORWARD_ARGUMENTS`` for ``compute_network_output``). ``timeout``: seconds for importing the
    file (or per notebook cell); ``run_options``: passed to ``run_notebook`` for a notebook.
    """
    target, name = parse_spec(spec, option)
    notebook = None
    if target.endswith(".ipynb"):
        kind = "notebook"
        try:
            notebook = run_notebook(target, timeout=timeout, **run_options)
        except ValueError as exc:
            raise LoadError(f"{option}: {exc}") from None
        namespace = notebook.namespace
    else:
        kind = "file" if is_path(target) else "module"
        namespace = vars(_import(target, option, timeout))
    function = namespace.get(name)
    if function is None:
        if notebook is not None:
            raised = f" (a cell raised: {notebook.errors[0]})" if notebook.errors else ""
            raise LoadError(f"{option}: {target} never defines {name!r}{raised}")
        raise LoadError(f"{option}: {target} has no {name!r}")
    if not callable(function):
        raise LoadError(f"{option}: {target}:{name} is a {type(function).__name__}, not a function")
    _check_signature(function, name, option, arguments)
    return Loaded(function, name, target, kind, namespace, notebook)


def load_notebook(path, names=("compute_network_output", "backward_pass"), *, option: str = "--notebook",
                  timeout: float | None = DEFAULT_TIMEOUT, **run_options) -> dict:
    """Run the notebook at ``path`` once and load each of ``names`` it defines: ``{name: Loaded}`` (the
    names it does not define are left out; LoadError when it defines none of them or does not parse).
    ``run_options``: passed to ``run_notebook`` (``on_cell``, ``skip``)."""
    try:
        notebook = run_notebook(path, timeout=timeout, **run_options)
    except ValueError as exc:
        raise LoadError(f"{option}: {exc}") from None
    found = {}
    for name in names:
        function = notebook.namespace.get(name)
        if function is None:
            continue
        if not callable(function):
            raise LoadError(f"{option}: {path}:{name} is a {type(function).__name__}, not a function")
        arguments = FORWARD_ARGUMENTS if name == "compute_network_output" else BACKWARD_ARGUMENTS
        _check_signature(function, name, option, arguments)
        found[name] = Loaded(function, name, str(path), "notebook", notebook.namespace, notebook)
    if not found:
        raised = f" (a cell raised: {notebook.errors[0]})" if notebook.errors else ""
        raise LoadError(f"{option}: {path} defines none of {', '.join(names)}{raised}")
    return found


def load_function(spec: str, *, option: str = "--backward", arguments: tuple[str, ...] = BACKWARD_ARGUMENTS,
                  timeout: float | None = DEFAULT_TIMEOUT):
    """``path/to/file.py:name``, ``package.module:name`` or ``notebook.ipynb:name`` -> the function."""
    return load(spec, option=option, arguments=arguments, timeout=timeout).function


def _check_signature(function, name: str, option: str, arguments: tuple[str, ...]) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # no signature to inspect (a builtin): let the call decide
    except Exception:  # noqa: BLE001 (a user object whose __signature__ raises): let the call decide
        return
    try:
        signature.bind(*([None] * len(arguments)))
    except TypeError:
        count = _COUNTS.get(len(arguments), str(len(arguments)))
        shown = name
        with contextlib.suppress(Exception):
            shown = f"{name}{signature}"
        raise LoadError(
            f"{option}: {shown} does not take the notebook's {count} arguments ({', '.join(arguments)})"
        ) from None


def module_folder(name: str) -> str | None:
    """The folder from which this process would import the top-level package or module of ``name``
    (``MODULE:NAME``), found on the import path without running any of it; None when it is not found or
    is installed (the worker's own environment has it), so that the current folder is copied instead."""
    from importlib.machinery import PathFinder

    try:
        spec = PathFinder.find_spec(name.partition(".")[0], sys.path)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    where = (spec.submodule_search_locations or [None])[0] if spec.origin in (None, "namespace") else \
        spec.origin  # fmt: skip
    if not where:
        return None
    # a package's __init__.py: the folder above the package's; a module's file, or a namespace package's
    # folder: the folder holding it
    folder = os.path.dirname(os.path.dirname(where) if os.path.basename(where) == "__init__.py" else where)
    installed = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    real = os.path.realpath(folder)
    return None if any(real == p or real.startswith(p + os.sep) for p in installed) else folder
