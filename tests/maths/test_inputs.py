"""Bad input raises a ValueError or TypeError that names the layer, the shapes or the valid choices; and
no public function changes its arguments.
"""

from __future__ import annotations

import copy
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

from manual_backprop import (
    backward_pass,
    compute_loss,
    compute_network_output,
    d_loss_d_output,
    least_squares_loss,
    manual_gradients,
    numerical_gradients,
    random_network,
    udl_network,
)
from manual_backprop.compare.gradient_forms import as_gradient_array
from manual_backprop.validate import LOSSES, check_finite, check_parameters
from oracle import jax_gradients, jax_loss, jax_network_output
from zoo.returns import ArrayLike

SIZES = [3, 4, 4, 2]  # D_i = 3, two hidden layers of 4, D_o = 2
N = 5


def problem(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    weights, biases = random_network(SIZES, rng=rng, dtype=dtype)
    net_input = rng.standard_normal((SIZES[0], N)).astype(dtype)
    y = rng.standard_normal((SIZES[-1], N)).astype(dtype)
    return weights, biases, net_input, y


# ---- the gradient functions: f(all_weights, all_biases, net_input, y, **kw) ---------------------------

GRADIENT_FUNCTIONS = [manual_gradients, numerical_gradients, jax_gradients]


def _set(kind, index, value):
    def edit(args):
        if kind in ("weights", "biases"):
            args[kind] = list(args[kind])
            args[kind][index] = value(args[kind][index]) if callable(value) else value
        else:
            args[kind] = value(args[kind]) if callable(value) else value

    return edit


def _nan_at(index):
    def put(a):
        a = a.copy()
        a[index] = np.nan
        return a

    return put


def _inf_at(index):
    def put(a):
        a = a.copy()
        a[index] = -np.inf
        return a

    return put


BAD_INPUTS = {
    # case: (edit of the valid arguments, extra keywords, exception, pattern the message must match)
    "one_bias_missing": (
        lambda a: a.update(biases=a["biases"][:-1]),
        {},
        ValueError,
        r"all_weights has 3 entries.*all_biases (has )?2",
    ),
    "no_layers": (lambda a: a.update(weights=[], biases=[]), {}, ValueError, r"(empty|at least one layer)"),
    "weights_not_a_list": (lambda a: a.update(weights=a["weights"][0]), {}, TypeError, r"all_weights.*list"),
    "weight_input_mismatch": (
        _set("weights", 1, np.ones((4, 5))),
        {},
        ValueError,
        r"all_weights\[1\] has shape \(4, 5\)",
    ),
    "weight_no_units": (
        lambda a: a.update(
            weights=[np.ones((0, 3)), np.ones((4, 0)), a["weights"][2]],
            biases=[np.ones((0, 1)), *a["biases"][1:]],
        ),
        {},
        ValueError,
        r"all_weights\[0\] has shape \(0, 3\)",
    ),
    "ragged_weight": (
        _set("weights", 0, [[1.0, 2.0, 3.0], [1.0]]),
        {},
        ValueError,
        r"all_weights\[0\].*rectangular",
    ),
    "weight_1d": (_set("weights", 0, np.ones(4)), {}, ValueError, r"all_weights\[0\].*\(4,\)"),
    "bias_two_columns": (_set("biases", 1, np.ones((4, 2))), {}, ValueError, r"all_biases\[1\].*\(4, 2\)"),
    "bias_1d": (_set("biases", 2, np.ones(2)), {}, ValueError, r"all_biases\[2\].*\(2,\)"),
    "bias_wrong_length": (_set("biases", 0, np.ones((3, 1))), {}, ValueError, r"all_biases\[0\].*\(3, 1\)"),
    "net_input_wrong_rows": (
        _set("net_input", None, np.ones((2, N))),
        {},
        ValueError,
        r"net_input has shape \(2, 5\).*\(3, ",
    ),
    "net_input_1d": (_set("net_input", None, np.ones(3)), {}, ValueError, r"net_input has shape \(3,\)"),
    "net_input_empty_batch": (
        _set("net_input", None, np.ones((3, 0))),
        {},
        ValueError,
        r"net_input has shape \(3, 0\)",
    ),
    "y_one_row_for_two_outputs": (
        _set("y", None, np.ones((1, N))),
        {},
        ValueError,
        r"y has shape \(1, 5\), expected \(2, 5\)",
    ),
    "y_wrong_batch": (_set("y", None, np.ones((2, N - 1))), {}, ValueError, r"y has shape \(2, 4\)"),
    "y_1d": (_set("y", None, np.ones(N)), {}, ValueError, r"y has shape \(5,\)"),
    "y_transposed": (_set("y", None, np.ones((N, 2))), {}, ValueError, r"y has shape \(5, 2\)"),
    "complex_weight": (_set("weights", 0, lambda w: w + 1j), {}, TypeError, r"all_weights\[0\].*complex"),
    "complex_bias": (_set("biases", 1, lambda b: b * 1j), {}, TypeError, r"all_biases\[1\].*complex"),
    "complex_input": (_set("net_input", None, lambda x: x + 0j), {}, TypeError, r"net_input.*complex"),
    "string_weight": (_set("weights", 1, np.full((4, 4), "a")), {}, TypeError, r"all_weights\[1\]"),
    "object_weight": (
        _set("weights", 2, np.full((2, 4), None, dtype=object)),
        {},
        TypeError,
        r"all_weights\[2\]",
    ),
    "string_input": (_set("net_input", None, "1.2"), {}, TypeError, r"net_input"),
    "none_input": (_set("net_input", None, None), {}, TypeError, r"net_input"),
    "string_target": (_set("y", None, np.full((2, N), "x")), {}, TypeError, r"\by\b"),
    "nan_weight": (_set("weights", 1, _nan_at((2, 3))), {}, ValueError, r"all_weights\[1\].*nan"),
    "inf_bias": (_set("biases", 0, _inf_at((1, 0))), {}, ValueError, r"all_biases\[0\].*inf"),
    "nan_input": (_set("net_input", None, _nan_at((0, 4))), {}, ValueError, r"net_input.*nan"),
    "inf_target": (_set("y", None, _inf_at((1, 2))), {}, ValueError, r"\by\b.*inf"),
    "unknown_activation": (
        lambda a: None,
        {"activation": "ReLU"},
        ValueError,
        r"'ReLU'.*relu, leaky_relu, tanh, sigmoid, softplus",
    ),
    "unknown_loss": (
        lambda a: None,
        {"loss": "mse"},
        ValueError,
        r"'mse'.*least_squares, sum_of_squares, binary_cross_entropy, softmax_cross_entropy",
    ),
    "bce_target_above_1": (
        _set("y", None, np.full((2, N), 1.5)),
        {"loss": "binary_cross_entropy"},
        ValueError,
        r"\[0, 1\]",
    ),
    "bce_target_negative": (
        _set("y", None, np.full((2, N), -0.5)),
        {"loss": "binary_cross_entropy"},
        ValueError,
        r"\[0, 1\]",
    ),
    "class_index_too_big": (
        _set("y", None, np.array([0, 1, 2, 0, 1])),
        {"loss": "softmax_cross_entropy"},
        ValueError,
        r"\[0, 2\)",
    ),
    "class_index_negative": (
        _set("y", None, np.array([0, -1, 1, 0, 1])),
        {"loss": "softmax_cross_entropy"},
        ValueError,
        r"\[0, 2\)",
    ),
    "class_indices_wrong_count": (
        _set("y", None, np.array([0, 1, 1])),
        {"loss": "softmax_cross_entropy"},
        ValueError,
        r"\(3,\).*\(5,\)",
    ),
    "class_indices_float": (
        _set("y", None, np.array([0.0, 1, 1, 0, 1])),
        {"loss": "softmax_cross_entropy"},
        TypeError,
        r"integer",
    ),
    "softmax_target_not_a_distribution": (
        _set("y", None, np.full((2, N), 0.7)),
        {"loss": "softmax_cross_entropy"},
        ValueError,
        r"sum(ming)? to 1",
    ),
    "softmax_target_one_row": (
        _set("y", None, np.ones((1, N))),
        {"loss": "softmax_cross_entropy"},
        ValueError,
        r"y has shape \(1, 5\)",
    ),
}


def _call(function, edit, kw):
    weights, biases, net_input, y = problem()
    args = {"weights": weights, "biases": biases, "net_input": net_input, "y": y}
    edit(args)
    return function(args["weights"], args["biases"], args["net_input"], args["y"], **kw)


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("function", GRADIENT_FUNCTIONS, ids=lambda f: f.__name__)
def test_gradient_functions_refuse_bad_input(function, case):
    edit, kw, exception, pattern = BAD_INPUTS[case]
    with pytest.raises(exception, match=pattern):
        _call(function, edit, kw)


OUTPUT_CASES = [
    c
    for c in BAD_INPUTS
    if not (
        c.startswith(("y_", "bce", "class", "softmax", "unknown_loss"))
        or c in ("inf_target", "string_target")
    )
]


@pytest.mark.parametrize("case", OUTPUT_CASES)
@pytest.mark.parametrize("function", [compute_network_output, jax_network_output], ids=lambda f: f.__name__)
def test_forward_functions_refuse_bad_input(function, case):
    edit, kw, exception, pattern = BAD_INPUTS[case]
    weights, biases, net_input, _ = problem()
    args = {"weights": weights, "biases": biases, "net_input": net_input, "y": None}
    edit(args)
    with pytest.raises(exception, match=pattern):
        function(args["net_input"], args["weights"], args["biases"], **kw)


@pytest.mark.parametrize("case", [c for c in BAD_INPUTS if "input" not in c])
def test_backward_pass_refuses_bad_parameters_and_targets(case):
    edit, kw, exception, pattern = BAD_INPUTS[case]
    weights, biases, net_input, y = problem()
    _, all_f, all_h = compute_network_output(net_input, weights, biases)
    args = {"weights": weights, "biases": biases, "net_input": net_input, "y": y}
    edit(args)
    with pytest.raises(exception, match=pattern):
        backward_pass(args["weights"], args["biases"], all_f, all_h, args["y"], **kw)


def _stored(edit_f=None, edit_h=None):
    weights, biases, net_input, y = problem()
    _, all_f, all_h = compute_network_output(net_input, weights, biases)
    all_f, all_h = list(all_f), list(all_h)
    if edit_f:
        edit_f(all_f)
    if edit_h:
        edit_h(all_h)
    return weights, biases, all_f, all_h, y


def _replace(index, value):
    def edit(items):
        items[index] = value(items[index]) if callable(value) else value

    return edit


BAD_STORED = {
    "all_f_too_short": (lambda f: f.pop(), None, ValueError, r"all_f has 2 entries, expected 3"),
    "all_h_too_long": (None, lambda h: h.append(h[-1]), ValueError, r"all_h has 5 entries, expected 4"),
    "all_f_wrong_shape": (
        _replace(1, np.ones((3, N))),
        None,
        ValueError,
        r"all_f\[1\] has shape \(3, 5\), expected \(4, 5\)",
    ),
    "all_f_wrong_batch": (
        _replace(2, np.ones((2, N + 1))),
        None,
        ValueError,
        r"all_f\[2\] has shape \(2, 6\)",
    ),
    "all_h_wrong_shape": (None, _replace(1, np.ones((4, 2))), ValueError, r"all_h\[1\] has shape \(4, 2\)"),
    "all_h_input_1d": (None, _replace(0, np.ones(3)), ValueError, r"all_h\[0\].*\(3,\)"),
    "all_h_output_wrong_shape": (
        None,
        _replace(3, np.ones((1, N))),
        ValueError,
        r"all_h\[3\].*has shape \(1, 5\)",
    ),
    "all_f_complex": (_replace(0, lambda f: f + 1j), None, TypeError, r"all_f\[0\].*complex"),
    "all_f_nan": (_replace(0, _nan_at((1, 1))), None, ValueError, r"all_f\[0\].*nan"),
    "all_h_inf": (None, _replace(2, _inf_at((0, 0))), ValueError, r"all_h\[2\].*inf"),
    "all_f_not_a_list": (lambda f: None, None, TypeError, r"all_f"),
}


@pytest.mark.parametrize("case", list(BAD_STORED))
def test_backward_pass_refuses_bad_stored_activations(case):
    edit_f, edit_h, exception, pattern = BAD_STORED[case]
    weights, biases, all_f, all_h, y = _stored(edit_f, edit_h)
    if case == "all_f_not_a_list":
        all_f = all_f[0]
    with pytest.raises(exception, match=pattern):
        backward_pass(weights, biases, all_f, all_h, y)


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"method": "centre"}, r"'centre'.*central, forward, backward"),
        ({"method": None}, r"central, forward, backward"),
        ({"step": 0}, r"step.*> 0"),
        ({"step": -1e-6}, r"step.*> 0"),
        ({"step": np.nan}, r"step.*finite"),
        ({"step": np.inf}, r"step.*finite"),
        ({"step": "1e-6"}, r"step"),
        ({"step": True}, r"step"),
    ],
)
def test_numerical_gradients_refuses_bad_method_or_step(kw, pattern):
    weights, biases, net_input, y = problem()
    with pytest.raises(ValueError, match=pattern):
        numerical_gradients(weights, biases, net_input, y, **kw)


@pytest.mark.parametrize(
    "function", [least_squares_loss, compute_loss, d_loss_d_output], ids=lambda f: f.__name__
)
def test_losses_refuse_mismatched_targets(function):
    with pytest.raises(ValueError, match=r"y has shape \(1, 4\), expected \(3, 4\)"):
        function(np.zeros((3, 4)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"net_input|net_output"):
        function(np.zeros(3), np.zeros(3))


def test_integer_inputs_are_converted():
    weights, biases, net_input, y = problem()
    ints = (
        [np.round(3 * w).astype(int) for w in weights],
        [np.round(3 * b).astype(int) for b in biases],
        np.round(net_input).astype(np.int32),
        np.round(y).astype(np.int64),
    )
    as_floats = [
        [a.astype(float) for a in ints[0]],
        [a.astype(float) for a in ints[1]],
        ints[2].astype(float),
        ints[3].astype(float),
    ]
    for function in GRADIENT_FUNCTIONS:
        got = function(*ints)
        expected = function(*as_floats)
        for g, e in zip([*got[0], *got[1]], [*expected[0], *expected[1]], strict=True):
            assert g.dtype == np.float64 and np.array_equal(g, e), function.__name__


# ---- nothing mutated ----------------------------------------------------------------------------------


def _snapshot(value):
    """A deep copy, plus the identity of every list entry (lists must keep the same objects)."""
    if isinstance(value, list):
        return ("list", [id(v) for v in value], [_snapshot(v) for v in value])
    return ("array", copy.deepcopy(value))


def _assert_unchanged(value, snapshot, name):
    kind, *rest = snapshot
    if kind == "list":
        ids, items = rest
        assert isinstance(value, list) and len(value) == len(ids), f"{name} changed length"
        assert [id(v) for v in value] == ids, f"{name} holds different objects"
        for k, (v, s) in enumerate(zip(value, items, strict=True)):
            _assert_unchanged(v, s, f"{name}[{k}]")
    else:
        (before,) = rest
        after = np.asarray(value)
        before = np.asarray(before)
        assert after.dtype == before.dtype and after.shape == before.shape, f"{name} changed dtype or shape"
        assert after.tobytes() == before.tobytes(), f"{name} changed"


def _inputs(dtype, loss):
    weights, biases, net_input, y = problem(np.float64, seed=3)
    if loss == "softmax_cross_entropy":
        y = np.array([0, 1, 1, 0, 1])
    elif loss == "binary_cross_entropy":
        y = (y > 0).astype(np.float64)
    if dtype is int:
        weights = [np.round(3 * w).astype(np.int64) for w in weights]
        biases = [np.round(3 * b).astype(np.int64) for b in biases]
        net_input = np.round(2 * net_input).astype(np.int64)
        if loss == "least_squares":
            y = np.round(y).astype(np.int64)
    else:
        weights = [w.astype(dtype) for w in weights]
        biases = [b.astype(dtype) for b in biases]
        net_input = net_input.astype(dtype)
        if y.dtype.kind == "f":
            y = y.astype(dtype)
    return weights, biases, net_input, y


PUBLIC_CALLS = {
    "manual_gradients": lambda w, b, x, y, kw: manual_gradients(w, b, x, y, **kw),
    "numerical_gradients": lambda w, b, x, y, kw: numerical_gradients(w, b, x, y, return_kinks=True, **kw),
    "numerical_gradients_forward": lambda w, b, x, y, kw: numerical_gradients(
        w, b, x, y, method="forward", **kw
    ),
    "jax_gradients": lambda w, b, x, y, kw: jax_gradients(w, b, x, y, **kw),
    "jax_loss": lambda w, b, x, y, kw: jax_loss(w, b, x, y, **kw),
    "jax_network_output": lambda w, b, x, y, kw: jax_network_output(x, w, b, activation=kw["activation"]),
    "compute_network_output": lambda w, b, x, y, kw: compute_network_output(
        x, w, b, activation=kw["activation"]
    ),
}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, int], ids=["float64", "float32", "int"])
@pytest.mark.parametrize("call", list(PUBLIC_CALLS))
def test_public_functions_leave_their_inputs_alone(call, dtype, loss):
    weights, biases, net_input, y = _inputs(dtype, loss)
    args = [weights, biases, net_input, y]
    before = [_snapshot(a) for a in args]
    kw = {"activation": "leaky_relu", "loss": loss}
    PUBLIC_CALLS[call](*args, kw)
    for name, a, s in zip(["all_weights", "all_biases", "net_input", "y"], args, before, strict=True):
        _assert_unchanged(a, s, name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, int], ids=["float64", "float32", "int"])
@pytest.mark.parametrize("loss", LOSSES)
def test_backward_pass_and_losses_leave_their_inputs_alone(dtype, loss):
    weights, biases, net_input, y = _inputs(dtype, loss)
    net_output, all_f, all_h = compute_network_output(net_input, weights, biases, activation="tanh")
    args = [weights, biases, all_f, all_h, y, net_output]
    before = [_snapshot(a) for a in args]
    backward_pass(weights, biases, all_f, all_h, y, activation="tanh", loss=loss)
    compute_loss(net_output, y, loss=loss)
    d_loss_d_output(net_output, y, loss=loss)
    if loss == "least_squares":
        least_squares_loss(net_output, y)
    for name, a, s in zip(
        ["all_weights", "all_biases", "all_f", "all_h", "y", "net_output"], args, before, strict=True
    ):
        _assert_unchanged(a, s, name)


@pytest.mark.parametrize("function", GRADIENT_FUNCTIONS, ids=lambda f: f.__name__)
def test_gradients_are_new_arrays(function):
    weights, biases, net_input, y = problem()
    dl_dweights, dl_dbiases = function(weights, biases, net_input, y)[:2]
    for g in [*dl_dweights, *dl_dbiases]:
        for a in [*weights, *biases, net_input, y]:
            assert not np.shares_memory(g, a)


def test_tuples_of_parameters_are_accepted():
    weights, biases, net_input, y = problem()
    for function in GRADIENT_FUNCTIONS:
        got = function(tuple(weights), tuple(biases), net_input, y)
        expected = function(weights, biases, net_input, y)
        assert all(
            np.array_equal(g, e)
            for g, e in zip([*got[0], *got[1]], [*expected[0], *expected[1]], strict=True)
        )


# ---- large but finite values are valid input ----------------------------------------------------------


def _large_but_finite():
    """Parameters whose sum overflows (2e308) although every entry is finite and the forward pass is not."""
    weights = [np.full((2, 1), 1e308), np.full((1, 2), 1e-300)]
    biases = [np.zeros((2, 1)), np.zeros((1, 1))]
    return weights, biases, np.full((1, 1), 1e-10), np.zeros((1, 1))


def test_check_finite_accepts_large_finite_values_silently():
    weights, *_ = _large_but_finite()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_finite(weights[0], "all_weights[0]")
        check_parameters(*_large_but_finite()[:2])
    with pytest.raises(ValueError, match=r"all_weights\[0\] contains inf at index \(1, 0\)"):
        check_finite(np.array([[1e308], [np.inf]]), "all_weights[0]")


# Not numerical_gradients: its steps scale with |theta| = 1e308, so its perturbed losses really overflow.
@pytest.mark.parametrize(
    "function", [manual_gradients, jax_gradients, backward_pass], ids=lambda f: f.__name__
)
def test_large_finite_parameters_raise_no_warning(function):
    """A finite check must not warn about the overflow of its own shortcut (a sum of the entries)."""
    weights, biases, net_input, y = _large_but_finite()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        if function is backward_pass:
            _, all_f, all_h = compute_network_output(net_input, weights, biases)
            function(weights, biases, all_f, all_h, y)
        else:
            function(weights, biases, net_input, y)


# ---- network builders name the argument at fault -----------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: random_network([3, 2], weight_std="a"), TypeError, "weight_std must be a number"),
        (lambda: random_network([3, 2], bias_std=None), TypeError, "bias_std must be a number"),
        (lambda: random_network([3, 2], rng=-1), ValueError, "rng must be a non-negative integer seed"),
        (lambda: random_network([3, 2], rng=1.5), TypeError, "rng must be None"),
        (lambda: random_network(None), TypeError, "layer_sizes must be a list"),
        (lambda: udl_network(seed=1.5), TypeError, "seed must be an integer"),
        (lambda: udl_network(seed=2**32), ValueError, r"seed must be at most 2\*\*32 - 1"),
    ],
)
def test_network_builders_name_the_bad_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_the_oracle_names_a_missing_target():
    weights, biases = udl_network()
    with pytest.raises(TypeError, match="y must be an array"):
        jax_gradients(weights, biases, np.array([[1.2]]), None)


@pytest.mark.parametrize("max_memory", ["a", 0, -5, None, float("nan")])
def test_numerical_gradients_names_a_bad_memory_budget(max_memory):
    weights, biases = udl_network()
    with pytest.raises(ValueError, match="max_memory must be a number of bytes"):
        numerical_gradients(weights, biases, [[1.2]], [[20.0]], max_memory=max_memory)


# ---- what a user's backward pass returned, as an array (for the comparison) -----------------------------


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_as_gradient_array_returns_plain_arrays():
    for value in (np.matrix([[1.0, 2.0]]), jnp.ones((1, 2)), ArrayLike([[1.0, 2.0]]), np.float64(3.0)):
        array, problem = as_gradient_array(value)
        assert type(array) is np.ndarray and problem is None
    assert as_gradient_array(None) == (None, "missing")
    assert as_gradient_array("junk")[1] == "expected a NumPy array, got str"
