"""The command line's grading commands (``--backward``, ``--forward``, ``--notebook``): load, grade, print.

Each graded function is one section: its report's table and verdict lines. The loss a backward pass is
graded against is ``--loss`` when given, else the convention found in the user's code (its
``least_squares_loss`` / ``d_loss_d_output``), else ``least_squares``. Returns the exit code: 0 when every
section passes, 1 when one fails; loading errors are ``LoadError`` (a ``ValueError``: exit 2, one line).
"""

from __future__ import annotations

import argparse
import json
from typing import TextIO

import numpy as np

from ..compare.report import SCHEMA_VERSION
from ..grading.battery import BATTERY
from ..grading.isolation import Session, session_options
from ..grading.jax_cache import use_compilation_cache
from ..grading.loading import FORWARD_ARGUMENTS, Loaded
from ..limits import GIB, memory_estimate, memory_limit
from ..usercode import DEFAULT_TIMEOUT

SECTIONS = {"compute_network_output": "forward pass", "backward_pass": "backward pass"}


def _grade(args: argparse.Namespace, loaded: Loaded, role: str):
    """The report of one loaded function; ``role``: "forward" (check_forward) or "backward".

    The function's namespace is its context (``context``): the loss convention found there unless
    ``--loss`` is given, the list layout its ``compute_network_output`` makes, its ``indicator_function``.
    A notebook is graded on its task unless ``--strict``; a file or module on every case."""
    strict = bool(args.strict) or loaded.kind != "notebook"
    common = dict(activation=args.activation, batch=args.batch, dtype=np.dtype(args.dtype), seed=args.seed,
                  timeout=args.timeout, strict=strict)  # fmt: skip
    if role == "forward":
        from ..grading.forward import check_forward

        return check_forward(loaded.function, **common, namespace=loaded.namespace)
    from ..grading.backward import check_backward

    return check_backward(loaded.function, loss=args.loss, namespace=loaded.namespace, hints="cli",
                          output_activation=args.output_activation, reduction=args.reduction, l2=args.l2,
                          **common)  # fmt: skip


def _notebook_lines(notebook, verbose: bool) -> list[str]:
    """The notebook's run: with ``verbose`` its summary and captured output; cells that raised always."""
    if notebook is None:
        return []
    lines = []
    if verbose:
        lines.append(notebook.summary())
        if notebook.output.strip():
            lines += ["--- the notebook's output ---", notebook.output.rstrip("\n"), "--- end of output ---"]
    elif notebook.errors:
        lines += [f"note: a cell raised: {error}" for error in notebook.errors]
        lines.append("note: the cells after each of those ran (--verbose shows the notebook's output)")
    return lines


def _report_lines(report) -> list[str]:
    if hasattr(report, "summary_lines"):  # a BackwardReport: its table, then where and what
        return [str(report), *report.summary_lines()]
    return [str(report)]  # a ForwardReport: its table ends with the verdict


def _notebook_document(notebook) -> dict | None:
    if notebook is None:
        return None
    return {"path": notebook.path, "errors": [str(error) for error in notebook.errors],
            "code_cells": notebook.code_cells, "skipped_lines": notebook.skipped_lines,
            "skipped_cells": notebook.skipped_cells, "output": notebook.output}  # fmt: skip


def _check_batch(batch: int) -> None:
    """Refuse, before loading anything, a --batch whose battery would not fit in memory (see ``limits``)."""
    largest = max((sizes for _, sizes, _ in BATTERY if isinstance(sizes, tuple)), key=sum)
    estimate, limit = memory_estimate(largest, batch).total, memory_limit()
    if limit is not None and estimate > limit:
        raise ValueError(f"--batch {batch}: grading on the battery would need about "
                         f"{estimate / GIB:,.1f} GiB (its largest network, {'-'.join(map(str, largest))}, "
                         f"on {batch} columns), over the limit of {limit / GIB:,.1f} GiB; use a smaller "
                         "--batch")


def run_grading(args: argparse.Namespace, out: TextIO) -> int:
    """Grade what ``--backward``, ``--forward`` and ``--notebook`` name; print the sections; the exit code.
    The graded code runs in worker processes (``isolation``), never in this one."""
    args.timeout = DEFAULT_TIMEOUT if args.timeout is None else args.timeout
    _check_batch(args.batch)
    with Session(**session_options(args)) as session:
        return _grade_all(args, out, session)


def _grade_all(args: argparse.Namespace, out: TextIO, session: Session) -> int:
    sections: list[tuple[str, Loaded]] = []  # (role, loaded) in the order a pass computes: forward first
    missing: list[str] = []  # gradable functions the notebook does not define (a cell that raised?)
    if args.notebook:
        found = session.load_notebook(args.notebook, tuple(SECTIONS), timeout=args.timeout)
        for name, role in (("compute_network_output", "forward"), ("backward_pass", "backward")):
            if name in found:
                sections.append((role, found[name]))
            else:
                missing.append(name)
    if args.forward:
        sections.append(("forward", session.load(args.forward, option="--forward",
                                                 arguments=FORWARD_ARGUMENTS, timeout=args.timeout)))
    if args.backward:
        sections.append(("backward", session.load(args.backward, timeout=args.timeout)))
    use_compilation_cache()  # after loading: a file that fails to load is told at once, without JAX
    reports = [(role, loaded, _grade(args, loaded, role)) for role, loaded in sections]
    ok = all(report.ok for _, _, report in reports) and not missing
    if args.json:
        _print_json(args, reports, ok, out, missing)
    else:
        _print_text(args, reports, ok, out, missing)
    return 0 if ok else 1


def _print_json(args, reports, ok: bool, out, missing: list[str]) -> None:
    document: dict = {"schema_version": SCHEMA_VERSION, "command": "check"}
    if len(reports) == 1 and not args.notebook:
        role, loaded, report = reports[0]
        document.update({role: getattr(args, role), "report": report.to_dict()})
    else:
        document["notebook" if args.notebook else "graded"] = args.notebook or [
            getattr(args, role) for role, _, _ in reports
        ]
        document["reports"] = {loaded.name: report.to_dict() for _, loaded, report in reports}
    notebooks = {id(loaded.notebook): loaded.notebook for _, loaded, _ in reports if loaded.notebook}
    if notebooks:
        document["notebook_run"] = _notebook_document(next(iter(notebooks.values())))
    if args.notebook:
        document["missing"] = missing
    document["ok"] = ok
    print(json.dumps(document), file=out)


def _print_text(args, reports, ok: bool, out, missing: list[str]) -> None:
    shown = set()
    lines: list[str] = []
    for _, loaded, _ in reports:
        if loaded.notebook is not None and id(loaded.notebook) not in shown:
            shown.add(id(loaded.notebook))
            lines += _notebook_lines(loaded.notebook, args.verbose)
    several = len(reports) + len(missing) > 1
    for index, (role, loaded, report) in enumerate(reports):
        if several:
            lines += ([""] if index or lines else []) + [f"== {loaded.name} ({role} pass) =="]
        lines += _report_lines(report)
    for name in missing:
        raised = " (a cell that raised, noted above, may have been meant to define it)" if any(
            loaded.notebook is not None and loaded.notebook.errors for _, loaded, _ in reports) else ""
        lines += ["", f"== {name} ({SECTIONS[name]}) ==",
                  f"FAIL: the notebook does not define {name}{raised}"]
    if several:
        failing = missing + [loaded.name for _, loaded, report in reports if not report.ok]
        passing = [loaded.name for _, loaded, report in reports if report.ok]
        if failing:
            also = f"; {' and '.join(passing)} passes" if passing else ""
            lines += ["", f"FAIL: {' and '.join(failing)} {'fails' if len(failing) == 1 else 'fail'}{also}"]
        else:
            lines += ["", f"OK: {' and '.join(passing)} pass"]
    print("\n".join(lines), file=out)
