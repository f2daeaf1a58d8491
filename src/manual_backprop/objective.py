"""The training objective beyond the network, carried by the loss's name: output activation, mean, L2.

The notebook's objective is a loss of the output f_K summed over the batch. Hand-written networks often
differ in three ways, each a valid convention that must be graded as written, never guessed:

- an activation on the output (a sigmoid network with a quadratic cost): L = loss(a(f_K), y);
- the loss averaged over the batch (``reduction="mean"``): L = (1/N) sum_n loss_n;
- L2 regularisation of the weights: L += (l2 / 2) sum_k ||Omega_k||_F^2, so dL/dOmega_k gains l2 Omega_k
  (biases are not regularised; a ``reg * sum(W * W)`` penalty without the 1/2 is ``l2 = 2 * reg``).

They travel through every witness as one string, the loss's name, so that a report's header states them:
``"least_squares"`` alone is the notebook's objective, and
``"least_squares, output sigmoid, mean, l2 0.01"`` an objective with all three.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

BASE_LOSSES = ("least_squares", "sum_of_squares", "binary_cross_entropy", "softmax_cross_entropy")
REDUCTIONS = ("sum", "mean")
OUTPUT_ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "softplus")  # activations.ACTIVATIONS
_SQUARES = ("least_squares", "sum_of_squares")


class Objective(NamedTuple):
    """A parsed loss name: the ``base`` loss, the ``output`` activation (None: none), ``reduction`` over the
    batch ("sum" or "mean") and the ``l2`` coefficient (0: none)."""

    base: str
    output: str | None = None
    reduction: str = "sum"
    l2: float = 0.0

    @property
    def plain(self) -> bool:
        """The notebook's objective: the base loss of f_K, summed, unregularised."""
        return self.output is None and self.reduction == "sum" and self.l2 == 0

    def name(self) -> str:
        parts = [self.base]
        if self.output is not None:
            parts.append(f"output {self.output}")
        if self.reduction != "sum":
            parts.append(self.reduction)
        if self.l2:
            parts.append(f"l2 {self.l2!r}")
        return ", ".join(parts)

    def assumptions(self) -> str:
        """One line for a report's header: what the reference gradient assumes."""
        output = f"a {self.output} on the output" if self.output else "no activation on the output"
        reduction = "averaged over the batch" if self.reduction == "mean" else "summed over the batch"
        l2 = (f"L2 penalty (l2 / 2) sum ||Omega_k||^2 with l2 = {self.l2:g}" if self.l2
              else "no regularisation")
        return f"assumes: {output}; the loss {reduction}; {l2}"


def objective_name(loss: str, output_activation: str | None = None, reduction: str = "sum",
                   l2: float = 0.0) -> str:
    """The loss's name for ``loss`` with the given conventions (checked: a ValueError names the one at
    fault); ``loss`` itself may already carry conventions, which the arguments then must not repeat."""
    parsed = parse_objective(loss)
    if output_activation is None and reduction == "sum" and not l2:
        return parsed.name()
    if not parsed.plain:
        raise ValueError(f"loss {loss!r} already names its conventions; give them once")
    chosen = parsed._replace(output=output_activation, reduction=reduction, l2=_check_l2(l2))
    return check_objective(chosen).name()


def _check_l2(l2) -> float:
    if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not math.isfinite(l2) or l2 < 0:
        raise ValueError(f"l2 must be a finite number >= 0 (the coefficient of (l2 / 2) sum ||Omega||^2), "
                         f"got {l2!r}")
    return float(l2)


def check_objective(objective: Objective) -> Objective:
    """The objective, each part checked; a ValueError says which part is off and what to use."""
    if objective.base not in BASE_LOSSES:
        raise ValueError(f"unknown loss {objective.base!r}; choose one of {', '.join(BASE_LOSSES)}")
    if objective.output is not None:
        if objective.output not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"unknown output activation {objective.output!r}; choose one of "
                             f"{', '.join(OUTPUT_ACTIVATIONS)} (or None)")
        if objective.base not in _SQUARES:
            raise ValueError(f"an output activation with {objective.base}: that loss is taken on logits and "
                             "includes its own sigmoid or softmax; use least_squares or sum_of_squares with "
                             "an output activation, or the cross-entropy on the logits without one")
    if objective.reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {objective.reduction!r}; choose 'sum' or 'mean'")
    _check_l2(objective.l2)
    return objective


@lru_cache(maxsize=256)
def parse_objective(name) -> Objective:
    """The ``Objective`` a loss's name carries; a ValueError for a name that is not one."""
    if not isinstance(name, str):
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(BASE_LOSSES)}")
    if name in BASE_LOSSES:
        return Objective(name)
    base, *parts = [part.strip() for part in name.split(",")]
    found: dict = {}
    for part in parts:
        words = part.split()
        if len(words) == 2 and words[0] == "output" and "output" not in found:
            found["output"] = words[1]
        elif len(words) == 1 and words[0] in REDUCTIONS and "reduction" not in found:
            found["reduction"] = words[0]
        elif len(words) == 2 and words[0] == "l2" and "l2" not in found:
            try:
                found["l2"] = float(words[1])
            except ValueError:
                raise ValueError(f"loss {name!r}: {part!r} is not 'l2 <number>'") from None
        else:
            raise ValueError(f"loss {name!r}: cannot read {part!r}; a loss's conventions are 'output "
                             "<activation>', 'mean' and 'l2 <number>'")
    return check_objective(Objective(base, **found))
