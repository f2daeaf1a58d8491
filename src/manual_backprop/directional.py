"""Gradient checks for networks too large for one difference per parameter: O(1) forward passes each.

- ``directional_check``: for a few directions v in parameter space, the central difference of the loss
  along v, (L(theta + s v) - L(theta - s v)) / 2s, against v . g.
- ``taylor_check``: with no tolerance to choose, the Taylor remainder r(h) = |L(theta + h v) - L(theta) -
  h v . g| over a sweep of h shrinks like h^2 when g is the gradient and like h when it is not; the fitted
  order log r / log h is reported.

Directions: v has the norm of the parameters, so steps are relative; its entries are random signs (a
Rademacher vector, cheap to draw). The first direction mixes that with g / |g|: along a purely random v,
v . g is a sum of P terms of random sign, about |g| / sqrt(P), which a large network's curvature would
swamp; along g it is coherent, and any error in g that changes g . g shows. The others are random.

Kinks (relu, leaky_relu): a step that flips a unit on or off (compared with theta) has crossed a kink. The
step is shrunk (x 1/10, twice at most); if one side still crosses, the one-sided difference of the other
side is used (a unit sitting exactly on its kink stays on the side ReLU'(0) = 0 selects); if both do, the
direction is inconclusive and counted. Losses are evaluated in float64 whatever the parameters' dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activations import get_activation, unit_is_on
from .compare import _number, fmt, render_table
from .losses import loss_terms
from .tolerances import tolerance_for
from .validate import check_columns, check_loss_name, check_parameters, check_target

# Directional step, relative to the parameters' norm: a network of millions of units then rarely has a
# unit within reach of its kink, while float64 rounding (eps |L| / s) stays near 1e-8 of |L|.
DIRECTIONAL_STEP = 1e-8
SHRINK, MAX_SHRINKS = 0.1, 2
# Taylor sweep: h = TAYLOR_START * 2^-j, j = 0..TAYLOR_POINTS-1; the remainder must stay above rounding.
TAYLOR_START, TAYLOR_POINTS = 1e-2, 8
NOISE_FACTOR = 1e3  # loss rounding, as a multiple of eps * sum |loss terms|


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
        self.noise = NOISE_FACTOR * eps * float(np.abs(terms).sum())

    def loss_at(self, direction, t: float, keep_pattern: bool = False):
        """L(theta + t v) in float64 and how many units' on/off states differ from theta's."""
        h, crossed, last = self.x, 0, len(self.weights) - 1
        pattern = []
        for k, (omega, beta) in enumerate(zip(self.weights, self.biases, strict=False)):
            if direction is not None and t != 0.0:
                omega = omega + t * direction[0][k]
                beta = beta + t * direction[1][k]
            f = omega @ h
            f += beta
            if k < last:
                if self.act.kinked:
                    on = unit_is_on(self.act.name, f)
                    if keep_pattern:
                        pattern.append(on)
                    else:
                        crossed += int(np.count_nonzero(on != self.base_on[k]))
                h = self.act.function(f)
            else:
                h = f
        terms = loss_terms(self.loss, h, self.target)
        if keep_pattern:
            self.base_on = pattern
            return float(terms.sum()), terms
        return float(terms.sum()), crossed


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
    ok: bool | None  # None: inconclusive (kinks on both sides)

    def to_dict(self) -> dict:
        return {k: _number(v) if isinstance(v, float) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class DirectionalReport:
    rows: tuple
    dtype: str
    notes: tuple = ()

    @property
    def ok(self) -> bool:
        return all(row.ok is not False for row in self.rows)

    @property
    def inconclusive(self) -> int:
        return sum(row.ok is None for row in self.rows)

    def to_dict(self) -> dict:
        return {
            "mode": "directional",
            "ok": self.ok,
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
        head = f"directional check: {'ok' if self.ok else 'FAIL'}"
        return "\n".join([head, render_table(lines), *self.notes])


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
    """Check ``gradients`` = ``(all_dl_dweights, all_dl_dbiases)`` along ``directions`` directions.

    Costs one forward pass for theta plus two per direction (two more per shrink near a kink), whatever
    the number of parameters. ``step`` is relative to |theta| (default ``DIRECTIONAL_STEP``).
    """
    problem = _Problem(all_weights, all_biases, net_input, y, activation, loss)
    gradient = _checked_gradient(gradients, problem)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    central = tolerance_for(problem.dtype, "directional")
    one_sided = tolerance_for(problem.dtype, "directional_one_sided")
    base_step = DIRECTIONAL_STEP if step is None else float(step)
    rows = []
    for i, v in enumerate(make_directions(problem, gradient, int(directions), generator)):
        dd = _dot(v, gradient)
        scale = _abs_dot(v, gradient)
        s = base_step
        for shrinks in range(MAX_SHRINKS + 1):
            up, crossed_up = problem.loss_at(v, s)
            down, crossed_down = problem.loss_at(v, -s)
            if not (crossed_up or crossed_down) or shrinks == MAX_SHRINKS:
                break
            s *= SHRINK
        if not (crossed_up or crossed_down):
            method, estimate, tol, noise = "central", (up - down) / (2 * s), central, problem.noise / s
        elif not crossed_up:
            method, estimate, tol, noise = (
                "forward",
                (up - problem.base_loss) / s,
                one_sided,
                2 * problem.noise / s,
            )
        elif not crossed_down:
            method, estimate, tol, noise = (
                "backward",
                (problem.base_loss - down) / s,
                one_sided,
                2 * problem.noise / s,
            )
        else:
            rows.append(DirectionRow(i, dd, None, None, None, "excluded", s, shrinks, None))
            continue
        error = abs(estimate - dd)
        allowed = tol.rtol * abs(dd) + tol.atol * scale + noise
        ok = bool(np.isfinite(dd) and error <= allowed)
        rows.append(DirectionRow(i, dd, estimate, error, allowed, method, s, shrinks, ok))
    notes = []
    if any(r.ok is None for r in rows):
        notes.append(
            f"{sum(r.ok is None for r in rows)} direction(s) crossed kinks on both sides at every step: "
            "excluded (inconclusive), not counted as failures"
        )
    return DirectionalReport(tuple(rows), problem.dtype.name, tuple(notes))


@dataclass(frozen=True)
class TaylorReport:
    """Remainders r(h) over the sweep ``steps``; ``order`` is the fitted slope of log r against log h."""

    steps: tuple
    remainders: tuple
    crossed: tuple
    used: tuple
    order: float | None
    ok: bool
    direction_sign: int
    notes: tuple = ()
    inconclusive: bool = False

    def to_dict(self) -> dict:
        return {
            "mode": "taylor",
            "ok": self.ok,
            "order": _number(self.order),
            "inconclusive": self.inconclusive,
            "direction_sign": self.direction_sign,
            "steps": [_number(h) for h in self.steps],
            "remainders": [_number(r) for r in self.remainders],
            "crossed": list(self.crossed),
            "used": list(self.used),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        lines = [("h", "remainder", "units crossing a kink", "used in fit")]
        for h, r, c, u in zip(self.steps, self.remainders, self.crossed, self.used, strict=False):
            lines.append((fmt(h), fmt(r), str(c), "yes" if u else "no"))
        order = "-" if self.order is None else f"{self.order:.2f}"
        verdict = "inconclusive" if self.inconclusive else ("ok" if self.ok else "FAIL")
        head = (
            f"taylor check: {verdict}  (fitted order {order}: about 2 when the "
            "gradient is right, about 1 when it is wrong)"
        )
        return "\n".join([head, render_table(lines), *self.notes])


# The fitted order must exceed this: 2 for a right gradient, 1 for a wrong one.
ORDER_THRESHOLD = 1.5


def _fit_order(steps, remainders, use):
    h = np.log(np.asarray(steps)[use])
    r = np.log(np.asarray(remainders)[use])
    return float(np.polyfit(h, r, 1)[0])


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

    Points whose step crossed a kink, or whose remainder is at rounding level, are left out of the fit;
    if fewer than 3 remain along v, -v is tried; if crossings are everywhere (a large network, where they
    are dense and average out to O(h^2)), all points above rounding are used and the report says so.
    Costs 1 + ``points`` forward passes (twice that when -v is tried).
    """
    problem = _Problem(all_weights, all_biases, net_input, y, activation, loss)
    gradient = _checked_gradient(gradients, problem)
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    (v,) = make_directions(problem, gradient, 1, generator)
    dd = _dot(v, gradient)
    steps = tuple(float((TAYLOR_START if start is None else start) * 0.5**j) for j in range(int(points)))
    notes = []
    if not np.isfinite(dd):
        return TaylorReport(steps, (), (), (), None, False, 1, ("the gradient contains NaN or inf",))
    for sign in (1, -1):
        values = [problem.loss_at(v, sign * h) for h in steps]
        remainders = tuple(
            abs(L - problem.base_loss - sign * h * dd) for h, (L, _) in zip(steps, values, strict=False)
        )
        crossed = tuple(int(c) for _, c in values)
        above = np.array(remainders) > problem.noise
        clean = above & (np.array(crossed) == 0)
        if clean.sum() >= 3:
            use = clean
            break
    else:
        use = above
        if crossed[-1] * 8 >= crossed[0]:
            # The crossings did not thin out like h as h shrank 2^(points-1)-fold: units sit exactly on their
            # kinks on both sides of v, and the remainder is O(h) there whatever g is.
            notes.append(
                "units sit exactly on their kinks along +v and -v: the remainder is O(h) at every "
                "step, so the order says nothing; use fd=central (entrywise, one-sided at kinks)"
            )
            order = _fit_order(steps, remainders, use) if use.sum() >= 2 else None
            return TaylorReport(
                steps,
                remainders,
                crossed,
                tuple(bool(u) for u in use),
                order,
                True,
                sign,
                tuple(notes),
                inconclusive=True,
            )
        notes.append(
            "kinks crossed at every step along +-v, ever fewer as h shrinks: fitted over all points (in "
            "a large network the crossings are dense and add O(h^2) on average)"
        )
    if use.sum() < 2:
        ok = bool(max(remainders) <= problem.noise)
        notes.append(
            "the remainder is at rounding level at every step: the loss is linear along v and "
            + ("g agrees" if ok else "no order can be fitted")
        )
        return TaylorReport(
            steps, remainders, crossed, tuple(bool(u) for u in use), None, ok, sign, tuple(notes)
        )
    order = _fit_order(steps, remainders, use)
    return TaylorReport(
        steps,
        remainders,
        crossed,
        tuple(bool(u) for u in use),
        order,
        order > ORDER_THRESHOLD,
        sign,
        tuple(notes),
    )
