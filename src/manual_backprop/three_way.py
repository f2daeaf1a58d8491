"""The three-way check: manual backprop, ``jax.grad`` and a finite-difference witness, compared per layer.

The arguments are checked once, here; the forward pass runs once, and every witness then works on the
checked arrays: manual backprop (``backprop.backward``), the oracle (``oracle``'s unchecked entry) and
finite differences (``fd_witness.fd_witness``), or, for large networks, the directional / Taylor checks.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike

from ._types import Parameters
from .activations import get_activation
from .backprop import add_l2, backward, forward
from .compare import Comparison, compare_gradients, compare_pairs
from .derivative_check import DERIVATIVES, DerivativeReport, check_derivative
from .directional import _directional
from .directions import as_float64, check_count, loss_line, relative_step
from .fd_limits import (
    check_fd_size,
    check_method_and_step,
    check_step_resolves,
    fd_cost,
    per_perturbation_bytes,
)
from .fd_witness import FdWitness, fd_witness
from .losses import l2_penalty, loss_gradient, loss_terms
from .objective import objective_name
from .report import ThreeWayReport
from .taylor import _taylor
from .tolerances import (
    DIRECTIONAL_STEP,
    FD_BUDGET,
    FD_MAX_BLOCK_BYTES,
    gradient_scale,
    rounding_allowance,
    tolerance_for,
)
from .validate import (
    check_forward_finite,
    check_gradient_finite,
    check_loss_name,
    check_target,
    checked_problem,
)

FD_MODES = ("central", "forward", "backward", "directional", "taylor")


def _compare_fd(analytic, witness: FdWitness, label: str, main) -> Comparison:
    """The analytic gradient against finite differences, with per-entry tolerances beside kinks, and the
    differences' rounding floor (``fd_witness.rounding_floor``) added to each entry's absolute part."""
    scale = gradient_scale(analytic)
    sided = witness.sided
    one_sided = None if sided is None else [[int(np.count_nonzero(m)) for m in part] for part in sided]
    atol, notes = witness.atol, []
    if witness.floor is not None:
        def part_of(value, part, layer):
            return value[part][layer] if isinstance(value, list) else value

        atol = [[part_of(witness.atol, part, layer) + np.asarray(f) / scale for layer, f in enumerate(floors)]
                for part, floors in enumerate(witness.floor)]  # fmt: skip
        if witness.rounding > main.atol * scale:  # the floor goes beyond what the table allows for
            notes.append(f"finite differences resolve no better than {witness.rounding:.1e} here (the "
                         f"rounding of the differenced loss over the step, {witness.rounding / scale:.1e} of "
                         "the gradient's scale), added to the absolute tolerance")
    rows = compare_pairs(analytic, witness.values, rtol=witness.rtol, atol=atol, scale=scale,
                         include=witness.include, one_sided=one_sided)  # fmt: skip
    if sided is not None:
        notes.append("entries beside a kink: one-sided difference, forward tolerance")
    return Comparison(label, tuple(rows), main.rtol, main.atol, float(scale), tuple(notes))


def three_way_check(
    all_weights: Parameters,
    all_biases: Parameters,
    net_input: ArrayLike,
    y: ArrayLike,
    *,
    activation: str = "relu",
    loss: str = "least_squares",
    fd: str = "central",
    step: float | None = None,
    directions: int = 3,
    rng: int | np.random.Generator | None = 0,
    fd_budget: float = FD_BUDGET,
    derivative: str = "gradient",
    vector: object = None,
    output_activation: str | None = None,
    reduction: str = "sum",
    l2: float = 0.0,
) -> ThreeWayReport | DerivativeReport:
    """Manual vs JAX, manual vs finite differences, JAX vs finite differences, per layer and tensor.

    ``fd``: "central", "forward", "backward" (a difference per parameter; kinks handled as in
    ``report.CONVENTIONS``), "directional" or "taylor" (O(1) forward passes: see ``directional.py``). A full
    finite-difference check whose cost exceeds ``fd_budget`` multiply-adds (``float('inf')``: never), or
    one of whose perturbations would need more than ``tolerances.FD_MAX_BLOCK_BYTES`` of working arrays,
    switches to directional and says so; past ``tolerances.FD_MAX_COST`` (a budget raised past it) it is
    refused. A ``step`` too small to move the parameters is a ValueError naming the smallest usable one.

    ``derivative``: "gradient" (this check), or one of ``derivative_check.DERIVATIVES`` ("jvp", "hvp",
    "ggn", "per_example", "input"): the same three witnesses for that derivative (central differences with
    the kink rule; ``vector`` the tangent or v, random from ``rng`` when None), as a ``DerivativeReport``.

    ``output_activation``, ``reduction`` ("sum" or "mean" over the batch) and ``l2`` (a penalty
    (l2 / 2) sum ||Omega_k||^2) describe objectives other than the notebook's (see ``objective``).
    """
    loss = objective_name(loss, output_activation, reduction, l2)
    if derivative != "gradient":
        if not isinstance(derivative, str) or derivative not in DERIVATIVES:
            raise ValueError(f"unknown derivative {derivative!r}; choose one of gradient, "
                             f"{', '.join(DERIVATIVES)}")
        if fd != "central" or step is not None:
            raise ValueError(f"fd and step apply to the gradient; the {derivative!r} check uses central "
                             "differences with its own steps")
        return check_derivative(all_weights, all_biases, net_input, y, derivative=derivative,
                                activation=activation, loss=loss, vector=vector, rng=rng)
    if vector is not None:
        raise ValueError("vector is for derivative='jvp', 'hvp' or 'ggn'; the gradient takes none")
    from oracle.jax_network import gradients_of_checked  # the JAX import is paid only by the checks

    if fd not in FD_MODES:
        raise ValueError(f"unknown fd {fd!r}; choose one of {', '.join(FD_MODES)}")
    if fd == "taylor" and step is not None:
        raise ValueError("step does not apply to fd='taylor', which sweeps its own steps (pass step=None)")
    if fd in ("central", "forward", "backward"):
        check_method_and_step(fd, step)
    if isinstance(fd_budget, bool) or not isinstance(fd_budget, numbers.Real) or not fd_budget >= 0:
        raise ValueError(f"fd_budget must be a number of multiply-adds >= 0 (or float('inf')), got "
                         f"{fd_budget!r}")
    count = check_count(directions, "directions", 1)
    relative = relative_step(step if fd == "directional" else None, "step", DIRECTIONAL_STEP)
    act = get_activation(activation)
    check_loss_name(loss)
    weights, biases, x, target, dtype = checked_problem(all_weights, all_biases, net_input, y, loss)
    if fd in ("central", "forward", "backward"):
        check_step_resolves(step, weights, biases, dtype)
    notes = []  # the method, before anything is computed: a full check too large is switched or refused
    method = fd
    if fd in ("central", "forward", "backward"):
        cost = fd_cost(weights, x.shape[1], fd)
        memory = per_perturbation_bytes(weights, x.shape[1], dtype)
        if cost > fd_budget:
            method = "directional"
            notes.append(
                f"a full {fd} finite-difference check would cost {cost:.1e} multiply-adds (budget "
                f"{fd_budget:.1e}): switched to directional"
            )
        elif memory > FD_MAX_BLOCK_BYTES:
            method = "directional"
            notes.append(
                f"one perturbation of a full {fd} finite-difference check would need about "
                f"{memory / 2**30:.1f} GiB of working arrays (limit {FD_MAX_BLOCK_BYTES / 2**30:.0f} GiB): "
                "switched to directional"
            )
        else:
            check_fd_size(weights, x.shape[1], fd, cost=cost)  # a budget past FD_MAX_COST is no licence
    # Checked once here; every witness then runs on the checked arrays and this one forward pass.
    with np.errstate(over="ignore", invalid="ignore"):
        forward_pass = forward(weights, biases, x, act)
        net_output, all_f, all_h = forward_pass
        loss_value = float(loss_terms(loss, net_output, target).sum()) + l2_penalty(loss, weights)
    check_forward_finite(all_f, loss_value)
    dl_df_last = loss_gradient(loss, net_output, target)
    with np.errstate(over="ignore", invalid="ignore"):
        manual = backward(weights, all_f, all_h, dl_df_last, act)
        add_l2(manual, loss, weights)
    check_gradient_finite(*manual)
    oracle = gradients_of_checked(weights, biases, x, target, activation=activation, loss=loss)
    allowance = None
    if dtype == np.float32:  # rounding grows with the size of the computation; float64 keeps the table's
        allowance = rounding_allowance(weights, all_f, all_h, dl_df_last, act.derivative, dtype,
                                       loss_derivative=lambda z: loss_gradient(loss, z, target))  # fmt: skip
    manual_vs_jax = compare_gradients(oracle, manual, dtype=dtype, label="manual vs jax", allowance=allowance)
    sizes = (weights[0].shape[1],) + tuple(w.shape[0] for w in weights)
    common = dict(sizes=sizes, batch=int(x.shape[1]), dtype=dtype.name, activation=activation, loss=loss,
                  requested_fd=fd, step=None if step is None else float(step),
                  loss_value=loss_value, manual_vs_jax=manual_vs_jax,
                  net_output=net_output)  # fmt: skip
    if method in ("directional", "taylor"):
        # One line through theta serves both gradients; the loss along it is evaluated in float64.
        line = loss_line(weights, biases, x, check_target(y, loss, target.shape[0], x.shape[1], np.float64),
                         act, loss)  # fmt: skip
        if method == "directional":
            # A step given for per-parameter differences is absolute; the directional one is relative.
            check = _directional
            kwargs = dict(rng=rng, directions=count, step=relative)
        else:
            check, kwargs = _taylor, dict(rng=rng)
        return ThreeWayReport(
            **common,
            fd=method,
            manual_vs_fd=None,
            jax_vs_fd=None,
            manual_directional=check(line, as_float64(manual), **kwargs),
            jax_directional=check(line, as_float64(oracle), **kwargs),
            notes=tuple(notes),
            gradients={"manual": manual, "jax": oracle},
        )
    _, fd_step = check_method_and_step(method, step)
    main = tolerance_for(dtype, method)
    # The differences' floor (rounding, truncation) only loosens the comparison: it is computed, and the
    # comparison made again with it, only where the table's tolerance alone fails.
    witness = fd_witness(weights, biases, target, act, loss, forward_pass, method, fd_step, floor=False)
    manual_vs_fd = _compare_fd(manual, witness, "manual vs fd", main)
    jax_vs_fd = _compare_fd(oracle, witness, "jax vs fd", main)
    if not (manual_vs_fd.ok and jax_vs_fd.ok):
        witness = fd_witness(weights, biases, target, act, loss, forward_pass, method, fd_step, floor=True)
        manual_vs_fd = _compare_fd(manual, witness, "manual vs fd", main)
        jax_vs_fd = _compare_fd(oracle, witness, "jax vs fd", main)
    return ThreeWayReport(
        **common,
        fd=method,
        manual_vs_fd=manual_vs_fd,
        jax_vs_fd=jax_vs_fd,
        kinks_crossed=witness.crossed,
        kinks_one_sided=witness.one_sided,
        kinks_excluded=witness.excluded,
        notes=tuple(notes),
        gradients={"manual": manual, "jax": oracle, "fd": witness.values},
    )
