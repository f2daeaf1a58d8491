"""The finite-difference witness of the three-way check: the kink rule, and the floor of its rounding."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..maths.losses import loss_gradient, loss_term_magnitudes
from ..tolerances import (
    FD_ACTIVATION_ULPS,
    FD_CURVATURE_SHARE,
    FD_LOSS_ULPS,
    FD_ROUNDING_FACTOR,
    tolerance_for,
)
from .fd_limits import DEFAULT_MEMORY
from .fd_plan import perturbation_steps, split, split_flat
from .finite_diff import fd_gradients, fd_sweep


def rounding_per_layer(weights, target, act, loss: str, forward_pass) -> list[float]:
    """``E[k]``: a bound on the rounding that one perturbed evaluation of the loss carries, for a perturbation
    joining at layer k (each entry of Omega_k, beta_k), in absolute units of the loss.

    The batch adds each change to the base pass, f_k + df_k, and a(f_k + df_k) - h_{k+1}: each rounds to
    eps of |f_k| and of |h_{k+1}| (a few eps for a transcendental a), however small the change, and each
    loss term rounds to eps of its operands (``losses.loss_term_magnitudes``); the layers below k are the
    base pass, the same in every evaluation. Carried to the loss to first order, an error e in f_k moves it
    by delta_k e: bounded here by a backward pass over magnitudes, m_K = |dL/df_K|,
    m_{k-1} = |a'(f_{k-1})| (|Omega_k|^T m_k), so no cancellation of the true deltas is counted on, and the
    backward pass under test is not used. A difference quotient over a step s then carries up to
    2 E[k] / (2 s) (central) or 2 E[k] / s (one-sided): the floor below which it cannot tell gradients apart.
    """
    net_output, all_f, all_h = forward_pass
    eps = float(np.finfo(weights[0].dtype).eps)
    # float32 magnitudes are carried in float64: products of large ones could overflow float32
    cast = (lambda a: a) if weights[0].dtype == np.float64 else (lambda a: np.asarray(a, np.float64))
    last = len(weights) - 1
    per_layer = [0.0] * (last + 1)
    with np.errstate(over="ignore", invalid="ignore"):
        m = np.abs(cast(loss_gradient(loss, net_output, target)))
        total = FD_LOSS_ULPS * float(cast(loss_term_magnitudes(loss, net_output, target)).sum())
        for k in reversed(range(last + 1)):
            total += float(np.vdot(m, np.abs(cast(all_f[k]))))
            per_layer[k] = total
            if k > 0:
                g = np.abs(cast(weights[k])).T @ m  # bounds |dL/dh_k|, h_k = a(f_{k-1})
                total += FD_ACTIVATION_ULPS * float(np.vdot(g, np.abs(cast(all_h[k]))))
                m = g * cast(act.slope(all_f[k - 1]))  # every a here is non-decreasing: a' >= 0
    return [eps * e for e in per_layer]


def rounding_floor(per_layer, all_steps, method: str):
    """The per-entry floor of the difference quotients, ``[floors of weights, floors of biases]`` (float64
    arrays of the parameters' shapes), from ``rounding_per_layer`` and the steps of ``perturbation_steps``."""
    share = FD_ROUNDING_FACTOR * (1.0 if method == "central" else 2.0)  # 2 E / 2s, or 2 E / s
    floors = [share * e / np.asarray(steps, np.float64)
              for e, steps in zip(per_layer, all_steps, strict=True)]  # fmt: skip
    return [[f[:, :-1] if f.ndim else float(f) for f in floors],
            [f[:, -1:] if f.ndim else float(f) for f in floors]]  # fmt: skip


class FdWitness(NamedTuple):
    """Finite differences with the kink rule (see ``fd_witness``).

    ``values``: the gradient pair [weights, biases], one-sided differences beside kinks; ``rtol``/``atol``:
    scalars, or per-entry arrays (the forward tolerance beside kinks); ``include``: masks of the entries
    compared, ``sided``: masks of those compared one-sided (both None when no entry crossed a kink); and
    the counts of entries that ``crossed`` a kink, were compared ``one_sided``, or ``excluded``.
    """

    values: list
    rtol: object
    atol: object
    include: list | None
    sided: list | None
    crossed: int = 0
    one_sided: int = 0
    excluded: int = 0
    floor: list | None = None  # [weights, biases]: per-entry floors (rounding, and truncation), absolute
    rounding: float = 0.0  # the largest entry's rounding floor alone (``rounding_floor``)
    flat: np.ndarray | None = None  # where no kink was crossed: values as Omega_0, beta_0, ... end to end


def fd_witness(weights, biases, target, act, loss, forward_pass, method, step, *, floor: bool = True,
               base_terms=None) -> FdWitness:
    """Finite differences by ``method`` with the kink rule, on checked arrays (see ``fd_gradients``): an entry
    whose difference crossed a kink takes the one-sided difference of a side where no unit changes state,
    with the forward tolerance; entries that cross on both sides are excluded.

    ``floor``: also the per-entry floor below which the differences cannot resolve (their rounding,
    ``rounding_floor``, and for central differences their truncation, bounded by the gap between the
    one-sided quotients), to be added to the absolute tolerance. It only loosens a comparison, so a caller
    may first compare without it (``floor=False``, cheaper) and ask for it when that comparison fails.
    ``base_terms``: the unperturbed loss terms, when the caller has them (``fd_sweep``)."""
    dtype = weights[0].dtype
    all_steps = perturbation_steps(weights, biases, dtype, method, step)
    every, every_kink, curve = fd_sweep(weights, biases, target, act, loss, forward_pass, method, step, True,
                                        DEFAULT_MEMORY, floor, all_steps, base_terms)  # fmt: skip
    flat, fd_w, fd_b = split_flat(every, weights)
    values = [fd_w, fd_b]
    main = tolerance_for(dtype, method)
    rounding = 0.0
    if floor:
        per_layer = rounding_per_layer(weights, target, act, loss, forward_pass)
        floor = rounding_floor(per_layer, all_steps, method)
        rounding = max(e / float(np.min(steps)) for e, steps in zip(per_layer, all_steps, strict=True))
        rounding *= FD_ROUNDING_FACTOR * (1.0 if method == "central" else 2.0)  # the largest entry's floor
        if curve is not None:  # the central quotient's truncation, bounded by the one-sided ones' gap
            floor = [[f + FD_CURVATURE_SHARE * c for f, c in zip(pf, pc, strict=True)]
                     for pf, pc in zip(floor, split(curve, weights), strict=True)]
    else:
        floor = None
    crossed = int(np.count_nonzero(every_kink))
    if crossed == 0:
        return FdWitness(values, main.rtol, main.atol, None, None, floor=floor, rounding=rounding,
                         flat=flat.astype(np.float64, copy=False))
    kinks = split(every_kink, weights)
    if floor is not None:  # beside a kink: the one-sided difference's rounding floor, at its own steps
        side_steps = perturbation_steps(weights, biases, dtype, "forward", None)
        side_floor = rounding_floor(per_layer, side_steps, "forward")
        floor = [[np.where(k, s, m) for k, s, m in zip(pk, ps, pm, strict=True)]
                 for pk, ps, pm in zip(kinks, side_floor, floor, strict=True)]
    side = tolerance_for(dtype, "forward")
    rtol = [[np.where(k, side.rtol, main.rtol) for k in part] for part in kinks]
    atol = [[np.where(k, side.atol, main.atol) for k in part] for part in kinks]
    remaining = [[k.copy() for k in part] for part in kinks]
    one_sided = 0
    for other in ("forward", "backward"):
        if other == method:
            continue
        o_w, o_b, (ok_w, ok_b) = fd_gradients(
            weights, biases, target, act, loss, forward_pass, method=other, return_kinks=True
        )
        for part, (o_vals, o_kinks) in enumerate(((o_w, ok_w), (o_b, ok_b))):
            for layer, (vals, k) in enumerate(zip(o_vals, o_kinks, strict=False)):
                usable = remaining[part][layer] & ~k
                if usable.any():
                    values[part][layer] = np.where(usable, vals, values[part][layer])
                    remaining[part][layer] = remaining[part][layer] & k
                    one_sided += int(usable.sum())
    include = [[~r for r in part] for part in remaining]
    sided = [[k & ~r for k, r in zip(pk, pr, strict=False)] for pk, pr in zip(kinks, remaining, strict=False)]
    excluded = sum(int(r.sum()) for part in remaining for r in part)
    return FdWitness(values, rtol, atol, include, sided, crossed, one_sided, excluded, floor, rounding)
