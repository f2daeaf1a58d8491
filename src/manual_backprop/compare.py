"""Compare two gradients tensor by tensor: one row per (layer, weights or biases), and a table of rows.

A gradient is the pair ``(all_dl_dweights, all_dl_dbiases)`` of lists of arrays (the parameters' shapes).
Entries agree when ``|actual - expected| <= atol * scale + rtol * |expected|`` (``tolerances.py``); the
worst entry of a tensor is the one that uses up the largest share of its allowance. Rows are data; the
table (``str``) and ``to_dict`` are views of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import display
from .gradient_forms import (
    Missing,
    largest,
    pair_masks,
    per_tensor,
    split_pair,
    structure_of,
    tensors_in,
)
from .tables import RowsVerdict, fmt, json_number, render_table
from .tolerances import check_tolerance, gradient_scale, tolerance_for
from .validate import as_gradient_array, as_real_array

KINDS = ("weights", "biases")


@dataclass(frozen=True)
class TensorComparison:
    """One tensor (layer ``layer``, ``kind`` "weights" or "biases") of two gradients, compared.

    ``shape`` is the expected shape and ``actual_shape`` what came; on a shape mismatch (or a missing
    tensor) the errors are None and ``message`` says what was expected. ``worst_index`` is the entry that
    uses the largest share of its tolerance; ``excluded`` counts entries left out (kinks) and ``one_sided``
    those compared with a one-sided difference instead.
    """

    layer: int
    kind: str
    shape: tuple
    actual_shape: tuple | None
    max_abs_error: float | None
    max_rel_error: float | None
    worst_index: tuple | None
    expected_value: float | None
    actual_value: float | None
    ok: bool
    compared: int = 0
    excluded: int = 0
    one_sided: int = 0
    message: str = ""
    key: str = ""  # the tensor's name where the gradient is not the pair: a dict key, "[i]" or "array"

    @property
    def name(self) -> str:
        if self.key:
            return self.key
        return f"{'Omega' if self.kind == 'weights' else 'beta'}_{self.layer}"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "layer": self.layer,
            "kind": self.kind,
            "shape": list(self.shape),
            "actual_shape": None if self.actual_shape is None else list(self.actual_shape),
            "max_abs_error": json_number(self.max_abs_error),
            "max_rel_error": json_number(self.max_rel_error),
            "worst_index": None if self.worst_index is None else list(self.worst_index),
            "expected_value": json_number(self.expected_value),
            "actual_value": json_number(self.actual_value),
            "ok": self.ok,
            "compared": self.compared,
            "excluded": self.excluded,
            "one_sided": self.one_sided,
            "message": self.message,
        }


@dataclass(frozen=True, repr=False)
class Comparison(RowsVerdict, display.Displayed):
    """All tensors of two gradients compared: ``label`` says which ("manual vs jax"), rows in layer order."""

    label: str
    rows: tuple
    rtol: float
    atol: float
    scale: float
    notes: tuple = field(default=())


    @property
    def excluded(self) -> int:
        return sum(row.excluded for row in self.rows)

    @property
    def one_sided(self) -> int:
        return sum(row.one_sided for row in self.rows)

    def row(self, layer: int, kind: str) -> TensorComparison:
        for row in self.rows:
            if row.layer == layer and row.kind == kind:
                return row
        raise KeyError((layer, kind))

    def display_table(self) -> display.Table:
        return display.comparison_table(self)

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "ok": self.ok,
            "rtol": json_number(self.rtol),
            "atol": json_number(self.atol),
            "scale": json_number(self.scale),
            "excluded": self.excluded,
            "one_sided": self.one_sided,
            "notes": list(self.notes),
            "rows": [row.to_dict() for row in self.rows],
        }

    def __str__(self) -> str:
        header = (
            "tensor",
            "shape",
            "max abs err",
            "max rel err",
            "worst at",
            "expected",
            "actual",
            "excl",
            "",
        )
        lines = [header]
        for r in self.rows:
            lines.append(
                (
                    r.name,
                    "x".join(map(str, r.shape)),
                    fmt(r.max_abs_error),
                    fmt(r.max_rel_error),
                    "" if r.worst_index is None else ",".join(map(str, r.worst_index)),
                    fmt(r.expected_value),
                    fmt(r.actual_value),
                    str(r.excluded),
                    "ok" if r.ok else "FAIL" + (f" ({r.message})" if r.message else ""),
                )
            )
        title = (
            f"{self.label}: {'ok' if self.ok else 'FAIL'}  "
            f"(rtol {self.rtol:.0e}, atol {self.atol:.0e} x scale {self.scale:.2e})"
        )
        return title + "\n" + render_table(lines)


def _failed(layer, kind, shape, actual_shape, message) -> TensorComparison:
    return TensorComparison(
        layer=layer, kind=kind, shape=shape, actual_shape=actual_shape, max_abs_error=None,
        max_rel_error=None, worst_index=None, expected_value=None, actual_value=None, ok=False,
        message=message,
    )  # fmt: skip


def _concat(parts, sizes, fill):
    """One flat float64 array of per-tensor values (None: ``fill``; a scalar: broadcast)."""
    if all(np.isscalar(p) for p in parts) and len(set(parts)) == 1:
        return parts[0]
    return np.concatenate(
        [
            np.broadcast_to(fill if p is None else p, (n,)) if np.ndim(p) == 0 or p is None else np.ravel(p)
            for p, n in zip(parts, sizes, strict=True)
        ]
    )


class TensorPair(NamedTuple):
    """One tensor to compare: ``expected`` (trusted) and ``actual`` (anything a user returned), with the
    entries to compare (``include`` a mask, None: all), ``rtol``/``atol`` (scalars or per-entry arrays) and
    the count of entries compared ``one_sided``."""

    layer: int
    kind: str
    expected: np.ndarray
    actual: object
    include: np.ndarray | None
    rtol: object
    atol: object
    one_sided: int


def compare_tensors(items, *, scale: float) -> list:
    """Compare many ``TensorPair``s in one vectorised pass, with the given ``scale`` (the gradient's:
    ``tolerances.gradient_scale``). The formula is ``tolerances.agree``'s, computed as each entry's share
    of its allowance so that the worst entry can be named. Returns one ``TensorComparison`` per item."""
    rows = [None] * len(items)
    good = []
    items = list(items)
    for i, it in enumerate(items):
        layer, kind, expected = it.layer, it.kind, it.expected
        shape = tuple(expected.shape)
        if isinstance(it.actual, Missing):
            actual, problem = None, it.actual.message
        else:
            actual, problem = as_gradient_array(it.actual)
        if actual is not None:
            items[i] = it._replace(actual=actual)
        actual_shape = None if actual is None else tuple(actual.shape)
        if actual is None:
            rows[i] = _failed(layer, kind, shape, None, f"{problem}: expected an array of shape {shape}")
        elif actual_shape != shape:
            rows[i] = _failed(
                layer, kind, shape, actual_shape, f"wrong shape: expected {shape}, got {actual_shape}"
            )
        elif actual.dtype.kind not in "fiub":
            rows[i] = _failed(
                layer, kind, shape, actual_shape, f"dtype {actual.dtype} is not a real number type"
            )
        elif expected.size:
            good.append(i)
        else:
            rows[i] = TensorComparison(layer, kind, shape, shape, 0.0, 0.0, None, None, None, True)
    if not good:
        return rows
    sel = [items[i] for i in good] if len(good) < len(items) else items
    sizes = [it.expected.size for it in sel]
    starts = np.cumsum([0] + sizes[:-1])
    e = np.concatenate([it.expected.ravel() for it in sel]).astype(np.float64, copy=False)
    a = np.concatenate([it.actual.ravel() for it in sel]).astype(np.float64, copy=False)
    rtol = _concat([it.rtol for it in sel], sizes, 0.0)
    atol = _concat([it.atol for it in sel], sizes, 0.0)
    masks = [it.include for it in sel]
    include = None if all(m is None for m in masks) else _concat(masks, sizes, True).astype(bool, copy=False)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        error = np.abs(a - e)
        magnitude = np.abs(e)
        share = error / (atol * scale + rtol * magnitude)
        relative = error / magnitude
    exact = error == 0
    share[exact] = 0.0
    relative[exact] = 0.0
    nan = np.isnan(error)
    share[nan] = np.inf  # NaN in `actual` is the worst entry: it agrees with nothing
    if include is not None:
        share[~include] = -1.0
        error[~include] = 0.0
        relative[~include] = 0.0
        nan &= include
        excluded = np.add.reduceat(~include, starts).tolist()
    else:
        excluded = [0] * len(sel)
    seg_share = np.maximum.reduceat(share, starts)
    bounds = np.append(starts, e.size).tolist()
    worst = np.array(
        [lo + int(share[lo:hi].argmax()) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
    )
    ok_all = ((seg_share <= 1.0) & ~np.logical_or.reduceat(nan, starts)).tolist()
    seg_nan = np.logical_or.reduceat(nan, starts).tolist()
    seg_error = np.maximum.reduceat(error, starts).tolist()
    seg_relative = np.maximum.reduceat(relative, starts).tolist()
    worst_e, worst_a = e[worst].tolist(), a[worst].tolist()
    local = (worst - starts).tolist()
    for j, it in enumerate(sel):
        layer, kind, expected, one_sided = it.layer, it.kind, it.expected, it.one_sided
        shape = expected.shape
        if excluded[j] == sizes[j]:
            row = TensorComparison(
                layer, kind, shape, shape, 0.0, 0.0, None, None, None, True, excluded=excluded[j]
            )
        else:
            ok = ok_all[j]
            index = divmod(local[j], shape[1]) if len(shape) == 2 else np.unravel_index(local[j], shape)
            row = TensorComparison(
                layer, kind, shape, shape, float("nan") if seg_nan[j] else seg_error[j],
                float("nan") if seg_nan[j] else seg_relative[j], tuple(int(k) for k in index), worst_e[j],
                worst_a[j], ok, sizes[j] - excluded[j], excluded[j], int(one_sided),
                "" if ok else _failure_message(expected, it.actual, worst_a[j]),
            )  # fmt: skip
        rows[good[j]] = row
    return rows


def _failure_message(expected, actual, worst_actual) -> str:
    """Why a tensor of the right shape failed, where one short phrase says it (else "")."""
    if not np.isfinite(worst_actual):
        return "NaN or inf"
    if (
        actual.dtype.kind == "f"
        and expected.dtype.kind == "f"
        and np.finfo(actual.dtype).eps > np.finfo(expected.dtype).eps
    ):
        return f"returned {actual.dtype}, expected {expected.dtype}"
    return ""


def compare_gradients(
    expected: object,
    actual: object,
    *,
    rtol: float | ArrayLike | None = None,
    atol: float | ArrayLike | None = None,
    dtype: DTypeLike | None = None,
    kind: str = "analytic",
    scale: float | None = None,
    include: object = None,
    allowance: object = None,
    label: str = "expected vs actual",
) -> Comparison:
    """Compare two gradients tensor by tensor.

    ``expected`` is trusted: the pair ``(all_dl_dweights, all_dl_dbiases)`` of lists of arrays, a list of
    arrays, a dict of arrays, or one array (anything else is a TypeError naming it); ``actual`` is compared
    like with like, and may be anything a user returned (a wrong shape, a missing tensor or key, another
    structure is a failing row, not an exception). ``expected`` sets the shapes and, unless ``scale`` is
    given, the scale: its largest entry. ``rtol``/``atol`` default to ``tolerance_for(dtype, kind)`` with
    ``dtype`` that of ``expected``; a negative or NaN ``rtol``, ``atol`` or ``scale`` is a ``ValueError``.
    ``include`` is optional boolean masks (True: compare) in ``expected``'s structure. ``allowance`` is
    optional absolute per-entry allowances in that structure, added to the table's (e.g.
    ``tolerances.rounding_allowance``: the rounding error this computation can carry). Returns a
    ``Comparison`` with one row per tensor: for the pair, layer by layer, weights before biases.
    """
    structure = structure_of(expected)
    if structure == "pair":
        expected_w, expected_b = ([as_real_array(a, f"expected[{p}][{k}]") for k, a in enumerate(part)]
                                  for p, part in enumerate(expected))  # fmt: skip
        if len(expected_w) != len(expected_b) or not expected_w:
            raise ValueError(f"expected has {len(expected_w)} weight and {len(expected_b)} bias gradients: "
                             "one of each per layer, at least one layer")
        expected = (expected_w, expected_b)
        include = pair_masks(include, expected_w, expected_b)
        arrays = expected_w + expected_b
    else:
        keys = (list(expected) if structure == "dict" else ["array"] if structure == "array"
                else [f"[{i}]" for i in range(len(expected))])  # fmt: skip
        values = list(expected.values()) if structure == "dict" else [expected] if structure == "array" \
            else list(expected)
        arrays = [as_real_array(a, f"expected[{k!r}]" if structure == "dict" else f"expected{k}")
                  for k, a in zip(keys, values, strict=True)]  # fmt: skip
    if dtype is None:
        dtype = np.result_type(*arrays)
    tolerance = tolerance_for(dtype, kind)
    rtol = tolerance.rtol if rtol is None else check_tolerance(rtol, "rtol")
    atol = tolerance.atol if atol is None else check_tolerance(atol, "atol")
    scale = gradient_scale(arrays) if scale is None else float(check_tolerance(scale, "scale"))
    notes = ()
    entry_atol = atol
    if allowance is not None:
        check_tolerance(allowance, "allowance")
        if structure != "pair":
            allowance = per_tensor(allowance, structure, keys, "allowance")
            allowance = [allowance, []]
        # The comparison's absolute part is atol * scale per entry: the allowance joins it there.
        unit = scale if scale > 0 else 1.0
        entry_atol = [[np.asarray(atol, np.float64) * (scale / unit) + np.asarray(a, np.float64) / unit
                       for a in part] for part in allowance]  # fmt: skip
        scale = unit
        biggest = max((float(np.max(a, initial=0.0)) for part in allowance for a in part), default=0.0)
        notes = (f"allowance for rounding in {np.dtype(dtype).name}: up to {biggest:.2e} per entry",)
    if structure == "pair":
        rows = compare_pairs(expected, actual, rtol=rtol, atol=entry_atol, scale=scale, include=include)
    else:
        shapes = [a.shape for a in arrays]
        masks = per_tensor(include, structure, keys, "include", shapes)
        rtols = per_tensor(rtol, structure, keys, "rtol")
        atols = entry_atol[0] if allowance is not None else per_tensor(atol, structure, keys, "atol")
        parts = zip(arrays, tensors_in(actual, structure, keys), masks, rtols, atols, strict=True)
        items = [TensorPair(i, "tensor", e, a, m, r, t, 0) for i, (e, a, m, r, t) in enumerate(parts)]
        rows = [replace(row, key=key)
                for row, key in zip(compare_tensors(items, scale=scale), keys, strict=True)]  # fmt: skip
        mapping = structure == "dict" and isinstance(actual, Mapping)
        extra = sorted(set(actual) - set(keys), key=str) if mapping else []
        if extra:
            notes += (f"actual has keys expected lacks: {', '.join(map(repr, extra))}",)
    return Comparison(
        label, tuple(rows), largest(rtol), largest(atol), float(scale), notes
    )


def compare_pairs(expected, actual, *, rtol, atol, scale: float, include=None, one_sided=None) -> list:
    """Rows for two gradient pairs, layer by layer, weights before biases. ``rtol``, ``atol``, ``include``
    and ``one_sided`` are scalars or pairs of per-tensor lists (arrays of entries; counts)."""
    expected_w, expected_b = expected
    actual_parts = split_pair(actual, len(expected_w))

    def pick(value, part, layer):
        return value[part][layer] if isinstance(value, (list, tuple)) else value

    items = [TensorPair(layer, KINDS[part], (expected_w, expected_b)[part][layer], actual_parts[part][layer],
                        pick(include, part, layer), pick(rtol, part, layer), pick(atol, part, layer),
                        pick(one_sided, part, layer) or 0)
             for layer in range(len(expected_w)) for part in (0, 1)]  # fmt: skip
    return compare_tensors(items, scale=scale)
