"""Parameters as a tree of arrays (nested dicts, lists, tuples): leaves named by path, flattened and rebuilt.

A leaf's name is its path: a dict key as the key (``W1``), a position as ``[1]``, nested as
``layers[0].W``. ``flatten`` reads the caller's tree (checked once, at the door: float arrays only, 0-d
allowed) into names, float arrays and a ``Structure`` that ``unflatten`` rebuilds from new leaves.
``leaves_like`` reads a tree a user returned (a gradient) in that structure without raising: a part that is
not there is a ``gradient_forms.Missing`` whose message names the mismatch as such ("grad_fn returned a
dict without 'b2'", "a list of 3 where params has 4").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .gradient_forms import Missing, is_array


@dataclass(frozen=True)
class Structure:
    """The shape of a tree: ``kind`` "leaf", "dict", "list" or "tuple"; ``keys`` (dict keys, in the caller's
    order) and ``children`` (sub-structures, one per key or position); ``shape``/``dtype`` of a leaf."""

    kind: str
    keys: tuple = ()
    children: tuple = ()
    shape: tuple = ()
    dtype: str = "float64"


def _join(prefix: str, key) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def flatten(tree, name: str = "params") -> tuple[list[str], list[np.ndarray], Structure]:
    """``(names, leaves, structure)`` of a tree of float arrays; the leaves are the caller's own arrays
    (never written to: copy before changing them). A leaf that is not a real floating array, an empty
    container or a key that is not a string or an int is a TypeError/ValueError naming its path."""
    names: list[str] = []
    leaves: list[np.ndarray] = []

    def walk(node, path: str) -> Structure:
        shown = path or name
        if isinstance(node, Mapping):
            if not node:
                raise ValueError(f"{name}: {shown} is an empty dict: give at least one array")
            for key in node:
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise TypeError(f"{name}: {shown} has a key {key!r}; keys must be strings")
            keys = tuple(node)
            return Structure("dict", keys, tuple(walk(node[k], _join(path, str(k))) for k in keys))
        if isinstance(node, (list, tuple)) and not is_array(node):
            if not node:
                raise ValueError(f"{name}: {shown} is an empty {type(node).__name__}: give at least 1 array")
            kind = "tuple" if isinstance(node, tuple) else "list"
            return Structure(kind, tuple(range(len(node))),
                             tuple(walk(v, _join(path, i)) for i, v in enumerate(node)))  # fmt: skip
        array = node if isinstance(node, np.ndarray) else np.asarray(node) if _numeric(node) else None
        if array is None or array.dtype.kind != "f" or array.dtype.itemsize not in (4, 8):
            what = type(node).__name__ if array is None else f"an array of dtype {array.dtype}"
            raise TypeError(f"{name}: {shown} is {what}; every leaf must be a float64 or float32 array "
                            "(convert with np.asarray(x, dtype=float))")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: {shown} has NaN or inf entries; give finite parameters")
        names.append(shown if path else "array")
        leaves.append(array)
        return Structure("leaf", shape=tuple(array.shape), dtype=array.dtype.name)

    structure = walk(tree, "")
    return names, leaves, structure


def _numeric(node) -> bool:
    return isinstance(node, (float, np.floating)) or (is_array(node) and not isinstance(node, (str, bytes)))


def unflatten(structure: Structure, leaves) -> object:
    """The tree of ``structure`` with ``leaves`` (in ``flatten``'s order) at its leaves."""
    it = iter(leaves)

    def build(s: Structure):
        if s.kind == "leaf":
            return next(it)
        values = [build(c) for c in s.children]
        if s.kind == "dict":
            return dict(zip(s.keys, values, strict=True))
        return tuple(values) if s.kind == "tuple" else values

    return build(structure)


def _kind_of(value) -> str:
    if isinstance(value, Mapping):
        return "a dict"
    if isinstance(value, (list, tuple)) and not is_array(value):
        return f"a {type(value).__name__} of {len(value)}"
    if is_array(value) or isinstance(value, (float, int, np.number)):
        return f"an array of shape {np.shape(value)}"
    return f"a {type(value).__name__}"


def leaves_like(structure: Structure, value, who: str = "grad_fn", name: str = "params") -> tuple[list, list]:
    """``value`` read leaf by leaf in ``structure``: ``(leaves, notes)``. Each leaf is what the user gave
    there, or a ``Missing`` saying how the structure differs; ``notes`` name the extra keys and entries
    (never raising: a wrong structure fails the leaves it touches)."""
    out: list = []
    notes: list[str] = []

    def count(s: Structure) -> int:
        return 1 if s.kind == "leaf" else sum(count(c) for c in s.children)

    def walk(s: Structure, node, path: str):
        where = f" at {path}" if path else ""
        if isinstance(node, Missing):
            out.extend([node] * count(s))
            return
        if s.kind == "leaf":
            out.append(node)
            return
        if s.kind == "dict":
            if not isinstance(node, Mapping):
                miss = Missing(f"{who} returned {_kind_of(node)}{where} where {name} has a dict")
                return [walk(c, miss, "") for c in s.children]
            extra = [k for k in node if k not in s.keys]
            if extra:
                notes.append(f"{who} returned keys {name} lacks{where}: {', '.join(map(repr, extra))}")
            for k, c in zip(s.keys, s.children, strict=True):
                part = node[k] if k in node else Missing(f"{who} returned a dict without {k!r}{where}")
                walk(c, part, _join(path, str(k)))
            return
        if not isinstance(node, (list, tuple)) or is_array(node):
            miss = Missing(f"{who} returned {_kind_of(node)}{where} where {name} has a {s.kind} of "
                           f"{len(s.children)}")
            return [walk(c, miss, "") for c in s.children]
        if len(node) != len(s.children):
            miss = Missing(f"{who} returned a {type(node).__name__} of {len(node)}{where} where {name} has "
                           f"{len(s.children)}")
            return [walk(c, miss, "") for c in s.children]
        for i, (c, part) in enumerate(zip(s.children, node, strict=True)):
            walk(c, part, _join(path, i))

    walk(structure, value, "")
    return out, notes


_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def tree_from_names(named: Mapping) -> object:
    """A tree from leaves keyed by path names (``W1``, ``[0]``, ``layers[0].W``), as an ``.npz`` holds
    them: the inverse of ``flatten``'s names. Positions become lists in order; a gap is a ValueError."""
    root: dict = {}
    for full, array in named.items():
        parts = [int(i) if i else key for i, key in _PART.findall(full)]
        spelled = "".join(f"[{p}]" if isinstance(p, int) else p for p in parts)
        if not parts or spelled != full.replace(".", ""):
            raise ValueError(f"cannot read the leaf name {full!r}: use keys like W1, [0] or layers[0].W")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = array

    def lists(node):
        if not isinstance(node, dict):
            return node
        if node and all(isinstance(k, int) for k in node):
            if sorted(node) != list(range(len(node))):
                raise ValueError(f"positions {sorted(node)} have a gap: give [0] to [{len(node) - 1}]")
            return [lists(node[i]) for i in range(len(node))]
        if any(isinstance(k, int) for k in node):
            raise ValueError(f"a level mixes positions and keys: {sorted(map(str, node))}")
        return {k: lists(v) for k, v in node.items()}

    return lists(root)
