"""The three-way check: manual backprop, ``jax.grad`` and a finite-difference witness, compared per layer.

The arguments are checked once, here; the forward pass runs once, and every witness then works on the
checked arrays: manual backprop (``backprop.backward``), the oracle (``oracle``'s unchecked entry) and
finite differences (``fd_witness.fd_witness``), or, for large networks, the directional / Taylor checks.
"""

from __future__ import annotations

import numbers
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike

from .._types import Parameters
from ..compare.compare import KINDS, Comparison, compare_gradients, compare_pairs, flat_rows
from ..compare.report import ThreeWayReport
from ..fd.directional import _directional
from ..fd.directions import as_float64, check_count, loss_line, relative_step
from ..fd.fd_limits import (
    check_fd_size,
    check_method_and_step,
    check_step_resolves,
    fd_cost,
    per_perturbation_bytes,
)
from ..fd.fd_witness import FdWitness, fd_witness
from ..fd.taylor import _taylor
from ..maths.activations import get_activation
from ..maths.backprop import add_l2, backward, forward
from ..maths.losses import l2_penalty, loss_gradient, loss_terms
from ..objective import objective_name
from ..tolerances import (
    DIRECTIONAL_STEP,
    FD_BUDGET,
    FD_MAX_BLOCK_BYTES,
    dtype_name,
    gradient_scale,
    rounding_allowance,
    tolerance_for,
)
from ..validate import (
    check_forward_finite,
    check_gradient_finite,
    check_loss_name,
    check_target,
    checked_problem,
)
from .derivative_check import DERIVATIVES, DerivativeReport, check_derivative

FD_MODES = ("central", "forward", "backward", "directional", "taylor")


class _Flat:
    """A gradient pair also as one float64 vector, Omega_0, beta_0, Omega_1, ... raveled end to end (the
    order of a comparison's rows): the comparisons of the three-way check then concatenate it once."""

    def __init__(self, pair, flat=None):
        self.pair, self._scale = pair, None
        self.tensors = [t for layer in zip(*pair, strict=True) for t in layer]  # comparison order
        self.flat = np.concatenate([t.ravel() for t in self.tensors]).astype(np.float64, copy=False) \
            if flat is None else flat  # fmt: skip

    @property
    def scale(self) -> float:
        """``gradient_scale(pair)``, from the flat vector where that decides it (computed once)."""
        if self._scale is None:
            largest = float(np.abs(self.flat).max())
            self._scale = largest if 0 < largest < np.inf else gradient_scale(self.pair)
        return self._scale


@lru_cache(maxsize=64)
def _meta(layers: int) -> list:
    """``flat_rows``' (layer, kind, one_sided) of a gradient pair of ``layers`` layers, none one-sided."""
    return [(layer, kind, 0) for layer in range(layers) for kind in KINDS]


def _compared(specs) -> list:
    """``compare_gradients``' verdicts on pairs of gradients of the right shapes with scalar tolerances, no
    masks, no allowance, all in one vectorised pass: ``specs`` holds (label, expected, actual, rtol, atol)
    of ``_Flat``s, the scale being expected's. One ``Comparison`` per spec."""
    meta = _meta(len(specs[0][1].pair[0]))
    scales = [expected.scale for _, expected, _, _, _ in specs]
    if len(specs) == 1:
        _, expected, actual, rtol, atol = specs[0]
        e, a, rtols, atols, scale = expected.flat, actual.flat, rtol, atol, scales[0]
    else:  # atol * scale and rtol repeated per entry (times a scale of 1): the same products, entry by entry
        e = np.concatenate([expected.flat for _, expected, _, _, _ in specs])
        a = np.concatenate([actual.flat for _, _, actual, _, _ in specs])
        per_spec = [[spec[4] * scale for spec, scale in zip(specs, scales, strict=True)],
                    [spec[3] for spec in specs]]
        atols, rtols = np.repeat(np.array(per_spec), specs[0][1].flat.size, axis=1)
        scale = 1.0
    rows = flat_rows(meta * len(specs), [t for spec in specs for t in spec[1].tensors],
                     [t for spec in specs for t in spec[2].tensors], e, a, rtol=rtols, atol=atols,
                     scale=scale)  # fmt: skip
    count = len(meta)
    return [Comparison(label, tuple(rows[i * count:(i + 1) * count]), rtol, atol, float(scale), ())
            for i, ((label, _, _, rtol, atol), scale) in enumerate(zip(specs, scales, strict=True))]


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


def _oracle():
    """``oracle.jax_network.gradients_of_checked``, imported on the first call (JAX loads then)."""
    global _GRADIENTS_OF_CHECKED
    if _GRADIENTS_OF_CHECKED is None:
        from oracle.jax_network import gradients_of_checked

        _GRADIENTS_OF_CHECKED = gradients_of_checked
    return _GRADIENTS_OF_CHECKED


_GRADIENTS_OF_CHECKED = None


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
    gradients_of_checked = _oracle()  # the JAX import is paid only by the checks
    if fd not in FD_MODES:
        raise ValueError(f"unknown fd {fd!r}; choose one of {', '.join(FD_MODES)}")
    if fd == "taylor" and step is not None:
        raise ValueError("step does not apply to fd='taylor', which sweeps its own steps (pass step=None)")
    if fd in ("central", "forward", "backward"):
        check_method_and_step(fd, step)
    if not (type(fd_budget) in (int, float) and fd_budget >= 0) and (  # the common case, then the rest
            isinstance(fd_budget, bool) or not isinstance(fd_budget, numbers.Real) or not fd_budget >= 0):
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
        terms = loss_terms(loss, net_output, target)
        loss_value = float(terms.sum()) + l2_penalty(loss, weights)
    check_forward_finite(all_f, loss_value)
    dl_df_last = loss_gradient(loss, net_output, target)
    with np.errstate(over="ignore", invalid="ignore"):
        manual = backward(weights, all_f, all_h, dl_df_last, act)
        add_l2(manual, loss, weights)
    # Float64 (no allowance): each gradient flat once, and its comparisons in one pass with the fd ones
    single = dtype == np.float32
    flats = None if single else [_Flat(manual)]
    if flats is None or not np.logical_and.reduce(np.isfinite(flats[0].flat)):  # all finite, or which not
        check_gradient_finite(*manual)
    oracle = gradients_of_checked(weights, biases, x, target, activation=activation, loss=loss)
    allowance = None
    if single:  # rounding grows with the size of the computation; float64 keeps the table's
        allowance = rounding_allowance(weights, all_f, all_h, dl_df_last, act.derivative, dtype,
                                       loss_derivative=lambda z: loss_gradient(loss, z, target))  # fmt: skip
    else:
        flats.append(_Flat(oracle))
    table = tolerance_for(dtype)

    def versus_jax():
        if flats is None:
            return compare_gradients(oracle, manual, dtype=dtype, label="manual vs jax", allowance=allowance)
        return _compared([("manual vs jax", flats[1], flats[0], table.rtol, table.atol)])[0]

    sizes = (weights[0].shape[1], *[w.shape[0] for w in weights])
    common = dict(sizes=sizes, batch=int(x.shape[1]), dtype=dtype_name(dtype), activation=activation,
                  loss=loss, requested_fd=fd, step=None if step is None else float(step),
                  loss_value=loss_value, net_output=net_output)  # fmt: skip
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
            manual_vs_jax=versus_jax(),
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
    witness = fd_witness(weights, biases, target, act, loss, forward_pass, method, fd_step, floor=False,
                         base_terms=terms)
    if flats is not None and witness.flat is not None and witness.floor is None:  # no kink: scalar tolerances
        fd_flat = _Flat(witness.values, witness.flat)
        manual_vs_jax, manual_vs_fd, jax_vs_fd = _compared([
            ("manual vs jax", flats[1], flats[0], table.rtol, table.atol),
            ("manual vs fd", flats[0], fd_flat, witness.rtol, witness.atol),
            ("jax vs fd", flats[1], fd_flat, witness.rtol, witness.atol)])  # fmt: skip
    else:
        manual_vs_jax = versus_jax()
        manual_vs_fd = _compare_fd(manual, witness, "manual vs fd", main)
        jax_vs_fd = _compare_fd(oracle, witness, "jax vs fd", main)
    if not (manual_vs_fd.ok and jax_vs_fd.ok):
        witness = fd_witness(weights, biases, target, act, loss, forward_pass, method, fd_step, floor=True)
        manual_vs_fd = _compare_fd(manual, witness, "manual vs fd", main)
        jax_vs_fd = _compare_fd(oracle, witness, "jax vs fd", main)
    return ThreeWayReport(
        **common,
        fd=method,
        manual_vs_jax=manual_vs_jax,
        manual_vs_fd=manual_vs_fd,
        jax_vs_fd=jax_vs_fd,
        kinks_crossed=witness.crossed,
        kinks_one_sided=witness.one_sided,
        kinks_excluded=witness.excluded,
        notes=tuple(notes),
        gradients={"manual": manual, "jax": oracle, "fd": witness.values},
    )
