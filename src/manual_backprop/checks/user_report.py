"""The report of any user's gradient or VJP: one row per leaf, the witnesses that ran, warnings, diagnoses.

``GradientReport`` is frozen data; ``str()`` is its table (one row per leaf, like the three-way table:
shape, errors, worst entry and both values, verdict) with the witnesses named in the title; ``to_dict()``
survives ``json.dumps(..., allow_nan=False)`` and carries ``schema_version`` and ``"witnesses"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..compare import display
from ..compare.report import SCHEMA_VERSION
from ..tables import fmt, json_number, render_table


@dataclass(frozen=True, repr=False)
class GradientReport(display.Displayed):
    """A user's gradient (``kind`` "gradient") or VJP ("vjp") checked leaf by leaf.

    ``rows``: ``compare.TensorComparison`` per leaf, named by path (``row.name``: ``W1``, ``[1]``,
    ``layers[0].W``), in the parameters' order; ``witnesses``: what computed a reference ("finite
    differences", "jax"); ``reference``: the one the rows compare with (jax when it ran); ``fd``: how the
    finite differences ran ("coordinates" or "directional"); ``diagnoses``: (leaf, sentence) pairs;
    ``warnings``: disagreements between the witnesses, by leaf; ``notes``: what was assumed or switched.
    """

    kind: str
    rows: tuple
    witnesses: tuple
    reference: str
    fd: str
    loss: float
    parameters: int
    dtypes: tuple
    rtol: float
    atol: float
    diagnoses: tuple = field(default=())
    warnings: tuple = field(default=())
    notes: tuple = field(default=())
    evaluations: int = 0

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def failing(self) -> tuple:
        """The failing leaves' names, in the parameters' order."""
        return tuple(row.name for row in self.rows if not row.ok)

    @property
    def excluded(self) -> int:
        """Entries not compared: the loss is not smooth within the step there (a kink), never a bug."""
        return sum(row.excluded for row in self.rows)

    @property
    def one_sided(self) -> int:
        """Entries at an exact kink, where either one-sided derivative was accepted."""
        return sum(row.one_sided for row in self.rows)

    def diagnosis(self, leaf: str) -> str | None:
        return next((text for name, text in self.diagnoses if name == leaf), None)

    def title(self) -> str:
        what = "check_vjp" if self.kind == "vjp" else "check_gradient"
        count = f"{self.parameters:,} {'input entries' if self.kind == 'vjp' else 'parameters'}"
        return (f"{what}: {'ok' if self.ok else 'FAIL'}  (witnesses: {', '.join(self.witnesses)}; reference: "
                f"{self.reference}; {count} in {len(self.rows)} {'leaf' if len(self.rows) == 1 else 'leaves'}"
                ", "
                f"{'/'.join(self.dtypes)})")

    def __str__(self) -> str:
        lines = [("leaf", "shape", "max abs err", "max rel err", "worst at", "expected", "actual", "excl",
                  "")]
        for r in self.rows:
            verdict = "ok" if r.ok else "FAIL" + (f" ({r.message})" if r.message else "")
            if r.ok and r.excluded and not r.compared:
                verdict = "not compared (every entry excluded)"
            if r.one_sided:
                verdict += f" ({r.one_sided} at a kink)"
            worst = "" if r.worst_index is None else ",".join(map(str, r.worst_index))
            lines.append((r.name, "x".join(map(str, r.shape)) or "()", fmt(r.max_abs_error),
                          fmt(r.max_rel_error), worst,
                          fmt(r.expected_value), fmt(r.actual_value), str(r.excluded), verdict))  # fmt: skip
        out = [self.title(), render_table(lines)]
        out += [f"diagnosis: {text}" for _, text in self.diagnoses]
        out += [f"warning: {text}" for text in self.warnings]
        out += [f"note: {text}" for text in self.notes]
        if self.excluded:
            what = "directions" if self.fd == "directional" else "entries"
            out.append(f"note: {self.excluded} {what} excluded: the loss is not smooth within the step "
                       "there (a kink nearby); not compared, never called a bug")
        return "\n".join(out)

    def display_table(self) -> display.Table:
        return display.gradient_table(self)

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": self.kind,
            "ok": self.ok,
            "failing": list(self.failing),
            "witnesses": list(self.witnesses),
            "reference": self.reference,
            "fd": self.fd,
            "loss": json_number(self.loss),
            "parameters": self.parameters,
            "dtypes": list(self.dtypes),
            "rtol": json_number(self.rtol),
            "atol": json_number(self.atol),
            "excluded": self.excluded,
            "one_sided": self.one_sided,
            "evaluations": self.evaluations,
            "rows": [row.to_dict() for row in self.rows],
            "diagnoses": [{"leaf": name, "text": text} for name, text in self.diagnoses],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }
