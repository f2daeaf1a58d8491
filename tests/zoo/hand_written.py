"""Hand-written gradients in the styles people write them, each right and with a realistic bug.

Written for these tests (not copied from any course): a two-layer softmax net with L2 (dict parameters,
examples as rows, loss averaged), a sigmoid network with quadratic cost (lists of column vectors, returning
(nabla_b, nabla_w)), cache-style layer functions (affine, ReLU, softmax loss, batch norm, a convolution, an
RNN step) and a nested parameter tree. ``bug=`` selects a mistake; each function's docstring names the leaf
it breaks.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace

# ----------------------------------------------------------------- two-layer softmax net, dict parameters


def two_layer_params(rng, D=6, H=5, C=3, N=8, dtype=np.float64):
    """``(params, X, y)``: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,); X (N, D) rows; y (N,) labels."""
    params = {"W1": 0.5 * rng.standard_normal((D, H)), "b1": 0.1 * rng.standard_normal(H),
              "W2": 0.5 * rng.standard_normal((H, C)), "b2": 0.1 * rng.standard_normal(C)}  # fmt: skip
    X = rng.standard_normal((N, D))
    return {k: v.astype(dtype) for k, v in params.items()}, X.astype(dtype), rng.integers(0, C, N)


def two_layer_loss(params, X, y, reg=0.05):
    """Mean softmax cross-entropy over the rows, plus (reg / 2) (|W1|^2 + |W2|^2); any array namespace."""
    xp = array_namespace(params["W1"])  # the parameters' namespace: NumPy, or JAX under jax.grad
    hidden = xp.maximum(xp.asarray(X) @ params["W1"] + params["b1"], 0.0)
    scores = hidden @ params["W2"] + params["b2"]
    scores = scores - xp.max(scores, axis=1, keepdims=True)
    log_probs = scores - xp.log(xp.sum(xp.exp(scores), axis=1, keepdims=True))
    picked = xp.take_along_axis(log_probs, xp.asarray(y)[:, None], axis=1)
    penalty = 0.5 * reg * (xp.sum(params["W1"] ** 2) + xp.sum(params["W2"] ** 2))
    return -xp.mean(picked) + penalty


def two_layer_loss_numpy(params, X, y, reg=0.05):
    """The same loss in NumPy only (``np.maximum``, fancy indexing): no JAX witness for this one."""
    hidden = np.maximum(0, X @ params["W1"] + params["b1"])
    scores = hidden @ params["W2"] + params["b2"]
    scores = scores - scores.max(axis=1, keepdims=True)
    log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(y)), y].mean() + 0.5 * reg * ((params["W1"] ** 2).sum()
                                                                   + (params["W2"] ** 2).sum())


def two_layer_grads(params, X, y, reg=0.05, bug=None):
    """The gradient of ``two_layer_loss``. Bugs: "no_reg" (W1 lacks reg * W1: only W1), "sum" (db2 not
    divided by N: only b2), "transpose" (dW2 as (C, H): only W2), "missing" (no b2 key: only b2);
    "relu_ge" takes ReLU'(0) = 1, which is right (it differs only at exact kinks)."""
    N = X.shape[0]
    z = X @ params["W1"] + params["b1"]
    hidden = np.maximum(0, z)
    scores = hidden @ params["W2"] + params["b2"]
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    dscores = probs.copy()
    dscores[np.arange(N), y] -= 1
    dscores /= N
    grads = {"W2": hidden.T @ dscores + reg * params["W2"], "b2": dscores.sum(axis=0)}
    dz = (dscores @ params["W2"].T) * ((z >= 0) if bug == "relu_ge" else (z > 0))
    grads["W1"] = X.T @ dz + (0 if bug == "no_reg" else reg) * params["W1"]
    grads["b1"] = dz.sum(axis=0)
    if bug == "sum":
        grads["b2"] = grads["b2"] * N
    if bug == "transpose":
        grads["W2"] = grads["W2"].T
    if bug == "missing":
        del grads["b2"]
    return grads


# ----------------------------------------------------------------- sigmoid network, lists of column vectors


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_net(rng, sizes=(3, 4, 2)):
    """``(biases, weights)``: lists of (n_out, 1) column vectors and (n_out, n_in) matrices."""
    return ([rng.standard_normal((n, 1)) for n in sizes[1:]],
            [rng.standard_normal((m, n)) for n, m in zip(sizes[:-1], sizes[1:], strict=True)])  # fmt: skip


def sigmoid_cost(net, x, y):
    """0.5 |a_L - y|^2 summed over the columns of x (one example per column), sigmoid on every layer."""
    biases, weights = net
    a = x
    for b, w in zip(biases, weights, strict=True):
        a = sigmoid(w @ a + b)
    return 0.5 * float(np.sum((a - y) ** 2))


def sigmoid_backprop(net, x, y, bug=None):
    """``(nabla_b, nabla_w)`` of ``sigmoid_cost``. Bugs: "no_prime" (sigmoid' dropped at the output: every
    leaf), "last_w" (the last layer's weights use z, not the activation sigmoid(z): only [1][1])."""
    biases, weights = net
    activation, activations, zs = x, [x], []
    for b, w in zip(biases, weights, strict=True):
        z = w @ activation + b
        zs.append(z)
        activation = sigmoid(z)
        activations.append(activation)
    nabla_b, nabla_w = [None] * len(biases), [None] * len(weights)
    delta = activations[-1] - y
    if bug != "no_prime":
        delta = delta * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
    nabla_b[-1] = delta.sum(axis=1, keepdims=True)
    nabla_w[-1] = delta @ activations[-2].T
    for layer in range(2, len(weights) + 1):
        sp = sigmoid(zs[-layer]) * (1 - sigmoid(zs[-layer]))
        delta = (weights[-layer + 1].T @ delta) * sp
        nabla_b[-layer] = delta.sum(axis=1, keepdims=True)
        nabla_w[-layer] = delta @ activations[-layer - 1].T
    if bug == "last_w":  # the hidden layer's pre-activation where its activation belongs
        output_delta = (activations[-1] - y) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
        nabla_w[-1] = output_delta @ zs[-2].T
    return nabla_b, nabla_w


# ----------------------------------------------------------------- cache-style layers


def affine_forward(x, w, b):
    """x (N, d1, ..., dk) -> out (N, M) = x.reshape(N, D) @ w + b; cache for the backward pass."""
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache, bug=None):
    """(dx, dw, db). Bug "db_mean": db averaged over the batch (only [2])."""
    x, w, _ = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.mean(axis=0) if bug == "db_mean" else dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache, bug=None):
    """Bug "no_mask": the gradient passed through unmasked."""
    return dout if bug == "no_mask" else dout * (cache > 0)


def softmax_loss_forward(x, y):
    """Mean cross-entropy of the rows of scores x (N, C) against labels y: (loss, cache)."""
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(y)), y].mean(), (np.exp(log_probs), y)


def softmax_loss_backward(dout, cache, bug=None):
    """dx (N, C). Bug "sum": not divided by N."""
    probs, y = cache
    dx = probs.copy()
    dx[np.arange(len(y)), y] -= 1
    return dout * (dx if bug == "sum" else dx / len(y))


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Training-mode batch norm over the rows of x (N, D): (out, cache)."""
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    inv = 1.0 / np.sqrt(var + eps)
    xhat = (x - mu) * inv
    return gamma * xhat + beta, (xhat, gamma, inv)


def batchnorm_backward(dout, cache, bug=None):
    """(dx, dgamma, dbeta). Bug "dgamma": dgamma = sum(dout), the xhat factor forgotten (only [1])."""
    xhat, gamma, inv = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = dbeta.copy() if bug == "dgamma" else (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dx = inv / N * (N * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
    return dx, dgamma, dbeta


def conv_forward(x, w, b):
    """Valid 2-D convolution (cross-correlation), stride 1: x (N, C, H, W), w (F, C, HH, WW), b (F,)."""
    N, _, H, W = x.shape
    F, _, HH, WW = w.shape
    out = np.empty((N, F, H - HH + 1, W - WW + 1))
    for i in range(H - HH + 1):
        for j in range(W - WW + 1):
            patch = x[:, :, i:i + HH, j:j + WW]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w)


def conv_backward(dout, cache, bug=None):
    """(dx, dw, db). Bug "flip": dw accumulated with the patch flipped (only [1])."""
    x, w = cache
    _, _, HH, WW = w.shape
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            patch = x[:, :, i:i + HH, j:j + WW]
            if bug == "flip":
                patch = patch[:, :, ::-1, ::-1]
            dw += np.tensordot(dout[:, :, i, j], patch, axes=([0], [0]))
            dx[:, :, i:i + HH, j:j + WW] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    return dx, dw, dout.sum(axis=(0, 2, 3))


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    """next_h = tanh(x Wx + prev_h Wh + b): x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,)."""
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache, bug=None):
    """(dx, dprev_h, dWx, dWh, db). Bug "wh_next": dWh from next_h instead of prev_h (only [3])."""
    x, prev_h, Wx, Wh, next_h = cache
    dz = dnext_h * (1 - next_h**2)
    dWh = (next_h if bug == "wh_next" else prev_h).T @ dz
    return dz @ Wx.T, dz @ Wh.T, x.T @ dz, dWh, dz.sum(axis=0)


# ----------------------------------------------------------------- a nested tree of parameters


def nested_params(rng):
    """{"encoder": {"layers": [{"W", "b"}, {"W", "b"}]}, "head": (w, c)} with c a 0-d scale."""
    return {"encoder": {"layers": [{"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)},
                                   {"W": rng.standard_normal((4, 2)), "b": rng.standard_normal(2)}]},
            "head": (rng.standard_normal(2), np.float64(0.7))}  # fmt: skip


def nested_loss(params, X, t):
    """Mean squared error of c * tanh(tanh(X W0 + b0) W1 + b1) @ w against t."""
    h = X
    for layer in params["encoder"]["layers"]:
        h = np.tanh(h @ layer["W"] + layer["b"])
    w, c = params["head"]
    return 0.5 * np.mean((c * (h @ w) - t) ** 2)


def nested_grads(params, X, t, bug=None):
    """Bug "b1_sign": the last encoder layer's bias gradient negated (only encoder.layers[1].b)."""
    layers = params["encoder"]["layers"]
    w, c = params["head"]
    hs = [X]
    for layer in layers:
        hs.append(np.tanh(hs[-1] @ layer["W"] + layer["b"]))
    y = hs[-1] @ w
    r = (c * y - t) / len(t)
    dc, dw = float(r @ y), c * hs[-1].T @ r
    delta = np.outer(r, c * w)
    out = []
    for k in reversed(range(len(layers))):
        dz = delta * (1 - hs[k + 1] ** 2)
        out.insert(0, {"W": hs[k].T @ dz, "b": dz.sum(axis=0)})
        delta = dz @ layers[k]["W"].T
    if bug == "b1_sign":
        out[1]["b"] = -out[1]["b"]
    return {"encoder": {"layers": out}, "head": (dw, dc)}
