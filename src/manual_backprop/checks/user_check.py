"""check_gradient: any user's loss and hand-written gradient over a tree of parameters, checked leaf by leaf.

    report = check_gradient(loss_fn, grad_fn, params)      # params: dict / list / tuple, nested, of arrays
    assert report.ok, report                               # or assert_gradient_correct(...)

Witnesses: central finite differences of ``loss_fn`` (``user_fd``: every coordinate, or a few directions per
leaf when that would take long), and ``jax.grad`` (``user_jax``) when ``jax_loss_fn`` is given or
``loss_fn`` is array-API generic. When JAX ran it is the reference and finite differences that disagree
with it are a warning naming the leaf; at an exact kink any one-sided derivative is accepted; entries whose
difference quotient moves with the step are excluded and counted. ``rtol``/``atol`` mean what they mean in
``compare_gradients``, relative to each leaf's scale (its largest reference entry). The caller's arrays are
never touched: every call gets fresh copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..compare.compare import TensorComparison, TensorPair, compare_tensors
from ..compare.gradient_forms import Missing, as_gradient_array
from ..compare.pytree import flatten, leaves_like, unflatten
from ..fd.user_fd import (
    FlatLoss,
    as_scalar,
    coordinate_fd,
    directional_fd,
    directions_for_leaves,
    evaluation_seconds,
    sweep_seconds,
    use_directions,
)
from ..tolerances import USER_FD_BATCH_SECONDS, check_tolerance, gradient_scale, tolerance_for
from .user_diagnose import diagnose_leaf
from .user_jax import batch_seconds, jax_witness
from .user_report import GradientReport

FD_MODES = ("auto", "coordinates", "directional")


def _copies(leaves):
    return [np.array(a, copy=True) for a in leaves]


def _tolerance(dtype: str, reference: str, fd_dtype: str, rtol, atol):
    """The table's tolerance for a leaf of ``dtype`` against ``reference``: two exact gradients
    ("analytic") against JAX, or against float64 differences of a float32 leaf; "central" otherwise."""
    kind = "analytic" if reference == "jax" or (dtype == "float32" and fd_dtype == "float64") else "central"
    table = tolerance_for(dtype, kind)
    return (table.rtol if rtol is None else rtol), (table.atol if atol is None else atol)


def _compare_leaf(i, name, expected, actual, *, include, rtol, atol, allowance, kinks, dtype):
    """One leaf's row: ``expected`` (float64), per-entry ``allowance`` added to the absolute part and
    ``kinks`` (mask, candidates, forward tolerance) where any one-sided value is accepted."""
    scale = gradient_scale([expected[include] if include is not None else expected])
    rtol_e, atol_e = np.full(expected.shape, float(rtol)), np.full(expected.shape, float(atol))
    one_sided = 0
    given, _ = (None, None) if isinstance(actual, Missing) else as_gradient_array(actual)
    if kinks is not None and given is not None and given.shape == expected.shape:
        mask, candidates, side = kinks
        if mask.any():
            a = np.asarray(given, np.float64)
            with np.errstate(invalid="ignore"):  # between the one-sided values: per-unit slopes in [0, 1]
                between = np.clip(a, np.fmin(candidates[-2], candidates[-1]), np.fmax(candidates[-2],
                                                                                       candidates[-1]))
            stack = np.stack([np.where(np.isnan(c), np.inf, c) for c in (*candidates, between)])
            nearest = np.take_along_axis(stack, np.abs(stack - a).argmin(axis=0)[None], 0)[0]
            expected = np.where(mask, nearest, expected)
            rtol_e = np.where(mask, max(side.rtol, float(rtol)), rtol_e)
            atol_e = np.where(mask, max(side.atol, float(atol)), atol_e)
            # Several units on one kink: a valid slope need be neither one-sided value (jax.nn's a'(0) = 0
            # on every unit, say). Finite differences cannot decide there: excluded and counted, no bug.
            with np.errstate(invalid="ignore"):
                undecided = mask & ~(np.abs(a - nearest) <= atol_e * scale + rtol_e * np.abs(nearest))
            if undecided.any():
                include = ~undecided if include is None else include & ~undecided
            one_sided = int((mask & ~undecided).sum())
    if allowance is not None:
        atol_e = atol_e + allowance / scale
    if dtype == "float32":
        expected = expected.astype(np.float32)
    if expected.ndim == 0:  # compared as one entry of shape (1,), reported with the leaf's shape ()
        actual = given.reshape(1) if given is not None and given.shape == () else actual
        expected, rtol_e, atol_e = expected.reshape(1), rtol_e.reshape(1), atol_e.reshape(1)
        include = None if include is None else include.reshape(1)
    row = compare_tensors([TensorPair(i, "tensor", expected, actual, include, rtol_e, atol_e, one_sided)],
                          scale=scale)[0]  # fmt: skip
    if row.shape == (1,) and given is not None and given.shape == ():
        row = replace(row, shape=(), actual_shape=(), worst_index=None if row.worst_index is None else ())
    if include is not None and not np.any(include):  # nothing witnessed this leaf: never a pass
        row = replace(row, ok=False, message=_UNWITNESSED)
    return replace(row, key=name)


_UNWITNESSED = ("not compared: every entry is within reach of a kink, so nothing witnesses this leaf (move "
                "the parameters off the kink, or pass jax_loss_fn)")


def _directional_row(i, name, shape, fd, gradient, rtol, atol) -> TensorComparison:
    """A leaf judged along its directions: expected dL/dt by differences, actual u . g (``gradient``: the
    whole vector, of which the leaf's directions read only the leaf)."""
    keep = ~fd.excluded
    e, a = fd.values, fd.directions @ gradient
    magnitude = np.abs(fd.directions * gradient).sum(axis=1)
    error = np.abs(a - e)
    allowed = rtol * np.abs(e) + atol * magnitude + fd.allowance
    share = np.where(keep, error / np.maximum(allowed, 1e-300), -1.0)
    k = int(share.argmax())
    ok = bool(np.all(share <= 1.0)) and bool(np.all(np.isfinite(a)))
    if not keep.any():
        return TensorComparison(i, "tensor", shape, shape, 0.0, 0.0, None, None, None, False, 0,
                                int(fd.excluded.sum()), message=_UNWITNESSED, key=name)  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = float(np.max(np.where(keep, error / np.abs(e), 0.0)))
    return TensorComparison(i, "tensor", shape, shape, float(error[keep].max()), relative, (k,), float(e[k]),
                            float(a[k]), ok, int(keep.sum()), int(fd.excluded.sum()),
                            message="" if ok else f"along direction {k} of {len(e)}", key=name)  # fmt: skip


def check_gradient(loss_fn: Callable, grad_fn: Callable, params, *, jax_loss_fn: Callable | None = None,
                   rtol: float | None = None, atol: float | None = None, seed=0, fd: str = "auto"
                   ) -> GradientReport:
    """Check ``grad_fn(params)`` against the gradient of ``loss_fn(params)`` (a scalar), leaf by leaf.

    ``params``: a dict, list or tuple, nested, of float64 or float32 arrays (0-d allowed); ``grad_fn``
    returns the same structure (a dict's key order is free; a list for a tuple is fine). ``jax_loss_fn``:
    the same loss written for JAX (e.g. in ``jax.numpy``), differentiated by ``jax.grad``. ``seed`` drives
    the random directions. ``fd``: "auto" (every coordinate unless that would take more than
    ``USER_FD_SECONDS``), "coordinates" or "directional". Returns a ``GradientReport``."""
    names, leaves, structure = flatten(params)
    given = grad_fn(unflatten(structure, _copies(leaves)))
    return _check(loss_fn, given, names, leaves, structure, jax_loss_fn=jax_loss_fn, rtol=rtol, atol=atol,
                  seed=seed, fd=fd, who="grad_fn")


def check_loss_and_grad(f: Callable, params, **options) -> GradientReport:
    """``check_gradient`` for ``f(params) -> (loss, grads)`` (as CS231n's ``TwoLayerNet.loss``)."""
    names, leaves, structure = flatten(params)
    result = f(unflatten(structure, _copies(leaves)))
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"f must return (loss, grads), got {type(result).__name__}"
                        + (f" of {len(result)}" if isinstance(result, tuple) else ""))

    def loss_fn(p):
        return f(p)[0]

    return _check(loss_fn, result[1], names, leaves, structure, who="f", **_options(options))


def _options(options: dict) -> dict:
    allowed = {"jax_loss_fn", "rtol", "atol", "seed", "fd"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"unexpected keyword argument {unknown[0]!r}; options: {', '.join(sorted(allowed))}")
    return {"jax_loss_fn": None, "rtol": None, "atol": None, "seed": 0, "fd": "auto", **options}


def assert_gradient_correct(loss_fn: Callable, grad_fn: Callable, params, **options) -> None:
    """``AssertionError`` with the report's table unless ``check_gradient`` passes (one line in pytest)."""
    __tracebackhide__ = True
    report = check_gradient(loss_fn, grad_fn, params, **_options(options))
    if not report.ok:
        raise AssertionError(f"gradient wrong in {', '.join(report.failing)}\n{report}")


def _fd_witness(flat, theta, eps, mode, batch, bounds, user_vector, seed, notes):
    """The finite-difference witness: ("coordinates", CoordinateFd) or ("directional", [DirectionFd])."""
    seconds = evaluation_seconds(flat, theta)
    long = sweep_seconds(theta.size, seconds) >= USER_FD_BATCH_SECONDS
    if batch is not None and mode != "directional" and long:
        try:  # batches under jax.vmap, where they are faster than the loop (a small loss, many parameters)
            batched = batch_seconds(batch, theta)
        except Exception:  # noqa: BLE001 (the user's loss under jax.vmap): the loop then
            batched = np.inf
        if batched < seconds:
            notes.append(f"finite differences batched by jax.vmap ({batched * 1e6:.3g} us per evaluation, "
                         f"{seconds * 1e6:.3g} us in a loop)")
            seconds = batched
        else:
            batch = None
    else:
        batch = None  # a short loop: cheaper than compiling the batched loss
    if mode == "auto":
        if use_directions(theta.size, seconds):
            notes.append(f"finite differences along directions: every coordinate would take about "
                         f"{sweep_seconds(theta.size, seconds):.0f} s ({theta.size:,} parameters x 4 "
                         f"evaluations of {seconds * 1e3:.2g} ms)")
            mode = "directional"
        else:
            mode = "coordinates"
    if mode == "directional":
        moves = directions_for_leaves(theta, bounds, user_vector, seed)
        return mode, [directional_fd(flat, theta, eps, u, user_vector) for u in moves]
    if batch is not None:
        try:
            return mode, coordinate_fd(flat, theta, eps, batch=batch)
        except Exception as exc:  # noqa: BLE001 (the user's loss under jax.vmap): fall back to the loop
            notes.append(f"finite differences in a plain loop (jax.vmap of the loss failed: {exc!r:.80})")
    return mode, coordinate_fd(flat, theta, eps)


def _coordinate_row(i, leaf, actual, ref, fd_leaf, fd_dtype, dtype, rtol, atol):
    """A leaf against jax (``ref``; the sweep then cross-checks jax) or the coordinate sweep: ``(row,
    warning or None, (reference, compared entries, allowance))``."""
    values, other, kink, excluded, allowance = fd_leaf
    side = tolerance_for(fd_dtype, "forward")
    include = ~excluded
    if ref is None:
        row = _compare_leaf(i, leaf, np.where(include, values, 0.0), actual,
                            include=include if not include.all() else None, rtol=rtol, atol=atol,
                            allowance=allowance, kinks=(kink, (values, other), side), dtype=dtype)
        return row, None, (values, include, allowance)
    row = _compare_leaf(i, leaf, ref, actual, include=None, rtol=rtol, atol=atol, allowance=None,
                        kinks=(kink, (ref, values, other), side), dtype=dtype)
    fr, fa = _tolerance(fd_dtype, "fd", fd_dtype, None, None)
    with np.errstate(invalid="ignore"):  # at an exact kink jax may take any value between the one-sided ones
        between = np.clip(ref, np.fmin(values, other), np.fmax(values, other))
    cross = _compare_leaf(i, leaf, np.where(kink, between, values), ref, include=include, rtol=fr, atol=fa,
                          allowance=allowance, kinks=None, dtype="float64")
    warning = None if cross.ok else (
        f"{leaf}: finite differences disagree with jax beyond their tolerance (worst at {cross.worst_index}: "
        f"fd {cross.expected_value:.6g}, jax {cross.actual_value:.6g}); is jax_loss_fn the same loss as "
        "loss_fn?")
    return row, warning, (ref, None, None)


def _directional_rows(i, leaf, shape, actual, ref, fd, user_vector, jax_gradient, fd_dtype, dtype, rtol,
                      atol):
    """A leaf against jax (cross-checked along the leaf's directions) or along its directions alone:
    ``(row, warning or None)``."""
    if ref is not None:
        row = _compare_leaf(i, leaf, ref, actual, include=None, rtol=rtol, atol=atol, allowance=None,
                            kinks=None, dtype=dtype)
        side = tolerance_for(fd_dtype, "directional")
        cross = _directional_row(i, leaf, shape, fd, jax_gradient, side.rtol, side.atol)
        warning = None if cross.ok else (f"{leaf}: finite differences along a direction disagree with jax "
                                         f"(fd {cross.expected_value:.6g}, jax {cross.actual_value:.6g})")
        return row, warning
    given, problem = (None, actual.message) if isinstance(actual, Missing) else as_gradient_array(actual)
    if given is None or given.shape != tuple(shape):
        message = problem or f"wrong shape: expected {tuple(shape)}, got {given.shape}"
        return TensorComparison(i, "tensor", shape, None if given is None else given.shape, None, None, None,
                                None, None, False, message=message, key=leaf), None
    side = tolerance_for(dtype, "directional")
    return _directional_row(i, leaf, shape, fd, user_vector, side.rtol, side.atol), None


def _check(loss_fn, given, names, leaves, structure, *, jax_loss_fn, rtol, atol, seed, fd, who,
           kind="gradient", name="params") -> GradientReport:
    if fd not in FD_MODES:
        raise ValueError(f"fd must be one of {', '.join(FD_MODES)}, got {fd!r}")
    rtol = None if rtol is None else float(check_tolerance(rtol, "rtol"))
    atol = None if atol is None else float(check_tolerance(atol, "atol"))
    shapes = [a.shape for a in leaves]
    dtypes = [a.dtype.name for a in leaves]
    theta = np.concatenate([np.asarray(a, np.float64).ravel() for a in leaves])
    flat = FlatLoss(loss_fn, structure, shapes)
    raw = flat.raw(theta)
    loss = as_scalar(raw, "loss_fn")
    computes = np.asarray(raw).dtype
    fd_dtype = "float32" if computes == np.float32 else "float64"
    eps = float(np.finfo(fd_dtype).eps)
    notes: list[str] = []
    if "float32" in dtypes:
        notes.append("float32 parameters: differenced on float64 copies (the loss returns float64 for "
                     "float64 input); compared with float32 tolerances" if fd_dtype == "float64" else
                     "float32 parameters: the loss computes in float32: differenced at float32 steps")
    actual, extra = leaves_like(structure, given, who, name)
    actual = [np.asarray(v, np.float64) if isinstance(v, (float, int)) and not isinstance(v, bool) else v
              for v in actual]  # a Python number for a 0-d leaf
    notes += extra
    bounds = np.cumsum([0] + [int(np.prod(s)) for s in shapes]).tolist()
    user_vector = _user_vector(actual, shapes)
    witness = jax_witness(jax_loss_fn or loss_fn, flat, theta, loss, fd_dtype,
                          explicit=jax_loss_fn is not None)
    jax_ok = witness.gradient is not None
    jax_gradient = witness.gradient if witness.gradient is not None else np.zeros(0)
    if not jax_ok:
        notes.append(witness.note)
    mode, fd_result = _fd_witness(flat, theta, eps, fd, witness.batch, bounds, user_vector, seed, notes)
    reference = "jax" if jax_ok else "finite differences"
    rows, warnings, diagnoses = [], [], []
    refs: dict = {}  # leaf -> (reference gradient, compared entries, allowance): for the diagnoses
    for i, (leaf, lo, hi) in enumerate(zip(names, bounds, bounds[1:], strict=False)):
        shape, dtype = shapes[i], dtypes[i]
        r, a = _tolerance(dtype, reference, fd_dtype, rtol, atol)
        ref = jax_gradient[lo:hi].reshape(shape) if jax_ok else None
        if mode == "coordinates":
            fd_leaf = [part[lo:hi].reshape(shape) for part in fd_result[:5]]
            row, warning, refs[leaf] = _coordinate_row(i, leaf, actual[i], ref, fd_leaf, fd_dtype, dtype, r,
                                                       a)
        else:
            row, warning = _directional_rows(i, leaf, shape, actual[i], ref, fd_result[i], user_vector,
                                             jax_gradient, fd_dtype, dtype, r, a)
            if ref is not None:
                refs[leaf] = (ref, None, None)
        rows.append(row)
        warnings += [warning] if warning else []
    for row in rows:
        if not row.ok and row.name in refs:
            ref, include, allowance = refs[row.name]
            i = names.index(row.name)
            text = diagnose_leaf(row.name, actual[i], ref, leaves[i], include=include, allowance=allowance,
                                 others={k: v[0] for k, v in refs.items()}, dtype=dtypes[i])
            if text:
                diagnoses.append((row.name, text))
    witnesses = ("finite differences", "jax") if jax_ok else ("finite differences",)
    used_r, used_a = _tolerance(dtypes[0], reference, fd_dtype, rtol, atol)
    return GradientReport(kind, tuple(rows), witnesses, reference, mode, loss, int(theta.size),
                          tuple(dict.fromkeys(dtypes)), float(used_r), float(used_a), tuple(diagnoses),
                          tuple(warnings), tuple(notes), flat.calls)  # fmt: skip


def _user_vector(actual, shapes) -> np.ndarray:
    """The user's gradient as one float64 vector (zeros for a leaf missing or misshapen: each leaf's
    directions move that leaf only, so another leaf's absence does not touch its check)."""
    parts = []
    for value, shape in zip(actual, shapes, strict=True):
        array = None if isinstance(value, Missing) else as_gradient_array(value)[0]
        if array is None or array.shape != tuple(shape) or array.dtype.kind not in "fiu":
            parts.append(np.zeros(int(np.prod(shape))))
        else:
            parts.append(np.asarray(array, np.float64).ravel())
    return np.concatenate(parts)
