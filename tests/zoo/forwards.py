"""Forward passes, right and wrong, for grading with check_forward: one per named mistake."""

import time

import numpy as np

K = 5  # the published notebook's global, read by reads_global_k


def ReLU(preactivation):  # noqa: N802 (the notebook's name)
    return preactivation.clip(0.0)


def published(net_input, all_weights, all_biases):
    """Right, in the published notebook's convention: all_h of K+1 entries, the output in all_f[K]."""
    K = len(all_weights) - 1  # noqa: N806
    all_f = [None] * (K + 1)
    all_h = [None] * (K + 1)
    all_h[0] = net_input
    for layer in range(K):
        all_f[layer] = all_biases[layer] + np.matmul(all_weights[layer], all_h[layer])
        all_h[layer + 1] = ReLU(all_f[layer])
    all_f[K] = all_biases[K] + np.matmul(all_weights[K], all_h[K])
    return all_f[K], all_f, all_h


def project(net_input, all_weights, all_biases):
    """Right, in this project's convention: all_h of K+2 entries, the output last."""
    all_f, all_h = [], [net_input]
    for k, (omega, beta) in enumerate(zip(all_weights, all_biases, strict=True)):
        all_f.append(omega @ all_h[-1] + beta)
        all_h.append(all_f[-1] if k == len(all_weights) - 1 else np.maximum(all_f[-1], 0))
    return all_h[-1], all_f, all_h


def reads_global_k(net_input, all_weights, all_biases):
    """Right, but depends on the notebook's global K."""
    all_f, all_h = [None] * (K + 1), [None] * (K + 1)
    all_h[0] = net_input
    for layer in range(K):
        all_f[layer] = all_biases[layer] + all_weights[layer] @ all_h[layer]
        all_h[layer + 1] = ReLU(all_f[layer])
    all_f[K] = all_biases[K] + all_weights[K] @ all_h[K]
    return all_f[K], all_f, all_h


def _generic(net_input, all_weights, all_biases, *, affine, activate, output=None):
    n = len(all_weights) - 1
    all_f, all_h = [None] * (n + 1), [None] * (n + 1)
    all_h[0] = net_input
    for layer in range(n):
        all_f[layer] = affine(layer, all_h[layer], all_weights, all_biases)
        all_h[layer + 1] = activate(all_f[layer])
    all_f[n] = affine(n, all_h[n], all_weights, all_biases)
    return (output(all_f[n]) if output else all_f[n]), all_f, all_h


def _right(k, h, w, b):
    return b[k] + w[k] @ h


def bias_missing(x, w, b):
    return _generic(x, w, b, affine=lambda k, h, w, b: w[k] @ h, activate=ReLU)


def relu_missing(x, w, b):
    return _generic(x, w, b, affine=_right, activate=lambda f: f)


def activation_after_last(x, w, b):
    return _generic(x, w, b, affine=_right, activate=ReLU, output=ReLU)


def no_matmul(x, w, b):
    return _generic(x, w, b, affine=lambda k, h, w, b: b[k] + w[k] * h, activate=ReLU)


def wrong_layer_order(x, w, b):
    """The layers' parameters taken from the top down: runs where the shapes allow (square networks)."""
    n = len(w) - 1
    return _generic(x, w, b, affine=lambda k, h, w, b: b[n - k] + w[n - k] @ h, activate=ReLU)


def activation_before_weights(x, w, b):
    return _generic(x, w, b, affine=lambda k, h, w, b: b[k] + w[k] @ ReLU(h), activate=lambda f: f,
                    output=None)


def tanh_instead(x, w, b):
    return _generic(x, w, b, affine=_right, activate=np.tanh)


def sleeps(x, w, b):
    time.sleep(30)


def changes_its_input(x, w, b):
    result = published(x, w, b)
    w[0] += 1.0
    return result


def returns_two(x, w, b):
    return published(x, w, b)[:2]


class _Unmeasurable(list):
    def __len__(self):
        raise ValueError("len says no")


def unmeasurable(x, w, b):
    return _Unmeasurable(published(x, w, b))
