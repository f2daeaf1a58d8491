"""The derivatives beyond the gradient through the one entry point: three_way_check and the command line."""

import json

import numpy as np
import pytest

from manual_backprop import DERIVATIVES, DerivativeReport, random_network, three_way_check, udl_network
from manual_backprop.cli.command import main

NOTEBOOK = udl_network()
X, Y = np.array([[1.2]]), np.array([[20.0]])


@pytest.mark.parametrize("derivative", DERIVATIVES)
def test_three_way_check_runs_each_derivative(derivative):
    report = three_way_check(*NOTEBOOK, X, Y, derivative=derivative)
    assert isinstance(report, DerivativeReport)
    assert report.derivative == derivative
    assert report.ok, str(report)


def test_the_gradient_stays_the_default():
    assert three_way_check(*NOTEBOOK, X, Y).to_dict() == three_way_check(*NOTEBOOK, X, Y,
                                                                          derivative="gradient").to_dict()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"derivative": "hessian"}, "unknown derivative 'hessian'"),
        ({"derivative": "hvp", "fd": "forward"}, "fd and step apply to the gradient"),
        ({"derivative": "jvp", "step": 1e-6}, "fd and step apply to the gradient"),
        ({"vector": ([np.zeros((6, 1))], [np.zeros((6, 1))])}, "vector is for derivative="),
    ],
)
def test_three_way_check_refuses_what_a_derivative_does_not_use(kwargs, message):
    with pytest.raises(ValueError, match=message):
        three_way_check(*NOTEBOOK, X, Y, **kwargs)


@pytest.mark.parametrize("derivative", DERIVATIVES)
def test_the_command_line_checks_each_derivative(derivative, capsys):
    assert main(["check", "--derivative", derivative, "--depth", "2", "--width", "4", "--batch", "3",
                 "--activation", "tanh", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert document["report"]["derivative"] == derivative


def test_the_command_line_table_ends_with_the_verdict(capsys):
    assert main(["check", "--derivative", "hvp"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("hvp: H v, the loss's Hessian times v")
    assert lines[-1] == "OK: manual, jax and finite differences agree on H v"


@pytest.mark.parametrize("extra", [["--fd", "forward"], ["--step", "1e-6"], ["--verbose"],
                                   ["--backward", "tests/zoo/passes.py:backward_pass"]])
def test_the_command_line_refuses_options_a_derivative_does_not_use(extra, capsys):
    assert main(["check", "--derivative", "jvp", *extra]) == 2
    assert "manual-backprop: error:" in capsys.readouterr().err


def test_a_per_example_check_too_costly_for_its_witness_is_refused_with_the_estimate():
    weights, biases = random_network([300] * 7, rng=0)
    x, y = np.ones((300, 64)), np.zeros((300, 64))
    with pytest.raises(ValueError, match=r"would cost \d\.\de\+1\d multiply-adds \(limit 1e\+11"):
        three_way_check(weights, biases, x, y, derivative="per_example")


@pytest.mark.parametrize("derivative", DERIVATIVES)
def test_an_overflowing_derivative_is_a_value_error_not_inf(derivative):
    import manual_backprop as mb

    weights, biases = udl_network()
    huge = [w * 1e200 for w in weights]
    v = ([np.ones_like(w) for w in weights], [np.ones_like(b) for b in biases])
    call = {"jvp": lambda: mb.manual_jvp(huge, biases, X, *v),
            "hvp": lambda: mb.manual_hvp(huge, biases, X, Y, *v),
            "ggn": lambda: mb.manual_ggn_vp(huge, biases, X, Y, *v),
            "per_example": lambda: mb.manual_per_example_gradients(huge, biases, X, Y),
            "input": lambda: mb.manual_input_gradient(huge, biases, X, Y)}[derivative]
    with np.errstate(all="raise"), pytest.raises(ValueError, match="overflows"):  # and no RuntimeWarning
        call()
