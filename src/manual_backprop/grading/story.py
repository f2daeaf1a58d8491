"""The function-level story: the one explanation that fits every failing case of a graded function.

A pattern is claimed only on evidence. Function-level checks come first (state kept between calls, lists
swapped or reversed, integer arrays); then the tensor fits of ``patterns.py`` at each failing case's first
wrong layer: a story must fit every failing tensor there, in every failing case, with the same parameter
everywhere; a parametric one (c, lambda, lr, a clip bound) needs ``MIN_SUPPORT`` independent entries over
distinct networks (told apart by their right gradient, so "notebook again" adds nothing). Without one, the
story says what was seen ("not sure") or where to look ("no known bug pattern fits").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..compare.gradient_forms import as_gradient_array
from ..tables import option
from ..tolerances import MIN_SUPPORT, param_rtol, tolerance_for
from .chain_story import with_chain
from .diagnose import Diagnosis, diagnose_tensor
from .patterns import close, param_text, parametric_fits, tensor_candidates, zeros_story

# Tensor-level diagnoses that are observations or parametric (weighed here with their evidence), not a
# fixed pattern: every other tensor-level code is a fixed fit.
_NOT_FIXED = {"unknown", "not_sure", "scaled", "sign", "zeros", "shape", "type", "stale"}
_PARTS = ("weights", "biases")


@dataclass(frozen=True)
class Seen:
    """One call of the graded function: its case, the right gradient, what it returned; ``ctx`` and
    ``comparison`` where its values were compared (``ctx`` only where they failed)."""

    name: str
    expected: tuple
    result: object
    ctx: object
    comparison: object
    error_kind: str | None

    def __post_init__(self):
        # A snapshot of the lists: a function that keeps and grows its lists changes them after returning.
        if _pair_lists(self.result):
            object.__setattr__(self, "result", tuple(list(part) for part in self.result))


@dataclass(frozen=True)
class Story:
    """The function's diagnosis: ``codes`` (one, or two equally good readings), a sentence, the cases."""

    codes: tuple
    text: str  # as it reads on the first failing case
    cases: tuple
    texts: tuple = ()  # (case name, text) where the words name each case's own layers
    chain: object = None  # chain.Chain: the first broken link, on the case that shows it best

    def to_dict(self) -> dict:
        return {"codes": list(self.codes), "text": self.text, "cases": list(self.cases),
                "chain": None if self.chain is None else self.chain.to_dict()}


def _near(a, b, dtype) -> bool:
    a, tolerance = as_gradient_array(a)[0], tolerance_for(dtype, "diagnosis")
    return a is not None and close(a.astype(np.float64), np.asarray(b, np.float64), tolerance)


def _pair_lists(result) -> bool:
    pair = isinstance(result, (tuple, list)) and len(result) == 2
    return pair and all(isinstance(p, (list, tuple)) for p in result)


def _gradient_equal(a, b, dtype) -> bool:
    if not (_pair_lists(a) and _pair_lists(b)) or any(len(x) != len(y) for x, y in zip(a, b, strict=True)):
        return False
    return all(_near(x, y, dtype) for pa, pb in zip(a, b, strict=True) for x, y in zip(pa, pb, strict=True))


def _dtype(seen: Seen):
    return seen.expected[0][0].dtype


# -------------------------------------------------------------------------- function-level checks

def _mutable_default(seen: Seen) -> bool:
    grown = _pair_lists(seen.result) and all(len(p) > len(seen.expected[0]) for p in seen.result)
    return seen.error_kind == "structure" and grown


def _swapped(seen: Seen) -> bool:
    r, e = seen.result, seen.expected
    return all(_near(r[0][k], e[1][k], _dtype(seen)) and _near(r[1][k], e[0][k], _dtype(seen))
               for k in range(len(e[0])))  # fmt: skip


def _reversed(seen: Seen) -> bool:
    r, e = seen.result, seen.expected
    last = len(e[0]) - 1
    return all(_near(r[p][k], e[p][last - k], _dtype(seen)) for p in (0, 1) for k in range(last + 1))


def _shapes(gradient) -> tuple:
    return tuple(tuple(np.shape(a) for a in part) for part in gradient)


def _stale(seen: Seen, earlier) -> bool:
    return any(
        not _gradient_equal(old.expected, seen.expected, _dtype(seen))
        and _gradient_equal(seen.result, old.result, _dtype(seen))
        for old in earlier
        if _pair_lists(old.result)
    )


def _alike(old, new, p: int, k: int, whole: bool) -> bool:
    """The same network shapes (``whole``), or a tensor k of the same shape."""
    if whole:
        return _shapes(old) == _shapes(new)
    return k < len(old[p]) and old[p][k].shape == new[p][k].shape


def _accumulates(seen: Seen, earlier) -> bool:
    """The result is the right gradient plus the earlier right ones: of the same network shapes, or of each
    tensor's (layer, shape)."""
    e, r = seen.expected, seen.result
    for whole in (True, False):
        ok, added = True, False
        for p in (0, 1):
            for k, right in enumerate(e[p]):
                past = [old.expected[p][k] for old in earlier if _alike(old.expected, e, p, k, whole)]
                total = sum(past, np.zeros_like(right))
                added = added or bool(np.any(total))
                ok = ok and _near(r[p][k], right + total, _dtype(seen))
        if ok and added:
            return True
    return False


def _truncated(seen: Seen) -> str | None:
    """The dtype name where the result holds integer arrays within 1 of the right values."""
    arrays = [[as_gradient_array(a)[0] for a in part] for part in seen.result]
    ints = [a.dtype for part in arrays for a in part if a is not None and a.dtype.kind in "iu"]
    if not ints:
        return None
    for part, rights in zip(arrays, seen.expected, strict=True):
        for a, right in zip(part, rights, strict=True):
            if a is None or a.shape != right.shape or np.any(np.abs(a - right) >= 1):
                return None
    return ints[0].name


def _function_level(seen: list, failing: list):
    """(codes, text) of a function-level story fitting every failing case, or None."""
    value = [s for s in failing if s.comparison is not None]
    lengths = [len(s.result[0]) for s in failing if _mutable_default(s)]
    if failing and len(lengths) == len(failing) and lengths == sorted(set(lengths)):
        shown = ", ".join(map(str, lengths[:4])) + (", ..." if len(lengths) > 4 else "")
        return ("mutable_default",), (
            f"the returned lists grow from call to call (lengths {shown}; one entry per layer expected): a "
            "mutable default argument (def backward_pass(..., grads=[])) or lists kept outside the function; "
            "create the lists inside the function"
        )
    if not value or len(value) != len(failing):
        return None
    if all(_swapped(s) for s in value):
        return ("swapped",), (
            "weights and biases swapped: the pair returned is (all_dl_dbiases, all_dl_dweights); return "
            "(all_dl_dweights, all_dl_dbiases)"
        )
    if all(_reversed(s) for s in value):
        return ("reversed",), (
            "the lists are in reverse order (layer K first): built by appending from the output down and "
            "never reversed, or reversed once too often; entry k must be layer k's gradient"
        )
    index = {id(s): i for i, s in enumerate(seen)}
    if all(_stale(s, seen[: index[id(s)]]) for s in value):
        return ("stale",), (
            "returns an earlier call's answer for a network with other values: the function keeps state "
            "between calls (a cache keyed by shapes or depth?); compute from the arguments every time"
        )
    if all(_accumulates(s, seen[: index[id(s)]]) for s in value):
        return ("accumulates",), (
            "each answer is the right gradient plus the earlier calls' gradients: sums kept between calls "
            "(module-level or function-attribute buffers never zeroed); start from zeros on every call"
        )
    names = [_truncated(s) for s in value]
    if all(names):
        return ("dtype",), (
            f"returned {names[0]} arrays where the parameters are {_dtype(value[0]).name}: the gradient was "
            "truncated to integers (astype(int), or buffers made with dtype=int); return float arrays "
            "(np.zeros_like(w))"
        )
    return None


# ------------------------------------------------------------------------------ tensor fits

def _case_fits(seen: Seen):
    """The fits (code, text, param, support) common to every failing tensor of the first wrong layer (same
    code, same parameter), the number of independent entries there, and that layer."""
    ctx, rows = seen.ctx, seen.comparison.rows
    layer = max(row.layer for row in rows if not row.ok)
    indep = int(np.count_nonzero(ctx.expected[1][layer]))
    tensors = []
    for row in (r for r in rows if not r.ok and r.layer == layer):
        p = _PARTS.index(row.kind)
        raw = seen.result[p][layer]
        expected = ctx.expected[p][layer]
        fits = []
        actual, _ = as_gradient_array(raw)
        if actual is not None and actual.shape == expected.shape and actual.dtype.kind in "fiu":
            actual = actual.astype(expected.dtype)
            for code, text, candidate in tensor_candidates(layer, row.kind, ctx):
                if close(actual, candidate, ctx) and not close(candidate, expected, ctx):
                    fits.append((code, text, None, 1))
            params = ctx.weights if p == 0 else ctx.biases
            theta = params[layer] if params is not None else np.zeros_like(expected)
            fits += [(f.code, f.text, f.param, f.support) for f in parametric_fits(actual, expected, theta,
                                                                                    indep, ctx)]
        told = diagnose_tensor(raw, layer, row.kind, ctx)
        if told.code not in _NOT_FIXED and not _has(fits, told.code, None, 0.0):
            fits.append((told.code, told.text, None, 1))
        tensors.append(fits)
    # a tensor wrong only at rounding level is matched only when all are (then the story is "precision")
    telling = [fits for fits in tensors if not _has(fits, "precision", None, 0.0)] or tensors
    common = telling[0]
    for fits in telling[1:]:
        common = [f for f in common if _has(fits, f[0], f[2], param_rtol(ctx.dtype))]
    return common, indep, layer


def _has(fits, code, param, rtol: float):
    return next((f for f in fits if f[0] == code and _same_param(f[2], param, rtol)), None)


def _same_param(a, b, rtol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.isclose(a, b, rtol=rtol, atol=0.0))


def _network(seen: Seen) -> bytes:
    return b"".join(np.ascontiguousarray(a).tobytes() for part in seen.expected for a in part)


def _convention(value: list, c: float, loss: str, hints: str = "python"):
    """The other least-squares convention: exactly c x the right gradient at every tensor of every case."""
    if (loss, c) not in (("least_squares", 2.0), ("sum_of_squares", 0.5)):
        return None
    if not all(_near(r, c * e, _dtype(s)) for s in value for p in (0, 1)
               for r, e in zip(s.result[p], s.expected[p], strict=True)):  # fmt: skip
        return None
    other = ("sum((out - y)^2), the published notebook's loss", "sum_of_squares") if c == 2.0 else \
        ("0.5 sum((out - y)^2)", "least_squares")  # fmt: skip
    return ("loss_convention",), f"this is the gradient of {other[0]}; grade with " + option("loss", other[1],
                                                                                             hints)


def _value_story(value: list, loss: str, hints: str = "python"):
    for c in (2.0, 0.5):  # the other least-squares convention, before "dL/d(output) of another loss"
        found = _convention(value, c, loss, hints)
        if found:
            return found
    per_case = [(_case_fits(s)[0], s) for s in value]
    rtol = param_rtol(_dtype(value[0]))
    # a case wrong only at rounding level (the bug's effect is tiny on its network) neither supports nor
    # refutes a story: it is matched only when every case is of that kind
    telling = [(fits, s) for fits, s in per_case if not _has(fits, "precision", None, 0.0)]
    per_case = telling or per_case
    fixed, parametric = [], []
    for code, _, param, _ in per_case[0][0]:
        matched = [(_has(fits, code, param, rtol), s) for fits, s in per_case]
        if not all(m for m, _ in matched):
            continue
        support = {}
        for m, s in matched:
            net = _network(s)
            support[net] = max(support.get(net, 0), m[3])
        total = sum(support.values())
        if param is None:
            fixed.append((total, code))
        elif total >= MIN_SUPPORT:
            parametric.append((total, code, param))
    if fixed:
        codes = tuple(dict.fromkeys(c for _, c in sorted(fixed, key=lambda t: -t[0])))
        # the words name this case's layers: each case gets its own text
        per = {s.name: " or ".join(dict.fromkeys(next(f[1] for f in fits if f[0] == c) for c in codes))
               for fits, s in per_case}  # fmt: skip
        return codes, per[per_case[0][1].name], per
    if parametric:
        parametric.sort(key=lambda t: -t[0])
        best = [t for t in parametric if t[0] == parametric[0][0]]
        if {"scaled", "update_returned"} <= {c for _, c, _ in best}:  # -lr * g: the step, not a stray factor
            best = [t for t in best if t[1] != "scaled"]
        columns = value[0].ctx.deltas[-1].shape[1]
        texts = [param_text(c, q, columns, loss) for _, c, q in best]
        return tuple(dict.fromkeys(c for _, c, _ in best)), " or ".join(dict.fromkeys(texts))
    return None



def _worst(seen: Seen, layer: int) -> str:
    worst = None
    failing = {r.kind for r in seen.comparison.rows if r.layer == layer and not r.ok}
    for p, kind in enumerate(_PARTS):
        if kind not in failing:
            continue
        actual, _ = as_gradient_array(seen.result[p][layer])
        right = seen.expected[p][layer]
        if actual is None or actual.shape != right.shape:
            continue
        err = np.abs(actual - right)
        i = np.unravel_index(int(np.argmax(err)), err.shape)
        if worst is None or err[i] > worst[0]:
            name = f"{'Omega' if kind == 'weights' else 'beta'}_{layer}[{', '.join(map(str, i))}]"
            worst = (err[i], f"{name}: yours {actual[i]:.6g}, right {right[i]:.6g}")
    return "" if worst is None else f"; the worst entry is {worst[1]}"


def _where(seen: Seen, layer: int) -> str:
    rows = seen.comparison.rows
    below_ok = all(r.ok for r in rows if r.layer < layer)
    bias_ok = all(r.ok for r in rows if r.layer == layer and r.kind == "biases")
    if layer > 0 and below_ok:
        return (f"only this layer's gradient is wrong (the layers below are right, so delta is right): look "
                f"at how Omega_{layer} and beta_{layer} are formed from delta_{layer}")  # fmt: skip
    if bias_ok:
        return (f"delta is right at layer {layer} (beta_{layer} is right): look at the h_{layer} side of "
                f"delta_{layer} h_{layer}^T")  # fmt: skip
    top = " or at dL/d(output)" if layer == len(seen.expected[0]) - 1 else ""
    return (f"delta is wrong from layer {layer} down (it propagates): look at the step from layer "
            f"{layer + 1} to {layer} (mask, transpose){top}")  # fmt: skip


def _fallback(value: list, loss: str) -> tuple:
    fits = [(_case_fits(s), s) for s in value]
    seen_any = any(f for (f, _, _), _ in fits)
    # "not sure" points at the case with the most evidence; "no pattern" at the first failing case
    best_fits, best = max(fits, key=lambda t: t[0][1]) if seen_any else fits[0]
    _, indep, layer = best_fits
    total = sum(int(np.size(best.expected[p][layer])) for p in (0, 1))
    wrong = 0
    for p in (0, 1):
        actual, right = as_gradient_array(best.result[p][layer])[0], best.expected[p][layer]
        same = actual is not None and actual.shape == right.shape
        wrong += int(np.count_nonzero(actual != right)) if same else right.size
    if seen_any:
        few = "only one entry is nonzero" if indep <= 1 else f"only {indep} entries are nonzero"
        thin = all(f[1] <= 1 for f, _ in fits)
        why = f"{few} on these networks, so its cause cannot be told here" if thin else (
            "no single pattern fits every failing case")
        return ("not_sure",), (
            f"not sure: wrong values in {wrong} of the {total} entries of layer {layer}; {why}; see case "
            f"'{best.name}'"
            f"{_worst(best, layer)}"
        )
    return ("unknown",), (
        f"no known bug pattern fits; first wrong layer {layer} in case '{best.name}'{_worst(best, layer)}; "
        f"{_where(best, layer)}"
    )


def tell(seen: list, loss: str, hints: str = "python", function=None, examples=()) -> Story | None:
    """The story of a graded function (``function``) from its calls in order (``Seen``), or None;
    ``examples``: its batch-1 calls on one example of a batch case (``Seen``), for the chain."""
    failing = [s for s in seen if s.error_kind in ("exception", "structure")
               or (s.comparison is not None and not s.comparison.ok)]  # fmt: skip
    if not failing:
        return None
    found, explained = _function_level(seen, failing), failing
    value = [s for s in failing if s.comparison is not None and s.ctx is not None]
    if found is None and value:  # cases that raised keep their own message
        found = zeros_story(value) or _value_story(value, loss, hints) or _fallback(value, loss)
        explained = value
    if found is None:
        return None
    codes, text, per = found if len(found) == 3 else (*found, {})
    explained = explained if codes[0] not in ("not_sure", "unknown") else []
    text, chain = with_chain(codes, text, value + list(examples), loss, function, failing, explained or value)
    return Story(codes, text, tuple(s.name for s in explained), tuple(per.items()), chain)


def attach(results: tuple, story: Story | None) -> tuple:
    """The case results with the story's words on every case it explains (first wrong layer's tensors)."""
    if story is None or not story.cases:
        return results
    out = []
    for case in results:
        if case.name not in story.cases:
            out.append(case)
            continue
        first = case.first_wrong_layer
        text = dict(story.texts).get(case.name, story.text)
        told = tuple(Diagnosis(d.layer, d.kind, story.codes[0], text) if d.layer == first else d
                     for d in case.diagnoses if d.code != "stale")  # fmt: skip
        if not any(d.layer == first for d in told):
            told = (Diagnosis(-1 if first is None else first, "function", story.codes[0], text),) + told
        out.append(dataclasses.replace(case, diagnoses=told))
    return tuple(out)
