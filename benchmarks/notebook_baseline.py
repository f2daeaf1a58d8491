# ruff: noqa: UP031 (the notebook's % formatting, kept as written)
"""The notebook's own code (Understanding Deep Learning, notebook 7.2), kept as the benchmarks' baseline.

This is the notebook's forward pass, loss, backward pass and finite-difference cell, transcribed with as few
changes as possible: the cell's global ``K`` becomes ``len(all_weights) - 1`` and the cell becomes a
function. Its prints and its ``np.allclose`` stay, because the timing they cost is part of what the
notebook does; the harness sends them to a null sink. It is never imported by the library: the library's
finite differences are ``manual_backprop.numerical_gradients``.
"""

from __future__ import annotations

import numpy as np


def ReLU(preactivation):  # noqa: N802 (the notebook's name)
    return np.maximum(0, preactivation)


def compute_network_output(net_input, all_weights, all_biases):
    all_f = []  # pre-activations (before ReLU)
    all_h = [net_input]  # activations (after ReLU); first is input

    current_input = net_input
    for i in range(len(all_weights)):
        f = all_weights[i] @ current_input + all_biases[i]
        all_f.append(f)
        if i < len(all_weights) - 1:
            current_input = ReLU(f)
        else:
            current_input = f  # No activation function at final layer
        all_h.append(current_input)

    net_output = current_input
    return net_output, all_f, all_h


def least_squares_loss(net_output, y):
    return 0.5 * np.sum((net_output - y) ** 2)


def d_loss_d_output(net_output, y):
    return net_output - y


def backward_pass(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1  # noqa: N806 (the notebook's name)

    all_dl_dweights = [None] * (K + 1)
    all_dl_dbiases = [None] * (K + 1)

    delta = d_loss_d_output(all_h[-1], y)

    for layer in reversed(range(K + 1)):
        all_dl_dweights[layer] = delta @ all_h[layer].T
        all_dl_dbiases[layer] = delta

        if layer > 0:
            df_dh = (all_f[layer - 1] > 0).astype(float)  # ReLU derivative
            delta = (all_weights[layer].T @ delta) * df_dh

    return all_dl_dweights, all_dl_dbiases


def finite_difference_cell(all_weights, all_biases, net_input, y, all_dl_dweights, all_dl_dbiases,
                           delta_fd=0.000001):
    """The notebook's finite-difference cell as written: prints, ``np.allclose`` and all.

    ``all_dl_dweights`` and ``all_dl_dbiases`` are the backprop gradients the cell prints and compares
    against. Returns ``(all_dl_dweights_fd, all_dl_dbiases_fd)``.
    """
    K = len(all_weights) - 1  # noqa: N806 (the notebook's global)
    np.set_printoptions(precision=3)
    # Make space for derivatives computed by finite differences
    all_dl_dweights_fd = [None] * (K + 1)
    all_dl_dbiases_fd = [None] * (K + 1)

    # Test the dervatives of the bias vectors
    for layer in range(K + 1):
        dl_dbias = np.zeros_like(all_dl_dbiases[layer])
        # For every element in the bias
        for row in range(all_biases[layer].shape[0]):
            # Take copy of biases  We'll change one element each time
            all_biases_copy = [np.array(x) for x in all_biases]
            all_biases_copy[layer][row] += delta_fd
            network_output_1, *_ = compute_network_output(net_input, all_weights, all_biases_copy)
            network_output_2, *_ = compute_network_output(net_input, all_weights, all_biases)
            dl_dbias[row] = (least_squares_loss(network_output_1, y)
                             - least_squares_loss(network_output_2, y)) / delta_fd
        all_dl_dbiases_fd[layer] = np.array(dl_dbias)
        print("-----------------------------------------------")
        print("Bias %d, derivatives from backprop:" % (layer))
        print(all_dl_dbiases[layer])
        print("Bias %d, derivatives from finite differences" % (layer))
        print(all_dl_dbiases_fd[layer])
        if np.allclose(all_dl_dbiases_fd[layer], all_dl_dbiases[layer],
                       rtol=1e-05, atol=1e-08, equal_nan=False):
            print("Success!  Derivatives match.")
        else:
            print("Failure!  Derivatives different.")

    # Test the derivatives of the weights matrices
    for layer in range(K + 1):
        dl_dweight = np.zeros_like(all_dl_dweights[layer])
        # For every element in the bias
        for row in range(all_weights[layer].shape[0]):
            for col in range(all_weights[layer].shape[1]):
                # Take copy of biases  We'll change one element each time
                all_weights_copy = [np.array(x) for x in all_weights]
                all_weights_copy[layer][row][col] += delta_fd
                network_output_1, *_ = compute_network_output(net_input, all_weights_copy, all_biases)
                network_output_2, *_ = compute_network_output(net_input, all_weights, all_biases)
                dl_dweight[row][col] = (least_squares_loss(network_output_1, y)
                                        - least_squares_loss(network_output_2, y)) / delta_fd
        all_dl_dweights_fd[layer] = np.array(dl_dweight)
        print("-----------------------------------------------")
        print("Weight %d, derivatives from backprop:" % (layer))
        print(all_dl_dweights[layer])
        print("Weight %d, derivatives from finite differences" % (layer))
        print(all_dl_dweights_fd[layer])
        if np.allclose(all_dl_dweights_fd[layer], all_dl_dweights[layer],
                       rtol=1e-05, atol=1e-08, equal_nan=False):
            print("Success!  Derivatives match.")
        else:
            print("Failure!  Derivatives different.")
    return all_dl_dweights_fd, all_dl_dbiases_fd


def notebook_gradients(all_weights, all_biases, net_input, y, *, activation="relu", loss="least_squares"):
    """The notebook's backward pass then its finite-difference cell, behind the shared gradient signature.

    Only what the notebook covers: ReLU and least squares, N = 1 (its bias gradients are ``delta`` itself,
    not summed over a batch). Returns the finite-difference gradients the cell computes.
    """
    if activation != "relu" or loss != "least_squares" or np.shape(net_input)[1] != 1:
        raise ValueError("the notebook's code covers ReLU, least squares and one example (N = 1) only")
    _, all_f, all_h = compute_network_output(net_input, all_weights, all_biases)
    all_dl_dweights, all_dl_dbiases = backward_pass(all_weights, all_biases, all_f, all_h, y)
    return finite_difference_cell(all_weights, all_biases, net_input, y, all_dl_dweights, all_dl_dbiases)
