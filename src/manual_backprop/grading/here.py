"""grade_notebook_here: the notebook's own functions graded from its last cell, shown as one report.

In the last cell of notebook 7.2 (Jupyter, JupyterLab, VS Code or Colab)::

    from manual_backprop import grade_notebook_here
    grade_notebook_here()

grades the ``compute_network_output`` (``check_forward``) and the ``backward_pass`` (``check_backward``)
that the notebook defines, and the cell draws one table per function (``NotebookReport._repr_html_``).
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..compare import display
from ..compare.report import SCHEMA_VERSION
from ..usercode import DEFAULT_TIMEOUT
from .backward import check_backward
from .forward import check_forward

# What a notebook defines that can be graded, in the order a pass computes: (name, what it is).
GRADABLE = (("compute_network_output", "forward pass"), ("backward_pass", "backward pass"))


@dataclass(frozen=True, repr=False)
class NotebookReport(display.Displayed):
    """The grade of a notebook's functions: ``sections``, ``((name, what, report), ...)`` for each function
    found (a ``ForwardReport`` or a ``BackwardReport``), and ``missing``, ``((name, what, why), ...)`` for
    each one not graded (not defined, not a function, the package's own). ``ok`` only when every function
    is there and passes; ``str()`` the text report; ``to_dict()`` a JSON-safe document."""

    sections: tuple
    missing: tuple = ()

    @property
    def ok(self) -> bool:
        return not self.missing and all(report.ok for _, _, report in self.sections)

    @property
    def verdict(self) -> str:
        failing = [name for name, _, _ in self.missing] + [n for n, _, r in self.sections if not r.ok]
        passing = [name for name, _, report in self.sections if report.ok]
        if not failing:
            return f"OK: {' and '.join(passing)} {'passes' if len(passing) == 1 else 'pass'}"
        also = f"; {' and '.join(passing)} passes" if passing else ""
        return f"FAIL: {' and '.join(failing)} {'fails' if len(failing) == 1 else 'fail'}{also}"

    def __str__(self) -> str:
        lines: list[str] = []
        for name, what, report in self.sections:
            lines += ([""] if lines else []) + [f"== {name} ({what}) =="]
            lines += [str(report), *(report.summary_lines() if hasattr(report, "summary_lines") else ())]
        for name, what, why in self.missing:
            lines += ([""] if lines else []) + [f"== {name} ({what}) ==", f"FAIL: {name} {why}"]
        return "\n".join([*lines, "", self.verdict])

    def to_dict(self) -> dict:
        """``{"schema_version", "ok", "verdict", "reports": {name: report.to_dict()}, "missing": [{"name",
        "what", "why"}]}``; NaN and infinities as the strings "nan", "inf", "-inf"."""
        return _json_safe({
            "schema_version": SCHEMA_VERSION, "ok": self.ok, "verdict": self.verdict,
            "reports": {name: report.to_dict() for name, _, report in self.sections},
            "missing": [{"name": name, "what": what, "why": why} for name, what, why in self.missing],
        })  # fmt: skip

    def display_table(self) -> display.Table:
        sections = [report.display_table() for _, _, report in self.sections]
        sections += [display.Table(f"{name} ({what})", False, f"FAIL: {name} {why}", f"FAIL: {name} {why}")
                     for name, what, why in self.missing]
        return display.Table("grade_notebook_here: this notebook's functions", self.ok, self.verdict,
                             str(self), sections=tuple(sections))


def _json_safe(value):
    """Plain JSON: dicts, lists, str, int, float (finite), bool, None; NumPy scalars and tuples converted."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _why_not(function) -> str | None:
    """Why ``function`` (a notebook's global, or None) cannot be graded as the notebook's; None: it can."""
    if function is None:
        return "is not defined in this notebook (run the cell that defines it first)"
    if not callable(function):
        return f"is a {type(function).__name__}, not a function"
    if str(getattr(function, "__module__", "") or "").split(".")[0] == "manual_backprop":
        return "is manual_backprop's own reference (imported from the package), not the notebook's"
    return None


def grade_notebook_here(namespace=None, *, activation: str = "relu", loss: str | None = None, batch: int = 1,
                        dtype: npt.DTypeLike = np.float64, seed: int = 0, strict: bool | None = None,
                        timeout: float | None = DEFAULT_TIMEOUT) -> NotebookReport:
    """Grade the functions the calling notebook defines; return one ``NotebookReport`` (drawn as tables).

    ``namespace``: where to look (a dict of globals or a module); None, the default, is the caller's
    globals: in a notebook cell, the notebook's own namespace. There ``compute_network_output`` is graded
    by ``check_forward`` and ``backward_pass`` by ``check_backward`` on the battery, with ``activation``,
    ``batch``, ``dtype``, ``seed``, ``strict`` and ``timeout`` (seconds per call) passed on; each reads the
    notebook's conventions (its loss, list layout, kink) from ``namespace``, sets the globals ``K``, ``D``,
    ``D_i``, ``D_o`` the function reads to each network's and puts them back afterwards. ``loss`` (None:
    the notebook's convention) wins over the one found; ``strict`` (None: the notebook's task decides the
    verdict, the cases beyond it are reported) as ``check_backward``'s. A function missing (or not the
    notebook's own) is a failed section that says so.

    It runs the notebook's code in this process: it trusts the notebook. That suits a student checking
    their own work. A teacher grading others' notebooks should use the isolating graders of the command
    line, ``manual-backprop check --notebook NOTEBOOK.ipynb`` and ``manual-backprop grade``.
    """
    if namespace is None:
        namespace = sys._getframe(1).f_globals
    if isinstance(namespace, types.ModuleType):
        namespace = vars(namespace)
    if not isinstance(namespace, dict):
        raise TypeError(f"namespace must be a dict of globals or a module (None: the caller's globals), got "
                        f"{type(namespace).__name__}")
    common: dict[str, Any] = dict(activation=activation, batch=batch, dtype=dtype, seed=seed, timeout=timeout,
                                  strict=strict, namespace=namespace)
    sections: list[tuple[str, str, Any]] = []
    missing: list[tuple[str, str, str]] = []
    for name, what in GRADABLE:
        function = namespace.get(name)
        why = _why_not(function)
        if why is not None:
            missing.append((name, what, why))
        elif what == "forward pass":
            sections.append((name, what, check_forward(function, **common)))
        else:
            sections.append((name, what, check_backward(function, loss=loss, **common)))  # type: ignore[arg-type]
    return NotebookReport(tuple(sections), tuple(missing))
