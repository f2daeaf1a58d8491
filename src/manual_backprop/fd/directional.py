"""The directional check: the central difference of the loss along a few directions against v . g.

For a few directions v in parameter space (``directions.make_directions``), the central difference of the
loss along v, (L(theta + s v) - L(theta - s v)) / 2s, is compared with v . g. It costs O(1) forward passes
per direction whatever the number of parameters, for networks too large for one difference per parameter.

Rounding: L is evaluated in float64 whatever the parameters' dtype; its rounding is estimated as
``NOISE_FACTOR`` eps sum |loss terms|. A difference that this rounding could explain (a step too small) or
that does not settle as the step shrinks (a step too large) makes a direction inconclusive, not ok.

Kinks (relu, leaky_relu): a step that flips a unit on or off (compared with theta) has crossed a kink. The
step is shrunk (x ``SHRINK``, ``MAX_SHRINKS`` times at most); if one side still crosses, the one-sided
difference of the other side is used (a unit sitting exactly on its kink stays on the side ReLU'(0) = 0
selects); if both do, the direction is inconclusive and counted.

Verdicts: the report has ``ok`` (False only for a conclusive failure: an inconclusive check does not fail
the gradient), ``inconclusive`` and ``verdict`` ("ok", "FAIL" or "inconclusive").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from .._types import Parameters, Seed
from ..progress import track
from ..tables import fmt, json_number, render_table
from ..tolerances import (
    DIRECTIONAL_STEP,
    MAX_SHRINKS,
    NOISE_FACTOR,
    RESOLUTION,
    SETTLED,
    SHRINK,
    Tolerance,
    tolerance_for,
)
from .directions import LossLine, abs_dot, check_count, checked, dot, make_directions, relative_step, verdict


@dataclass(frozen=True)
class DirectionRow:
    """One direction: ``v . g`` against the difference ``estimate`` with ``method`` at ``step``."""

    index: int
    v_dot_g: float
    estimate: float | None
    abs_error: float | None
    allowed: float | None
    method: str  # "central", "forward", "backward" or "excluded" (kinks on both sides)
    step: float
    shrinks: int
    ok: bool | None  # None: inconclusive (kinks on both sides, rounding, or no settling)
    reason: str = ""  # why a direction is inconclusive

    def to_dict(self) -> dict:
        return {k: json_number(v) if isinstance(v, float) else v for k, v in self.__dict__.items()}


_REASONS = {
    "kinks": "crossed kinks on both sides at every step",
    "rounding": "moved the loss by no more than its rounding (the step is too small)",
    "unsettled": "gave a difference that did not settle as the step shrank (the step is too large)",
}


@dataclass(frozen=True)
class DirectionalReport:
    rows: tuple
    dtype: str
    notes: tuple = ()

    @property
    def ok(self) -> bool:
        """False only if some direction conclusively disagrees with v . g."""
        return all(row.ok is not False for row in self.rows)

    @property
    def inconclusive(self) -> int:
        """How many directions are inconclusive (the report as a whole is when all of them are)."""
        return sum(row.ok is None for row in self.rows)

    @property
    def verdict(self) -> str:
        return verdict(self.ok, self.ok and self.inconclusive == len(self.rows))

    def to_dict(self) -> dict:
        return {
            "mode": "directional",
            "ok": self.ok,
            "verdict": self.verdict,
            "dtype": self.dtype,
            "inconclusive": self.inconclusive,
            "notes": list(self.notes),
            "rows": [row.to_dict() for row in self.rows],
        }

    def __str__(self) -> str:
        lines = [("direction", "v.g", "difference", "abs err", "allowed", "method", "step", "")]
        for r in self.rows:
            lines.append(
                (
                    str(r.index),
                    fmt(r.v_dot_g),
                    fmt(r.estimate),
                    fmt(r.abs_error),
                    fmt(r.allowed),
                    r.method,
                    fmt(r.step),
                    {True: "ok", False: "FAIL", None: "inconclusive"}[r.ok],
                )
            )
        head = f"directional check: {self.verdict}"
        return "\n".join([head, render_table(lines), *self.notes])


class _Difference(NamedTuple):
    """The difference quotient along v at one step, and the loss's rounding divided by that step."""

    method: str  # "central", "forward", "backward", or "excluded" (kinks on both sides: no estimate)
    estimate: float | None
    rounding: float | None


class _Allowed(NamedTuple):
    """The tolerances of a central and of a one-sided difference along v."""

    central: Tolerance
    one_sided: Tolerance


def _difference(line: LossLine, v, s: float, noise: float) -> _Difference:
    """The difference at step s: central, or one-sided beside a kink."""
    up = line.at(v, s)
    down = line.at(v, -s)
    if not (up.crossed or down.crossed):
        return _Difference("central", (up.loss - down.loss) / (2 * s), noise / s)
    if not up.crossed:
        return _Difference("forward", (up.loss - line.base_loss) / s, 2 * noise / s)
    if not down.crossed:
        return _Difference("backward", (line.base_loss - down.loss) / s, 2 * noise / s)
    return _Difference("excluded", None, None)


class _Judgement(NamedTuple):
    """What one difference says about v . g: its error, the error allowed, ok (None: inconclusive), why."""

    error: float | None
    allowed: float | None
    ok: bool | None
    reason: str = ""


def _judge(line: LossLine, v, diff: _Difference, s: float, dd: float, scale: float, allowed_by: _Allowed,
           noise: float, last: bool) -> _Judgement | None:
    """The judgement of ``diff`` (at step s) against dd = v . g; None: shrink the step and try again."""
    if diff.method == "excluded":
        return _Judgement(None, None, None, "kinks")
    tol = allowed_by.central if diff.method == "central" else allowed_by.one_sided
    allowed = tol.rtol * abs(dd) + tol.atol * scale + diff.rounding
    estimate = diff.estimate
    error = abs(estimate - dd) if np.isfinite(estimate) else np.inf
    if not np.isfinite(dd):
        return _Judgement(error, allowed, False)
    if not diff.rounding <= RESOLUTION * max(abs(dd), abs(estimate) if np.isfinite(estimate) else 0.0):
        return _Judgement(error, allowed, None, "rounding")
    if error <= allowed:
        return _Judgement(error, allowed, True)
    # A failure is believed only if the difference has settled: at half the step it barely moves.
    half = _difference(line, v, s / 2, noise)
    if half.method == diff.method and np.isfinite(error) and abs(half.estimate - estimate) <= SETTLED * error:
        return _Judgement(error, allowed, False)
    return _Judgement(error, allowed, None, "unsettled") if last else None


def _direction_row(line: LossLine, v, gradient, index: int, step: float, allowed_by: _Allowed,
                   noise: float) -> DirectionRow:
    dd = dot(v, gradient)
    scale = abs_dot(v, gradient)
    s, shrinks = step, 0
    while True:
        diff = _difference(line, v, s, noise)
        last = shrinks >= MAX_SHRINKS
        judged = None
        if diff.method == "central" or last:  # else a kink is within reach: come closer first
            judged = _judge(line, v, diff, s, dd, scale, allowed_by, noise, last)
        if judged is not None:
            return DirectionRow(index=index, v_dot_g=dd, estimate=diff.estimate, abs_error=judged.error,
                                allowed=judged.allowed, method=diff.method, step=s, shrinks=shrinks,
                                ok=judged.ok, reason=judged.reason)
        s, shrinks = s * SHRINK, shrinks + 1


def directional_check(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
                      gradients: tuple[Parameters, Parameters], *, activation: str = "relu",
                      loss: str = "least_squares", directions: int = 3, rng: Seed = 0,
                      step: float | None = None) -> DirectionalReport:
    """Check ``gradients`` = ``(all_dl_dweights, all_dl_dbiases)`` along ``directions`` (>= 1) directions.

    Costs one forward pass for theta plus two per direction (two more per shrink near a kink, and two to
    confirm a failure), whatever the number of parameters. ``step`` (> 0) is relative to |theta| (default
    ``DIRECTIONAL_STEP``).
    """
    directions = check_count(directions, "directions", 1)
    step = relative_step(step, "step", DIRECTIONAL_STEP)
    line, gradient = checked(all_weights, all_biases, net_input, y, gradients, activation, loss)
    return _directional(line, gradient, directions=directions, rng=rng, step=step)


def _directional(line: LossLine, gradient, *, directions: int = 3, rng=0,
                 step: float = DIRECTIONAL_STEP) -> DirectionalReport:
    """Unchecked ``directional_check``: ``line`` from ``directions.loss_line`` over checked arrays (one line
    serves any number of gradients), ``gradient`` a pair of lists of float64 arrays of the parameters'
    shapes (``directions.as_float64``), ``directions`` an int >= 1, ``step`` a float > 0, ``rng`` a seed or
    a Generator."""
    allowed_by = _Allowed(
        central=tolerance_for(line.dtype, "directional"),
        one_sided=tolerance_for(line.dtype, "directional_one_sided"),
    )
    noise = NOISE_FACTOR * line.loss_rounding
    rows = [
        _direction_row(line, v, gradient, i, step, allowed_by, noise)
        for i, v in enumerate(track(make_directions(line, gradient, directions, rng), "directions"))
    ]
    notes = []
    for reason, text in _REASONS.items():
        count = sum(r.reason == reason for r in rows)
        if count:
            notes.append(f"{count} direction(s) {text}: inconclusive, not counted as failures")
    if rows and all(r.ok is None for r in rows):
        notes.append("no direction was conclusive: the check says nothing about the gradient")
    return DirectionalReport(tuple(rows), line.dtype.name, tuple(notes))
