"""The Taylor test: the order at which the remainder of the loss's linear model shrinks along a direction.

With no tolerance to choose, the Taylor remainder r(h) = |L(theta + h v) - L(theta) - h v . g| shrinks like
h^2 when g is the gradient and like h when it is not. h is halved from ``start`` down to the loss's
rounding floor, and the order is read from the rates log2(r(h) / r(h/2)) at the smallest steps above that
floor, where the linear term of a wrong gradient dominates (as in dolfin-adjoint's taylor_test); a fit over
a fixed range of h lets curvature hide a wrong gradient. v is the first direction of
``directions.make_directions`` (random signs mixed with g / |g|).

Rounding: L is evaluated in float64; the test reads rates down to the floor, so it measures the loss's
rounding (L(theta) re-evaluated with units in other orders) rather than bounding it.

Kinks (relu, leaky_relu): steps that cross a kink are left out of the rates; -v is tried when crossings
persist to the smallest steps, and the test says "inconclusive" when they persist along both.

Verdicts: the report has ``ok`` (False only for a conclusive failure), ``inconclusive`` and ``verdict``
("ok", "FAIL" or "inconclusive").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._types import Parameters, Seed
from ..tables import fmt, json_number, render_table
from ..tolerances import (
    FLOOR_RUN,
    GRADIENT_ROUNDING_MARGIN,
    NOISE_MARGIN,
    NOISE_MIN_FACTOR,
    NOISE_SAMPLES,
    ORDER_THRESHOLD,
    PLATEAU_RATE,
    RIGHT_ORDER,
    TAIL_RATES,
    TAYLOR_POINTS,
    TAYLOR_START,
    tolerance_for,
)
from .directions import (
    LossLine,
    abs_dot,
    check_count,
    checked,
    dot,
    generator,
    make_directions,
    relative_step,
    verdict,
)


@dataclass(frozen=True)
class TaylorReport:
    """Remainders r(h) over the sweep ``steps``; ``rates[j]`` = log2(r(h_j-1) / r(h_j)) (None for j = 0 or
    a remainder of 0); ``order`` is the mean of the rates judged (``used``: the smallest steps above the
    rounding floor ``floors[j]`` that cross no kink), about 2 when g is right and about 1 when it is wrong.
    """

    steps: tuple
    remainders: tuple
    crossed: tuple
    used: tuple
    order: float | None
    ok: bool
    direction_sign: int
    notes: tuple = ()
    inconclusive: bool = False
    rates: tuple = ()
    floors: tuple = ()

    @property
    def verdict(self) -> str:
        return verdict(self.ok, self.inconclusive)

    def to_dict(self) -> dict:
        return {
            "mode": "taylor",
            "ok": self.ok,
            "verdict": self.verdict,
            "order": json_number(self.order),
            "inconclusive": self.inconclusive,
            "direction_sign": self.direction_sign,
            "steps": [json_number(h) for h in self.steps],
            "remainders": [json_number(r) for r in self.remainders],
            "rates": [None if r is None else json_number(r) for r in self.rates],
            "floors": [json_number(f) for f in self.floors],
            "crossed": list(self.crossed),
            "used": list(self.used),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        order = "-" if self.order is None else f"{self.order:.2f}"
        head = (
            f"taylor check: {self.verdict}  (fitted order {order} at the smallest steps above rounding: "
            "about 2 when the gradient is right, about 1 when it is wrong)"
        )
        lines = [("h", "remainder", "rate", "rounding floor", "kinks crossed", "judged")]
        shown = range(len(self.remainders))
        used = [j for j, u in enumerate(self.used) if u]
        if len(self.remainders) > 12:  # the judged steps and their neighbours; to_dict() has the rest
            low = used[0] - 2 if used else len(self.remainders) - 8
            high = used[-1] + 3 if used else len(self.remainders)
            shown = range(max(low, 0), min(high, len(self.remainders)))
        rates = self.rates or (None,) * len(self.remainders)
        floors = self.floors or (None,) * len(self.remainders)
        for j in shown:
            lines.append(
                (
                    fmt(self.steps[j]),
                    fmt(self.remainders[j]),
                    "-" if rates[j] is None else f"{rates[j]:.2f}",
                    fmt(floors[j]),
                    str(self.crossed[j]),
                    "yes" if self.used[j] else "no",
                )
            )
        sweep = ""
        if self.remainders and len(shown) < len(self.remainders):
            sweep = (
                f"({len(shown)} of {len(self.remainders)} steps shown; h swept from {self.steps[0]:.2e} to "
                f"{self.steps[len(self.remainders) - 1]:.2e})"
            )
        return "\n".join([head, render_table(lines), *([sweep] if sweep else []), *self.notes])


@dataclass
class _Sweep:
    """One sweep along sign * v, filled step by step: each list has one entry per step taken."""

    sign: int
    remainders: list
    crossed: list
    floors: list
    changes: list  # |L(theta + h v) - L(theta)|


def _measured_noise(line: LossLine, rng, count: int = NOISE_SAMPLES) -> float:
    """The largest |L - L'| over ``count`` re-evaluations L' of L(theta) with the inputs, hidden units
    and batch columns in a random order: the same sums in other orders, so they differ by rounding only.
    """
    spread = 0.0
    for _ in range(count):
        columns = rng.permutation(line.x.shape[1])
        inputs = rng.permutation(line.x.shape[0])
        x = line.x[inputs][:, columns]
        weights = [w for w in line.weights]
        biases = [b for b in line.biases]
        weights[0] = weights[0][:, inputs]
        for k in range(len(weights) - 1):
            units = rng.permutation(weights[k].shape[0])
            weights[k], biases[k] = weights[k][units], biases[k][units]
            weights[k + 1] = weights[k + 1][:, units]
        spread = max(spread, abs(line.loss_of(weights, biases, x, line.target[:, columns]) - line.base_loss))
    return spread


def _sweep(line: LossLine, v, sign: int, dd: float, steps, noise: float, gradient_rounding: float):
    """Remainders along sign * v, h halving, until FLOOR_RUN in a row sit at the rounding floor."""
    out = _Sweep(sign, [], [], [], [])
    above = False
    for h in steps:
        point = line.at(v, sign * h)
        change = point.loss - line.base_loss
        r = abs(change - sign * h * dd)
        floor = noise + GRADIENT_ROUNDING_MARGIN * h * gradient_rounding
        out.remainders.append(r)
        out.crossed.append(point.crossed)
        out.floors.append(floor)
        out.changes.append(abs(change))
        above = above or r > floor
        recent = out.remainders[-FLOOR_RUN:]
        at_floor = len(recent) == FLOOR_RUN and all(
            q <= f for q, f in zip(recent, out.floors[-FLOOR_RUN:], strict=True)
        )
        if at_floor and (above or h * abs(dd) <= floor):
            break
    return out


def _rates(remainders) -> list:
    rates = [None]
    for a, b in zip(remainders[:-1], remainders[1:], strict=False):
        ok = np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0
        rates.append(float(np.log2(a / b)) if ok else None)
    return rates


def _judged(sweep: _Sweep, rates, allow_crossings: bool):
    """Indices of the points whose incoming rates are judged: the tail of the last run of >= 3 usable
    points (above the floor, finite, no kink unless allowed), less trailing plateau points; or None."""
    usable = [
        bool(np.isfinite(r) and r > f and (allow_crossings or c == 0))
        for r, f, c in zip(sweep.remainders, sweep.floors, sweep.crossed, strict=True)
    ]
    end = len(usable) - 1
    while end >= 0:
        if not usable[end]:
            end -= 1
            continue
        begin = end
        while begin > 0 and usable[begin - 1]:
            begin -= 1
        # A rate that collapses at the end is a remainder that stopped shrinking (rounding above our
        # estimate), not a linear term: leave such points out.
        last = end
        while last > begin and (rates[last] is None or rates[last] < PLATEAU_RATE):
            last -= 1
        if last - begin >= 2:
            return list(range(max(begin + 1, last - TAIL_RATES + 1), last + 1))
        end = begin - 1
    return None


def taylor_check(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
                 gradients: tuple[Parameters, Parameters], *, activation: str = "relu",
                 loss: str = "least_squares", rng: Seed = 0, start: float | None = None,
                 points: int = TAYLOR_POINTS) -> TaylorReport:
    """Check ``gradients`` by the order of the Taylor remainder along one direction (see module doc).

    h = ``start`` * 2^-j (``start`` > 0 relative to |theta|, default ``TAYLOR_START``) for at most
    ``points`` (>= 3) steps, stopping at the rounding floor. The order is the mean of the last
    ``TAIL_RATES`` rates among steps above the floor that cross no kink: all > 1.5 with mean >= 1.75 is
    ok, all in 0.5..1.5 is a FAIL, anything else (or no such steps, along v or -v) is inconclusive. If
    no step moves the remainder above rounding while the loss itself moves, the loss is linear along v
    and g agrees. Costs at most 1 + ``NOISE_SAMPLES`` + ``points`` forward passes (``points`` more when
    -v is tried).
    """
    start = relative_step(start, "start", TAYLOR_START)
    points = check_count(points, "points", 3)
    line, gradient = checked(all_weights, all_biases, net_input, y, gradients, activation, loss)
    return _taylor(line, gradient, rng=rng, start=start, points=points)


def _taylor(line: LossLine, gradient, *, rng=0, start: float = TAYLOR_START,
            points: int = TAYLOR_POINTS) -> TaylorReport:
    """Unchecked ``taylor_check``: ``line`` from ``directions.loss_line`` over checked arrays (one line
    serves any number of gradients), ``gradient`` a pair of lists of float64 arrays of the parameters'
    shapes (``directions.as_float64``), ``start`` a float > 0, ``points`` an int >= 3, ``rng`` a seed or a
    Generator."""
    rng = generator(rng)
    (v,) = make_directions(line, gradient, 1, rng)
    dd = dot(v, gradient)
    steps = tuple(start * 0.5**j for j in range(points))
    if not np.isfinite(dd):
        return TaylorReport(steps=steps, remainders=(), crossed=(), used=(), order=None, ok=False,
                            direction_sign=1, notes=("the gradient contains NaN or inf",))
    analytic = tolerance_for(line.dtype, "analytic")
    gradient_rounding = analytic.rtol * abs(dd) + analytic.atol * abs_dot(v, gradient)
    noise = max(NOISE_MARGIN * _measured_noise(line, rng), NOISE_MIN_FACTOR * line.loss_rounding)

    notes = []
    sweeps = []
    judged = None
    for sign in (1, -1):
        sweep = _sweep(line, v, sign, dd, steps, noise, gradient_rounding)
        sweeps.append(sweep)
        rates = _rates(sweep.remainders)
        judged = _judged(sweep, rates, allow_crossings=False)
        if judged is not None or not any(sweep.crossed):
            break
    if judged is None and any(any(s.crossed) for s in sweeps):
        # Too few clean steps. If the crossings thin out like h (many units near, none on, their kinks: each
        # adds O(h) to r and there are O(h) of them), the rates of all steps above rounding still show the
        # order; if they persist to the smallest step along +v and -v, units sit on their kinks.
        sweep = min(sweeps, key=lambda s: s.crossed[-1])
        rates = _rates(sweep.remainders)
        if sweep.crossed[-1] * 8 <= max(sweep.crossed):
            judged = _judged(sweep, rates, allow_crossings=True)
            if judged is not None:
                notes.append(
                    "too few steps above rounding cross no kink: rates judged with steps that do (ever "
                    "fewer as h shrinks: dense crossings add O(h^2) on average)"
                )
        else:
            notes.append(
                "units sit exactly on their kinks along +v and -v: the remainder is O(h) at every step, "
                "so the order says nothing; use fd=central (entrywise, one-sided at kinks)"
            )
    else:
        sweep = sweeps[-1]
        rates = _rates(sweep.remainders)
    n = len(sweep.remainders)
    used = tuple(j in (judged or ()) for j in range(n))
    parts = dict(
        steps=steps[:n],
        remainders=tuple(sweep.remainders),
        crossed=tuple(sweep.crossed),
        used=used,
        direction_sign=sweep.sign,
        rates=tuple(rates),
        floors=tuple(sweep.floors),
    )
    if judged is None:
        return _no_rates(parts, sweep, notes)
    judged_rates = [rates[j] for j in judged]
    order = float(np.mean(judged_rates))
    if all(r > ORDER_THRESHOLD for r in judged_rates) and order >= RIGHT_ORDER:
        return TaylorReport(order=order, ok=True, notes=tuple(notes), **parts)
    if all(PLATEAU_RATE <= r <= ORDER_THRESHOLD for r in judged_rates):
        notes.append(
            "the remainder shrinks like h at the smallest steps above rounding: the linear term "
            "h v . (g_true - g) dominates, so g is not the gradient along v"
        )
        return TaylorReport(order=order, ok=False, notes=tuple(notes), **parts)
    notes.append(
        f"the rates at the smallest steps ({', '.join(f'{r:.2f}' for r in judged_rates)}) are neither all "
        "about 2 nor all about 1: the remainder has not reached its asymptotic regime above rounding"
    )
    return TaylorReport(order=order, ok=True, notes=tuple(notes), inconclusive=True, **parts)


def _no_rates(parts, sweep: _Sweep, notes) -> TaylorReport:
    """No run of 3 steps above rounding: the loss is linear along v (g agrees), or nothing was measured."""
    if notes:  # kinks on both sides
        return TaylorReport(order=None, ok=True, notes=tuple(notes), inconclusive=True, **parts)
    finite = [r for r in sweep.remainders if np.isfinite(r)]
    measured = any(c > 100 * f for c, f in zip(sweep.changes, sweep.floors, strict=True) if np.isfinite(c))
    if finite and all(r <= f for r, f in zip(sweep.remainders, sweep.floors, strict=True)) and measured:
        notes.append(
            "the remainder is at rounding level at every step while the loss moves: the loss is linear "
            "along v and g agrees"
        )
        return TaylorReport(order=None, ok=True, notes=tuple(notes), **parts)
    notes.append(
        "no three successive steps have a remainder above rounding (start too small, too large, or too "
        "few points): the order cannot be read; try the default start and points"
    )
    return TaylorReport(order=None, ok=True, notes=tuple(notes), inconclusive=True, **parts)
