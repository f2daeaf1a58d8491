"""Whether bubblewrap can run here: the ``--sandbox`` tests skip with the reason where it cannot."""

from __future__ import annotations


def bwrap_problem() -> str | None:
    """Why ``--sandbox`` cannot run on this machine (bwrap missing, or unable to make namespaces), or None."""
    from manual_backprop.grading.sandbox import SandboxUnavailable, require_bwrap

    try:
        require_bwrap()
    except SandboxUnavailable as exc:
        return str(exc)
    return None
