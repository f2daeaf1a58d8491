"""The loss along directions through the parameters: the ground shared by the directional and Taylor checks.

theta = (all_weights, all_biases) is held in float64 whatever its dtype, and L(theta + t v) is evaluated in
float64 by the forward pass of ``backprop`` and the terms of ``losses``, together with how many units have
crossed a kink (changed their on/off state, ``Activation.is_on``) against theta: a step that crosses one
leaves the smooth piece of the loss, and the checks step around it.

Directions v have the norm of the parameters, so steps are relative; their entries are random signs (a
Rademacher vector, cheap to draw). The first direction mixes that with g / |g|: along a purely random v,
v . (g_true - g) is a sum of P terms of random sign, about |g_true - g| / sqrt(P), which a large network's
curvature or the loss's rounding would swamp; along g it is about (g . g_true - |g|^2) / |g|, which a real
bug (a sign, a factor, a missing term) rarely makes zero. The others are random.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from .._types import Arrays, Parameters, Seed
from ..maths.activations import Activation, get_activation
from ..maths.backprop import forward
from ..maths.losses import l2_penalty, loss_terms
from ..maths.network import _check_count
from ..validate import check_columns, check_loss_name, check_parameters, check_target

check_count = _check_count  # an integer argument >= a minimum, as network.py checks its own


def relative_step(value: float | None, name: str, default: float) -> float:
    """A step relative to |theta|: ``default`` for None, else a finite number > 0 (TypeError/ValueError)."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number (relative to |theta|), got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(
            f"{name} must be a finite number > 0 (relative to |theta|; default {default:g}), got {value!r}"
        )
    return float(value)


def generator(rng: Seed) -> np.random.Generator:
    """``rng`` itself if it is a Generator, else ``np.random.default_rng(rng)``."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def verdict(ok: bool, inconclusive: bool) -> str:
    """The word for a report: "inconclusive", "ok" or "FAIL"."""
    return "inconclusive" if inconclusive else ("ok" if ok else "FAIL")


class Point(NamedTuple):
    """L(theta + t v) and how many units' on/off states differ from theta's there."""

    loss: float
    crossed: int


def _terms(act: Activation, loss: str, weights, biases, x, target):
    """Loss terms (D_o, N) and the hidden pre-activations f_0..f_{K-1}; overflow gives inf/NaN silently."""
    with np.errstate(over="ignore", invalid="ignore"):
        net_output, all_f, _ = forward(weights, biases, x, act)
        return loss_terms(loss, net_output, target), all_f[:-1]


@dataclass(frozen=True)
class LossLine:
    """theta and the data in float64, and the loss along lines through theta.

    ``weights[k]`` (D_{k+1}, D_k), ``biases[k]`` (D_{k+1}, 1), ``x`` (D_i, N), ``target`` (D_o, N), all
    float64; ``dtype`` the parameters' own dtype (for the tolerances); ``base_on`` the on/off state of every
    hidden unit at theta (None for a smooth activation); ``loss_rounding`` = eps sum |loss terms| at theta.
    """

    act: Activation
    loss: str
    dtype: np.dtype
    weights: list
    biases: list
    x: np.ndarray
    target: np.ndarray
    base_on: list | None
    base_loss: float
    loss_rounding: float

    def loss_of(self, weights, biases, x, target) -> float:
        """L at other float64 arrays (the same network in another order, say), summed in float64."""
        return float(_terms(self.act, self.loss, weights, biases, x, target)[0].sum()) + l2_penalty(self.loss,
                                                                                                  weights)

    def at(self, direction, t: float) -> Point:
        """L(theta + t v) for ``direction`` v = (weights, biases) like theta's, and the kinks crossed."""
        weights, biases = self.weights, self.biases
        if t != 0.0:
            weights = [w + t * d for w, d in zip(weights, direction[0], strict=True)]
            biases = [b + t * d for b, d in zip(biases, direction[1], strict=True)]
        terms, hidden_f = _terms(self.act, self.loss, weights, biases, self.x, self.target)
        crossed = 0
        if self.base_on is not None:
            for f, base in zip(hidden_f, self.base_on, strict=True):
                crossed += int(np.count_nonzero(self.act.is_on(f) != base))
        return Point(float(terms.sum()) + l2_penalty(self.loss, weights), crossed)


def loss_line(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], x: np.ndarray, target: np.ndarray,
              act: Activation, loss: str) -> LossLine:
    """Unchecked: the ``LossLine`` through checked parameters, input (D_i, N) of their dtype, and a target
    (D_o, N) checked in float64 (the loss is evaluated in float64 whatever the parameters' dtype)."""
    dtype = weights[0].dtype
    weights = [w.astype(np.float64, copy=False) for w in weights]
    biases = [b.astype(np.float64, copy=False) for b in biases]
    x = x.astype(np.float64, copy=False)
    terms, hidden_f = _terms(act, loss, weights, biases, x, target)
    base_on = None if act.is_on is None else [act.is_on(f) for f in hidden_f]
    eps = float(np.finfo(np.float64).eps)
    rounding = eps * float(np.abs(terms).sum())  # the last rounding of each term, summed
    base = float(terms.sum()) + l2_penalty(loss, weights)
    return LossLine(act, loss, dtype, weights, biases, x, target, base_on, base, rounding)


class Checked(NamedTuple):
    """What the public door hands to a check's unchecked core."""

    line: LossLine
    gradient: list  # [all_dl_dweights, all_dl_dbiases], float64 arrays of the parameters' shapes


def checked(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike, y: ArrayLike,
            gradients: tuple[Parameters, Parameters], activation: str, loss: str) -> Checked:
    """The public door of both checks: validate the network, input, target and gradients, once."""
    act = get_activation(activation)
    loss = check_loss_name(loss)
    weights, biases, dtype = check_parameters(all_weights, all_biases)
    x = check_columns(net_input, "net_input", weights[0].shape[1], dtype)
    target = check_target(y, loss, weights[-1].shape[0], x.shape[1], np.dtype(np.float64))
    line = loss_line(weights, biases, x, target, act, loss)
    return Checked(line, _checked_gradient(gradients, line))


def as_float64(gradients: tuple[Parameters, Parameters] | Sequence[Parameters]) -> list[Arrays]:
    """Unchecked: ``(all_dl_dweights, all_dl_dbiases)`` as two lists of float64 arrays, as the cores take."""
    return [[np.asarray(g, dtype=np.float64) for g in part] for part in gradients]


def _checked_gradient(gradients, line: LossLine):
    """``gradients`` as two lists of float64 arrays, after checking their number and shapes against theta."""
    try:
        g_w, g_b = gradients
        g_w, g_b = list(g_w), list(g_b)
    except (TypeError, ValueError):
        raise TypeError(
            "gradients must be a pair (all_dl_dweights, all_dl_dbiases) of lists of arrays"
        ) from None
    if len(g_w) != len(line.weights) or len(g_b) != len(line.biases):
        raise ValueError(
            f"gradients have {len(g_w)} weight and {len(g_b)} bias tensors, expected "
            f"{len(line.weights)} of each"
        )
    out = []
    for name, given, params in (("weights", g_w, line.weights), ("biases", g_b, line.biases)):
        arrays = []
        for k, (g, p) in enumerate(zip(given, params, strict=True)):
            g = np.asarray(g, dtype=np.float64)
            if g.shape != p.shape:
                raise ValueError(f"gradient of {name}[{k}] has shape {g.shape}, expected {p.shape}")
            arrays.append(g)
        out.append(arrays)
    return out


def dot(a: Sequence[Sequence[np.ndarray]], b: Sequence[Sequence[np.ndarray]]) -> float:
    """a . b over two float64 (weights, biases) pairs of lists of arrays."""
    return float(
        sum(
            np.vdot(x, y)
            for part_a, part_b in zip(a, b, strict=False)
            for x, y in zip(part_a, part_b, strict=False)
        )
    )


def abs_dot(a: Sequence[Sequence[np.ndarray]], b: Sequence[Sequence[np.ndarray]]) -> float:
    """|a| . |b| over two float64 (weights, biases) pairs: the scale against which a . b rounds."""
    return float(
        sum(
            np.abs(x).ravel() @ np.abs(y).ravel()
            for pa, pb in zip(a, b, strict=False)
            for x, y in zip(pa, pb, strict=False)
        )
    )


def _norm(parts) -> float:
    return float(np.sqrt(sum(np.vdot(x, x) for part in parts for x in part)))


def _random_signs(rng, shape) -> np.ndarray:
    """A float64 array of independent +-1 (a Rademacher vector: cheap to draw, norm sqrt(size))."""
    r = rng.integers(0, 2, shape, dtype=np.int8).astype(np.float64)
    r *= 2
    r -= 1
    return r


def make_directions(line: LossLine, gradient: Sequence[Sequence[np.ndarray]], count: int, rng: Seed,
                    mix_gradient: bool = True) -> Iterator[list[Arrays]]:
    """``count`` directions of norm |theta| (1 if theta = 0): random signs, the first mixed with g / |g|.

    ``gradient`` is a float64 (weights, biases) pair; ``rng`` a seed or a Generator. Each direction is drawn
    only when iterated, so at most one direction's memory is held at a time.
    """
    rng = generator(rng)
    params = (line.weights, line.biases)
    theta_norm = _norm(params) or 1.0
    g_norm = _norm(gradient)
    use_g = mix_gradient and np.isfinite(g_norm) and g_norm > 0
    size = sum(p.size for part in params for p in part)
    for i in range(count):
        v = [[_random_signs(rng, p.shape) for p in part] for part in params]
        if i == 0 and use_g:
            for part_v, part_g in zip(v, gradient, strict=True):
                for a, g in zip(part_v, part_g, strict=True):
                    a *= 1 / np.sqrt(size)
                    a += g * (1 / g_norm)
            v_norm = _norm(v) or 1.0
        else:
            v_norm = np.sqrt(size)
        for part in v:
            for a in part:
                a *= theta_norm / v_norm
        yield v
