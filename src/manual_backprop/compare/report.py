"""The reports of the checks: frozen dataclasses, their tables (``str``), ``to_dict`` and verdict lines.

``ThreeWayReport`` (``three_way_check``), ``CaseResult`` and ``BackwardReport`` (``check_backward``). The
verdict policy lives here too: which words say "OK", "OK, in part" or "FAIL", and what the first failing
case shows; the command line only prints these lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..limits import EXPLODING_OUTPUT, exploding
from ..objective import parse_objective
from ..tables import fmt, json_number, render_table
from . import display
from .compare import Comparison

# The version of the JSON documents (``to_dict``, ``manual-backprop check --json``): raised when a field the
# README calls stable changes meaning or goes; new fields do not raise it.
SCHEMA_VERSION = 1

# A batch's output is printed whole up to this many numbers, summarised (min, max, mean) beyond.
SHOWN_OUTPUTS = 8

CONVENTIONS = (
    "column vectors: net_input (D_i, N), Omega_k (D_out, D_in), beta_k (D_out, 1); loss summed over the "
    "batch; no activation on the last layer",
    "derivatives at kinks follow jax.nn: ReLU'(0) = 0, leaky ReLU'(0) = 1",
    "an entry whose finite difference crossed a kink is compared with the one-sided difference on a side "
    "where no unit changes state (for a unit exactly on its kink that is the side ReLU'(0) = 0 selects: "
    "the unit stays off), with the default forward step and the forward tolerance; entries that cross on "
    "both sides (several units on kinks) are excluded and counted",
)

# Grading a user's gradient: at a kink every slope between the one-sided derivatives is a subgradient.
GRADING_CONVENTIONS = CONVENTIONS + (
    "grading: where a unit sits exactly on its kink, either one-sided derivative is accepted (ReLU'(0) = 0 "
    "or 1, leaky ReLU'(0) = 0.01 or 1), applied consistently; the notes say which one your code takes",
)


@dataclass(frozen=True, repr=False)
class ThreeWayReport(display.Displayed):
    """Manual backprop, ``jax.grad`` and a finite-difference witness, compared pairwise per layer.

    ``manual_vs_jax``, ``manual_vs_fd``, ``jax_vs_fd`` are ``Comparison``s (the last two None in the
    directional and Taylor modes, which fill ``manual_directional`` and ``jax_directional`` instead).
    """

    sizes: tuple
    batch: int
    dtype: str
    activation: str
    loss: str
    fd: str
    requested_fd: str
    step: float | None
    loss_value: float
    manual_vs_jax: Comparison
    manual_vs_fd: Comparison | None
    jax_vs_fd: Comparison | None
    manual_directional: object = None
    jax_directional: object = None
    kinks_crossed: int = 0
    kinks_one_sided: int = 0
    kinks_excluded: int = 0
    notes: tuple = ()
    conventions: tuple = CONVENTIONS
    gradients: dict = field(default=None, repr=False, compare=False)
    net_output: np.ndarray = field(default=None, repr=False, compare=False)  # (D_o, N), the forward pass's

    @property
    def ok(self) -> bool:
        parts = (
            self.manual_vs_jax,
            self.manual_vs_fd,
            self.jax_vs_fd,
            self.manual_directional,
            self.jax_directional,
        )
        return all(p.ok for p in parts if p is not None)

    def to_dict(self) -> dict:
        def d(x):
            return None if x is None else x.to_dict()

        return {
            "schema_version": SCHEMA_VERSION,
            "ok": self.ok,
            "sizes": list(self.sizes),
            "batch": self.batch,
            "dtype": self.dtype,
            "activation": self.activation,
            "loss": self.loss,
            "fd": self.fd,
            "requested_fd": self.requested_fd,
            "step": json_number(self.step),
            "loss_value": json_number(self.loss_value),
            "manual_vs_jax": d(self.manual_vs_jax),
            "manual_vs_fd": d(self.manual_vs_fd),
            "jax_vs_fd": d(self.jax_vs_fd),
            "manual_directional": d(self.manual_directional),
            "jax_directional": d(self.jax_directional),
            "kinks": {
                "crossed": self.kinks_crossed,
                "one_sided": self.kinks_one_sided,
                "excluded": self.kinks_excluded,
            },
            "notes": list(self.notes),
            "conventions": list(self.conventions),
        }

    def __str__(self) -> str:
        fd_pairs = self.manual_vs_fd is not None
        head = ["tensor", "shape", "manual-jax"] + (
            ["manual-fd", "jax-fd", "1-sided", "excl"] if fd_pairs else []
        )
        lines = [tuple(head + [""])]
        for i, mj in enumerate(self.manual_vs_jax.rows):
            row = [mj.name, "x".join(map(str, mj.shape)), fmt(mj.max_abs_error)]
            ok = mj.ok
            if fd_pairs:
                mf, jf = self.manual_vs_fd.rows[i], self.jax_vs_fd.rows[i]
                row += [fmt(mf.max_abs_error), fmt(jf.max_abs_error), str(mf.one_sided), str(mf.excluded)]
                ok = ok and mf.ok and jf.ok
            lines.append(tuple(row + ["ok" if ok else "FAIL"]))
        out = [
            f"max abs errors per tensor ({self.dtype}, {self.activation}, {self.loss}, fd: {self.fd})",
            render_table(lines),
        ]
        for rep, who in ((self.manual_directional, "manual"), (self.jax_directional, "jax")):
            if rep is not None:
                out.append(f"{who}: {rep}")
        if self.kinks_crossed:
            out.append(
                f"kinks: {self.kinks_crossed} entries crossed a kink; {self.kinks_one_sided} compared "
                f"one-sided, {self.kinks_excluded} excluded"
            )
        out.extend(self.notes)
        return "\n".join(out)

    def display_table(self) -> display.Table:
        return display.three_way_table(self)

    def headline(self) -> str:
        """The network, its output and its loss, in one line; a second line warns of exploding activations.

        Up to ``SHOWN_OUTPUTS`` numbers, the output is printed whole (one example: its column as a row);
        a wider batch as its shape and the min, max and mean of its entries.
        """
        output = self.net_output
        if output.size == 1:
            shown = _figure(output[0, 0])
        elif output.size <= SHOWN_OUTPUTS:
            shown = np.array2string(output.ravel() if output.shape[1] == 1 else output, precision=3)
        else:
            shown = (f"{output.shape[0]}x{output.shape[1]}: min {_figure(output.min())}, max "
                     f"{_figure(output.max())}, mean {_figure(output.mean())}")  # fmt: skip
        line = (
            f"network {'-'.join(map(str, self.sizes))}, batch {self.batch}: output {shown}, "
            f"loss {_figure(self.loss_value)}"
        )
        largest = exploding(output)
        if largest is not None:
            line += (
                f"\nwarning: the activations explode: |output| reaches {largest:.2e} (over "
                f"{EXPLODING_OUTPUT:.0e}); the gradients are as large, so expect large absolute errors"
            )
        return line

    def verdict(self) -> str:
        """One line: "OK", "OK, in part" (a directional witness was inconclusive) or "FAIL", and why."""
        witness = {"directional": "the directional check", "taylor": "the Taylor test"}.get(
            self.fd, f"{self.fd} finite differences"
        )
        undecided = [
            who
            for who, rep in (("manual", self.manual_directional), ("jax", self.jax_directional))
            if getattr(rep, "verdict", None) == "inconclusive"
        ]
        if self.ok and undecided:
            return (
                f"OK, in part: manual backprop and jax.grad agree; {witness} was inconclusive for "
                f"{' and '.join(undecided)} (see its notes), so it witnesses nothing here"
            )
        if self.ok:
            return f"OK: manual backprop, jax.grad and {witness} agree"
        if not self.manual_vs_jax.ok:
            return "FAIL: manual backprop and jax.grad disagree (see the rows marked FAIL)"
        return (
            f"FAIL: manual backprop and jax.grad agree, but the witness ({witness}) disagrees with both: "
            "suspect the witness (its step, or a check too coarse for this network) before the gradient"
        )


def _figure(value) -> str:
    """A number of the header: 3 decimals, or e-notation once it is too large to read that way."""
    value = float(value)
    return f"{value:.3f}" if abs(value) < 1e6 else f"{value:.3e}"


@dataclass(frozen=True)
class CaseResult:
    """The grade of one case. ``error`` is set for an exception, a call past its time limit, ``sys.exit``, a
    bad return structure or a mutated input (``error_kind`` "exception", "timeout", "exit", "structure",
    "mutation"); ``comparison`` holds the per-tensor rows against the oracle; ``first_wrong_layer`` and
    ``diagnoses`` say where and what."""

    name: str
    sizes: tuple
    batch: int
    ok: bool
    error_kind: str | None
    error: str | None
    comparison: Comparison | None
    first_wrong_layer: int | None
    diagnoses: tuple
    witnesses_agree: bool
    kinks_excluded: int
    group: str = "task"  # "task": counts toward the verdict; "beyond": beyond the notebook's task
    notes: tuple = ()  # one line each: a harmless in-place change, the other one-sided a'(0) at a kink

    @property
    def summary(self) -> str:
        if self.ok:
            return "ok"
        if self.error:
            return self.error
        whole = [d for d in self.diagnoses if d.code == "stale" or d.kind == "function"]
        if whole:
            return whole[0].text
        return "; ".join(f"{names}: {text}" for names, text in self.first_layer_diagnoses())

    def first_layer_diagnoses(self) -> list:
        """(tensor names, text) at the first wrong layer, tensors with the same diagnosis grouped."""
        grouped = {}
        for d in self.diagnoses:
            if d.layer == self.first_wrong_layer and d.kind != "function":
                grouped.setdefault(d.text, []).append(
                    f"{'Omega' if d.kind == 'weights' else 'beta'}_{d.layer}"
                )
        return [(", ".join(names), text) for text, names in grouped.items()]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "sizes": list(self.sizes),
            "batch": self.batch,
            "ok": self.ok,
            "error_kind": self.error_kind,
            "error": self.error,
            "comparison": None if self.comparison is None else self.comparison.to_dict(),
            "first_wrong_layer": self.first_wrong_layer,
            "diagnoses": [d.to_dict() for d in self.diagnoses],
            "witnesses_agree": self.witnesses_agree,
            "kinks_excluded": self.kinks_excluded,
            "group": self.group,
            "notes": list(self.notes),
        }


@dataclass(frozen=True, repr=False)
class BackwardReport(display.Displayed):
    """``check_backward``'s grade of a user's backward pass: one ``CaseResult`` per case of the battery."""

    function: str
    activation: str
    loss: str
    batch: int
    dtype: str
    cases: tuple
    loss_source: str | None = None  # the header line when the loss was found in the user's code
    notes: tuple = ()  # one line each: the network globals set, a loss that fit no convention
    conventions: tuple = GRADING_CONVENTIONS
    story: object = None  # story.Story: the one diagnosis of the function, over all its failing cases
    strict: bool = True  # every case counts; False: only the notebook's task ("task" cases) counts
    context: tuple = ()  # header lines: what the function's own namespace said (list layout, kink)

    @property
    def counted(self) -> tuple:
        """The cases that decide ``ok``: all of them when strict, else the notebook's task."""
        return self.cases if self.strict else tuple(c for c in self.cases if c.group == "task")

    @property
    def beyond(self) -> tuple:
        """The cases reported but not counted (beyond the notebook's task, when not strict)."""
        return () if self.strict else tuple(c for c in self.cases if c.group != "task")

    @property
    def failing(self) -> tuple:
        return tuple(case for case in self.counted if not case.ok)

    @property
    def ok(self) -> bool:
        return not self.failing

    def to_dict(self) -> dict:
        groups = {"task": [c.name for c in self.counted], "beyond": [c.name for c in self.beyond]}
        return dict(function=self.function, ok=self.ok, activation=self.activation, loss=self.loss,
                    loss_source=self.loss_source, notes=list(self.notes), context=list(self.context),
                    batch=self.batch, dtype=self.dtype, strict=self.strict, groups=groups,
                    diagnosis=None if self.story is None else self.story.to_dict(),
                    cases=[c.to_dict() for c in self.cases], conventions=list(self.conventions))  # fmt: skip

    def __str__(self) -> str:
        def table(cases):
            lines = [("case", "sizes", "verdict", "first wrong layer", "diagnosis")]
            for c in cases:
                lines.append((c.name, "-".join(map(str, c.sizes)), "ok" if c.ok else "FAIL",
                              "-" if c.first_wrong_layer is None else str(c.first_wrong_layer),
                              "" if c.ok else c.summary))  # fmt: skip
            return render_table(lines)

        counted, beyond = self.counted, self.beyond
        passed = sum(c.ok for c in counted)
        task = "" if self.strict else " of the notebook's task"
        head = (
            f"{self.function}: {passed}/{len(counted)} cases{task} pass "
            f"({self.activation}, {self.loss}, batch {self.batch}, {self.dtype})"
        )
        out = [head, parse_objective(self.loss).assumptions()]
        out += ([self.loss_source] if self.loss_source else []) + list(self.context)
        out.append(table(counted))
        if beyond:
            fine = sum(c.ok for c in beyond)
            out += ["", f"beyond the notebook ({fine}/{len(beyond)} pass; not counted: strict grading counts "
                    "them):", table(beyond)]
        if not all(c.witnesses_agree for c in self.cases):
            out.append(
                "warning: jax and finite differences disagree on some case: the grade may be unreliable"
            )
        out += [f"note: {note}" for note in self.notes]
        return "\n".join(out)

    def display_table(self) -> display.Table:
        return display.backward_table(self)

    def summary_lines(self) -> list:
        """What follows the table: the first failing case (where, and what) and the verdict line."""
        failing = self.failing
        beyond = [c for c in self.beyond if not c.ok]
        if not failing:
            what = (f"all {len(self.counted)} cases" if self.strict
                    else f"the notebook's task ({len(self.counted)} cases)")
            lines = [f"OK: {self.function} agrees with jax.grad on {what}"]
            if beyond:
                lines.append(f"beyond the notebook, {len(beyond)} of {len(self.beyond)} cases fail (not "
                             f"counted); first: {beyond[0].name}: {beyond[0].summary}")
            return lines
        first = failing[0]
        lines = [""]
        if self.story is not None:
            told = len([name for name in self.story.cases if name in {c.name for c in failing}])
            where = f" (fits {told} of {len(failing)} failing cases)" if told else ""
            if told == len(failing):
                where = f" (fits all {told} failing cases)"
            lines.append(f"diagnosis{where}: {self.story.text}")
            lines += self.story.chain.lines() if getattr(self.story, "chain", None) is not None else []
        lines.append(f"first failing case: {first.name}")
        if first.error:
            lines.append(f"  {first.error}")
        if first.first_wrong_layer is not None:
            k = first.first_wrong_layer
            # delta_k forms both Omega_k's and beta_k's gradients: one of them right means delta_k is right,
            # and a lower layer that fails is then wrong on its own, not by inheritance.
            inherited = first.comparison is None or not any(
                row.ok for row in first.comparison.rows if row.layer == k)
            flow = " (errors flow toward the input: the layers below inherit it)" if inherited else ""
            lines.append(f"  first wrong layer: {k}{flow}")
            lines += [f"  {names}: {text}" for names, text in first.first_layer_diagnoses()]
            below = sum(d.layer < k for d in first.diagnoses)
            if below and inherited:
                lines.append(f"  ({below} tensors of lower layers fail as a consequence)")
            elif below:
                lines.append(f"  ({below} tensors of lower layers fail too, each on its own: one of "
                             f"Omega_{k} and beta_{k} is right, so delta_{k} is; look at how each gradient "
                             "is formed)")
        lines.append(f"FAIL: {len(failing)} of {len(self.counted)} cases fail")
        return lines
