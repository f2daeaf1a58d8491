"""The command line refuses, up front and in one line, networks too large for memory or too deep."""

from __future__ import annotations

import argparse
import time

import pytest

from manual_backprop import limits
from manual_backprop.cli import three_way_cli as cli
from manual_backprop.cli.command import main


@pytest.mark.parametrize(
    "options",
    [("--width", "100000"), ("--batch", "100000000"), ("--input-dim", "100000000"),
     ("--output-dim", "100000000"), ("--depth", "3", "--width", "100000", "--derivative", "hvp")],
)
def test_sizes_past_memory_are_refused_with_the_estimate(options, capsys):
    started = time.perf_counter()
    assert main(["check", *options]) == 2
    assert time.perf_counter() - started < 5  # nothing was allocated: the estimate comes from the sizes
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "the check would need about" in err and "GiB" in err
    assert "over the limit of" in err and f"{limits.MEMORY_FRACTION:.0%} of this machine's" in err


def test_the_estimate_names_its_parts_and_grows_with_every_size():
    base = limits.memory_estimate([1, 6, 6, 1], 1)
    assert base.total == base.parameters + base.activations + base.working
    for sizes, batch in (([1, 60, 6, 1], 1), ([10, 6, 6, 1], 1), ([1, 6, 6, 1], 1000)):
        assert limits.memory_estimate(sizes, batch).total > base.total
    # per-example gradients hold N copies of the gradient
    copies = limits.PARAMETER_COPIES + 8 * limits.PER_EXAMPLE_COPIES
    assert limits.memory_estimate([1, 6, 6, 1], 8, "per_example").parameters == (
        base.parameters // limits.PARAMETER_COPIES * copies)


def test_absurd_sizes_give_an_absurd_estimate_not_an_overflow():
    estimate = limits.memory_estimate([10**8, *[10**5] * 5, 10**8], 10**8)
    assert estimate.total > 10**18  # bytes: exact integers, far past any machine


def test_a_lower_limit_refuses_the_default_network(monkeypatch, capsys):
    monkeypatch.setattr(limits, "memory_limit", lambda: 1)
    assert main(["check"]) == 2
    assert "over the limit of 0.0 GiB" in capsys.readouterr().err


def test_an_unknown_memory_size_sets_no_limit(monkeypatch):
    monkeypatch.setattr(limits, "physical_memory", lambda: None)
    assert limits.memory_limit() is None


def test_depths_past_the_limit_are_refused_and_say_why(capsys):
    started = time.perf_counter()
    assert main(["check", "--depth", "100000"]) == 2
    assert time.perf_counter() - started < 5
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert f"deeper than {limits.MAX_DEPTH} layers" in err and "XLA compiles" in err


def test_the_deepest_network_allowed_passes_the_size_check():
    args = argparse.Namespace(depth=limits.MAX_DEPTH, width=6, input_dim=1, output_dim=1, batch=1,
                              derivative="gradient")  # fmt: skip
    cli._check_size(args)  # no UsageError
    args.depth += 1
    with pytest.raises(cli.UsageError, match="deeper than"):
        cli._check_size(args)


def test_exploding_outputs_are_detected():
    import numpy as np

    assert limits.exploding(np.array([[1.0, -1e6]])) is None
    assert limits.exploding(np.array([[1.0, -2e6]])) == 2e6
    assert limits.exploding(np.array([[np.inf]])) == np.inf


def test_grading_with_a_batch_beyond_memory_is_refused_at_once(capsys):
    from manual_backprop.cli.command import main

    assert main(["check", "--backward", "tests/zoo/passes.py:backward_pass", "--batch", "100000000"]) == 2
    assert "use a smaller --batch" in capsys.readouterr().err
