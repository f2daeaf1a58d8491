"""Finite-difference gradients: every parameter perturbed, all perturbations of a layer at once.

Perturbing one weight Omega_k[i, j] by s changes one pre-activation row by a known amount,
f_k[i, :] += s * h_k[j, :] (a bias beta_k[i] shifts it by s), so the layers below k are never recomputed:
the changed row is pushed through the layers above k for a whole block of perturbations as one batch of
matrix products, in chunks that keep the working memory bounded. Each block carries the *differences*
from the unperturbed pass (dh = a(f') - h), so a perturbation that changes nothing gives exactly 0, and
the loss difference is summed term by term rather than as L(theta + s) - L(theta) of two large numbers.

Kinks: with ``relu`` or ``leaky_relu``, a perturbation that flips any unit's on/off pattern (any layer,
any example, either side for central differences) has crossed a kink, and its difference quotient need
not equal the derivative. ``return_kinks=True`` returns those entries as boolean masks.
"""

from __future__ import annotations

import numbers

import numpy as np

from .activations import get_activation, unit_is_on
from .backprop import forward
from .losses import loss_terms
from .validate import check_columns, check_loss_name, check_parameters, check_target

METHODS = ("central", "forward", "backward")
DEFAULT_MEMORY = 64 * 2**20  # bytes of working arrays per block of perturbations


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
        if isinstance(step, bool) or not isinstance(step, numbers.Real) or not (np.isfinite(step) and step > 0):
            raise ValueError(f"step must be a finite number > 0 (or None for the default), got {step!r}")
        step = float(step)
    return method, step


class _Perturber:
    """Pushes blocks of changes of one pre-activation row through the layers above it."""

    def __init__(self, weights, act, loss, target, all_f, all_h):
        self.weights, self.act, self.loss, self.target = weights, act, loss, target
        self.all_f, self.all_h = all_f, all_h
        self.target3 = target[:, None, :]
        self.is_on = (lambda f: unit_is_on(act.name, f)) if act.kinked else None

    def output_changes(self, layer: int, rows: np.ndarray, changes: np.ndarray):
        """Perturbed outputs (D_o, Q, N) when f_layer[rows[q], :] += changes[q, :], and kink flags (Q,)."""
        all_f, all_h, weights = self.all_f, self.all_h, self.weights
        n_perturbations, columns = changes.shape
        kinks = np.zeros(n_perturbations, dtype=bool)
        f_rows = all_f[layer][rows] + changes  # (Q, N)
        if layer == len(weights) - 1:  # the output layer: no activation above
            z = np.repeat(all_f[layer][:, None, :], n_perturbations, axis=1)
            z[rows, np.arange(n_perturbations), :] = f_rows
            return z, kinks
        if self.is_on is not None:
            kinks |= (self.is_on(f_rows) != self.is_on(all_f[layer][rows])).any(axis=1)
        dh = self.act.function(f_rows) - all_h[layer + 1][rows]  # (Q, N)
        # Only row `rows[q]` of h changed, so the next pre-activation moves by a column of Omega times dh.
        omega = weights[layer + 1]
        f = all_f[layer + 1][:, None, :] + omega[:, rows][:, :, None] * dh[None, :, :]  # (D, Q, N)
        for above in range(layer + 1, len(weights) - 1):
            if self.is_on is not None:
                kinks |= (self.is_on(f) != self.is_on(all_f[above])[:, None, :]).any(axis=(0, 2))
            dh = self.act.function(f) - all_h[above + 1][:, None, :]
            omega = weights[above + 1]
            step = (omega @ dh.reshape(dh.shape[0], -1)).reshape(omega.shape[0], n_perturbations, columns)
            f = step + all_f[above + 1][:, None, :]
        return f, kinks

    def loss_changes(self, layer, rows, changes, base_terms):
        """Loss differences L(perturbed) - L(base) per perturbation, summed term by term."""
        z, kinks = self.output_changes(layer, rows, changes)
        return (loss_terms(self.loss, z, self.target3) - base_terms).sum(axis=(0, 2)), kinks


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
    weights, biases, dtype = check_parameters(all_weights, all_biases)
    x = check_columns(net_input, "net_input", weights[0].shape[1], dtype)
    target = check_target(y, loss, weights[-1].shape[0], x.shape[1], dtype)

    net_output, all_f, all_h = forward(weights, biases, x, act)
    perturber = _Perturber(weights, act, loss, target, all_f, all_h)
    base_terms = loss_terms(loss, net_output, target)[:, None, :]
    base_step = default_step(dtype, method)
    columns = x.shape[1]
    widest = max(max(w.shape) for w in weights)
    per_perturbation = 8 * widest * columns * dtype.itemsize  # a few (D, N) arrays live per perturbation
    chunk = max(1, int(max_memory) // per_perturbation // (2 if method == "central" else 1))

    grads_w, grads_b, kinks_w, kinks_b = [], [], [], []
    for layer, (omega, beta) in enumerate(zip(weights, biases)):
        D_out, D_in = omega.shape
        theta = np.concatenate([omega.ravel(), beta.ravel()])
        rows = np.concatenate([np.repeat(np.arange(D_out), D_in), np.arange(D_out)])
        steps = np.full(theta.shape, step, dtype) if step is not None else base_step * np.maximum(1, np.abs(theta))
        steps = steps.astype(dtype, copy=False)
        # How f_layer[row] moves per unit step: h_layer[j, :] for Omega[i, j], ones for beta[i].
        directions = np.concatenate([np.tile(all_h[layer], (D_out, 1)), np.ones((D_out, columns), dtype)])
        gradient = np.empty(theta.shape, dtype)
        crossed = np.zeros(theta.shape, dtype=bool)
        for start in range(0, theta.size, chunk):
            block = slice(start, start + chunk)
            changes = steps[block, None] * directions[block]
            if method == "central":
                up, kinks_up = perturber.output_changes(layer, rows[block], changes)
                down, kinks_down = perturber.output_changes(layer, rows[block], -changes)
                difference = (loss_terms(loss, up, perturber.target3)
                              - loss_terms(loss, down, perturber.target3)).sum(axis=(0, 2))
                gradient[block] = difference / (2 * steps[block])
                crossed[block] = kinks_up | kinks_down
            else:
                sign = 1 if method == "forward" else -1
                difference, crossed[block] = perturber.loss_changes(layer, rows[block], sign * changes, base_terms)
                gradient[block] = sign * difference / steps[block]
        grads_w.append(gradient[: D_out * D_in].reshape(D_out, D_in))
        grads_b.append(gradient[D_out * D_in:].reshape(D_out, 1))
        kinks_w.append(crossed[: D_out * D_in].reshape(D_out, D_in))
        kinks_b.append(crossed[D_out * D_in:].reshape(D_out, 1))
    if return_kinks:
        return grads_w, grads_b, (kinks_w, kinks_b)
    return grads_w, grads_b
