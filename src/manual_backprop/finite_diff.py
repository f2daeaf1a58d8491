"""Finite-difference gradients: every parameter perturbed, all perturbations pushed up the network at once.

Perturbing one weight Omega_k[i, j] by s changes one pre-activation row by a known amount,
f_k[i, :] += s * h_k[j, :], and a bias beta_k[i] is the weight of a constant input 1 (it shifts the row by
s). So the layers below k are never recomputed: the changed rows are pushed through the layers above k
as one batch of matrix products. Perturbations of every layer travel in the same batch, each joining it
at its own layer, so a small network costs one sweep up the layers; blocks of perturbations keep the
working memory of a large one bounded. The batch carries the *differences* from the unperturbed pass
(dh = a(f') - h), so a perturbation that changes nothing gives exactly 0, and the loss difference is
summed term by term rather than as L(theta + s) - L(theta) of two large numbers.

Kinks: with ``relu`` or ``leaky_relu``, a perturbation that flips any unit's on/off pattern (any layer,
any example, either side for central differences) has crossed a kink, and its difference quotient need
not equal the derivative. ``return_kinks=True`` returns those entries as boolean masks.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .activations import get_activation, unit_is_on
from .backprop import checked_parameters, forward
from .losses import loss_terms
from .validate import check_columns, check_loss_name, check_target

METHODS = ("central", "forward", "backward")
DEFAULT_MEMORY = 8 * 2**20  # bytes of working arrays per batch of perturbations: small, to stay in cache


def default_step(dtype, method: str = "central") -> float:
    """The base step for ``dtype``; a parameter theta is moved by base * max(1, |theta|).

    A one-sided difference errs by O(s) (truncation) plus O(eps / s) (rounding), smallest near
    s = sqrt(eps); a central difference errs by O(s^2) + O(eps / s), smallest near s = cbrt(eps).
    Scaling by max(1, |theta|) keeps the relative perturbation of large parameters meaningful.
    float64: 1.5e-8 (one-sided), 6.1e-6 (central); float32: 3.5e-4 and 4.9e-3.
    """
    eps = float(np.finfo(dtype).eps)
    return float(np.cbrt(eps)) if method == "central" else float(np.sqrt(eps))


def _check_method_and_step(method, step):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if step is not None:
        number = not isinstance(step, bool) and isinstance(step, numbers.Real)
        if not (number and np.isfinite(step) and step > 0):
            raise ValueError(f"step must be a finite number > 0 (or None for the default), got {step!r}")
        step = float(step)
    return method, step


def _needs_signs(signs) -> bool:
    """Whether the moves need multiplying by the signs (not for the forward difference's single +1)."""
    return not (len(signs) == 1 and signs[0] == 1)


class Block(NamedTuple):
    """The perturbations of ``rows`` x ``cols`` of layer k's augmented matrix [Omega_k | beta_k]."""

    layer: int
    rows: slice
    cols: slice


class _Perturber:
    """Pushes batches of perturbed pre-activation rows up the network: loss terms per perturbation."""

    def __init__(self, weights, act, loss, target, all_f, all_h, signs, track_kinks):
        self.weights, self.act, self.loss, self.target = weights, act, loss, target
        self.all_f, self.all_h = all_f, all_h
        self.signs = signs  # (S,): +1 (forward), -1 (backward), or both (central)
        self.is_on = (lambda f: unit_is_on(act.name, f)) if (track_kinks and act.kinked) else None
        self.on = [self.is_on(f) for f in all_f[:-1]] if self.is_on else None
        # h_k with a row of ones below: what weight [i, j] (j < D_in) or bias i (j = D_in) multiplies.
        ones = np.ones((1, all_h[0].shape[1]), all_f[0].dtype)
        self.inputs = [np.concatenate([h, ones]) for h in all_h[: len(weights)]]

    def loss_terms(self, blocks: list[Block], all_steps):
        """Loss terms (D_o, S, Q, N) of every perturbation of ``blocks`` (at most one per layer, by layer).

        S runs over the signs, Q over the blocks in order, each flattened as (row, col). Also returns the
        kink flags (S, Q), or None when kinks are not tracked.
        """
        weights, all_f, all_h, act, signs = self.weights, self.all_f, self.all_h, self.act, self.signs
        last = len(weights) - 1
        by_layer = {b.layer: b for b in blocks}
        columns = all_f[0].shape[1]
        carried = None  # (D_{k+1}, S, Q, N): how f_k moves, for the perturbations that joined below layer k
        crossed = np.zeros((len(signs), 0), dtype=bool) if self.is_on else None
        for k in range(blocks[0].layer, last + 1):
            parts, flags = [], []
            if carried is not None and k < last:
                f = all_f[k][:, None, None, :] + carried
                if crossed is not None:
                    flags.append(crossed | (self.is_on(f) != self.on[k][:, None, None, :]).any(axis=(0, 3)))
                dh = act.function(f) - all_h[k + 1][:, None, None, :]
                omega = weights[k + 1]
                moved = omega @ dh.reshape(dh.shape[0], -1)
                parts.append(moved.reshape(omega.shape[0], len(signs), -1, columns))
            elif carried is not None:  # the output layer: no activation
                parts.append(carried)
                flags.append(crossed)
            block = by_layer.get(k)
            if block is not None:
                # f_k[i, :] moves by sign * step[i, j] * input[j, :] for perturbation [i, j]: (S, r, c, N).
                moves = all_steps[k][block.rows, block.cols, None] * self.inputs[k][None, block.cols, :]
                moves = signs[:, None, None, None] * moves if _needs_signs(signs) else moves[None]
                if k < last:
                    f_rows = all_f[k][None, block.rows, None, :] + moves
                    if crossed is not None:
                        on = self.on[k][None, block.rows, None, :]
                        flags.append((self.is_on(f_rows) != on).any(axis=3).reshape(len(signs), -1))
                    dh = act.function(f_rows) - all_h[k + 1][None, block.rows, None, :]
                    # Only row i of h_{k+1} changed: f_{k+1} moves by column i of Omega_{k+1} times dh.
                    column = weights[k + 1][:, None, block.rows, None, None]
                else:  # a change of the output row i itself: column i of the identity
                    dh = moves
                    column = np.eye(weights[k].shape[0], dtype=moves.dtype)[:, None, block.rows, None, None]
                    if crossed is not None:
                        flags.append(np.zeros((len(signs), moves.shape[1] * moves.shape[2]), dtype=bool))
                parts.append((column * dh[None]).reshape(column.shape[0], len(signs), -1, columns))
            carried = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
            if crossed is not None:
                crossed = flags[0] if len(flags) == 1 else np.concatenate(flags, axis=1)
        z = all_f[last][:, None, None, :] + carried
        return loss_terms(self.loss, z, self.target[:, None, None, :]), crossed


def _plan(weights, signs: int, chunk: int) -> list[list[Block]]:
    """Batches of about ``chunk`` perturbations (signs included), each holding at most one block per layer.

    Every batch takes a share of the rows of every layer, so that each sweep up the network carries
    perturbations of all layers (one sweep for a small network); a row wider than ``chunk`` on its own
    is cut into column blocks, one batch each.
    """
    sizes = [(omega.shape[0], omega.shape[1] + 1) for omega in weights]
    if any(signs * width > chunk for _, width in sizes):
        return [[Block(layer, slice(i, i + 1), slice(j, min(j + max(1, chunk // signs), width)))]
                for layer, (rows, width) in enumerate(sizes)
                for i in range(rows) for j in range(0, width, max(1, chunk // signs))]
    count = -(-signs * sum(rows * width for rows, width in sizes) // chunk)  # ceil: batches needed
    batches = []
    for b in range(count):
        batch = []
        for layer, (rows, width) in enumerate(sizes):
            first, stop = rows * b // count, rows * (b + 1) // count
            if stop > first:
                batch.append(Block(layer, slice(first, stop), slice(0, width)))
        if batch:
            batches.append(batch)
    return batches


def numerical_gradients(all_weights, all_biases, net_input, y, *, activation: str = "relu",
                        loss: str = "least_squares", method: str = "central", step=None,
                        return_kinks: bool = False, max_memory: int = DEFAULT_MEMORY):
    """Finite-difference estimate of the gradient of the loss, one difference quotient per parameter.

    ``method``: "central" (default), (L(theta + s) - L(theta - s)) / 2s; "forward", the notebook's
    (L(theta + s) - L(theta)) / s; or "backward", (L(theta) - L(theta - s)) / s. ``step``: an absolute
    step s for every parameter (the notebook's ``delta_fd = 1e-6`` with "forward"), or None for
    ``default_step(dtype, method) * max(1, |theta|)``. ``max_memory`` bounds the bytes of working arrays
    per block of perturbations.

    Returns ``(all_dl_dweights, all_dl_dbiases)`` with the parameters' shapes and dtype; with
    ``return_kinks=True`` also ``(all_kinks_weights, all_kinks_biases)``, boolean arrays of the same
    shapes marking the entries whose perturbation crossed a ReLU / leaky-ReLU kink (all False for smooth
    activations).
    """
    act = get_activation(activation)
    loss = check_loss_name(loss)
    method, step = _check_method_and_step(method, step)
    weights, biases, dtype = checked_parameters(all_weights, all_biases)
    x = check_columns(net_input, "net_input", weights[0].shape[1], dtype)
    target = check_target(y, loss, weights[-1].shape[0], x.shape[1], dtype)

    net_output, all_f, all_h = forward(weights, biases, x, act)
    signs = np.array({"central": [1, -1], "forward": [1], "backward": [-1]}[method], dtype)
    perturber = _Perturber(weights, act, loss, target, all_f, all_h, signs, return_kinks)
    base_terms = loss_terms(loss, net_output, target)[:, None, :]
    # Steps per entry of the augmented matrices [Omega_k | beta_k], (D_out, D_in + 1).
    shapes = [(omega.shape[0], omega.shape[1] + 1) for omega in weights]
    if step is not None:
        all_steps = [np.full(shape, step, dtype) for shape in shapes]
    else:
        base_step = default_step(dtype, method)
        augmented = [np.concatenate(pair, axis=1) for pair in zip(weights, biases, strict=True)]
        all_steps = [(base_step * np.maximum(1, np.abs(theta))).astype(dtype, copy=False)
                     for theta in augmented]
    columns = x.shape[1]
    widest = max(max(w.shape) for w in weights)
    per_perturbation = 8 * widest * columns * dtype.itemsize  # a few (D, N) arrays live per perturbation
    chunk = max(1, int(max_memory) // per_perturbation)

    gradients = [np.empty(shape, dtype) for shape in shapes]
    crossed = [np.zeros(shape, dtype=bool) for shape in shapes] if return_kinks else None
    for batch in _plan(weights, len(signs), chunk):
        terms, kinks = perturber.loss_terms(batch, all_steps)
        steps = np.concatenate([all_steps[b.layer][b.rows, b.cols].ravel() for b in batch])
        if method == "central":
            quotients = (terms[:, 0] - terms[:, 1]).sum(axis=(0, 2)) / (2 * steps)
        else:
            quotients = signs[0] * (terms[:, 0] - base_terms).sum(axis=(0, 2)) / steps
        if kinks is not None:
            kinks = kinks.any(axis=0)
        start = 0
        for block in batch:
            shape = (block.rows.stop - block.rows.start, block.cols.stop - block.cols.start)
            stop = start + shape[0] * shape[1]
            gradients[block.layer][block.rows, block.cols] = quotients[start:stop].reshape(shape)
            if kinks is not None:
                crossed[block.layer][block.rows, block.cols] = kinks[start:stop].reshape(shape)
            start = stop
    grads_w = [g[:, :-1].copy() for g in gradients]
    grads_b = [g[:, -1:].copy() for g in gradients]
    if return_kinks:
        return grads_w, grads_b, ([c[:, :-1].copy() for c in crossed], [c[:, -1:].copy() for c in crossed])
    return grads_w, grads_b
