"""Finite-difference gradients: every parameter perturbed, all perturbations pushed up the network at once.

Perturbing one weight Omega_k[i, j] by s changes one pre-activation row by a known amount,
f_k[i, :] += s * h_k[j, :], and a bias beta_k[i] is the weight of a constant input 1 (it shifts the row by
s). So the layers below k are never recomputed: the changed rows are pushed through the layers above k
as one batch of matrix products. Perturbations of every layer travel in the same batch, each joining it
at its own layer, so a small network costs one sweep up the layers; blocks of perturbations keep the
working memory of a large one bounded. The batch carries the *differences* from the unperturbed pass
(dh = a(f') - h), so a perturbation that changes nothing gives exactly 0, and the loss difference is
summed term by term rather than as L(theta + s) - L(theta) of two large numbers. In wide layers a
perturbation whose change of h is exactly 0 (a weight on a dead unit's output, or a move that leaves an
off unit off) leaves the batch: what it would carry up is exactly 0, and its quotient exactly 0.

Kinks: with ``relu`` or ``leaky_relu``, a perturbation that flips any unit's on/off pattern (any layer,
any example, either side for central differences) has crossed a kink, and its difference quotient need
not equal the derivative. ``return_kinks=True`` returns those entries as boolean masks.
"""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._types import Array, Gradients, Parameters
from ..maths.activations import get_activation
from ..maths.backprop import forward
from ..maths.losses import l2_gradient, loss_terms
from ..progress import track
from ..validate import (
    check_forward_finite,
    check_gradient_finite,
    check_loss_name,
    checked_problem,
)
from .fd_limits import (
    DEFAULT_MEMORY,
    check_fd_size,
    check_memory,
    check_method_and_step,
    check_step_resolves,
    per_perturbation_bytes,
)
from .fd_plan import (
    WIDE,
    Batch,
    Block,
    batch_steps,
    identity,
    input_starts,
    layout,
    perturbation_steps,
    plan,
    signs_of,
    split,
)

Kinks = tuple[list[NDArray[np.bool_]], list[NDArray[np.bool_]]]  # masks of the entries that crossed a kink


class _Perturber:
    """Pushes batches of perturbed pre-activation rows up the network: loss terms per perturbation."""

    def __init__(self, weights, act, loss, target, all_f, all_h, signs, track_kinks):
        self.weights, self.act, self.loss, self.target = weights, act, loss, target
        self.all_f, self.all_h = all_f, all_h
        self.signs = signs  # (S,): +1 (forward), -1 (backward), or both (central)
        self.signed = not (len(signs) == 1 and signs[0] == 1)  # the moves need multiplying by the signs
        self.is_on = act.is_on if track_kinks else None
        self.on = [self.is_on(f) for f in all_f[:-1]] if self.is_on else None
        # h_k with a row of ones below: what weight [i, j] (j < D_in) or bias i (j = D_in) multiplies; every
        # layer's in one stacked array (its rows from input_starts)
        ones = np.ones((1, all_h[0].shape[1]), all_f[0].dtype)
        self.stacked = np.concatenate([part for h in all_h[: len(weights)] for part in (h, ones)])

    @property
    def inputs(self) -> list:  # [h_k; 1] of each layer, views of the stacked inputs
        starts = input_starts(tuple([omega.shape[1] for omega in self.weights]))
        return [self.stacked[a:b] for a, b in zip(starts, starts[1:], strict=False)]

    def loss_terms(self, batch: Batch, all_steps, batch_steps):
        """Loss terms of the perturbations of ``batch.blocks`` (at most one per layer, by layer): ``(terms,
        alive, crossed)``; ``batch_steps`` their steps (``batch_steps``).

        The batch runs over the blocks in order, each flattened as (row, col). ``terms`` is (D_o, S, Q, N),
        S over the signs, Q over the perturbations still moving the output, whose batch positions are
        ``alive`` (None: all of them, in order). ``crossed`` holds the kink flags (S, batch size), or is
        None when kinks are not tracked.

        A block of a narrow layer, or of the output layer, joins the batch as its change of f_k (see
        ``_moves``) and goes through layer k with the rest: the fewest operations. A block of a layer of
        ``WIDE`` units or more joins one layer up, pushed through its own row only (see ``_join``), which
        spares a product D_{k+1} times larger and drops the perturbations that change nothing.
        """
        if batch.joins is not None:
            return self._narrow_terms(batch, batch_steps)
        blocks, inputs = batch.blocks, self.inputs
        last = len(self.weights) - 1
        by_layer = {b.layer: b for b in blocks}
        crossed = np.zeros((len(self.signs), batch.size), bool) if self.is_on else None
        carried = None  # (D_{k+1}, S, Q, N): how f_k moves, for the perturbations that joined so far
        alive = None  # the batch positions of carried's Q perturbations (None: all so far, in order)
        start = 0  # the batch position of the next block's first perturbation
        for k in range(blocks[0].layer, last + 1):
            block = by_layer.get(k)
            if block is not None and (k == last or self.weights[k].shape[0] < WIDE):
                moved = self._moves(block, all_steps[k], inputs)
                carried, alive = _appended(carried, alive, moved, None, start)
                start, block = start + block.size, None
            if k == last:  # the output layer: no activation
                break
            if carried is not None:
                carried = self._push(k, carried, crossed, alive)  # now how f_{k+1} moves
            if block is not None:
                moved, kept = self._join(block, all_steps[k], crossed, start, inputs)
                joined = None if len(kept) == block.size else start + kept
                carried, alive = _appended(carried, alive, moved, joined, start)
                start += block.size
        carried += self.all_f[last][:, None, None, :]  # the output z, in place
        return loss_terms(self.loss, carried, self.target[:, None, None, :], out=carried), alive, crossed

    def _moves(self, block: Block, steps, inputs):
        """How f_k moves for each perturbation of ``block`` in layer k: (D_{k+1}, S, r * c, N).

        Row i by sign * step * input[j, :] for perturbation [i, j]; the other rows by exactly 0 (column i
        of the identity times the same: a product with 1 or 0 adds no rounding).
        """
        moves = self._row_moves(block, steps, inputs)
        eye = identity(max(omega.shape[0] for omega in self.weights), self.all_f[0].dtype)
        identity_ = eye[: self.weights[block.layer].shape[0], None, block.rows, None, None]
        return (identity_ * moves).reshape(identity_.shape[0], len(self.signs), -1, moves.shape[-1])

    def _narrow_terms(self, batch: Batch, steps):
        """``loss_terms`` of a batch whose blocks all join as changes of f_k (``Batch.joins``): the same
        arrays, with every move made at once (``_all_moves``)."""
        moves = self._all_moves(batch, steps)
        crossed = np.zeros((len(self.signs), batch.size), bool) if self.is_on else None
        last, carried = len(self.weights) - 1, None
        for k, start, stop, rows in batch.joins:
            if stop > start:
                moved = moves[:rows, :, start:stop]
                carried = moved if carried is None else np.concatenate([carried, moved], axis=2)
            if k < last:
                carried = self._push(k, carried, crossed, None)  # now how f_{k+1} moves
        carried += self.all_f[last][:, None, None, :]  # the output z, in place
        return loss_terms(self.loss, carried, self.target[:, None, None, :], out=carried), None, crossed

    def _all_moves(self, batch: Batch, steps):
        """``_moves`` of every block of a batch of narrow layers at once, (max D_{k+1}, S, batch size, N):
        block k's are its first D_{k+1} rows at its batch positions. The same products, made in one step:
        sign * step (exact) times input[j, :], times a one-hot column (True for row i of the perturbation).
        """
        inputs = self.stacked[batch.gather]  # (P, N): the input row each perturbation multiplies
        if isinstance(steps, np.ndarray):
            steps = steps[:, None]  # a step per parameter: (P, 1)
        if self.signed:
            steps = self.signs[:, None, None] * steps  # exact: a product with +-1
        return batch.rows[:, None, :, None] * (steps * inputs)  # broadcast to (D, S, P, N)

    def _row_moves(self, block: Block, steps, inputs):
        """How row i of f_k moves for perturbation [i, j] of ``block``: sign * step * input[j, :],
        (S, r, c, N), or (S, 1, c, N) when one step serves every parameter."""
        if isinstance(steps, np.ndarray):  # a step per parameter
            steps = steps[None, block.rows, block.cols, None]  # (1, r, c, 1)
        if self.signed:
            steps = self.signs[:, None, None, None] * steps  # exact: a product with +-1
        return steps * inputs[block.layer][None, None, block.cols, :]

    def _push(self, k, carried, crossed, alive):
        """How f_{k+1} moves, (D_{k+2}, S, Q, N), given how f_k moves; flags the kinks crossed at layer k."""
        carried += self.all_f[k][:, None, None, :]  # f_k + carried, in place: carried is a fresh array
        f = carried
        if crossed is not None:
            flips = self.is_on(f) != self.on[k][:, None, None, :]
            if np.logical_or.reduce(flips, axis=None):  # which perturbations, only where one did
                flags = np.logical_or.reduce(flips, axis=(0, 3))
                crossed[:, slice(0, flags.shape[1]) if alive is None else alive] |= flags
        dh = self.act.function(f)
        dh -= self.all_h[k + 1][:, None, None, :]
        omega = self.weights[k + 1]
        return (omega @ dh.reshape(dh.shape[0], -1)).reshape(omega.shape[0], *carried.shape[1:])

    def _join(self, block: Block, steps, crossed, start: int, inputs):
        """How the perturbations of ``block`` (layer k < K) move f_{k+1}: ``(moved, kept)``, moved
        (D_{k+2}, S, Q, N) for the Q perturbations at positions ``kept`` (Q,) of the block.

        Perturbation [i, j] moves row i of f_k alone, so only row i of h_{k+1} changes, and f_{k+1} moves
        by column i of Omega_{k+1} times that change.

        Dropping what cannot matter: a perturbation whose change of h_{k+1} is exactly 0 (for every sign
        and example) changes no f_m above layer k (each moves by a sum of products with 0), hence no
        a(f_m), no on/off pattern and no output: its loss terms are the base terms bit for bit, so its
        quotient is exactly 0, as the full computation gives, and it crosses no kink above layer k (its
        flags at layer k are taken here, before it is dropped).
        """
        rows = block.rows
        moves = self._row_moves(block, steps, inputs)
        f_rows = self.all_f[block.layer][None, rows, None, :] + moves  # (S, r, c, N)
        if crossed is not None:
            flags = (self.is_on(f_rows) != self.on[block.layer][None, rows, None, :]).any(axis=3)
            crossed[:, start:start + block.size] = flags.reshape(len(self.signs), -1)
        dh = self.act.function(f_rows)
        dh -= self.all_h[block.layer + 1][None, rows, None, :]
        kept = np.flatnonzero(dh.any(axis=(0, 3)))  # perturbation [i, j] sits at i * c + j
        column = self.weights[block.layer + 1][:, rows][:, kept // dh.shape[2]]
        dh = dh.reshape(len(self.signs), -1, dh.shape[3])[:, kept]
        return column[:, None, :, None] * dh[None], kept


def _appended(carried, alive, moved, joined, start: int):
    """``carried`` with ``moved`` after it along the batch axis, and the batch positions of the result.

    ``alive`` holds carried's positions, ``joined`` moved's; None for either means all perturbations
    from the batch's start (for ``alive``) or from ``start`` (for ``joined``), in order.
    """
    if alive is not None or joined is not None:
        joined = start + np.arange(moved.shape[2]) if joined is None else joined
        alive = joined if carried is None else np.concatenate([np.arange(start) if alive is None else alive,
                                                               joined])
    carried = moved if carried is None else np.concatenate([carried, moved], axis=2)
    return carried, alive


@overload
def numerical_gradients(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike,
                        y: ArrayLike, *,
                        activation: str = ..., loss: str = ..., method: str = ..., step: float | None = ...,
                        return_kinks: Literal[False] = ..., max_memory: float = ...) -> Gradients: ...
@overload
def numerical_gradients(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike,
                        y: ArrayLike, *,
                        activation: str = ..., loss: str = ..., method: str = ..., step: float | None = ...,
                        return_kinks: Literal[True], max_memory: float = ...
                        ) -> tuple[list[Array], list[Array], Kinks]: ...
def numerical_gradients(all_weights: Parameters, all_biases: Parameters, net_input: ArrayLike,
                        y: ArrayLike, *,
                        activation: str = "relu", loss: str = "least_squares", method: str = "central",
                        step: float | None = None, return_kinks: bool = False,
                        max_memory: float = DEFAULT_MEMORY) -> Gradients | tuple:
    """Finite-difference estimate of the gradient of the loss, one difference quotient per parameter.

    ``method``: "central" (default), (L(theta + s) - L(theta - s)) / 2s; "forward", the notebook's
    (L(theta + s) - L(theta)) / s; or "backward", (L(theta) - L(theta - s)) / s. ``step``: an absolute
    step s for every parameter (the notebook's ``delta_fd = 1e-6`` with "forward"), or None for
    ``default_step(dtype, method) * max(1, |theta|)``; a step too small to move theta (below
    eps max(1, max |theta|)) is a ValueError naming the smallest usable one. ``max_memory`` bounds the bytes
    of working arrays per block of perturbations (``float('inf')``: no limit, one block); a block holds at
    least one perturbation, and a network whose one perturbation needs more than both ``max_memory`` and
    ``tolerances.FD_MAX_BLOCK_BYTES``, or whose full gradient would cost more than
    ``tolerances.FD_MAX_COST`` multiply-adds, is refused with the estimate (the directional check of
    ``three_way_check(fd="directional")`` costs a few forward passes instead).

    Returns ``(all_dl_dweights, all_dl_dbiases)`` with the parameters' shapes and dtype; with
    ``return_kinks=True`` also ``(all_kinks_weights, all_kinks_biases)``, boolean arrays of the same
    shapes marking the entries whose perturbation crossed a ReLU / leaky-ReLU kink (all False for smooth
    activations).
    """
    act = get_activation(activation)
    loss = check_loss_name(loss)
    method, step = check_method_and_step(method, step)
    max_memory = check_memory(max_memory)
    if not isinstance(return_kinks, (bool, np.bool_)):
        raise TypeError(f"return_kinks must be True or False, got {return_kinks!r}")
    weights, biases, x, target, dtype = checked_problem(all_weights, all_biases, net_input, y, loss)
    check_step_resolves(step, weights, biases, dtype)
    check_fd_size(weights, x.shape[1], method, max_memory)  # before the forward pass allocates anything
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is a ValueError naming the layer
        forward_pass = forward(weights, biases, x, act)
        check_forward_finite(forward_pass[1], forward_pass[0], "the output")
        every, every_kink, _ = fd_sweep(weights, biases, target, act, loss, forward_pass, method, step,
                                      return_kinks, max_memory)  # fmt: skip
    result = split(every, weights)
    if not np.logical_and.reduce(np.isfinite(every)):  # the error names the first layer that overflowed
        check_gradient_finite(*result, "the finite-difference gradient",
                              "a perturbed loss overflowed: take a smaller step, or scale the parameters "
                              "down")
    return (*result, split(every_kink, weights)) if return_kinks else result


def fd_gradients(weights, biases, target, act, loss: str, forward_pass, *, method: str = "central", step=None,
                 return_kinks: bool = False, max_memory: float = DEFAULT_MEMORY,
                 return_curvature: bool = False, all_steps=None):
    """``numerical_gradients`` on checked arrays (unchecked): ``forward_pass`` is ``backprop.forward``'s
    ``(net_output, all_f, all_h)`` for these parameters (read, never written), ``target`` the checked one;
    ``all_steps``, when given, ``perturbation_steps``' result for this method and step (computed once by a
    caller that needs it too).

    ``return_curvature`` (central only) also returns, after the kinks, |L(theta + s) - 2 L(theta) +
    L(theta - s)| / s per entry: the gap between the two one-sided quotients, twice a bound on the central
    quotient's truncation error wherever the loss keeps its curvature's sign over the step (the derivative
    then lies between the one-sided quotients): large where a step crosses a soft kink (a saturating
    output, softplus at logits of 1e6), negligible elsewhere."""
    every, every_kink, curve = fd_sweep(weights, biases, target, act, loss, forward_pass, method, step,
                                      return_kinks, max_memory, return_curvature, all_steps)  # fmt: skip
    out = split(every, weights)
    if return_kinks:
        out = (*out, split(every_kink, weights))
    if return_curvature:
        out = (*out, None if curve is None else split(curve, weights))
    return out


def fd_sweep(weights, biases, target, act, loss: str, forward_pass, method: str, step, return_kinks: bool,
             max_memory: float, return_curvature: bool = False, all_steps=None, base_terms=None):
    """``fd_gradients``' quotients, kink flags (None unless ``return_kinks``) and curvature (None unless
    ``return_curvature`` and central), each one flat vector of the raveled augmented matrices [Omega_k |
    beta_k] one layer after another (``fd_plan.layout``'s offsets; ``fd_plan.split`` gives the tensors).
    ``base_terms``: ``loss_terms`` of the unperturbed output, (D_o, N), when the caller has them."""
    net_output, all_f, all_h = forward_pass
    x, dtype = all_h[0], weights[0].dtype
    signs = signs_of(method, dtype)
    perturber = _Perturber(weights, act, loss, target, all_f, all_h, signs, return_kinks)
    base_terms = (loss_terms(loss, net_output, target) if base_terms is None else base_terms)[:, None, :]
    if all_steps is None:
        all_steps = perturbation_steps(weights, biases, dtype, method, step)
    shapes = tuple([omega.shape for omega in weights])
    offsets = layout(shapes)[0]
    chunk = len(signs) * offsets[-1] if math.isinf(max_memory) else \
        max(1, int(max_memory) // per_perturbation_bytes(weights, x.shape[1], dtype))  # fmt: skip
    batches = plan(shapes, len(signs), chunk)

    # A block is a contiguous run of its layer's entries in the flat vectors; a single batch is all of them.
    widths = [omega.shape[1] + 1 for omega in weights]
    single = len(batches) == 1
    every = None if single else np.empty(offsets[-1], dtype)
    every_kink = np.zeros(offsets[-1], bool) if return_kinks else None  # all False for smooth activations
    curving = return_curvature and method == "central"
    every_curve = np.zeros(offsets[-1], dtype) if curving else None
    for batch in track(batches, "finite differences"):  # a bar only in the command line
        steps = batch_steps(all_steps, batch.blocks, single)
        terms, alive, kinks = perturber.loss_terms(batch, all_steps, steps)
        if curving:
            curve = _curvature(terms, alive, batch.size, base_terms, steps)
        quotients = _quotients(terms, alive, batch.size, base_terms, steps, method)
        kinks = np.logical_or.reduce(kinks, axis=0) if kinks is not None else None
        if single:
            every = quotients
            every_kink = every_kink if kinks is None else kinks
            every_curve = curve if curving else None
            break
        start = 0
        for b in batch.blocks:
            first = offsets[b.layer] + b.rows.start * widths[b.layer] + b.cols.start
            every[first:first + b.size] = quotients[start:start + b.size]
            if kinks is not None:
                every_kink[first:first + b.size] = kinks[start:start + b.size]
            if curving:
                every_curve[first:first + b.size] = curve[start:start + b.size]
            start += b.size
    penalty = l2_gradient(loss, weights)
    if penalty is not None:  # (l2 / 2) theta^2: its central quotient is l2 theta exactly, so it is added in
        for k, term in enumerate(penalty):  # closed form (one-sided: within l2 step / 2 of it)
            every[offsets[k]:offsets[k + 1]].reshape(term.shape[0], -1)[:, :-1] += term
    return every, every_kink, every_curve


def _curvature(terms, alive, size: int, base_terms, steps):
    """|L(theta + s) - 2 L(theta) + L(theta - s)| / s per perturbation of a central batch (see
    ``fd_gradients``); each one-sided difference of the terms is exact where they are close."""
    ups = terms[:, 0] - base_terms
    ups += terms[:, 1] - base_terms
    sums = np.abs(np.add.reduce(ups, axis=(0, 2)))
    if alive is not None:
        sums, moving_sums = np.zeros(size, sums.dtype), sums
        sums[alive] = moving_sums
    return sums / steps


def _quotients(terms, alive, size: int, base_terms, steps, method: str):
    """The difference quotients (size,) of a batch from its loss terms (D_o, S, Q, N) at positions ``alive``.

    A perturbation dropped on the way changed no loss term: its sum of differences is 0, as computed.
    """
    if method == "central":
        differences = terms[:, 0] - terms[:, 1]
    else:
        differences = terms[:, 0]
        differences -= base_terms  # in place: terms is a fresh array
    sums = np.add.reduce(differences, axis=(0, 2))  # ndarray.sum, without its Python wrapper
    if alive is not None:
        sums, moving_sums = np.zeros(size, sums.dtype), sums
        sums[alive] = moving_sums
    if method == "central":
        return sums / (2 * steps)
    return (sums if method == "forward" else -sums) / steps  # the sign is exact: a product with +-1
