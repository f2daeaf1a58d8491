"""Compare two gradients tensor by tensor: one row per (layer, weights or biases), and a table of rows.

A gradient is the pair ``(all_dl_dweights, all_dl_dbiases)`` of lists of arrays (the parameters' shapes).
Entries agree when ``|actual - expected| <= atol * scale + rtol * |expected|`` (``tolerances.py``); a
tensor's worst entry uses up the largest share of its allowance. Rows are data; ``str`` and ``to_dict``
are views of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import accumulate
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..tables import RowsVerdict, fmt, json_number, render_table
from ..tolerances import check_tolerance, gradient_scale, tolerance_for
from ..validate import as_real_array
from . import display
from .gradient_forms import (
    Missing,
    as_gradient_array,
    largest,
    pair_masks,
    per_tensor,
    split_pair,
    structure_of,
    tensors_in,
)
from .segments import argmax_per_segment, spread

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
        lines = [("tensor", "shape", "max abs err", "max rel err", "worst at", "expected", "actual", "excl",
                  "")]
        for r in self.rows:
            lines.append((r.name, "x".join(map(str, r.shape)), fmt(r.max_abs_error), fmt(r.max_rel_error),
                          "" if r.worst_index is None else ",".join(map(str, r.worst_index)),
                          fmt(r.expected_value), fmt(r.actual_value), str(r.excluded),
                          "ok" if r.ok else "FAIL" + (f" ({r.message})" if r.message else "")))  # fmt: skip
        title = (
            f"{self.label}: {'ok' if self.ok else 'FAIL'}  "
            f"(rtol {self.rtol:.0e}, atol {self.atol:.0e} x scale {self.scale:.2e})"
        )
        return title + "\n" + render_table(lines)


def _failed(layer, kind, shape, actual_shape, message) -> TensorComparison:
    return TensorComparison(layer=layer, kind=kind, shape=shape, actual_shape=actual_shape,
                            max_abs_error=None, max_rel_error=None, worst_index=None, expected_value=None,
                            actual_value=None, ok=False, message=message)  # fmt: skip


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
    items = list(items)
    rows = [None] * len(items)
    good, actuals = [], []  # the items compared entry by entry, and their actual arrays
    for i, it in enumerate(items):
        layer, kind, expected, actual = it.layer, it.kind, it.expected, it.actual
        shape, problem = expected.shape, None
        if isinstance(actual, Missing):
            actual, problem = None, actual.message
        elif type(actual) is not np.ndarray:  # a plain ndarray is kept as it is (as_gradient_array)
            actual, problem = as_gradient_array(actual)
        if actual is None:
            rows[i] = _failed(layer, kind, shape, None, f"{problem}: expected an array of shape {shape}")
        elif actual.shape != shape:
            rows[i] = _failed(
                layer, kind, shape, actual.shape, f"wrong shape: expected {shape}, got {actual.shape}"
            )
        elif actual.dtype.kind not in "fiub":
            rows[i] = _failed(layer, kind, shape, shape, f"dtype {actual.dtype} is not a real number type")
        elif expected.size:
            good.append(i)
            actuals.append(actual)
        else:
            rows[i] = TensorComparison(layer, kind, shape, shape, 0.0, 0.0, None, None, None, True)
    if not good:
        return rows
    sel = [items[i] for i in good] if len(good) < len(items) else items
    sizes = [it.expected.size for it in sel]
    e = np.concatenate([it.expected.ravel() for it in sel]).astype(np.float64, copy=False)
    a = np.concatenate([x.ravel() for x in actuals]).astype(np.float64, copy=False)
    masks = [it.include for it in sel]
    include = None if all(m is None for m in masks) else spread(masks, sizes, True).astype(bool, copy=False)
    compared = flat_rows([(it.layer, it.kind, it.one_sided) for it in sel], [it.expected for it in sel],
                         actuals, e, a, rtol=spread([it.rtol for it in sel], sizes, 0.0),
                         atol=spread([it.atol for it in sel], sizes, 0.0), scale=scale, include=include)
    for i, row in zip(good, compared, strict=True):
        rows[i] = row
    return rows


def flat_rows(meta, expected, actual, e, a, *, rtol, atol, scale: float, include=None) -> list:
    """``compare_tensors``' rows for tensors of the right shapes and real dtypes, given also laid end to end.

    ``meta`` holds (layer, kind, one_sided) per tensor; ``expected`` and ``actual`` its arrays (not empty);
    ``e`` and ``a`` the same entries raveled one tensor after another, in float64; ``rtol``, ``atol``
    scalars or arrays of ``e``'s length, ``include`` None or a boolean array of it. A caller that keeps its
    gradients flat (the three-way check) concatenates each once instead of once per comparison."""
    sizes = [x.size for x in expected]
    bounds = [0, *accumulate(sizes)]  # segment j of the flat arrays: bounds[j]:bounds[j + 1]
    starts = np.array(bounds[:-1])
    table = np.empty((3, e.size))  # |a - e|, each entry's share of its allowance, |a - e| / |e|
    error, share, relative = table
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        np.abs(np.subtract(a, e, out=error), out=error)
        magnitude = np.abs(e)
        np.divide(error, atol * scale + rtol * magnitude, out=share)
        np.divide(error, magnitude, out=relative)
    exact = error == 0
    share[exact] = 0.0
    relative[exact] = 0.0
    nan = np.isnan(error)
    share[nan] = np.inf  # NaN in `actual` is the worst entry: it agrees with nothing
    if include is not None:
        share[~include] = -1.0
        error[~include] = 0.0  # an excluded NaN is no NaN of the tensor's
        relative[~include] = 0.0
        excluded = np.add.reduceat(~include, starts).tolist()
    else:
        excluded = [0] * len(sizes)
    # Per tensor: the largest error (NaN where an entry compared is NaN: its share is inf, so it fails),
    # the largest share (<= 1: every entry agrees), the largest relative error.
    seg_error, seg_share, seg_relative = np.maximum.reduceat(table, starts, axis=1).tolist()
    ok_all = [largest <= 1.0 for largest in seg_share]
    local = argmax_per_segment(share, tuple(sizes), bounds)
    worst = starts + local
    shapes = [x.shape for x in expected]
    if {len(shape) for shape in shapes} == {2}:  # the worst entries' (row, column), all at once
        at_rows, at_columns = np.divmod(local, [shape[1] for shape in shapes])
        where = list(zip(at_rows.tolist(), at_columns.tolist(), strict=True))
    else:
        where = [tuple(int(k) for k in np.unravel_index(at, shape))
                 for at, shape in zip(local.tolist(), shapes, strict=True)]  # fmt: skip
    rows, new, set_fields = [], object.__new__, object.__setattr__
    for (layer, kind, one_sided), tensor, given, shape, size, left_out, ok, err, rel, at, value, got in zip(
            meta, expected, actual, shapes, sizes, excluded, ok_all, seg_error, seg_relative, where,
            e[worst].tolist(), a[worst].tolist(), strict=True):  # fmt: skip
        bad = err != err  # NaN
        if left_out == size:
            rows.append(TensorComparison(
                layer, kind, shape, shape, 0.0, 0.0, None, None, None, True, excluded=left_out))  # fmt: skip
            continue
        row = new(TensorComparison)  # TensorComparison(...) without the frozen dataclass's __init__ (2 us):
        # every field, in order (tests/test_compare.py checks them against the dataclass's)
        set_fields(row, "__dict__", {
            "layer": layer, "kind": kind, "shape": shape, "actual_shape": shape,
            "max_abs_error": float("nan") if bad else err, "max_rel_error": float("nan") if bad else rel,
            "worst_index": at,
            "expected_value": value, "actual_value": got, "ok": ok, "compared": size - left_out,
            "excluded": left_out, "one_sided": int(one_sided),
            "message": "" if ok else _failure_message(tensor, given, got), "key": ""})  # fmt: skip
        rows.append(row)
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

    def per_tensor(value):  # [[weights, ...], [biases, ...]] for a pair of lists, else value everywhere
        return value if isinstance(value, (list, tuple)) else [[value] * len(expected_w)] * 2

    include, rtol, atol, one_sided = map(per_tensor, (include, rtol, atol, one_sided))
    items = [TensorPair(layer, KINDS[part], (expected_w, expected_b)[part][layer], actual_parts[part][layer],
                        include[part][layer], rtol[part][layer], atol[part][layer],
                        one_sided[part][layer] or 0) for layer in range(len(expected_w)) for part in (0, 1)]
    return compare_tensors(items, scale=scale)
