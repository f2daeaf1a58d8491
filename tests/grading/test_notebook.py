"""The notebook 7.2 run, reproduced number for number, but asserting where the notebook prints."""

# ruff: noqa: NPY002  (the notebook's legacy global stream is reproduced here on purpose)

from __future__ import annotations

import numpy as np
import pytest

from manual_backprop import (
    compute_network_output,
    least_squares_loss,
    manual_gradients,
    numerical_gradients,
    udl_network,
)

NET_INPUT = np.ones((1, 1)) * 1.2
Y = np.ones((1, 1)) * 20.0


def notebook_drawing_code():
    """The notebook's cell 4, verbatim in substance: the legacy global stream seeded with 0."""
    np.random.seed(0)
    K, D, D_i, D_o = 5, 6, 1, 1
    all_weights = [None] * (K + 1)
    all_biases = [None] * (K + 1)
    all_weights[0] = np.random.normal(size=(D, D_i))
    all_weights[-1] = np.random.normal(size=(D_o, D))
    all_biases[0] = np.random.normal(size=(D, 1))
    all_biases[-1] = np.random.normal(size=(D_o, 1))
    for layer in range(1, K):
        all_weights[layer] = np.random.normal(size=(D, D))
        all_biases[layer] = np.random.normal(size=(D, 1))
    return all_weights, all_biases


def test_udl_network_equals_the_notebooks_drawing_code():
    state = np.random.get_state()
    try:
        expected_w, expected_b = notebook_drawing_code()
    finally:
        np.random.set_state(state)
    all_weights, all_biases = udl_network()
    assert len(all_weights) == len(all_biases) == 6
    for ours, theirs in zip(all_weights + all_biases, expected_w + expected_b, strict=True):
        assert ours.dtype == np.float64
        assert np.array_equal(ours, theirs)


def test_udl_network_leaves_the_global_stream_alone():
    np.random.seed(123)
    before = np.random.get_state()
    udl_network()
    udl_network(seed=7, K=3, D=4)
    after = np.random.get_state()
    assert before[0] == after[0]
    assert np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]


def test_udl_network_shapes_for_other_sizes():
    all_weights, all_biases = udl_network(seed=3, K=2, D=4, D_i=3, D_o=2)
    assert [w.shape for w in all_weights] == [(4, 3), (4, 4), (2, 4)]
    assert [b.shape for b in all_biases] == [(4, 1), (4, 1), (2, 1)]


@pytest.mark.parametrize("bad", [{"K": 0}, {"K": -1}, {"D": 0}, {"D_i": 0}, {"D_o": 0}])
def test_udl_network_refuses_empty_sizes(bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=f"{name} must be at least 1"):
        udl_network(**bad)


def test_udl_network_refuses_non_integer_sizes():
    with pytest.raises(TypeError, match="K must be an integer"):
        udl_network(K=2.5)


def test_output_and_loss_as_printed():
    all_weights, all_biases = udl_network()
    net_output, all_f, all_h = compute_network_output(NET_INPUT, all_weights, all_biases)
    assert net_output.shape == (1, 1)
    assert f"{net_output[0, 0]:3.3f}" == "1.907"
    assert f"{least_squares_loss(net_output, Y):3.3f}" == "163.685"
    assert len(all_f) == 6 and len(all_h) == 7
    assert np.array_equal(all_h[0], NET_INPUT)
    assert np.array_equal(all_h[-1], net_output)


def test_bias_0_derivatives_as_printed():
    all_weights, all_biases = udl_network()
    _, all_dl_dbiases = manual_gradients(all_weights, all_biases, NET_INPUT, Y)
    with np.printoptions(precision=3):
        printed = np.array2string(all_dl_dbiases[0].ravel())
    assert printed == np.array2string(np.array([-2.243, 2.474, 3.406, -1.942, -12.468, 0.0]), precision=3)
    assert np.allclose(all_dl_dbiases[0].ravel(), [-2.243, 2.474, 3.406, -1.942, -12.468, 0.0], atol=5e-4)


@pytest.mark.parametrize("layer", range(6))
def test_every_layer_matches_the_notebooks_forward_difference(layer):
    all_weights, all_biases = udl_network()
    dl_dweights, dl_dbiases = manual_gradients(all_weights, all_biases, NET_INPUT, Y)
    fd_weights, fd_biases = numerical_gradients(
        all_weights, all_biases, NET_INPUT, Y, method="forward", step=1e-6
    )
    assert np.allclose(fd_biases[layer], dl_dbiases[layer], rtol=1e-05, atol=1e-08, equal_nan=False)
    assert np.allclose(fd_weights[layer], dl_dweights[layer], rtol=1e-05, atol=1e-08, equal_nan=False)


def test_the_notebooks_check_would_catch_a_wrong_layer():
    all_weights, all_biases = udl_network()
    _, dl_dbiases = manual_gradients(all_weights, all_biases, NET_INPUT, Y)
    _, fd_biases = numerical_gradients(all_weights, all_biases, NET_INPUT, Y, method="forward", step=1e-6)
    assert not np.allclose(fd_biases[0], -dl_dbiases[0], rtol=1e-05, atol=1e-08)
    assert not np.allclose(fd_biases[0], 2 * dl_dbiases[0], rtol=1e-05, atol=1e-08)


def test_a_cell_magic_whose_body_is_python_runs_it_and_others_are_skipped():
    from manual_backprop.grading.notebook import python_source

    assert python_source("%%time\ndef f():\n    return 1\n") == ("pass\ndef f():\n    return 1\n", 1, False)
    assert python_source("%%capture out\nx = 1\n%matplotlib inline") == ("pass\nx = 1\npass", 2, False)
    assert python_source("%%bash\nls\n") == ("", 0, True)
