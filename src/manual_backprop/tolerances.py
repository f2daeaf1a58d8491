"""Every tolerance and threshold of the project, in one place, each with its reason.

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

from collections.abc import Mapping
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

# Directional check and Taylor test (directional.py, taylor.py): steps and thresholds, each with its reason.
# Directional step, relative to the parameters' norm: a network of millions of units then rarely has a
# unit within reach of its kink, while float64 rounding (eps |L| / s) stays near 1e-8 of |L|.
DIRECTIONAL_STEP = 1e-8
SHRINK, MAX_SHRINKS = 0.1, 2  # near a kink the step shrinks x 1/10, twice at most, before going one-sided
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


def tolerance_for(dtype, kind: str = "analytic") -> Tolerance:
    """The tolerance for comparing gradients of ``dtype`` by ``kind`` ("analytic", "central", ...)."""
    key = (np.dtype(dtype).name, kind)
    if key not in TOLERANCES:
        choices = sorted({k for _, k in TOLERANCES})
        raise ValueError(
            f"no tolerance for {key}; dtype float64 or float32, kind one of {', '.join(choices)}")
    return TOLERANCES[key]


def check_tolerance(value, name: str):
    """``value`` (a number, an array, or nested lists of them) unchanged if every entry is a number >= 0.

    A negative or NaN tolerance would make every comparison pass (or fail) for nonsense reasons: a
    ``ValueError`` names the argument and the value.
    """
    parts = list(value.values()) if isinstance(value, Mapping) else value
    parts = parts if isinstance(parts, (list, tuple)) else [parts]
    for part in parts:
        if isinstance(part, (list, tuple, Mapping)):
            check_tolerance(part, name)
            continue
        try:
            array = np.asarray(part, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number >= 0, got {part!r}") from None
        if array.size and not np.all(array >= 0):  # also False for NaN
            shown = part if array.ndim == 0 else array[~(array >= 0)].flat[0]
            raise ValueError(f"{name} must be a number >= 0 (not negative, not NaN), got {shown!r}")
    return value


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


def agree(actual, expected, *, rtol, atol, scale: float) -> np.ndarray:
    """The agreement formula, the only place it is written: which entries satisfy
    ``|actual - expected| <= atol * scale + rtol * |expected|`` (a boolean array of the broadcast shape;
    NaN agrees with nothing). ``rtol``/``atol`` are numbers or per-entry arrays."""
    with np.errstate(invalid="ignore", over="ignore"):
        return np.abs(actual - expected) <= atol * scale + rtol * np.abs(expected)


# How many estimated standard deviations of rounding error two computations of the same gradient may differ
# by. Measured over random and notebook-style networks of depth 0 to 6, widths 3 to 200, batches 1 and 8,
# every activation and loss, in float32 against a float64 reference: the worst error of manual backprop or
# of jax.grad was 2.5 sigma, and 7.3 sigma only where a softmax saturated so far that float32 underflowed;
# 32 covers the difference of two such errors with room. The largest |entry| of a tensor stayed above 6e3
# sigma on the random networks (so an O(1) bug exceeds the allowance by 100x), and above 12 sigma on the
# worst notebook-style one (D = 200, saturated softmax), where float32 itself can tell little apart.
ROUNDING_SIGMAS = 32.0


def rounding_allowance(
    weights, all_f, all_h, dl_df_last, derivative, dtype, *, loss_derivative=None, sigmas=ROUNDING_SIGMAS
):
    """Per-entry allowance for rounding in a gradient computed in ``dtype``: ``sigmas`` x an estimate of
    the standard deviation of its rounding error. Returns ``(allowance_w, allowance_b)``, lists of arrays
    shaped like the parameters (Omega_k: (D_{k+1}, D_k), beta_k: (D_{k+1}, 1)), in float64.

    Arguments are those of a forward and backward pass (column vectors, N examples): ``weights[k]``
    (D_{k+1}, D_k); ``all_f[k]`` (D_{k+1}, N) the pre-activations; ``all_h[k]`` (D_k, N) the activations
    (``all_h[0]`` the input); ``dl_df_last`` (D_o, N) = dL/df_K; ``derivative`` a'(f), elementwise;
    ``loss_derivative`` the map f_K -> dL/df_K (e.g. ``lambda z: loss_gradient(loss, z, target)``), used
    to see how far dL/df_K moves when f_K carries rounding (None: as least squares, which moves it 1:1; a
    saturated softmax or logistic output moves it far less).

    Why: a float32 gradient entry's rounding error grows with the size of the computation (the widths
    summed over, the depth it went through, the magnitudes that cancelled), not with the entry or max|g|.
    Rounding errors are modelled as independent, each product or sum rounded with relative error u =
    eps / 2 (an inner product of n terms: variance n u^2 sum of squared terms), and their variances are
    carried through the forward pass, into dL/df_K, and back through the backward pass with the squares
    of the weights and of a'(f) (one extra "magnitude" backprop). Where rounding of f could move a'(f)
    (a kink, or a steep a''), the change of a'(f) over 3 sigma of f is included; a'(f) and a(f) themselves
    are taken to be computed to 4 u, absolutely as well as relatively (to 4 u of 1 for a'(f), of the layer's
    largest |h| for a(f)). In float64 the allowance is ~1e-9 times the float32 one.
    """
    u = float(np.finfo(dtype).eps) / 2
    w = [np.asarray(x, np.float64) for x in weights]
    w2 = [x * x for x in w]
    f = [np.asarray(x, np.float64) for x in all_f]
    h = [np.asarray(x, np.float64) for x in all_h]
    h2 = [x * x for x in h]
    last, columns = len(w) - 1, h[0].shape[1]
    var_h, var_f = [np.zeros_like(h[0])], []
    for k in range(last + 1):  # forward: f_k = Omega_k h_k + beta_k, h_{k+1} = a(f_k)
        var_f.append(w2[k] @ var_h[k] + u * u * (w[k].shape[1] * (w2[k] @ h2[k]) + f[k] ** 2))
        if k < last:
            # a(f) to 4 u of itself, and of the layer's largest |h|: a shifted formula such as sigmoid's
            # 0.5 + 0.5 tanh(f / 2) errs absolutely where a(f) is tiny
            var_h.append(derivative(f[k]) ** 2 * var_f[k] + (4 * u) ** 2 * (h2[k + 1] + h2[k + 1].max()))
    delta = np.asarray(dl_df_last, np.float64)
    # dL/df_K moves with the output f_K's rounding (measured over 3 sigma; the losses are smooth, so a third
    # of that is one sigma), and its own evaluation rounds: measured as dtype against float64.
    if loss_derivative is None:
        var_delta = var_f[last] + (4 * u) ** 2 * delta**2
    else:
        reach = 3 * np.sqrt(var_f[last])
        with np.errstate(all="ignore"):
            at = [np.asarray(loss_derivative(z), np.float64) for z in (f[last] + reach, f[last] - reach)]
            moved = np.maximum(np.abs(at[0] - delta), np.abs(at[1] - delta)) / 3
            rounded = np.abs(np.asarray(loss_derivative(f[last].astype(dtype)), np.float64) - delta)
        moved = np.where(np.isfinite(moved), moved, np.sqrt(var_f[last]))
        var_delta = moved**2 + np.where(np.isfinite(rounded), rounded, 0) ** 2 + (4 * u) ** 2 * delta**2
    var_w, var_b = [None] * (last + 1), [None] * (last + 1)
    for k in reversed(range(last + 1)):  # backward: dL/dOmega_k = delta_k h_k^T, dL/dbeta_k = delta_k 1
        d2 = delta * delta
        var_w[k] = var_delta @ h2[k].T + d2 @ var_h[k].T + u * u * columns * (d2 @ h2[k].T)
        var_b[k] = var_delta.sum(axis=1, keepdims=True) + u * u * columns * d2.sum(axis=1, keepdims=True)
        if k > 0:
            back = w[k].T @ delta
            slope = derivative(f[k - 1])
            reach = 3 * np.sqrt(var_f[k - 1])
            moved = np.maximum(np.abs(derivative(f[k - 1] + reach) - slope),
                               np.abs(derivative(f[k - 1] - reach) - slope))  # fmt: skip
            var_delta = (
                slope**2 * (w2[k].T @ var_delta + u * u * w[k].shape[0] * (w2[k].T @ d2))
                + (moved * back) ** 2
                + (4 * u) ** 2 * (1 + slope**2) * back**2
            )
            delta = back * slope
    return [sigmas * np.sqrt(v) for v in var_w], [sigmas * np.sqrt(v) for v in var_b]


# ------------------------------------------------------------------ the rounding floor of finite differences
# A difference quotient cannot resolve less than the rounding of the losses it subtracts divided by its step
# (fd_witness.rounding_per_layer: eps times the magnitudes each perturbed evaluation rounds, carried to the
# loss by a backward pass over magnitudes). The table's tolerances above are relative to the gradient's
# scale; at large targets, inputs or weights the loss (~|y|^2) grows faster than the gradient (~|y|), and
# this floor, added per entry to the absolute part, is what keeps a right gradient from failing.
# Each loss term rounds to a few eps of its operands (a subtraction, a square, a logaddexp): 4 eps.
FD_LOSS_ULPS = 4.0
# a(f) of a transcendental activation (tanh, sigmoid via exp and logaddexp) is good to a few eps; relu and
# leaky relu are exact. 4 eps covers both, as ``rounding_allowance`` assumes.
FD_ACTIVATION_ULPS = 4.0
# The bound adds magnitudes (worst case, no cancellation): over 12 random networks of each activation and
# loss at targets x1e6, inputs x1e6, weights x1e3 and x1e-3 (tests/test_fd_floor.py's sweep, 3x larger), the
# central quotient's error stayed below 0.19 of it in float64 and 0.23 in float32 (0.5 where a step crosses a
# soft kink, the truncation bound below), and right gradients used at most 0.14 (float64) and 0.45 (float32)
# of the whole allowance. A factor of 1 keeps that margin; a bug of 1% of the largest entry still exceeds
# the allowance 14x (targets x1e6), 20x (inputs x1e6), 130x (weights x1e-3), 560x (unscaled) in float64.
FD_ROUNDING_FACTOR = 1.0
# Truncation: a central quotient (q+ + q-) / 2 errs by at most half the gap |q+ - q-| of the one-sided
# quotients wherever the loss keeps the sign of its curvature over [theta - s, theta + s] (its derivative
# is then monotone, so between q- and q+), and a step that carries a logit right across the soft kink of a
# softplus loss (float32 steps of a relative 5e-3, inputs of 1e6) meets that bound: measured at 0.5 of the
# gap. The whole gap is allowed: 2x for the gap's own rounding and for windows where the curvature changes
# sign. Far from kinks the gap is s |L''|, far below the table's rtol; where it is the gradient's size the
# entry is honestly not resolved.
FD_CURVATURE_SHARE = 1.0


# ------------------------------------------------------------------ thresholds of the checks and diagnoses

# A full finite-difference check pushes every parameter's perturbation through the layers above it; past
# this many multiply-adds (about a second of NumPy) the three-way check switches to directional and says so.
FD_BUDGET = 2e9
# Past these a full finite-difference gradient is refused (numerical_gradients, and three_way_check when its
# budget does not switch it to directional): 1e12 multiply-adds is some minutes of NumPy (about 500 s at
# the 2e9 per second above), and one perturbation's working arrays past 1 GiB (with the default max_memory)
# would exhaust a laptop long before the answer; the directional check costs a few forward passes instead.
FD_MAX_COST = 1e12
FD_MAX_BLOCK_BYTES = 2**30

# A tensor returned in a lower precision than the parameters' is "right to that precision" when every
# entry is within this many of its eps of the right value (relative to the entry and to the gradient's
# scale): a cast of the right float64 gradient is within 1/2, one computed throughout in float32 within a
# few; a bug is off by O(1).
DTYPE_EPS_FACTOR = 64

# A wrong tensor that is c times the right one: c is named (2, 1/2, -1, 1/N) when within this relative
# distance of the named value; a bug's factor is exact up to rounding, far closer than this.
FACTOR_RTOL = 1e-6

# ... and c counts as 1 (no scaling at all: the tensor is right to its precision) within this many eps.
UNIT_FACTOR_EPS = 8

# The scale of a bug's candidate array of all zeros: a positive floor so that only exact zeros match it.
TINY_SCALE = 1e-300

# The columns of a probability (or one-hot) target for softmax cross-entropy must sum to 1 within this:
# loose enough for probabilities written in float32 or rounded to a few digits, tight enough to catch a
# column that is not a distribution.
TARGET_SUM_ATOL = 1e-6


# --------------------------------------------------------------------------- derivatives beyond the gradient
# The JVP, H v, G v, per-example and input gradients (derivative_check.py), judged by the same formula, with
# scale = the largest |entry| of the JAX result over all its tensors (for the loss's JVP dL, a dot product
# whose terms may cancel: the sum of its terms' magnitudes). The finite-difference witnesses
# (derivative_fd.py) run in float64 whatever the dtype and add their own rounding estimate per entry
# (ROUNDING_ULPS there) to the absolute part. Measured worst errors over 60 random networks (depth 0 to 6,
# widths 1 to 12, batches 1 to 6, every activation and loss, each dtype) and, in float32, 15 more of widths
# 16 to 64 and batches up to 16; the figures are shares of the scale.
TOLERANCES.update({
    ("float64", "derivative_analytic"): Tolerance(
        1e-10, 1e-12, "manual vs JAX: the same sums in other orders; measured <= 1.6e-15 (dL: 7e-13 |dL|)"),
    ("float32", "derivative_analytic"): Tolerance(
        1e-3, 1e-4,
        "manual vs JAX in float32, two passes each way for H v and G v: measured <= 1.3e-6 (widths <= 12) "
        "and <= 8e-7 (widths 16-64); 1e-4 leaves 80x for wider networks, still 1e4x below an O(1) bug"),
    ("float64", "derivative_central"): Tolerance(
        1e-5, 1e-6,
        "vs central differences (s = 6e-6 relative): O(s^2) truncation; measured <= 9e-9 for H v and G v, "
        "3e-10 per-example; the larger input (7e-8) and dL errors are rounding, allowed for apart"),
    ("float32", "derivative_central"): Tolerance(
        1e-3, 1e-4, "a float32 derivative vs a float64 difference: float32's rounding, as analytic"),
    ("float64", "derivative_one_sided"): Tolerance(
        1e-3, 1e-4, "a one-sided difference beside a kink (s = 1.5e-8 relative) errs by O(s) x the next one"),
    ("float32", "derivative_one_sided"): Tolerance(
        1e-3, 1e-4, "float32 rounding (as analytic) and the O(s) error of the one-sided float64 difference"),
})

# A bug pattern's parameter (c, lambda, lr, a clip bound) read off different tensors or networks must agree
# to this relative tolerance: only rounding separates the readings, while coincidences differ at the first
# digits. A reading by cancellation (actual - right, for lambda) keeps about half the digits, hence
# sqrt(eps) where that is looser (float32: 3e-4).
PARAM_RTOL = 1e-6


def param_rtol(dtype) -> float:
    return max(PARAM_RTOL, float(np.sqrt(np.finfo(dtype).eps)))


# Independent entries that must agree before a parametric pattern (one number read off the data) is claimed:
# one entry fixes the parameter, so a claim needs one more; a fixed pattern (no parameter) needs one.
MIN_SUPPORT = 2
# A reference entry below this fraction of a leaf's largest value (the user's or the reference's) supports
# no claim about a user's gradient: a finite difference of a zero gradient is rounding noise (~1e-11).
SUPPORT_RTOL = 1e-8

# The per-example witness differences each example's loss along every parameter: its cost is that of a full
# central-difference gradient (fd_limits.fd_cost), paid by a slower per-column path (measured: about 0.5 s
# per 1e9 multiply-adds on 2 cores). Past this, about a minute, the check is refused with the estimate.
PER_EXAMPLE_FD_MAX_COST = 1e11


# ------------------------------------------------------------------ any user's gradient (user_fd, user_check)
# Central differences of a user's loss at the step s = cbrt(eps) max(1, |theta|) (fd_limits.default_step),
# repeated at s x USER_FD_SHRINK: a smooth loss's quotient moves by O(s^2) between the two (and the gap of the
# one-sided quotients shrinks 4x with the step), while a kink within reach moves it by O(1): the entry is
# not smooth there. Such an entry is retried at s x USER_FD_SHRINK^2, and is excluded if that moves it too.
USER_FD_SHRINK = 0.25
# Rounding of a difference quotient of a loss we cannot see inside: each evaluation errs by a few ulps of
# its magnitude per operation; 64 ulps of max |L| per evaluation, as derivative_fd.ROUNDING_ULPS measured.
USER_FD_ULPS = 64.0
# The coordinate sweep costs 4 evaluations per parameter: past this many seconds (estimated from timed
# evaluations) the check differences along USER_FD_DIRECTIONS directions per leaf instead, and says so.
USER_FD_SECONDS = 20.0
# A loss that runs under jax.vmap is differenced in batches only when the loop would take longer than this:
# compiling the batched loss costs about 0.3 s on 2 cores, more than a short loop saves.
USER_FD_BATCH_SECONDS = 1.0
USER_FD_DIRECTIONS = 2
# jax_loss_fn (or loss_fn run on JAX arrays) is the same function as loss_fn only if their values agree:
# both are float64 evaluations of one formula, good to ~1e-13 relative; float32 losses to ~1e-6. A
# different function (a missing term, another mean) differs at the first digits.
LOSS_MATCH_RTOL = {"float64": 1e-8, "float32": 1e-4}
# A factor c across a leaf is read as 1/N (a mean where the loss sums) or N (the reverse) for N up to this:
# batch sizes and counts; a larger integer is more likely a scale of the data than a reduction.
MAX_N = 100_000
