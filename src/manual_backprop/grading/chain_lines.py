"""The student's likely line for a broken link of the chain, found in the graded function's source.

Read statically (``inspect`` and ``ast``: nothing is run): the statement that stores into the returned
weight (or bias) list for a weight (bias) link; for the top, the first statement built from ``y`` or a
loss; for a step, the statement built from the weights (with a transpose) or, for an elementwise slope,
the one that applies the mask. None where the source cannot be read (a lambda typed at a prompt, a
builtin) or no statement fits.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import textwrap

_MASK = re.compile(r"all_f|>|<|sign|where|maximum|mask|relu|indicator|deriv|heaviside|clip")
_TOP = re.compile(r"all_[fh]\[\s*(-1|K|K\s*\+\s*1|len)|loss|output")


def _source(function):
    try:
        if hasattr(type(function), "source_lines"):  # a function in a worker (isolation.RemoteFunction)
            lines, start, filename = function.source_lines()
        else:
            lines, start = inspect.getsourcelines(function)
            filename = function.__code__.co_filename
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, AttributeError, SyntaxError, IndentationError):
        return None
    body = tree.body[0] if tree.body and isinstance(tree.body[0], ast.FunctionDef) else None
    return (body, lines, start, os.path.basename(filename)) if body is not None else None


def _returned(fn) -> tuple:
    """The names of the returned (weights, biases) lists, where the function returns two names."""
    for node in ast.walk(fn):
        if isinstance(node, ast.Return) and isinstance(node.value, (ast.Tuple, ast.List)):
            items = node.value.elts
            if len(items) == 2 and all(isinstance(e, ast.Name) for e in items):
                return items[0].id, items[1].id
    return None, None


def _stores_into(node, name) -> bool:
    if name is None:
        return False
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        targets = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        return any(isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == name
                   for t in targets)  # fmt: skip
    call = node.value if isinstance(node, ast.Expr) else None
    return (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name) and call.func.value.id == name)  # fmt: skip


def _bound(fn, source: str) -> set:
    """``source`` and the names bound to one of its entries as they are (W = all_weights[k])."""
    names = {source}
    for node in ast.walk(fn):
        value = getattr(node, "value", None)
        if (isinstance(node, ast.Assign) and isinstance(value, ast.Subscript)
                and isinstance(value.value, ast.Name) and value.value.id == source):  # fmt: skip
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _masks(fn, weights: set) -> set:
    """The names bound to something made of all_f alone (f = all_f[k - 1], s = sigmoid(all_f[k - 1])):
    never a name also bound to something made with the weights or the target (delta)."""
    made, mixed = set(), set()
    for node in ast.walk(fn):
        if not isinstance(node, ast.Assign):
            continue
        text = ast.unparse(node.value)
        names = {t.id for t in node.targets if isinstance(t, ast.Name)}
        if any(re.search(rf"\b{re.escape(n)}\b", text) for n in weights | {"y"}):
            mixed |= names
        elif re.search(r"\ball_f\b", text):
            made |= names
    return made - mixed


def _score(link, text: str, node, returned, names) -> int:
    weights, pre = names
    w_name, b_name = returned
    kind = link.kind
    if kind in ("weights", "bias"):
        if _stores_into(node, w_name if kind == "weights" else b_name):
            return 3
        pattern = r"all_h\b.*(@|dot|outer)|(@|dot|outer).*all_h\b" if kind == "weights" else r"sum|mean|bias"
        return int(bool(re.search(pattern, text)) and not _stores_into(node, b_name if kind == "weights"
                                                                        else w_name))  # fmt: skip
    if _stores_into(node, w_name) or _stores_into(node, b_name):
        return 0
    mentions_weights = any(re.search(rf"\b{re.escape(n)}\b", text) for n in weights)
    if kind == "top":
        score = 3 * bool(re.search(r"\by\b", text)) + 2 * bool(_TOP.search(text))
        return max(score - mentions_weights, 0)
    if all(re.search(rf"\b{name}\b", text) for name in ("all_weights", "all_f", "all_h")):
        return 0  # a call that passes the arguments along
    if re.search(r"\by\b", text):
        return 0  # the top's statement
    elementwise = link.slope is not None or link.code == "boolean"
    score = 2 * mentions_weights + bool(re.search(r"\.T\b|transpose", text))
    if link.code == "weight_gradient" and re.search(rf"\b(d[wW]\w*|\w*dl_dweights\w*|{w_name})\b", text):
        score += 3
    masked = _MASK.search(text) or any(re.search(rf"\b{re.escape(n)}\b", text) for n in pre)
    score += (3 if elementwise else 1) * bool(masked)
    score += 2 if elementwise and masked and mentions_weights else 0
    if link.code in ("rescaled", "constant") and re.search(r"norm|/", text):
        score += 9  # the statement that rescales, not the step before it
    return score if score >= 2 or elementwise else 0


def likely_line(function, link) -> str | None:
    """``file.py:12: the statement`` most likely to compute ``link`` (a ``chain.Link``), or None."""
    found = _source(function) if link is not None else None
    if found is None:
        return None
    fn, lines, start, filename = found
    weights = _bound(fn, "all_weights")
    returned, names = _returned(fn), (weights, _bound(fn, "all_f") | _masks(fn, weights))
    best = None
    statements = [n for n in ast.walk(fn) if isinstance(n, (ast.Assign, ast.AugAssign, ast.Expr, ast.Return))]
    for node in sorted(statements, key=lambda n: n.lineno):
        text = " ".join(line.strip() for line in textwrap.dedent("".join(lines)).splitlines()[
            node.lineno - 1: node.end_lineno])  # fmt: skip
        score = _score(link, text, node, returned, names)
        if score > 0 and (best is None or score > best[0]):
            best = (score, node.lineno, text)
    if best is None:
        return None
    return f"{filename}:{start + best[1] - 1}: {best[2]}"
