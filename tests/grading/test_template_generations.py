"""The template-generation notebooks themselves: each right one runs as its generation did and its gradients
agree with finite differences of its own forward pass; each wrong one is wrong (not graded here)."""

from __future__ import annotations

import copy

import nbformat
import numpy as np
import pytest

import template_generations as tg
from manual_backprop import udl_network
from manual_backprop.grading.notebook import run_notebook
from published_style import numpy_2_refuses_formatting_a_matrix

NUMPY_2 = numpy_2_refuses_formatting_a_matrix()
STEP = 1e-6  # central differences of a piecewise-linear network under a quadratic loss: rounding only


def run(tmp_path, generation, indicator, variant):
    path = tmp_path / f"7_2_{generation}_{variant}.ipynb"
    return run_notebook(tg.write(path, tg.notebook(generation, indicator=indicator, variant=variant)))


def fd_gradients(namespace, weights, biases, x, y):
    """Central differences of the notebook's own loss of its own forward pass, every parameter."""
    forward, loss = namespace["compute_network_output"], namespace["least_squares_loss"]

    def at(w, b):
        return loss(forward(x, w, b)[0], y)

    grads = []
    for which in (0, 1):
        params = (weights, biases)
        grads.append([])
        for layer, array in enumerate(params[which]):
            grad = np.zeros_like(array)
            for index in np.ndindex(array.shape):
                plus, minus = copy.deepcopy(params), copy.deepcopy(params)
                plus[which][layer][index] += STEP
                minus[which][layer][index] -= STEP
                grad[index] = (at(*plus) - at(*minus)) / (2 * STEP)
            grads[which].append(grad)
    return grads


def backward_at(namespace, weights, biases, x, y):
    """The notebook's backward_pass on fresh lists from its own forward pass, with its global K set to the
    network's depth (a later cell may have rebound it); ``(dweights, dbiases, all_h_before, all_h_after)``."""
    backward = namespace["backward_pass"]
    _, all_f, all_h = namespace["compute_network_output"](x, weights, biases)
    before = [np.array(h) for h in all_h]
    saved = backward.__globals__.get("K")
    backward.__globals__["K"] = len(weights) - 1
    try:
        dweights, dbiases = backward(weights, biases, list(all_f), all_h, y)
    finally:
        backward.__globals__["K"] = saved
    return dweights, dbiases, before, all_h


def agrees(namespace, weights, biases, x, y) -> bool:
    try:
        dweights, dbiases, _, _ = backward_at(namespace, weights, biases, x, y)
    except Exception:  # noqa: BLE001 (a wrong solution may raise: it does not agree)
        return False
    fd_weights, fd_biases = fd_gradients(namespace, weights, biases, x, y)
    return all(np.shape(got) == want.shape and np.allclose(got, want, rtol=1e-6, atol=1e-5)
               for got, want in zip(list(dweights) + list(dbiases), fd_weights + fd_biases, strict=True))


def notebook_network(D_i=1, seed=0):
    weights, biases = udl_network(seed=seed, K=5, D=6, D_i=D_i, D_o=1)
    return weights, biases, np.full((D_i, 1), 1.2), np.full((1, 1), 20.0)


def negative_output_network(namespace):
    """A network of the notebook's family whose output is below zero (where a ReLU at the output bites)."""
    for seed in range(1, 100):
        weights, biases, x, y = notebook_network(seed=seed)
        if namespace["compute_network_output"](x, weights, biases)[0][0, 0] < -0.1:
            return weights, biases, x, y
    raise AssertionError("no seed below 100 gives a negative output")


def test_four_generations_each_differing_from_the_one_before():
    assert list(tg.GENERATIONS) == ["2023-07", "2024-03", "2024-09", "2025-01"]
    generations = [tg.BY_NAME[name] for name in tg.GENERATIONS]
    for older, newer in zip(generations, generations[1:], strict=False):
        features = ("indicator", "checks_output_layer", "prints_verdicts", "forward_eqn", "backward_eqs")
        assert any(getattr(older, f) != getattr(newer, f) for f in features), newer.name
    assert [g.indicator for g in generations] == ["ge0", "ge0", "gt0", "gt0"]
    assert [tg.success_lines(g.name) for g in generations] == [0, 10, 12, 12]
    assert all("\n" not in description for description in tg.GENERATIONS.values())


def test_every_case_is_a_valid_v4_notebook_saying_what_it_is(tmp_path):
    cases = tg.right_cases() + tg.wrong_cases()
    assert len(cases) == 4 * 2 * len(tg.RIGHT_VARIANTS) + 4 * len(tg.WRONG_VARIANTS)
    for generation, indicator, variant in cases:
        node = tg.notebook(generation, indicator=indicator, variant=variant)
        nbformat.validate(node)
        assert node.metadata["template_generation"] == {"generation": generation, "variant": variant,
                                                        "indicator": indicator}
    path = tg.write(tmp_path / "nb.ipynb", tg.notebook("2025-01"))
    assert nbformat.read(path, as_version=4).cells[-1].source == tg.notebook("2025-01").cells[-1].source


def test_bad_names_are_refused():
    with pytest.raises(ValueError, match="generation must be one of"):
        tg.notebook("2022-01")
    with pytest.raises(ValueError, match="variant must be one of"):
        tg.notebook("2025-01", variant="nope")
    with pytest.raises(ValueError, match="indicator must be one of"):
        tg.notebook("2025-01", indicator="half")


def assert_prints_like_its_generation(result, generation, *, successes):
    assert tg.OUTPUT_LINE in result.output
    for layer in range(tg.fd_layers(generation)):
        for kind in ("Bias", "Weight"):
            assert f"{kind} {layer}, derivatives from backprop:" in result.output
            assert f"{kind} {layer}, derivatives from finite differences" in result.output
    if not tg.BY_NAME[generation].checks_output_layer:  # range(K): the output layer is never checked
        assert "Bias 5, derivatives" not in result.output and "Weight 5, derivatives" not in result.output
    assert result.output.count(tg.SUCCESS) == successes
    assert (tg.LOSS_LINE in result.output) is not NUMPY_2


def loss_print_error(result):
    """The errors other than the loss print's own TypeError on NumPy 2 (asserted recorded there)."""
    errors = list(result.errors)
    if NUMPY_2:
        first = errors.pop(0)
        assert (first.source, first.line) == (tg.LOSS_PRINT, 3) and first.error.startswith("TypeError"), first
    return errors


@pytest.mark.parametrize(("generation", "indicator", "variant"), tg.right_cases())
def test_a_right_notebook_runs_as_its_generation_did_and_its_gradients_are_right(
        tmp_path, generation, indicator, variant):
    result = run(tmp_path, generation, indicator, variant)
    assert loss_print_error(result) == [], [str(e) for e in result.errors]
    assert_prints_like_its_generation(result, generation, successes=tg.success_lines(generation))
    assert tg.FAILURE not in result.output
    namespace = result.namespace
    assert namespace["indicator_function"](np.array([[0.0], [-1.0], [2.0]])).ravel().tolist() == \
        ([1.0, 0.0, 1.0] if indicator == "ge0" else [0.0, 0.0, 1.0])
    weights, biases, x, y = notebook_network()
    drawn = namespace["all_weights"] + namespace["all_biases"]
    for ours, theirs in zip(weights + biases, drawn, strict=True):
        np.testing.assert_array_equal(ours, theirs)  # the notebook's network, as np.random.seed(0) drew it
    assert agrees(namespace, weights, biases, x, y)
    assert agrees(namespace, *negative_output_network(namespace))  # outputs of both signs
    if variant == "rebinds_globals":
        assert (namespace["K"], namespace["D"], namespace["D_i"]) == (2, 4, 3)
        assert namespace["y"].shape == (1, 20) and "fitted slope 3.00 offset 0.50" in result.output
    if variant == "inplace_all_h":
        _, _, before, after = backward_at(namespace, weights, biases, x, y)
        assert all(np.array_equal(a, b.T) for a, b in zip(after, before, strict=True))  # transposed in place
        assert len(after) == tg.K_NOTEBOOK + 1  # all_h holds h_0..h_K, the output is all_f[K]
    beyond = notebook_network(D_i=2)  # D_i != D_o: beyond the notebook's task
    if variant == "d_i_crash":
        with pytest.raises(ValueError, match="reshape"):
            backward_at(namespace, *beyond)
    else:
        assert agrees(namespace, *beyond)


@pytest.mark.parametrize(("generation", "indicator", "variant"), tg.wrong_cases())
def test_a_wrong_notebook_is_wrong(tmp_path, generation, indicator, variant):
    described = tg.VARIANTS[variant]
    result = run(tmp_path, generation, indicator, variant)
    errors = loss_print_error(result)
    namespace = result.namespace
    network = notebook_network()
    if described.raises:  # the notebook's own call raises; the check cell then finds no gradients
        assert [e.cell for e in errors] == [14, 15] and errors[0].error.startswith("ValueError"), errors
        assert tg.SUCCESS not in result.output
    else:
        assert errors == [], [str(e) for e in errors]
        prints = tg.BY_NAME[generation].prints_verdicts
        successes = tg.success_lines(generation) if described.agrees_at_seeded_network else None
        if successes is not None:
            assert_prints_like_its_generation(result, generation, successes=successes)
        assert (tg.FAILURE in result.output) is (prints and not described.agrees_at_seeded_network)
    assert agrees(namespace, *network) is described.agrees_at_seeded_network
    assert not agrees(namespace, *negative_output_network(namespace))
