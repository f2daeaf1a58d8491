"""The derivatives beyond the gradient through the one entry point: three_way_check and the command line."""

import json

import numpy as np
import pytest

from manual_backprop import DERIVATIVES, DerivativeReport, three_way_check, udl_network
from manual_backprop.cli import main

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
