"""Naming the bug behind a wrong leaf of any user's gradient, on evidence: a factor, an L2 term, a sign, ...

Each pattern is claimed only when it explains every compared entry of the leaf to the diagnosis tolerance
(``tolerances``: a known bug is exact up to rounding, a coincidence is not), and only with at least
``MIN_SUPPORT`` entries that are not 0 to read it from:

- the transpose of the right gradient (the shape swapped, or a square leaf transposed);
- the right gradient with its sign flipped;
- a constant factor c across the leaf, named when it is 1/N or N (the mean where the loss sums, or the sum
  where it averages), 2 or 1/2;
- a difference of exactly c * theta: an L2 term missing (c < 0: lambda = -c), extra or counted twice;
- another leaf's gradient returned in this leaf's place;
- all zeros where the gradient is not.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..tolerances import FACTOR_RTOL, MAX_N, MIN_SUPPORT, SUPPORT_RTOL, agree, param_rtol, tolerance_for


def _close(actual, candidate, include, tol, scale, allowance) -> bool:
    """Every compared entry of ``actual`` is ``candidate`` to the diagnosis tolerance."""
    atol = tol.atol + (0 if allowance is None else allowance / scale)
    ok = agree(actual, candidate, rtol=tol.rtol, atol=atol, scale=scale)
    return bool(np.all(ok[include]))


def describe_factor(c: float, rtol: float = FACTOR_RTOL) -> str:
    """c in words: "1/64", "2", "-1", a fraction, or the number (named within ``rtol``, relatively)."""
    for value, text in ((2.0, "2"), (0.5, "1/2"), (-1.0, "-1")):
        if abs(c - value) <= rtol * abs(value):
            return text
    if c and abs(c) < 1:
        n = round(1 / c)
        if n and abs(1 / c - n) <= rtol * abs(n):
            return f"1/{n}" if n > 0 else f"-1/{-n}"
    if abs(c) >= 1:
        n = round(c)
        if abs(c - n) <= rtol * abs(n):
            return str(n)
    fraction = Fraction(c).limit_denominator(1000)
    return str(fraction) if abs(c - float(fraction)) <= rtol * abs(c) else f"{c:.6g}"


def _factor_story(name: str, c: float, rtol: float) -> str:
    shown = describe_factor(c, rtol)
    if "/" in shown and not shown.startswith("-") and 1 < round(1 / c) <= MAX_N and shown != "1/2":
        n = round(1 / c)
        return (f"{name} is {shown} times the right gradient, a constant factor across the leaf: if the "
                f"batch has N = {n} examples, a mean where the loss sums (or 1/N applied twice)")
    if shown.isdigit() and 2 < int(shown) <= MAX_N:
        return (f"{name} is {shown} times the right gradient, a constant factor across the leaf: if the "
                f"batch has N = {shown} examples, a sum where the loss averages (the 1/N is missing)")
    return f"{name} is {shown} times the right gradient: a constant factor across the leaf"


def diagnose_leaf(name: str, actual, expected, theta, *, others=None, include=None, allowance=None,
                  dtype="float64") -> str | None:
    """One sentence naming the bug in leaf ``name``, or None when no pattern fits.

    ``actual`` what the user returned (any shape), ``expected`` the reference gradient and ``theta`` the
    parameter (both of the leaf's shape, float64); ``others``: {name: reference gradient} of the other
    leaves; ``include``: the compared entries (None: all); ``allowance``: absolute per-entry allowance of
    the reference (a finite-difference floor)."""
    tol = tolerance_for(dtype, "diagnosis")
    rtol = param_rtol(dtype)  # how closely a factor read off the numbers must be 1/N, 2, ... to be named
    expected = np.asarray(expected, np.float64)
    try:
        actual = np.asarray(actual, np.float64)
    except (TypeError, ValueError):
        return None
    include = np.ones(expected.shape, bool) if include is None else include
    scale = float(np.max(np.abs(expected[include]), initial=0.0)) or 1.0
    # An entry of the reference far below the leaf's largest value (yours or the reference's) is noise of
    # the witness (a finite difference of a zero gradient): no support for a claim.
    yours = float(np.max(np.abs(actual), initial=0.0)) if np.all(np.isfinite(actual)) else scale
    support = int(np.count_nonzero(np.abs(expected[include]) > SUPPORT_RTOL * max(scale, yours)))
    if expected.ndim == 2 and actual.shape == expected.T.shape and expected.shape != expected.T.shape:
        if _close(actual.T, expected, include, tol, scale, allowance):
            return (f"{name} is the transpose of the right gradient (shape {actual.shape}, expected "
                    f"{expected.shape}): the product was taken in the other order")
        return None
    if actual.shape != expected.shape or not np.all(np.isfinite(actual)):
        return None
    a, e = actual[include], expected[include]
    if support >= 1 and not np.any(a) and np.any(e):
        return f"{name} is all zeros where the right gradient is not: the leaf's gradient was never filled in"
    if (expected.ndim == 2 and expected.shape[0] == expected.shape[1] and support >= MIN_SUPPORT
            and not _close(expected.T, expected, include, tol, scale, allowance)
            and _close(actual.T, expected, include, tol, scale, allowance)):
        return f"{name} is the transpose of the right gradient: the product was taken in the other order"
    if support >= MIN_SUPPORT:
        c = float(np.vdot(a, e) / np.vdot(e, e))
        if abs(c - 1) > rtol and np.isfinite(c) and c and _close(actual, c * expected, include, tol,
                                                                          scale, allowance):
            if abs(c + 1) <= rtol:
                return f"{name} has the sign flipped: it is minus the right gradient"
            return _factor_story(name, c, rtol)
    theta = np.asarray(theta, np.float64)
    t, d = theta[include], a - e
    if np.count_nonzero(t) >= MIN_SUPPORT and np.any(d):
        c = float(np.vdot(d, t) / np.vdot(t, t))
        if c and np.isfinite(c) and _close(actual, expected + c * theta, include, tol, scale, allowance):
            shown = describe_factor(abs(c), rtol)
            if c < 0:
                return (f"{name} differs from the right gradient by exactly c * theta with c = -{shown}: the "
                        f"L2 term's gradient lambda * theta is missing (lambda = {shown})")
            return (f"{name} differs from the right gradient by exactly c * theta with c = {shown}: an L2 "
                    f"term the loss does not have, or counted twice (its gradient is lambda * theta)")
    for other, gradient in (others or {}).items():
        if other == name:
            continue
        gradient = np.asarray(gradient, np.float64)
        if gradient.shape == expected.shape and np.any(gradient) and _close(
                actual, gradient, include, tol, max(scale, float(np.max(np.abs(gradient)))), allowance):
            return f"{name} equals the gradient of {other}: the leaves were swapped or copied"
    return None
