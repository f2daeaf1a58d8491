"""Progress bars on stderr for the long loops of a check (tqdm), off unless the command line turns them on.

A loop that may run long marks what it iterates: ``for block in track(blocks, "finite differences")``.
``track`` hands the items back unchanged, unless the caller is inside ``showing()``: then tqdm draws a bar
on stderr, and only for a loop still running after ``DELAY`` seconds, so a quick check prints nothing. The
library never turns bars on by itself; ``manual-backprop check`` does, when stderr is a terminal and the
output is not ``--json``.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

T = TypeVar("T")

# Seconds a loop runs before its bar appears: a check expected to end sooner stays silent.
DELAY = 2.0

_SHOWING: contextvars.ContextVar[bool] = contextvars.ContextVar("manual_backprop_progress", default=False)


@contextlib.contextmanager
def showing(enabled: bool = True) -> Iterator[None]:
    """Within this block, ``track``-ed loops draw a tqdm bar on stderr (when ``enabled``)."""
    token = _SHOWING.set(bool(enabled))
    try:
        yield
    finally:
        _SHOWING.reset(token)


def track(items: Iterable[T], what: str) -> Iterable[T]:
    """``items``, with a progress bar labelled ``what`` inside ``showing()`` (a loop of 2 or more items)."""
    if not _SHOWING.get() or (isinstance(items, Sized) and len(items) < 2):
        return items
    from tqdm import tqdm  # type: ignore[import-untyped]  # imported only when a bar is wanted

    return tqdm(items, desc=what, delay=DELAY, leave=False, file=sys.stderr, dynamic_ncols=True)
