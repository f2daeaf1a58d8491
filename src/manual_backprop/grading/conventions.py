"""Which least-squares loss the user's code uses, found by evaluating it rather than guessed.

The solved notebook's loss is ``0.5 * sum((out - y)^2)`` (``least_squares``, dL/dout = out - y); the
published notebook's is ``sum((out - y)^2)`` (``sum_of_squares``, dL/dout = 2 (out - y)). Both are right,
and every gradient of the second is twice the first's: the grader must grade against the one the user
wrote. When the user's file or notebook defines ``least_squares_loss`` or ``d_loss_d_output``, each is
called (through ``call_user``) on a probe and matched against both conventions.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np

from ..usercode import call_user

FORMULAS = {"least_squares": "0.5 * sum((out - y)^2)", "sum_of_squares": "sum((out - y)^2)"}
# Two probes: a (2, 3) batch with distinct entries (a mean or a wrong factor matches neither convention),
# then the notebook's single (1, 1) output for functions that only handle that.
_PROBES = (
    (np.array([[1.5, -0.5, 2.0], [0.25, 1.0, -1.0]]), np.array([[0.5, 0.5, -1.0], [2.0, -0.75, 0.0]])),
    (np.array([[3.0]]), np.array([[1.0]])),
)
_TIMEOUT = 5.0  # seconds for one probe call: a loss of six numbers returns at once


@dataclass(frozen=True)
class LossConvention:
    """``loss``: "least_squares", "sum_of_squares", or None (nothing found: use the default); ``source``:
    the user's function(s) it was found from; ``note``: one line when something did not fit."""

    loss: str | None
    source: str | None = None
    note: str | None = None

    def header(self) -> str | None:
        """The report's line, e.g. "loss: sum((out - y)^2), from your least_squares_loss"; or None."""
        if self.loss is None:
            return None
        return f"loss: {FORMULAS[self.loss]}, from your {self.source}"


def _matches(value, candidates: dict) -> str | None:
    """The name of the candidate ``value`` equals (any shape of the same size), or None."""
    array = np.asarray(value, dtype=np.float64)  # a user's object: may raise, inside call_user
    for name, expected in candidates.items():
        if array.size == np.size(expected) and np.allclose(
            array.reshape(np.shape(expected)), expected, rtol=1e-9, atol=0
        ):
            return name
    return None


def _probe(function, kind: str):
    """(convention or None, why not) for the user's loss (``kind`` "loss") or its derivative ("gradient").

    The (1, 1) probe is tried only when the function fails on the (2, 3) one."""
    why = "it matches neither 0.5 * sum((out - y)^2) nor sum((out - y)^2)"
    for z, y in _PROBES:
        difference = z - y
        if kind == "loss":
            total = np.sum(difference**2)
            candidates = {"least_squares": 0.5 * total, "sum_of_squares": total}
        else:
            candidates = {"least_squares": difference, "sum_of_squares": 2 * difference}
        result = call_user(function, (z.copy(), y.copy()), timeout=_TIMEOUT)
        if not result.ok:
            why = result.error
            continue
        # Reading the result runs the user's code too (its __array__, __float__, ...).
        reading = call_user(_matches, (result.value, candidates), timeout=_TIMEOUT)
        if reading.ok:  # matched, or read and matched neither (a mean, say: no second chance on (1, 1))
            return reading.value, None if reading.value else why
        why = f"its result could not be read: {reading.error}"
    return None, why


def find_loss_convention(namespace) -> LossConvention:
    """The least-squares convention of the user's ``least_squares_loss`` / ``d_loss_d_output``, if defined.

    ``namespace``: a module or a dict of globals (a notebook's). Both found and agreeing: that convention.
    One found: its convention. They disagree: the derivative's (it is what a backward pass multiplies
    through), with a note. Neither matches a convention: ``loss=None`` and a note (grade with the default).
    """
    if isinstance(namespace, types.ModuleType):
        namespace = vars(namespace)
    found = {}
    notes = []
    for name, kind in (("least_squares_loss", "loss"), ("d_loss_d_output", "gradient")):
        function = namespace.get(name) if isinstance(namespace, dict) else None
        if function is None or not callable(function):
            continue
        convention, why = _probe(function, kind)
        if convention is None:
            notes.append(f"your {name} {why}")
        else:
            found[name] = convention
    if not found:
        note = "; ".join(notes) + "; grading with the default loss" if notes else None
        return LossConvention(None, None, note)
    if len(set(found.values())) == 1:
        note = "; ".join(notes) + f"; grading with {next(iter(found.values()))}" if notes else None
        return LossConvention(next(iter(found.values())), " and ".join(found), note)
    loss = found["least_squares_loss"]  # the loss the notebook computes (and its own check differentiates)
    return LossConvention(
        loss,
        "least_squares_loss",
        f"your least_squares_loss is {FORMULAS[loss]} but your d_loss_d_output is the derivative of "
        f"{FORMULAS[found['d_loss_d_output']]}; grading against the loss: its gradient is the right one, and "
        "a backward pass built on that d_loss_d_output is off by the factor 2",
    )
