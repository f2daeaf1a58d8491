"""manual-backprop check --gradient / --vjp: the same report, exit codes 0/1/2, --json."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from manual_backprop.cli.command import main

MODEL = textwrap.dedent("""
    import numpy as np

    X = np.linspace(-1, 1, 12).reshape(4, 3)
    t = np.array([0.5, -1.0, 2.0, 0.0])

    def loss_fn(params):
        r = X @ params["w"] + params["b"] - t
        return 0.5 * np.mean(r ** 2)

    def grad_fn(params):
        r = (X @ params["w"] + params["b"] - t) / len(t)
        return {"w": X.T @ r, "b": r.sum()}

    def grad_fn_sum(params):
        r = X @ params["w"] + params["b"] - t
        return {"w": X.T @ r, "b": r.sum() / len(t)}

    def noisy_loss_fn(params):
        print("loss called")
        return loss_fn(params)

    def grad_fn_raises(params):
        return {"w": X.T @ params["missing"], "b": 0.0}

    def affine_forward(x, w):
        return x @ w, (x, w)

    def affine_backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout

    def affine_backward_bad(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout * 2
""")


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    params = tmp_path / "params.npz"
    np.savez(params, w=np.array([0.3, -0.2, 0.1]), b=np.array(0.05))
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, np.arange(6.0).reshape(2, 3) / 7, np.ones((3, 2)) / 3)
    return model, params, inputs


def test_a_right_gradient_exits_0_with_the_report(files, capsys):
    model, params, _ = files
    assert main(["check", "--gradient", f"{model}:loss_fn,grad_fn", "--params", str(params)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("check_gradient: ok") and "\nw " in out and "\nb " in out


def test_a_wrong_gradient_exits_1_and_names_the_leaf_in_json(files, capsys):
    model, params, _ = files
    code = main(["check", "--gradient", f"{model}:loss_fn,grad_fn_sum", "--params", str(params), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and document["ok"] is False and document["report"]["failing"] == ["w"]
    assert "N = 4" in document["report"]["diagnoses"][0]["text"]


@pytest.mark.parametrize(("backward", "code"), [("affine_backward", 0), ("affine_backward_bad", 1)])
def test_vjp_from_the_command_line(files, capsys, backward, code):
    model, _, inputs = files
    assert main(["check", "--vjp", f"{model}:affine_forward,{backward}", "--inputs", str(inputs)]) == code
    out = capsys.readouterr().out
    assert out.startswith("check_vjp:") and ("FAIL" in out) == bool(code)


@pytest.mark.parametrize(("arguments", "words"), [
    (["--gradient", "{model}:loss_fn", "--params", "{params}"], "two names"),
    (["--gradient", "{model}:loss_fn,nothing", "--params", "{params}"], "has no 'nothing'"),
    (["--gradient", "{model}:loss_fn,grad_fn"], "needs --params"),
    (["--gradient", "{model}:loss_fn,grad_fn", "--params", "{params}", "--depth", "3"], "--depth"),
    (["--vjp", "{model}:affine_forward,affine_backward", "--inputs", "missing.npz"], "no such file"),
])  # fmt: skip
def test_usage_errors_exit_2_in_one_line(files, capsys, arguments, words):
    model, params, _ = files
    argv = ["check"] + [a.format(model=model, params=params) for a in arguments]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_a_grad_fn_that_raises_exits_1_naming_the_error(files, capsys):
    model, params, _ = files
    assert main(["check", "--gradient", f"{model}:loss_fn,grad_fn_raises", "--params", str(params)]) == 1
    assert "your code raised KeyError" in capsys.readouterr().err


def test_what_the_users_code_prints_does_not_spoil_the_json(files, capfd):
    model, params, _ = files
    argv = ["check", "--gradient", f"{model}:noisy_loss_fn,grad_fn", "--params", str(params), "--json"]
    assert main(argv) == 0
    captured = capfd.readouterr()
    assert json.loads(captured.out)["ok"] is True and "loss called" in captured.err


def test_a_file_that_forges_its_verdict_is_failed_by_the_worker(tmp_path, capfd):
    # The file runs in a worker: a gradient that prints a verdict and exits 0 cannot reach ours.
    (tmp_path / "evil.py").write_text(
        "import os\n"
        "import numpy as np\n"
        "def loss_fn(params):\n"
        "    return float(np.sum(params['w'] ** 2))\n"
        "def grad_fn(params):\n"
        "    print('{\"ok\": true}')\n"
        "    os._exit(0)\n"
    )
    np.savez(tmp_path / "p.npz", w=np.array([1.0, -2.0]))
    argv = ["check", "--gradient", f"{tmp_path / 'evil.py'}:loss_fn,grad_fn", "--params",
            str(tmp_path / "p.npz"), "--json"]
    assert main(argv) == 1
    out = capfd.readouterr().out.strip().splitlines()
    assert len(out) == 1 and json.loads(out[0])["ok"] is False and "os._exit" in json.loads(out[0])["error"]
