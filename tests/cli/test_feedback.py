"""Feedback during long runs: a line on stderr before the work, tqdm bars past 2 s, a summarised header."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from manual_backprop import numerical_gradients, progress, random_network, three_way_check
from manual_backprop.cli import three_way_cli as cli
from manual_backprop.cli.command import main


@pytest.fixture
def terminal(monkeypatch):
    """stderr as a terminal, and bars that appear at once."""
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(progress, "DELAY", 0.0)


def test_a_line_on_stderr_says_what_is_checked(terminal, capsys):
    assert main(["check"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[0] == (
        "checking network 1-6-6-6-6-6-1 (187 parameters), batch 1, float64, relu, least_squares: manual "
        "backprop, jax.grad and central finite differences"
    )
    assert out.startswith("network 1-6-6-6-6-6-1")


def test_a_derivative_check_says_which(terminal, capsys):
    assert main(["check", "--derivative", "hvp", "--depth", "1", "--width", "3"]) == 0
    assert "hvp by hand, by JAX and by central differences" in capsys.readouterr().err


@pytest.mark.parametrize("args, is_terminal", [(["check", "--json"], True), (["check"], False)])
def test_silent_with_json_or_when_stderr_is_not_a_terminal(args, is_terminal, monkeypatch, capsys):
    monkeypatch.setattr(cli, "_stderr_is_terminal", lambda: is_terminal)
    monkeypatch.setattr(progress, "DELAY", 0.0)
    assert main([*args, "--depth", "2", "--width", "40"]) == 0  # several blocks of finite differences
    assert capsys.readouterr().err == ""


def test_the_line_notes_a_switch_to_directional():
    args = argparse.Namespace(depth=2, width=2000, input_dim=1, output_dim=1, batch=8, dtype="float64",
                              activation="relu", loss="least_squares", derivative="gradient", fd="central")
    weights = [np.zeros((2000, 1)), np.zeros((2000, 2000)), np.zeros((1, 2000))]
    line = cli._announce(args, weights, np.zeros((1, 8)))
    assert "switched to directional" in line and "past the budget" in line
    assert "(4,008,001 parameters)" in line


def test_track_is_transparent_outside_the_command_line():
    items = [1, 2, 3]
    assert progress.track(items, "x") is items
    with progress.showing(False):
        assert progress.track(items, "x") is items


def test_finite_differences_draw_a_bar_and_compute_the_same(monkeypatch, capsys):
    monkeypatch.setattr(progress, "DELAY", 0.0)
    weights, biases = random_network([3, 8, 8, 2], rng=1)
    x = np.random.default_rng(0).standard_normal((3, 4))
    y = np.ones((2, 4))
    plain = numerical_gradients(weights, biases, x, y, max_memory=4096)  # several blocks
    assert capsys.readouterr().err == ""
    with progress.showing():
        shown = numerical_gradients(weights, biases, x, y, max_memory=4096)
    assert "finite differences" in capsys.readouterr().err
    for a, b in zip(plain[0] + plain[1], shown[0] + shown[1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_wide_batch_is_summarised():
    weights, biases = random_network([2, 3, 2], rng=0)
    x = np.random.default_rng(0).standard_normal((2, 40))
    report = three_way_check(weights, biases, x, np.zeros((2, 40)))
    out = report.net_output
    assert report.headline() == (
        f"network 2-3-2, batch 40: output 2x40: min {out.min():.3f}, max {out.max():.3f}, mean "
        f"{out.mean():.3f}, loss {report.loss_value:.3f}"
    )


def test_a_small_batch_is_printed_whole():
    weights, biases = random_network([2, 3, 2], rng=0)
    report = three_way_check(weights, biases, np.ones((2, 4)), np.zeros((2, 4)))
    assert "[[" in report.headline() and "min" not in report.headline()


def test_exploding_activations_are_warned_of():
    weights, biases = random_network([1, 4, 1], rng=0)
    weights = [w * 1e4 for w in weights]
    report = three_way_check(weights, biases, np.ones((1, 1)), np.zeros((1, 1)))
    head, warning = report.headline().splitlines()
    assert head.startswith("network 1-4-1, batch 1: output ") and "e+" in head
    assert warning.startswith("warning: the activations explode: |output| reaches ")

