"""Gradient checks for networks too large for one difference per parameter: O(1) forward passes each.

- ``directional_check``: for a few directions v in parameter space, the central difference of the loss
  along v, (L(theta + s v) - L(theta - s v)) / 2s, against v . g.
- ``taylor_check``: with no tolerance to choose, the Taylor remainder r(h) = |L(theta + h v) - L(theta) -
  h v . g| shrinks like h^2 when g is the gradient and like h when it is not. h is halved from ``start``
  down to the loss's rounding floor, and the order is read from the rates log2(r(h) / r(h/2)) at the
  smallest steps above that floor, where the linear term of a wrong gradient dominates (as in
  dolfin-adjoint's taylor_test); a fit over a fixed range of h lets curvature hide a wrong gradient.

Directions: v has the norm of the parameters, so steps are relative; its entries are random signs (a
Rademacher vector, cheap to draw). The first direction mixes that with g / |g|: along a purely random v,
v . (g_true - g) is a sum of P terms of random sign, about |g_true - g| / sqrt(P), which a large network's
curvature or the loss's rounding would swamp; along g it is about (g . g_true - |g|^2) / |g|, which a real
bug (a sign, a factor, a missing term) rarely makes zero. The others are random.

Rounding: L is evaluated in float64 whatever the parameters' dtype; its rounding is estimated as
``NOISE_FACTOR`` eps sum |loss terms|. A difference that this rounding could explain (a step too small) or
that does not settle as the step shrinks (a step too large) makes a direction inconclusive, not ok.

Kinks (relu, leaky_relu): a step that flips a unit on or off (compared with theta) has crossed a kink. The
directional step is shrunk (x 1/10, twice at most); if one side still crosses, the one-sided difference of
the other side is used (a unit sitting exactly on its kink stays on the side ReLU'(0) = 0 selects); if both
do, the direction is inconclusive and counted. The Taylor test leaves steps that cross a kink out of its
rates, tries -v when crossings persist to the smallest steps, and says "inconclusive" when both do.

Verdicts: each report has ``ok`` (False only for a conclusive failure: an inconclusive check does not fail
the gradient), ``inconclusive`` and ``verdict`` ("ok", "FAIL" or "inconclusive").
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .activations import get_activation
from .compare import _number, fmt, render_table
from .losses import loss_terms
from .tolerances import tolerance_for
from .validate import check_columns, check_loss_name, check_parameters, check_target

# Directional step, relative to the parameters' norm: a network of millions of units then rarely has a
# unit within reach of its kink, while float64 rounding (eps |L| / s) stays near 1e-8 of |L|.
DIRECTIONAL_STEP = 1e-8
SHRINK, MAX_SHRINKS = 0.1, 2
# A direction is conclusive only if the loss's rounding, divided by the step, is below this fraction of
# |v . g| (or of the difference): a 2x wrong gradient is then never inside the rounding allowance.
RESOLUTION = 0.1
# A failing difference is confirmed at half the step: the failure is real if the estimate moved by less than
# this fraction of its error (truncation, O(s^2) or O(s), would move it by 3/4 or 1/2 of itself).
SETTLED = 0.25
# Taylor sweep: h = start * 2^-j, j = 0..points-1, stopped once the remainder has sat at the rounding floor
# for FLOOR_RUN steps; from 1e-2 the floor of float64 is reached well before 2^-59.
TAYLOR_START, TAYLOR_POINTS, FLOOR_RUN = 1e-2, 60, 3
NOISE_FACTOR = 1e3  # loss rounding, as a multiple of eps * sum |loss terms|, for the directional check
# The Taylor test reads rates down to the floor, so it measures the rounding instead of bounding it: L(theta)
# re-evaluated NOISE_SAMPLES times with units in other orders; floor = NOISE_MARGIN x the largest spread, but
# at least NOISE_MIN_FACTOR eps sum |loss terms|.
NOISE_SAMPLES, NOISE_MARGIN, NOISE_MIN_FACTOR = 3, 10.0, 10.0
# The remainder of a right gradient still carries h |v . (g_true - g)| from g's own rounding (analytic
# tolerance); a step counts only when the remainder exceeds that this many times, so it cannot bend the rate.
GRADIENT_ROUNDING_MARGIN = 8.0
ORDER_THRESHOLD = 1.5  # rate of a right gradient ~2, of a wrong one ~1
RIGHT_ORDER = 1.75  # and their mean at least this: rates sliding from 2 towards 1 are not yet a verdict
PLATEAU_RATE = 0.5  # a rate below this is rounding (a remainder that stopped shrinking), not a wrong g
TAIL_RATES = 3  # rates judged: those between the smallest usable steps


def _count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return int(value)


def _relative_step(value, name: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number (relative to |theta|), got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(
            f"{name} must be a finite number > 0 (relative to |theta|; default {default:g}), got {value!r}"
        )
    return float(value)


class _Problem:
    """Checked float64 arrays and a forward pass that reports kink crossings against the base pattern."""

    def __init__(self, all_weights, all_biases, net_input, y, activation, loss):
        self.act = get_activation(activation)
        self.loss = check_loss_name(loss)
        weights, biases, dtype = check_parameters(all_weights, all_biases)
        self.dtype = dtype
        self.weights = [w.astype(np.float64, copy=False) for w in weights]
        self.biases = [b.astype(np.float64, copy=False) for b in biases]
        self.x = check_columns(net_input, "net_input", weights[0].shape[1], dtype).astype(
            np.float64, copy=False
        )
        self.target = check_target(y, self.loss, weights[-1].shape[0], self.x.shape[1], np.dtype(np.float64))
        self.base_on = None
        self.base_loss, terms = self.loss_at(None, 0.0, keep_pattern=True)
        eps = float(np.finfo(np.float64).eps)
        self.loss_rounding = eps * float(np.abs(terms).sum())  # the last rounding of each term, summed
        self.noise = NOISE_FACTOR * self.loss_rounding

    def loss_at(self, direction, t: float, keep_pattern: bool = False):
        """L(theta + t v) in float64 and how many units' on/off states differ from theta's.

        A step so large that the loss overflows gives inf or NaN, never a warning.
        """
        weights, biases = self.weights, self.biases
        if direction is not None and t != 0.0:
            weights = [w + t * d for w, d in zip(weights, direction[0], strict=True)]
            biases = [b + t * d for b, d in zip(biases, direction[1], strict=True)]
        pattern = [] if keep_pattern else None
        terms, crossed = self._forward(weights, biases, self.x, self.target, pattern)
        total = float(terms.sum())
        if keep_pattern:
            self.base_on = pattern
            return total, terms
        return total, crossed

    def _forward(self, weights, biases, x, target, pattern=None):
        """Loss terms and kink crossings (against ``base_on``; recorded into ``pattern`` if given)."""
        h, crossed, last = x, 0, len(weights) - 1
        with np.errstate(over="ignore", invalid="ignore"):
            for k, (omega, beta) in enumerate(zip(weights, biases, strict=True)):
                f = omega @ h
                f += beta
                if k < last:
                    if self.act.kinked:
                        on = self.act.is_on(f)
                        if pattern is not None:
                            pattern.append(on)
                        elif self.base_on is not None:
                            crossed += int(np.count_nonzero(on != self.base_on[k]))
                    h = self.act.function(f)
                else:
                    h = f
            return loss_terms(self.loss, h, target), crossed

    def measured_noise(self, rng, count: int = NOISE_SAMPLES) -> float:
        """The largest |L - L'| over ``count`` re-evaluations L' of L(theta) with the inputs, hidden units
        and batch columns in a random order: the same sums in other orders, so they differ by rounding only.
        """
        spread = 0.0
        for _ in range(count):
            columns = rng.permutation(self.x.shape[1])
            inputs = rng.permutation(self.x.shape[0])
            x = self.x[inputs][:, columns]
            weights = [w for w in self.weights]
            biases = [b for b in self.biases]
            weights[0] = weights[0][:, inputs]
            for k in range(len(weights) - 1):
                units = rng.permutation(weights[k].shape[0])
                weights[k], biases[k] = weights[k][units], biases[k][units]
                weights[k + 1] = weights[k + 1][:, units]
            terms, _ = self._forward(weights, biases, x, self.target[:, columns])
            spread = max(spread, abs(float(terms.sum()) - self.base_loss))
        return spread


def _checked_gradient(gradients, problem: _Problem):
    try:
        g_w, g_b = gradients
        g_w, g_b = list(g_w), list(g_b)
    except (TypeError, ValueError):
        raise TypeError(
            "gradients must be a pair (all_dl_dweights, all_dl_dbiases) of lists of arrays"
        ) from None
    if len(g_w) != len(problem.weights) or len(g_b) != len(problem.biases):
        raise ValueError(
            f"gradients have {len(g_w)} weight and {len(g_b)} bias tensors, expected "
            f"{len(problem.weights)} of each"
        )
    out = []
    for name, given, params in (("weights", g_w, problem.weights), ("biases", g_b, problem.biases)):
        arrays = []
        for k, (g, p) in enumerate(zip(given, params, strict=False)):
            g = np.asarray(g, dtype=np.float64)
            if g.shape != p.shape:
                raise ValueError(f"gradient of {name}[{k}] has shape {g.shape}, expected {p.shape}")
            arrays.append(g)
        out.append(arrays)
    return out


def _dot(a, b) -> float:
    return float(
        sum(
            np.vdot(x, y)
            for part_a, part_b in zip(a, b, strict=False)
            for x, y in zip(part_a, part_b, strict=False)
        )
    )


def _abs_dot(a, b) -> float:
    return float(
        sum(
            np.abs(x).ravel() @ np.abs(y).ravel()
            for pa, pb in zip(a, b, strict=False)
            for x, y in zip(pa, pb, strict=False)
        )
    )


def _norm(parts) -> float:
    return float(np.sqrt(sum(np.vdot(x, x) for part in parts for x in part)))


def _random_signs(rng, shape) -> np.ndarray:
    """A float64 array of independent +-1 (a Rademacher vector: cheap to draw, norm sqrt(size))."""
    r = rng.integers(0, 2, shape, dtype=np.int8).astype(np.float64)
    r *= 2
    r -= 1
    return r


def make_directions(problem: _Problem, gradient, count: int, rng, mix_gradient: bool = True):
    """``count`` directions of norm |theta| (1 if theta = 0): random signs, the first mixed with g / |g|.

    Each is drawn only when iterated, so at most one direction's memory is held at a time.
    """
    params = (problem.weights, problem.biases)
    theta_norm = _norm(params) or 1.0
    g_norm = _norm(gradient)
    use_g = mix_gradient and np.isfinite(g_norm) and g_norm > 0
    size = sum(p.size for part in params for p in part)
    for i in range(count):
        v = [[_random_signs(rng, p.shape) for p in part] for part in params]
        if i == 0 and use_g:
            for part_v, part_g in zip(v, gradient, strict=True):
                for a, g in zip(part_v, part_g, strict=True):
                    a *= 1 / np.sqrt(size)
                    a += g * (1 / g_norm)
            v_norm = _norm(v) or 1.0
        else:
            v_norm = np.sqrt(size)
        for part in v:
            for a in part:
                a *= theta_norm / v_norm
        yield v


def _verdict(ok, inconclusive) -> str:
    return "inconclusive" if inconclusive else ("ok" if ok else "FAIL")


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
        return {k: _number(v) if isinstance(v, float) else v for k, v in self.__dict__.items()}


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
        return _verdict(self.ok, self.ok and self.inconclusive == len(self.rows))

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


def _difference(problem: _Problem, v, s: float):
    """(method, estimate, rounding of the estimate) at step s: central, or one-sided beside a kink."""
    up, crossed_up = problem.loss_at(v, s)
    down, crossed_down = problem.loss_at(v, -s)
    if not (crossed_up or crossed_down):
        return "central", (up - down) / (2 * s), problem.noise / s
    if not crossed_up:
        return "forward", (up - problem.base_loss) / s, 2 * problem.noise / s
    if not crossed_down:
        return "backward", (problem.base_loss - down) / s, 2 * problem.noise / s
    return "excluded", None, None


def _direction_row(problem: _Problem, v, gradient, index: int, step: float, tolerances) -> DirectionRow:
    dd = _dot(v, gradient)
    scale = _abs_dot(v, gradient)
    s, shrinks = step, 0
    while True:
        method, estimate, noise = _difference(problem, v, s)
        if method != "central" and shrinks < MAX_SHRINKS:  # a kink within reach: come closer
            s, shrinks = s * SHRINK, shrinks + 1
            continue
        if method == "excluded":
            return DirectionRow(index, dd, None, None, None, method, s, shrinks, None, "kinks")
        tol = tolerances[method == "central"]
        allowed = tol.rtol * abs(dd) + tol.atol * scale + noise
        error = abs(estimate - dd) if np.isfinite(estimate) else np.inf
        if not np.isfinite(dd):
            return DirectionRow(index, dd, estimate, error, allowed, method, s, shrinks, False)
        if not noise <= RESOLUTION * max(abs(dd), abs(estimate) if np.isfinite(estimate) else 0.0):
            return DirectionRow(index, dd, estimate, error, allowed, method, s, shrinks, None, "rounding")
        if error <= allowed:
            return DirectionRow(index, dd, estimate, error, allowed, method, s, shrinks, True)
        # A failure is believed only if the difference has settled: at half the step it barely moves.
        method_half, half, _ = _difference(problem, v, s / 2)
        if method_half == method and np.isfinite(error) and abs(half - estimate) <= SETTLED * error:
            return DirectionRow(index, dd, estimate, error, allowed, method, s, shrinks, False)
        if shrinks >= MAX_SHRINKS:
            return DirectionRow(index, dd, estimate, error, allowed, method, s, shrinks, None, "unsettled")
        s, shrinks = s * SHRINK, shrinks + 1


def directional_check(
    all_weights,
    all_biases,
    net_input,
    y,
    gradients,
    *,
    activation: str = "relu",
    loss: str = "least_squares",
    directions: int = 3,
    rng=0,
    step=None,
) -> DirectionalReport:
    """Check ``gradients`` = ``(all_dl_dweights, all_dl_dbiases)`` along ``directions`` (>= 1) directions.

    Costs one forward pass for theta plus two per direction (two more per shrink near a kink, and two to
    confirm a failure), whatever the number of parameters. ``step`` (> 0) is relative to |theta| (default
    ``DIRECTIONAL_STEP``).
    """
    directions = _count(directions, "directions", 1)
    step = _relative_step(step, "step", DIRECTIONAL_STEP)
    problem = _Problem(all_weights, all_biases, net_input, y, activation, loss)
    gradient = _checked_gradient(gradients, problem)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    tolerances = (
        tolerance_for(problem.dtype, "directional_one_sided"),
        tolerance_for(problem.dtype, "directional"),
    )
    rows = [
        _direction_row(problem, v, gradient, i, step, tolerances)
        for i, v in enumerate(make_directions(problem, gradient, directions, generator))
    ]
    notes = []
    for reason, text in _REASONS.items():
        count = sum(r.reason == reason for r in rows)
        if count:
            notes.append(f"{count} direction(s) {text}: inconclusive, not counted as failures")
    if rows and all(r.ok is None for r in rows):
        notes.append("no direction was conclusive: the check says nothing about the gradient")
    return DirectionalReport(tuple(rows), problem.dtype.name, tuple(notes))


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
        return _verdict(self.ok, self.inconclusive)

    def to_dict(self) -> dict:
        return {
            "mode": "taylor",
            "ok": self.ok,
            "verdict": self.verdict,
            "order": _number(self.order),
            "inconclusive": self.inconclusive,
            "direction_sign": self.direction_sign,
            "steps": [_number(h) for h in self.steps],
            "remainders": [_number(r) for r in self.remainders],
            "rates": [None if r is None else _number(r) for r in self.rates],
            "floors": [_number(f) for f in self.floors],
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
    sign: int
    remainders: list
    crossed: list
    floors: list
    changes: list  # |L(theta + h v) - L(theta)|


def _sweep(problem: _Problem, v, sign: int, dd: float, steps, noise: float, gradient_rounding: float):
    """Remainders along sign * v, h halving, until FLOOR_RUN in a row sit at the rounding floor."""
    out = _Sweep(sign, [], [], [], [])
    above = False
    for h in steps:
        L, crossed = problem.loss_at(v, sign * h)
        change = L - problem.base_loss
        r = abs(change - sign * h * dd)
        floor = noise + GRADIENT_ROUNDING_MARGIN * h * gradient_rounding
        out.remainders.append(r)
        out.crossed.append(int(crossed))
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


def taylor_check(
    all_weights,
    all_biases,
    net_input,
    y,
    gradients,
    *,
    activation: str = "relu",
    loss: str = "least_squares",
    rng=0,
    start=None,
    points: int = TAYLOR_POINTS,
) -> TaylorReport:
    """Check ``gradients`` by the order of the Taylor remainder along one direction (see module doc).

    h = ``start`` * 2^-j (``start`` > 0 relative to |theta|, default ``TAYLOR_START``) for at most
    ``points`` (>= 3) steps, stopping at the rounding floor. The order is the mean of the last
    ``TAIL_RATES`` rates among steps above the floor that cross no kink: all > 1.5 with mean >= 1.75 is
    ok, all in 0.5..1.5 is a FAIL, anything else (or no such steps, along v or -v) is inconclusive. If
    no step moves the remainder above rounding while the loss itself moves, the loss is linear along v
    and g agrees. Costs at most 1 + ``NOISE_SAMPLES`` + ``points`` forward passes (``points`` more when
    -v is tried).
    """
    start = _relative_step(start, "start", TAYLOR_START)
    points = _count(points, "points", 3)
    problem = _Problem(all_weights, all_biases, net_input, y, activation, loss)
    gradient = _checked_gradient(gradients, problem)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    (v,) = make_directions(problem, gradient, 1, generator)
    dd = _dot(v, gradient)
    steps = tuple(start * 0.5**j for j in range(points))
    if not np.isfinite(dd):
        return TaylorReport(steps, (), (), (), None, False, 1, ("the gradient contains NaN or inf",))
    analytic = tolerance_for(problem.dtype, "analytic")
    gradient_rounding = analytic.rtol * abs(dd) + analytic.atol * _abs_dot(v, gradient)
    noise = max(
        NOISE_MARGIN * problem.measured_noise(generator), NOISE_MIN_FACTOR * problem.loss_rounding
    )

    notes = []
    sweeps = []
    judged = None
    for sign in (1, -1):
        sweep = _sweep(problem, v, sign, dd, steps, noise, gradient_rounding)
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
