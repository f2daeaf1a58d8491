"""Every tolerance of the project, in one table, each with its reason.

Two gradients of the same tensor agree when, entry by entry,

    |actual - expected| <= atol * scale + rtol * |expected|,

where ``scale`` is the largest |expected| entry over the whole gradient (all layers, weights and biases):
rounding and finite-difference errors grow with the size of the gradient as a whole, not with the entry,
so an entry that is (nearly) 0 is judged against the gradient's scale, and a large one relatively.

The numbers were measured (``tests/test_agreement.py`` runs the same sweep): over random networks of depth
0 to 6, widths 1 to 16, batches 1 to 8, every activation and loss, the worst error seen was about 1e-15
(float64, manual vs JAX), 2e-6 (float32, manual vs JAX), 1e-9 (float64, central differences), 4e-7
(float64, forward), 4e-4 (float32, central) and 3e-3 (float32, forward) times ``scale``. Each bound below
leaves a margin of 10x to 1000x over that, and stays far below the O(1) relative error of a real bug.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    reason: str


# Keys: (dtype name, kind of comparison). "analytic" is manual backprop against jax.grad (or any two exact
# gradients); "central", "forward" and "backward" are an exact gradient against that finite difference.
# "diagnosis" (diagnose.py) compares a user's tensor with what a known bug would give, recomputed by us
# in another order of operations: bug patterns differ by O(1), so a few digits identify one.
# "directional" (directional.py) differences the loss along a direction v, evaluated in float64 whatever
# the parameters' dtype, against v . g: allowed = rtol |v . g| + atol sum|v_i g_i| + the loss's rounding
# (estimated there as 1e3 eps sum|loss terms| / step).
TOLERANCES = {
    ("float64", "analytic"): Tolerance(
        1e-10, 1e-12, "the same formulas summed in a different order differ by a few ulps per layer"),
    ("float32", "analytic"): Tolerance(
        1e-4, 1e-5, "float32 carries 7 digits; rounding compounds over the layers and the batch sum"),
    ("float64", "central"): Tolerance(
        1e-5, 1e-6,
        "central differences err by O(s^2) truncation + O(eps/s) rounding, about 1e-10 at s = 6e-6"),
    ("float32", "central"): Tolerance(
        3e-2, 1e-2,
        "the best float32 central difference keeps about 3 digits (eps^(2/3) = 2e-5 of the loss)"),
    ("float64", "forward"): Tolerance(
        1e-3, 1e-4, "a one-sided difference errs by O(s): half the step times the second derivative"),
    ("float32", "forward"): Tolerance(
        1e-1, 3e-2, "a one-sided float32 difference keeps about 2 digits (sqrt(eps) = 3e-4 of the loss)"),
    ("float64", "diagnosis"): Tolerance(
        1e-6, 1e-9, "a known bug's gradient, recomputed in another order, matches to far better than 1e-6"),
    ("float32", "diagnosis"): Tolerance(
        1e-3, 1e-4, "the same in float32, whose 7 digits compound over the layers"),
    ("float64", "directional"): Tolerance(
        1e-5, 1e-9, "truncation O(s^2) is negligible at s = 1e-8, rounding is added apart; g's is ~1e-15"),
    ("float32", "directional"): Tolerance(
        1e-3, 1e-3, "the loss is evaluated in float64, but g itself carries float32 rounding"),
    ("float64", "directional_one_sided"): Tolerance(
        1e-3, 1e-4, "a one-sided difference along v (used beside a kink) errs by O(s), as the forward kind"),
}
TOLERANCES[("float64", "backward")] = TOLERANCES[("float64", "forward")]
TOLERANCES[("float32", "backward")] = TOLERANCES[("float32", "forward")]
TOLERANCES[("float32", "directional_one_sided")] = TOLERANCES[("float64", "directional_one_sided")]


def tolerance_for(dtype, kind: str = "analytic") -> Tolerance:
    """The tolerance for comparing gradients of ``dtype`` by ``kind`` ("analytic", "central", ...)."""
    key = (np.dtype(dtype).name, kind)
    if key not in TOLERANCES:
        choices = sorted({k for _, k in TOLERANCES})
        raise ValueError(
            f"no tolerance for {key}; dtype float64 or float32, kind one of {', '.join(choices)}")
    return TOLERANCES[key]


def gradient_scale(gradients) -> float:
    """The largest |entry| over a gradient given as a (nested) list of arrays; 1.0 if all are 0 or not finite.

    ``gradients`` is a pair ``(all_dl_dweights, all_dl_dbiases)``, one list, or one array.
    """
    if isinstance(gradients, (list, tuple)):
        parts = [g for part in gradients for g in (part if isinstance(part, (list, tuple)) else [part])]
    else:
        parts = [gradients]
    largest = max((float(np.abs(g).max()) for g in map(np.asarray, parts) if g.size), default=0.0)
    return largest if 0 < largest < np.inf else 1.0


def within_tolerance(expected, actual, tolerance: Tolerance, scale: float) -> np.ndarray:
    """Boolean array: which entries of ``actual`` agree with ``expected`` (same shape) under ``tolerance``."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.abs(actual - expected) <= tolerance.atol * scale + tolerance.rtol * np.abs(expected)
