"""Running a Jupyter notebook (.ipynb) as "Run all" would, to grade the functions it defines.

The notebook is read with ``nbformat`` (v4, or v3 converted to v4), and its code cells run top to bottom in
one fresh namespace (``__name__ == "__main__"``, as in Jupyter), with the notebook's folder as the working
directory. IPython lines (``%magic``, ``!shell``, ``x = !cmd``, ``obj?``) are skipped and counted, as are
whole ``%%cell`` magics; matplotlib is on its non-interactive Agg backend with ``plt.show`` a no-op; the
notebook's prints are captured. A cell that raises is recorded (its number, line and error) and the rest
still run, as with "Run all" after the error; each cell has a time limit. The process state is put back
afterwards (see ``usercode.preserved_state``).
"""

from __future__ import annotations

import contextlib
import io
import linecache
import os
import re
import sys
from dataclasses import dataclass

from ..usercode import (
    DEFAULT_TIMEOUT,
    TimeLimitExceeded,
    describe_exception,
    preserved_state,
    run_with_time_limit,
    safe_repr,
    safe_str,
    stdout_to_stderr,
)

# A line IPython would take and Python cannot: a magic, a shell escape (also assigned: ``x = !ls``),
# or a help request (``np.sum?``, ``?np.sum``).
_IPYTHON_LINE = re.compile(
    r"^\s*(%|!|\?)"  # %magic, !shell, ?help
    r"|^\s*[\w.,\s]+=\s*[%!]"  # files = !ls, t = %timeit ...
    r"|^\s*[\w.\[\]()]+\?\??\s*$"  # obj? and obj??
)


# Cell magics whose body is Python that runs (once, or timed, or with its output captured).
PYTHON_CELL_MAGICS = ("time", "timeit", "capture", "prun", "memit", "debug")


@dataclass(frozen=True)
class CellError:
    """A cell that raised: ``cell`` is its 1-based position in the notebook (markdown cells counted, as
    one scrolls), ``line`` the line within the cell, ``source`` that line, ``error`` "TypeName: message"."""

    cell: int
    line: int | None
    source: str
    error: str

    def __str__(self) -> str:
        where = f"cell {self.cell}" + (f", line {self.line}" if self.line else "")
        code = f" ({self.source})" if self.source else ""
        return f"{where}{code}: {self.error}"


@dataclass(frozen=True)
class NotebookRun:
    """What running a notebook gave: its final ``namespace``, the ``errors`` of cells that raised, the IPython
    lines and cell magics skipped, the number of code cells run and everything the notebook printed."""

    path: str
    namespace: dict
    errors: tuple[CellError, ...]
    skipped_lines: int
    skipped_cells: int
    code_cells: int
    output: str

    def summary(self) -> str:
        """One line: cells run, skipped IPython lines, cells that raised."""
        parts = [f"{self.code_cells} code cells run"]
        if self.skipped_lines or self.skipped_cells:
            parts.append(f"{self.skipped_lines} IPython lines and {self.skipped_cells} cell magics skipped")
        if self.errors:
            parts.append(f"{len(self.errors)} raised (first: {self.errors[0]})")
        return f"{os.path.basename(self.path)}: " + "; ".join(parts)


def read_notebook(path):
    """The notebook at ``path`` as an nbformat v4 node; ValueError (one line) when it cannot be read."""
    import nbformat  # only notebooks need it

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"no such notebook {path!r}")
    try:
        with warnings_quiet():
            return nbformat.read(path, as_version=4)
    except Exception as exc:  # noqa: BLE001 (JSON, schema or encoding: all "does not parse")
        raise ValueError(f"{path} is not a readable Jupyter notebook: {describe_exception(exc)}") from None


@contextlib.contextmanager
def warnings_quiet():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def python_source(source: str) -> tuple[str, int, bool]:
    """The cell as Python: ``(source, IPython lines skipped, whole cell skipped)``.

    A cell that compiles as it is runs as it is (a ``%`` line inside a string stays). Otherwise each
    IPython line becomes ``pass`` at its indentation, so that the line numbers stay the cell's own. A cell
    magic that runs its body as Python (``%%time``, ``%%timeit``, ``%%capture``, ...) runs the body once,
    its first line counted as skipped; any other cell magic (``%%bash``, ``%%html``, ...) skips the cell.
    """
    stripped = source.lstrip()
    if stripped.startswith("%%"):
        magic = stripped[2:].split(None, 1)[0] if stripped[2:].strip() else ""
        if magic not in PYTHON_CELL_MAGICS:
            return "", 0, True
        _, _, body = source.partition("\n")
        body, skipped, _ = python_source("pass\n" + body)  # line numbers stay the cell's own
        return body, skipped + 1, False
    try:
        compile(source, "<cell>", "exec")
        return source, 0, False
    except SyntaxError:
        pass
    lines, skipped = [], 0
    for line in source.splitlines():
        if _IPYTHON_LINE.match(line):
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(f"{indent}pass")
            skipped += 1
        else:
            lines.append(line)
    return "\n".join(lines), skipped, False


@contextlib.contextmanager
def _matplotlib_quiet(uses_matplotlib: bool):
    """matplotlib on the Agg backend and ``plt.show`` a no-op while inside (only if the notebook uses it)."""
    if not uses_matplotlib:
        yield
        return
    try:
        import matplotlib

        get = getattr(matplotlib.rcParams, "_get", None)  # the backend as set, without resolving it
        previous_backend = get("backend") if get else None
        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except Exception:  # noqa: BLE001 (not installed, or broken: the notebook's import will say so)
        yield
        return
    show = plt.show
    plt.show = lambda *args, **kwargs: None
    try:
        yield
    finally:
        plt.show = show
        with contextlib.suppress(Exception):
            plt.close("all")
        if isinstance(previous_backend, str) and previous_backend.lower() != "agg":
            with contextlib.suppress(Exception):
                matplotlib.use(previous_backend, force=False)


def run_notebook(path, *, timeout: float | None = DEFAULT_TIMEOUT, on_cell=None, skip=None) -> NotebookRun:
    """Run the code cells of the notebook at ``path`` in one fresh namespace: a ``NotebookRun``.

    ``timeout``: seconds per cell (None: no limit); a cell past it is recorded as an error and the next one
    runs. ValueError when the notebook cannot be read. Only ``KeyboardInterrupt`` gets out. For the worker
    (``worker.py``): ``on_cell(number)`` is called before each cell runs; ``skip``: ``{number: error}`` of
    cells not to run, each recorded with its error (a cell that was stopped from outside).
    """
    path = os.path.abspath(os.fspath(path))
    notebook = read_notebook(path)
    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__, "__file__": path}
    errors, skipped_lines, skipped_cells, code_cells = [], 0, 0, 0
    cells = [(number, cell) for number, cell in enumerate(notebook.cells, 1) if cell.cell_type == "code"]
    sources = [(number, *python_source(safe_str(cell.source))) for number, cell in cells]
    uses_matplotlib = any("matplotlib" in source for _, source, _, _ in sources)
    captured = io.StringIO()
    folder = os.path.dirname(path)
    with preserved_state(), stdout_to_stderr(), _matplotlib_quiet(uses_matplotlib):
        os.chdir(folder)  # as Jupyter: the notebook's folder is the working directory and on the path
        sys.path.insert(0, folder)
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            for number, source, skipped, whole in sources:
                skipped_lines += skipped
                if whole:
                    skipped_cells += 1
                    continue
                code_cells += 1
                if skip and number in skip:
                    errors.append(CellError(number, None, "", skip[number]))
                    continue
                if on_cell is not None:
                    on_cell(number)
                error = _run_cell(path, number, source, namespace, timeout)
                if error is not None:
                    errors.append(error)
    return NotebookRun(path, namespace, tuple(errors), skipped_lines, skipped_cells, code_cells,
                       captured.getvalue())


def _run_cell(path: str, number: int, source: str, namespace: dict, timeout) -> CellError | None:
    filename = f"{os.path.basename(path)}, cell {number}"
    # The traceback's lines (and the grader's "at ...: line") come from linecache: give it the cell.
    lines = [line + "\n" for line in source.splitlines()]
    linecache.cache[filename] = (len(source), None, lines, filename)
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        return CellError(number, exc.lineno, (exc.text or "").strip(), describe_exception(exc))
    try:
        run_with_time_limit(lambda: exec(code, namespace), timeout)  # noqa: S102 (running the notebook is the job)
    except KeyboardInterrupt:
        raise
    except TimeLimitExceeded:
        return CellError(number, None, "", f"did not finish within {timeout:g} s")
    except SystemExit as exc:
        code = "" if exc.code is None else str(exc.code) if isinstance(exc.code, int) else safe_repr(exc.code)
        return CellError(number, None, "", f"called sys.exit({code})")
    except BaseException as exc:  # noqa: BLE001 (a failing cell is recorded; "Run all" goes on)
        line, text = None, ""
        tb = exc.__traceback__
        while tb is not None:  # the innermost frame of this cell
            if tb.tb_frame.f_code.co_filename == filename:
                line = tb.tb_lineno
            tb = tb.tb_next
        if line is not None and 0 < line <= len(lines):
            text = lines[line - 1].strip()
        return CellError(number, line, text, describe_exception(exc))
    return None
