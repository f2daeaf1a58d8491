"""Rich display of every report: the HTML table Jupyter and Colab draw, and the text table as its repr.

A report shows itself through one method, ``display_table()``, which returns a ``Table``: plain data (a
title, the verdict, the story lines told first, header lines, columns, rows each with a status and a
folded detail, notes, nested sections). The mixin ``Displayed`` turns it into ``_repr_html_`` (Jupyter,
JupyterLab, VS Code, Colab), ``__repr__`` (the text table, as ``str``) and ``_repr_pretty_`` (IPython's
plain text: the table and its verdict lines). A new report type plugs in by subclassing ``Displayed``
(with ``repr=False`` on its dataclass) and writing ``display_table``.

The HTML is one self-contained fragment: inline styles only (no ``<style>``, no script, no external
asset), every text through ``html.escape``; colours are translucent tints over the page's own background
and the text keeps ``color: inherit``, so it reads in light and dark themes alike. The builders for this
package's reports are at the bottom; they read the reports by attribute, so this module imports none.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from ..tables import fmt

# Status of a row or a verdict -> (tint behind it, edge colour, mark). Translucent: light and dark themes.
STATUS = {
    "ok": ("rgba(46, 160, 67, 0.16)", "rgb(46, 160, 67)", "\u2713"),
    "fail": ("rgba(218, 54, 51, 0.18)", "rgb(218, 54, 51)", "\u2717"),
    "warn": ("rgba(210, 153, 34, 0.22)", "rgb(210, 153, 34)", "!"),
    "heading": ("rgba(128, 128, 128, 0.12)", "rgba(128, 128, 128, 0.5)", ""),
    "": ("transparent", "rgba(128, 128, 128, 0.5)", ""),
}
_RULE = "1px solid rgba(128, 128, 128, 0.35)"
_MONO = "font-family: var(--jp-code-font-family, ui-monospace, SFMono-Regular, Menlo, Consolas, monospace)"
_NUMBER = re.compile(r"^\s*(-|[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?|nan|inf|-inf|[\d-]+|\d+(x\d+)*)\s*$")


@dataclass(frozen=True)
class Row:
    """One row: its cells (strings, one per column), ``status`` ("ok", "fail", "warn", "heading" or "")
    and ``detail``, plain text folded under a "details" toggle in its last cell ("" for none)."""

    cells: tuple
    status: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Table:
    """What a report shows: ``title``; ``ok`` (None: no verdict of its own); ``verdict``, one line;
    ``story``, the lines told first (the diagnosis, the first failing case); ``header``, context lines;
    ``columns`` and ``rows``; ``notes``; ``folded``, (summary, text) pairs shown folded at the end;
    ``sections``, nested tables (a notebook's functions); ``text``, the whole report as plain text."""

    title: str
    ok: bool | None
    verdict: str
    text: str
    story: tuple = ()
    header: tuple = ()
    columns: tuple = ()
    rows: tuple = ()
    notes: tuple = ()
    folded: tuple = ()
    sections: tuple = ()
    status: str = ""  # overrides the verdict's colour ("warn": OK, in part); "" follows ``ok``


class Displayed:
    """The mixin: ``_repr_html_``, ``__repr__`` and ``_repr_pretty_`` from the report's ``display_table``."""

    __slots__ = ()

    def display_table(self) -> Table:
        raise NotImplementedError(f"{type(self).__name__} must define display_table()")

    def _repr_html_(self) -> str:
        return to_html(self.display_table())

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(f"{type(self).__name__}(...)" if cycle else self.display_table().text)


# ----------------------------------------------------------------------------------------------- HTML


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _status(table: Table) -> str:
    if table.status:
        return table.status
    return "" if table.ok is None else ("ok" if table.ok else "fail")


def _banner(text: str, status: str, size: str = "1.05em") -> str:
    tint, edge, mark = STATUS[status]
    mark = f"{mark} " if mark else ""
    return (f'<div style="border-left: 6px solid {edge}; background: {tint}; color: inherit; '
            f'padding: 5px 10px; font-weight: 600; font-size: {size}; margin: 4px 0">{_e(mark + text)}</div>')


def _lines(lines, style: str = "") -> str:
    """One block per line; a line that holds a table of its own (lines after its first) shows it as one."""
    out = []
    for line in lines:
        first, _, rest = str(line).partition("\n")
        out.append(f'<div style="color: inherit; white-space: pre-wrap; {style}">{_e(first)}</div>'
                   + (_pre(rest) if rest else ""))
    return "".join(out)


def _pre(text: str) -> str:
    return (f'<pre style="{_MONO}; font-size: 0.9em; color: inherit; background: rgba(128, 128, 128, 0.08); '
            f'padding: 4px 6px; margin: 2px 0; white-space: pre; overflow-x: auto">{_e(text)}</pre>')


def _folded(summary: str, text: str) -> str:
    return (f'<details style="color: inherit"><summary style="cursor: pointer; opacity: 0.8">{_e(summary)}'
            f"</summary>{_pre(text)}</details>")


def _cell(text: str, tint: str, numeric: bool, tag: str = "td", extra: str = "", span: int = 1,
          wrap: bool = False) -> str:
    align = "right" if numeric else "left"
    colspan = f' colspan="{span}"' if span > 1 else ""
    return (f'<{tag}{colspan} style="text-align: {align}; vertical-align: top; padding: 3px 8px; '
            f'border: none; border-bottom: {_RULE}; background: {tint}; color: inherit; line-height: 1.35; '
            f'white-space: {"normal" if wrap else "nowrap"}; {extra}">{text}</{tag}>')


def _table(columns: tuple, rows: tuple) -> str:
    body = [row for row in rows if row.status != "heading"]
    numeric = [bool(body) and all(_NUMBER.match(str(row.cells[i])) for row in body if i < len(row.cells))
               for i in range(len(columns))]
    details = any(row.detail for row in rows)
    head = "".join(_cell(_e(name), "transparent", numeric[i], "th", "font-weight: 600")
                   for i, name in enumerate(columns))
    if details:
        head += _cell("", "transparent", False, "th")
    out = [f'<table style="border-collapse: collapse; border: none; margin: 4px 0; table-layout: auto; '
           f'color: inherit; font-size: inherit; font-variant-numeric: tabular-nums"><thead><tr>{head}</tr>'
           "</thead><tbody>"]
    for row in rows:
        tint, edge, _ = STATUS.get(row.status, STATUS[""])
        if row.status == "heading":
            heading = _cell(_e(row.cells[0]), tint, False, extra="font-weight: 600; font-style: italic",
                            span=len(columns) + details)
            out.append(f"<tr>{heading}</tr>")
            continue
        cells = [_e(c) for c in row.cells]
        if row.status == "fail":
            cells = [f"<b>{c}</b>" if c == "FAIL" else c for c in cells]
        last = len(cells) - 1  # the widest (a diagnosis): the one column that wraps
        tds = "".join(_cell(c, tint, numeric[i] if i < len(numeric) else False,
                            extra=f"border-left: 4px solid {edge}" if i == 0 else "", wrap=i == last)
                      for i, c in enumerate(cells))
        if details:
            tds += _cell(_folded("details", row.detail) if row.detail else "", tint, False)
        out.append(f"<tr>{tds}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _body(table: Table, nested: bool) -> str:
    parts = []
    if nested:
        parts.append(f'<div style="font-weight: 600; margin-top: 12px; color: inherit">{_e(table.title)}'
                     "</div>")
    parts.append(_banner(table.verdict, _status(table), "1em" if nested else "1.05em"))
    parts.append(_lines(table.story, "font-weight: 500"))
    parts.append(_lines(table.header, "opacity: 0.8; font-size: 0.92em"))
    if table.columns:
        parts.append(f'<div style="overflow-x: auto">{_table(table.columns, table.rows)}</div>')
    parts.append(_lines([f"note: {n}" for n in table.notes], "opacity: 0.85; font-size: 0.92em"))
    parts += [_body(section, True) for section in table.sections]
    parts += [_folded(summary, text) for summary, text in table.folded]
    return "".join(parts)


def to_html(table: Table) -> str:
    """The report as one self-contained HTML fragment (see the module's docstring)."""
    title = f'<div style="font-size: 0.9em; opacity: 0.75; color: inherit">{_e(table.title)}</div>'
    return (f'<div class="manual-backprop-report" style="color: inherit; font-size: 13px; line-height: 1.4; '
            f'max-width: 100%">{title}{_body(table, False)}</div>')


# ------------------------------------------------------------------------------ this package's reports


def _tensor_detail(pairs) -> str:
    """Each compared pair of one tensor, one line: errors, where the worst entry is, the two values."""
    lines = []
    for label, row in pairs:
        if row is None:
            continue
        where = "" if row.worst_index is None else f", worst at ({','.join(map(str, row.worst_index))}): " \
            f"expected {fmt(row.expected_value, 0)}, got {fmt(row.actual_value, 0)}"
        lines.append(f"{label}: {'ok' if row.ok else 'FAIL'}, max abs err {fmt(row.max_abs_error, 0)}, "
                     f"max rel err {fmt(row.max_rel_error, 0)}{where}"
                     + (f"; {row.message}" if row.message else ""))
    return "\n".join(lines)


def comparison_table(report) -> Table:
    """A ``Comparison``: one row per tensor."""
    rows = tuple(Row((r.name, "x".join(map(str, r.shape)), fmt(r.max_abs_error).strip(),
                      fmt(r.max_rel_error).strip(), str(r.excluded), "ok" if r.ok else "FAIL"),
                     "ok" if r.ok else "fail", _tensor_detail([(report.label, r)]))
                 for r in report.rows)
    names = ", ".join(r.name for r in report.failing)
    verdict = f"OK: {report.label}" if report.ok else f"FAIL: {report.label}: {names}"
    header = (f"rtol {report.rtol:.0e}, atol {report.atol:.0e} x scale {report.scale:.2e}",)
    return Table(report.label, report.ok, verdict, str(report), header=header,
                 columns=("tensor", "shape", "max abs err", "max rel err", "excl", "verdict"), rows=rows,
                 notes=tuple(report.notes))


def three_way_table(report) -> Table:
    """A ``ThreeWayReport``: one row per tensor, the pairs it compared folded under it."""
    fd_pairs = report.manual_vs_fd is not None
    columns = ("tensor", "shape", "manual-jax") + (("manual-fd", "jax-fd", "1-sided", "excl") if fd_pairs
                                                   else ()) + ("verdict",)
    rows = []
    for i, mj in enumerate(report.manual_vs_jax.rows):
        pairs = [("manual vs jax", mj)]
        cells = [mj.name, "x".join(map(str, mj.shape)), fmt(mj.max_abs_error).strip()]
        if fd_pairs:
            mf, jf = report.manual_vs_fd.rows[i], report.jax_vs_fd.rows[i]
            pairs += [("manual vs fd", mf), ("jax vs fd", jf)]
            cells += [fmt(mf.max_abs_error).strip(), fmt(jf.max_abs_error).strip(), str(mf.one_sided),
                      str(mf.excluded)]
        ok = all(row.ok for _, row in pairs)
        rows.append(Row((*cells, "ok" if ok else "FAIL"), "ok" if ok else "fail", _tensor_detail(pairs)))
    verdict = report.verdict()
    story = (report.headline(),) if report.net_output is not None else ()
    header = (f"max abs errors per tensor ({report.dtype}, {report.activation}, {report.loss}, "
              f"fd: {report.fd})",)
    notes = [f"{who}: {rep}" for rep, who in ((report.manual_directional, "manual"),
                                               (report.jax_directional, "jax")) if rep is not None]
    if report.kinks_crossed:
        notes.append(f"kinks: {report.kinks_crossed} entries crossed a kink; {report.kinks_one_sided} "
                     f"compared one-sided, {report.kinks_excluded} excluded")
    text = "\n".join([*story, str(report), verdict])
    return Table("three_way_check: manual backprop, jax.grad and finite differences", report.ok, verdict,
                 text, story=story, header=header, columns=columns, rows=tuple(rows),
                 notes=tuple(notes) + tuple(report.notes),
                 folded=(("conventions", "\n".join(report.conventions)),),
                 status="warn" if verdict.startswith("OK, in part") else "")


def _case_detail(case) -> str:
    lines = [case.error] if case.error else []
    lines += [f"{'Omega' if d.kind == 'weights' else 'beta'}_{d.layer}: {d.text}" if d.kind != "function"
              else d.text for d in case.diagnoses]
    if case.comparison is not None:
        lines.append(str(case.comparison))
    if not case.witnesses_agree:
        lines.append("warning: jax and finite differences disagree on this case")
    return "\n".join(lines)


def _grouped(report, row) -> tuple:
    """The cases as rows (``row(case, counted)``); where some are beyond the notebook's task and not
    counted (``report.counted``, not strict), the task's rows under one heading and those under another."""
    counted = tuple(getattr(report, "counted", report.cases))
    beyond = [case for case in report.cases if not any(case is c for c in counted)]
    if not beyond:
        return tuple(row(case, True) for case in counted)
    fine = sum(case.ok for case in beyond)
    task = f"the notebook's task ({sum(c.ok for c in counted)}/{len(counted)} pass)"
    more = f"beyond the notebook ({fine}/{len(beyond)} pass; not counted: strict grading counts them)"
    return (Row((task,), "heading"), *(row(case, True) for case in counted), Row((more,), "heading"),
            *(row(case, False) for case in beyond))


def _status_of(case, counted: bool) -> str:
    """A failing case not counted toward the verdict is a warning, not a failure."""
    if not case.ok:
        return "fail" if counted else "warn"
    return "ok" if getattr(case, "witnesses_agree", True) else "warn"


def backward_table(report) -> Table:
    """A ``BackwardReport``: one row per case (the notebook's task apart from the cases beyond it), the
    diagnosis and the first failing case on top."""
    summary = [line for line in report.summary_lines() if line.strip()]
    verdict = next((line for line in reversed(summary) if line.startswith(("OK", "FAIL"))), summary[-1])
    story = tuple(line for line in summary if line is not verdict)

    def row(c, counted):
        detail = _case_detail(c) + "".join(f"\nnote: {note}" for note in getattr(c, "notes", ()))
        return Row((c.name, "-".join(map(str, c.sizes)), "ok" if c.ok else "FAIL",
                    "-" if c.first_wrong_layer is None else str(c.first_wrong_layer),
                    "" if c.ok else c.summary),
                   _status_of(c, counted), detail.strip())

    header = (str(report).splitlines()[0].partition(": ")[2], *filter(None, [report.loss_source]),
              *getattr(report, "context", ()))
    notes = tuple(report.notes)
    if not all(c.witnesses_agree for c in report.cases):
        notes = ("jax and finite differences disagree on some case: the grade may be unreliable", *notes)
    text = "\n".join([str(report), *report.summary_lines()])
    return Table(f"{report.function}: the backward pass against jax.grad", report.ok, verdict, text,
                 story=story, header=header,
                 columns=("case", "sizes", "verdict", "first wrong layer", "diagnosis"),
                 rows=_grouped(report, row),
                 notes=notes, folded=(("conventions", "\n".join(report.conventions)),))


def forward_table(report, conventions: dict) -> Table:
    """A ``ForwardReport``: one row per case, the first wrong quantity and its diagnosis."""

    def row(c, counted):
        detail = [f"error ({c.error_kind}): {c.error}"] if c.error else []
        if c.first_wrong is not None:
            detail.append(f"first wrong quantity: {c.first_wrong} (layer {c.layer})"
                          + (f", max abs err {fmt(c.max_error, 0)}" if c.max_error is not None else ""))
        if c.convention:
            detail.append(f"lists: {conventions.get(c.convention, c.convention)}")
        return Row((c.name, "-".join(map(str, c.sizes)), "ok" if c.ok else "FAIL", c.first_wrong or "-",
                    "" if c.ok else (c.diagnosis or c.error or "failed")), _status_of(c, counted),
                   "\n".join(detail))

    header = (str(report).splitlines()[0].partition(": ")[2],)
    verdict, story = report.verdict, ()  # type: tuple[str, tuple[str, ...]]
    if not report.ok:  # the verdict names the first failing case: told apart, on its own line
        first = report.failing[0]
        verdict = verdict.partition("; first: ")[0]
        story = (f"first failing case: {first.name}: {first.summary}",)
    return Table(f"{report.function}: the forward pass", report.ok, verdict, str(report), story=story,
                 header=header, columns=("case", "sizes", "verdict", "first wrong", "diagnosis"),
                 rows=_grouped(report, row), notes=tuple(report.notes))


def derivative_table(report, description: str) -> Table:
    """A ``DerivativeReport``: one row per tensor, the three pairs."""
    rows = tuple(Row((r.name, "x".join(map(str, r.shape)), fmt(r.manual_jax).strip(),
                      fmt(r.manual_fd).strip(), fmt(r.jax_fd).strip(), str(r.one_sided), str(r.excluded),
                      "ok" if r.ok else "FAIL"),
                     "ok" if r.ok else "fail",
                     "\n".join(filter(None, [f"compared {r.compared} entries", r.message])))
                 for r in report.rows)
    header = (f"{report.derivative}: {description}; network {'-'.join(map(str, report.sizes))}, batch "
              f"{report.batch}", f"max abs errors per tensor ({report.dtype}, {report.activation}, "
              f"{report.loss}, fd: central, kink rule)")
    return Table(f"check_derivative: {report.derivative}", report.ok, report.verdict, str(report),
                 header=header, columns=("tensor", "shape", "manual-jax", "manual-fd", "jax-fd", "1-sided",
                                         "excl", "verdict"),
                 rows=rows, notes=tuple(report.notes),
                 status="warn" if report.ok and report.inconclusive else "")


def gradient_table(report) -> Table:
    """A ``GradientReport`` (any user's gradient or VJP): one row per leaf, its diagnosis folded under it."""
    said = dict(report.diagnoses)
    rows = tuple(Row((r.name, "x".join(map(str, r.shape)) or "()", fmt(r.max_abs_error).strip(),
                      fmt(r.max_rel_error).strip(), str(r.excluded), "ok" if r.ok else "FAIL"),
                     "ok" if r.ok else "fail",
                     "\n".join(filter(None, [said.get(r.name, ""), _tensor_detail([(report.reference, r)])])))
                 for r in report.rows)
    failing = ", ".join(report.failing)
    verdict = (f"OK: every leaf agrees with {report.reference}" if report.ok
               else f"FAIL: {failing} {'disagrees' if len(report.failing) == 1 else 'disagree'} with "
                    f"{report.reference}")
    story = tuple(f"diagnosis: {text}" for _, text in report.diagnoses)
    return Table(report.title(), report.ok, verdict, str(report), story=story,
                 header=(f"witnesses: {', '.join(report.witnesses)}",),
                 columns=("leaf", "shape", "max abs err", "max rel err", "excl", "verdict"), rows=rows,
                 notes=tuple(report.warnings) + tuple(report.notes))
