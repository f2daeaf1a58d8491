"""The worker's wire format: JSON headers and raw ``.npy`` arrays over a socket, never a pickle.

A message is an 8-byte length, a JSON header, then the arrays its header lists, each written by
``np.save(..., allow_pickle=False)`` and read back by ``np.load(..., allow_pickle=False)``: only numbers,
strings, lists and plain arrays cross, whatever the sender is. The reader caps every size (``WireError``
past it) and honours a deadline (``WireTimeout``); a closed connection is ``WireClosed``.

Values (a call's arguments and result) are encoded as a tree of nodes: ``none``, ``bool``, ``int``,
``float``, ``str``, ``array`` / ``scalar`` (an index into the arrays), ``list``, ``tuple``, ``dict`` (string
keys), ``ref`` (one of the call's own argument arrays) and ``object``: anything else, described by its type
name, ``repr`` and why it could not be sent; it comes back as an ``UnreadableObject`` whose conversions
raise that reason. ``encode_arguments`` and ``mirror_changes`` carry a call's arguments there and the
changes the call made to them (in place, or to its lists) back into the caller's own objects.
"""

from __future__ import annotations

import io
import json
import math
import re
import socket
import struct
import time

import numpy as np

MAX_HEADER = 16 * 2**20  # bytes of JSON in one message
MAX_DEPTH = 40  # nesting of lists in one value
MAX_NODES = 200_000
MAX_TEXT = 100_000  # characters of one string kept
_LENGTH = struct.Struct("!Q")


class WireError(Exception):
    """A message that breaks the format or its limits (the other side is broken or hostile)."""


class WireClosed(WireError):
    """The other side closed the connection (or it was never there)."""


class WireTimeout(WireError):
    """No complete message before the deadline."""


# ------------------------------------------------------------------------------------------------ framing


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def send(sock: socket.socket, header: dict, arrays=()) -> None:
    """Send ``header`` (JSON-able) and the plain ``arrays`` it refers to by index."""
    blobs = [_npy(a) for a in arrays]
    data = json.dumps(dict(header, blobs=[len(b) for b in blobs])).encode()
    sock.sendall(_LENGTH.pack(len(data)) + data)
    for blob in blobs:
        sock.sendall(blob)


def _read_exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks, left = [], size
    while left:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WireTimeout("no answer before the deadline")
            sock.settimeout(remaining)
        else:
            sock.settimeout(None)
        try:
            chunk = sock.recv(min(left, 1 << 20))
        except TimeoutError:
            raise WireTimeout("no answer before the deadline") from None
        except OSError as exc:
            raise WireClosed(f"the connection failed ({exc.strerror or exc})") from None
        if not chunk:
            raise WireClosed("the connection was closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket, deadline: float | None = None, max_bytes: int = 2**30):
    """``(header, arrays)`` of the next message; ``max_bytes`` caps its arrays' total size."""
    (length,) = _LENGTH.unpack(_read_exactly(sock, _LENGTH.size, deadline))
    if length > MAX_HEADER:
        raise WireError(f"a header of {length} bytes (the limit is {MAX_HEADER})")
    try:
        header = json.loads(_read_exactly(sock, length, deadline))
    except (ValueError, RecursionError) as exc:
        raise WireError(f"a header that is not JSON ({type(exc).__name__})") from None
    sizes = header.get("blobs") if isinstance(header, dict) else None
    if not isinstance(sizes, list) or not all(type(s) is int and s >= 0 for s in sizes):
        raise WireError("a header without its list of array sizes")
    if sum(sizes) > max_bytes:
        raise WireError(f"{sum(sizes):,} bytes of arrays, over the limit of {max_bytes:,}")
    arrays = []
    for size in sizes:
        try:
            array = np.load(io.BytesIO(_read_exactly(sock, size, deadline)), allow_pickle=False)
        except WireError:
            raise
        except Exception as exc:  # noqa: BLE001 (whatever bytes came: not an .npy array)
            raise WireError(f"an array that is not a plain .npy ({type(exc).__name__})") from None
        if not isinstance(array, np.ndarray) or array.dtype.hasobject:
            raise WireError("an array that is not a plain .npy")
        arrays.append(array)
    return header, arrays


# ------------------------------------------------------------------------------------------------- values


def _describe(value, why: str) -> dict:
    try:
        shown = repr(value)
        shown = shown if isinstance(shown, str) else "?"
    except BaseException:  # noqa: BLE001 (a user object: its repr may raise anything)
        shown = "?"
    return {"t": "object", "type": type(value).__name__, "repr": shown[:200], "why": why}


def encode(value, arrays: list, refs: dict | None = None) -> dict:
    """The node of ``value``; its arrays are appended to ``arrays``. ``refs``: ``{id(array): index}`` of
    arrays to send as references (a call's own arguments). Never raises for a user's object: what cannot
    be sent becomes an ``object`` node. Converting may run the object's code (``__array__``, ``__len__``)."""
    count = [0]
    return _encode(value, arrays, refs or {}, 0, count)


def _encode(value, arrays, refs, depth, count) -> dict:
    count[0] += 1
    if count[0] > MAX_NODES:
        return _describe(value, f"more than {MAX_NODES} items")
    if value is None:
        return {"t": "none"}
    if refs and id(value) in refs:
        return {"t": "ref", "i": refs[id(value)]}
    kind = type(value)
    if kind is bool:
        return {"t": "bool", "v": value}
    if kind is int:
        return {"t": "int", "v": value} if abs(value) < 2**63 else {"t": "float", "v": float(value)}
    if kind is float:
        return {"t": "float", "v": value if math.isfinite(value) else repr(value)}
    if kind is str:
        return {"t": "str", "v": value[:MAX_TEXT]}
    if isinstance(value, (np.ndarray, np.generic)) or (
        hasattr(value, "__array__") and not isinstance(value, (str, bytes, list, tuple, dict))
    ):
        try:
            array = np.array(value, copy=True, subok=False)
        except BaseException as exc:  # noqa: BLE001 (a torch tensor that requires grad, a broken __array__)
            return _describe(value, f"it could not be converted to a NumPy array ({type(exc).__name__}: "
                                    f"{_first_line(exc)})")
        if array.dtype.hasobject:
            return _describe(value, "an array of Python objects, not of numbers")
        arrays.append(array)
        return {"t": "scalar" if isinstance(value, np.generic) else "array", "i": len(arrays) - 1}
    if isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            return _describe(value, f"nested more than {MAX_DEPTH} deep")
        items = [_encode(item, arrays, refs, depth + 1, count) for item in list(value)]
        return {"t": "tuple" if isinstance(value, tuple) else "list", "v": items}
    if isinstance(value, dict) and depth < MAX_DEPTH and all(type(k) is str for k in value):
        return {"t": "dict", "v": [[k, _encode(v, arrays, refs, depth + 1, count)] for k, v in value.items()]}
    if kind in (complex, bytes):
        return _describe(value, f"a {kind.__name__}, not a number or an array")
    return _describe(value, "not an array, a number, a string or a list of them")


def _first_line(exc: BaseException) -> str:
    try:
        text = str(exc).strip().splitlines()
        return text[0][:160] if text else ""
    except BaseException:  # noqa: BLE001
        return ""


class UnreadableObject:
    """Stands, in the parent, for an object the graded code returned that could not be sent back."""

    _why = ""
    _repr = "?"

    def __repr__(self) -> str:
        return self._repr

    def _refuse(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} could not be read back from the worker: {self._why}")

    __array__ = __len__ = __iter__ = __float__ = __int__ = __index__ = __getitem__ = _refuse


_CLASSES: dict[str, type] = {}


def unreadable(type_name: str, shown: str, why: str) -> UnreadableObject:
    """An ``UnreadableObject`` whose class bears the user's type name (for the graders' messages)."""
    valid = isinstance(type_name, str) and re.fullmatch(r"[A-Za-z_]\w{0,79}", type_name)
    name = type_name if valid else "object"
    cls = _CLASSES.get(name) or _CLASSES.setdefault(name, type(name, (UnreadableObject,), {}))
    obj = cls()
    obj._why, obj._repr = str(why)[:300], str(shown)[:200]
    return obj


def decode(node, arrays: list, refs: list | None = None, depth: int = 0):
    """The value of ``node`` (from ``encode``); ``refs``: the arrays a ``ref`` node points at. WireError
    when the node is malformed."""
    if depth > MAX_DEPTH + 2 or not isinstance(node, dict):
        raise WireError("a malformed value")
    kind = node.get("t")
    try:
        if kind == "none":
            return None
        if kind in ("bool", "int", "str"):
            value = node["v"]
            if type(value) is not {"bool": bool, "int": int, "str": str}[kind]:
                raise WireError("a malformed value")
            return value
        if kind == "float":
            return float(node["v"])
        if kind in ("array", "scalar"):
            array = arrays[node["i"]]
            return array[()] if kind == "scalar" else array
        if kind == "ref":
            return refs[node["i"]]
        if kind in ("list", "tuple"):
            items = [decode(item, arrays, refs, depth + 1) for item in node["v"]]
            return tuple(items) if kind == "tuple" else items
        if kind == "dict":
            return {str(k): decode(v, arrays, refs, depth + 1) for k, v in node["v"]}
        if kind == "object":
            return unreadable(node.get("type"), node.get("repr", "?"), node.get("why", ""))
    except WireError:
        raise
    except (KeyError, IndexError, TypeError, ValueError):
        raise WireError("a malformed value") from None
    raise WireError(f"a value of unknown kind {str(kind)[:40]!r}")


# ------------------------------------------------------------------------------------ a call's arguments


def encode_arguments(args):
    """A call's arguments to send: (nodes, arrays, originals), each distinct ndarray sent once and
    ``originals[i]`` the caller's own array (None for an array made from another value)."""
    arrays, originals, index = [], [], {}

    def walk(value):
        if type(value) is np.ndarray or isinstance(value, np.ndarray):
            if id(value) not in index:
                index[id(value)] = len(arrays)
                arrays.append(np.array(value, subok=False))
                originals.append(value)
            return {"t": "array", "i": index[id(value)]}
        if isinstance(value, (list, tuple)):
            return {"t": "tuple" if isinstance(value, tuple) else "list", "v": [walk(v) for v in value]}
        node = encode(value, arrays)
        originals.extend([None] * (len(arrays) - len(originals)))
        return node

    return [walk(a) for a in args], arrays, originals


def _sync_list(mine: list, theirs: list) -> None:
    """Make the caller's list ``mine`` what the worker's became (``theirs``): its own arrays where the
    function kept them, new objects where it put new ones; nested lists kept as objects."""
    items = [_sync_list(m, t) or m if type(m) is list and type(t) is list else t
             for m, t in zip(mine, theirs, strict=False)] + list(theirs[len(mine):])
    if len(items) != len(mine) or any(a is not b for a, b in zip(items, mine, strict=False)):
        mine[:] = items


def mirror_changes(args, originals, answer, received) -> None:
    """Copy what the call changed in its arguments (arrays in place, lists) back into the caller's ``args``,
    from the answer's ``arrays_after`` (one node per argument array; "none": unchanged) and ``args_after``
    (the arguments' structure, its arrays as references to ``originals``)."""
    after = [decode(node, received) for node in answer.get("arrays_after", [])]
    for original, new in zip(originals, after, strict=False):
        if isinstance(original, np.ndarray) and isinstance(new, np.ndarray) and new.shape == original.shape \
                and not np.array_equal(original, new, equal_nan=original.dtype.kind in "fc"):
            try:
                np.copyto(original, new, casting="unsafe")
            except (ValueError, TypeError):
                pass  # a read-only array of the caller's: the change is not mirrored
    for arg, node in zip(args, answer.get("args_after", []), strict=False):
        if type(arg) is list:
            new = decode(node, received, originals)
            if type(new) is list:
                _sync_list(arg, new)
