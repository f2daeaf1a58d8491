"""The chain in the function's story: the broken link, on the case that shows it best; no minority headline.

``story.tell`` calls ``with_chain`` once it has its story (a named pattern, or "not sure" / "no known bug
pattern fits"): the chain of every failing batch-1 case is followed (``chain.follow``); the kind of first
broken link that most cases share is kept, on the case that shows it best (a usual mistake named, then the
most entries where the student's value and the equation differ). A named pattern stays the explanation,
the link is shown beneath it; without one, the link's headline becomes the explanation. ``majority_first``
keeps a headline from describing a minority of the failing cases.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from .chain import Chain, follow
from .chain_lines import likely_line

NO_PATTERN = ("not_sure", "unknown")
# Stories of the whole function, not of one equation (lists swapped, state kept, an update returned, the other
# loss convention): no link of the chain is their place, and a link shown beneath them would mislead.
WHOLE_FUNCTION = frozenset({"mutable_default", "swapped", "reversed", "stale", "accumulates", "dtype",
                            "loss_convention", "update_returned"})  # fmt: skip


def _evidence(chain: Chain) -> tuple:
    """A reading named first, then the most entries where yours and the equation differ."""
    link = chain.first
    yours, given = np.ravel(link.yours), np.ravel(link.given)
    differ = int(np.count_nonzero(~np.isclose(yours, given))) if yours.shape == given.shape else yours.size
    named = link.code is not None and bool(np.any(yours))  # all zeros: any factor of 0 reads the same
    return named, differ, yours.size, chain.case != "exact kinks"


def _follow(seen, loss: str):
    """The case's chain; None where the student's values defeat the arithmetic (the grade stands)."""
    try:
        with np.errstate(all="ignore"):
            return follow(seen.name, seen.ctx, seen.result, loss)
    except (ValueError, TypeError, IndexError, ZeroDivisionError, OverflowError):
        return None


def best_chain(value: list, loss: str) -> tuple:
    """(the Chain of the case that shows the shared first broken link best, every case's Chain)."""
    chains = [c for c in (_follow(s, loss) for s in value if s.ctx is not None) if c is not None]
    broken = [c for c in chains if c.first is not None]
    if not broken:
        return None, tuple(chains)
    shared = Counter(c.first.kind for c in broken).most_common(1)[0][0]
    best = max((c for c in broken if c.first.kind == shared), key=_evidence)
    return best, tuple(chains)


def with_chain(codes: tuple, text: str, value: list, loss: str, function=None, failing=(), told=()) -> tuple:
    """(text, chain): the story's text (the chain's headline first where no pattern was named; led by what
    most ``failing`` cases share where the cases it speaks of, ``told``, are fewer) and the best Chain (with
    the likely line where ``function``'s source can be read), or None."""
    whole = bool(set(codes) & WHOLE_FUNCTION)
    chain, _ = best_chain(value, loss) if value and not whole else (None, ())
    if chain is not None and function is not None:
        chain = dataclasses.replace(chain, line=likely_line(function, chain.first))
    if chain is not None and codes[0] in NO_PATTERN:
        text = f"{chain.headline()}. ({text})"
    return majority_first(text, list(failing), list(told)), chain


_ERRORS = {"exception": "raise an exception", "structure": "return something other than the two lists",
           "timeout": "run past the time limit", "exit": "call sys.exit"}  # fmt: skip


def majority_first(text: str, failing: list, explained: list) -> str:
    """``text`` as is where the cases it speaks of (``explained``: those its story fits, or for "no pattern"
    the cases whose values were compared) are at least half of ``failing``; else led by what most share."""
    if not explained or 2 * len(explained) >= len(failing):
        return text
    names = {s.name for s in explained}
    others = [s for s in failing if s.name not in names]
    kinds = Counter(s.error_kind or "value" for s in others)
    kind, n = kinds.most_common(1)[0]
    what = _ERRORS.get(kind, "fail in other ways")
    shown = ", ".join(f"'{s.name}'" for s in explained[:3]) + (", ..." if len(explained) > 3 else "")
    return (f"{n} of {len(failing)} failing cases {what} (see each case's line); in the other "
            f"{len(explained)} ({shown}): {text}")
