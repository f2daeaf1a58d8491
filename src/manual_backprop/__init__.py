"""manual-backprop: backpropagation by hand, checked against jax.grad and finite differences.

Conventions (Understanding Deep Learning, notebook 7.2): column vectors; ``all_weights[k]`` is Omega_k of
shape (D_out, D_in), ``all_biases[k]`` is beta_k of shape (D_out, 1); ``net_input`` is (D_i, N) with one
column per example; the loss is summed over the batch; no activation after the last layer.

The public API is flat (``from manual_backprop import check_backward``); each name is imported from its
subpackage on first use, so that ``import manual_backprop`` (and the command line's start, where Ctrl-C
must be answered at once) pays for nothing it does not use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# name -> the module (below this package) that defines it
_EXPORTS = {
    "default_step": "fd.fd_limits",
    "numerical_gradients": "fd.finite_diff",
    "directional_check": "fd.directional",
    "taylor_check": "fd.taylor",
    "ACTIVATIONS": "maths.activations",
    "backward_pass": "maths.backprop",
    "compute_network_output": "maths.backprop",
    "manual_gradients": "maths.backprop",
    "compute_loss": "maths.losses",
    "d_loss_d_output": "maths.losses",
    "least_squares_loss": "maths.losses",
    "random_network": "maths.network",
    "udl_network": "maths.network",
    "manual_ggn_vp": "maths.derivatives.ggn",
    "manual_hvp": "maths.derivatives.hvp",
    "manual_input_gradient": "maths.derivatives.input_gradient",
    "manual_jvp": "maths.derivatives.jvp",
    "manual_loss_jvp": "maths.derivatives.jvp",
    "manual_per_example_gradients": "maths.derivatives.per_example",
    "LOSSES": "validate",
    "Comparison": "compare.compare",
    "TensorComparison": "compare.compare",
    "compare_gradients": "compare.compare",
    "BackwardReport": "compare.report",
    "CaseResult": "compare.report",
    "ThreeWayReport": "compare.report",
    "assert_gradients_close": "checks.testing",
    "three_way_check": "checks.three_way",
    "DERIVATIVES": "checks.derivative_check",
    "DerivativeReport": "checks.derivative_check",
    "DerivativeRow": "checks.derivative_check",
    "check_derivative": "checks.derivative_check",
    "assert_gradient_correct": "checks.user_check",
    "check_gradient": "checks.user_check",
    "check_loss_and_grad": "checks.user_check",
    "GradientReport": "checks.user_report",
    "check_vjp": "checks.vjp_check",
    "check_backward": "grading.backward",
    "Diagnosis": "grading.diagnose",
    "ForwardCaseResult": "grading.forward",
    "ForwardReport": "grading.forward",
    "check_forward": "grading.forward",
    "NotebookReport": "grading.here",
    "grade_notebook_here": "grading.here",
    # Grading code one does not trust: the graded code runs in a worker process (docs/untrusted-code.md).
    "grade_file": "cli.class_grading",
    "grade_notebook": "cli.class_grading",
}

__version__: str  # read from the installed metadata on first access (see __getattr__)
__all__ = [
    "ACTIVATIONS", "BackwardReport", "CaseResult", "Comparison", "DERIVATIVES", "DerivativeReport",
    "DerivativeRow", "Diagnosis", "ForwardCaseResult", "ForwardReport", "GradientReport", "LOSSES",
    "NotebookReport", "TensorComparison", "ThreeWayReport", "__version__", "assert_gradient_correct",
    "assert_gradients_close", "backward_pass", "check_backward", "check_derivative", "check_forward",
    "check_gradient", "check_loss_and_grad", "check_vjp", "compare_gradients", "compute_loss",
    "compute_network_output", "d_loss_d_output", "default_step", "directional_check", "grade_file",
    "grade_notebook", "grade_notebook_here", "least_squares_loss", "manual_ggn_vp", "manual_gradients",
    "manual_hvp", "manual_input_gradient", "manual_jvp", "manual_loss_jvp", "manual_per_example_gradients",
    "numerical_gradients", "random_network", "taylor_check", "three_way_check", "udl_network",
]

if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from .checks.derivative_check import DERIVATIVES, DerivativeReport, DerivativeRow, check_derivative
    from .checks.testing import assert_gradients_close
    from .checks.three_way import three_way_check
    from .checks.user_check import assert_gradient_correct, check_gradient, check_loss_and_grad
    from .checks.user_report import GradientReport
    from .checks.vjp_check import check_vjp
    from .cli.class_grading import grade_file, grade_notebook
    from .compare.compare import Comparison, TensorComparison, compare_gradients
    from .compare.report import BackwardReport, CaseResult, ThreeWayReport
    from .fd.directional import directional_check
    from .fd.fd_limits import default_step
    from .fd.finite_diff import numerical_gradients
    from .fd.taylor import taylor_check
    from .grading.backward import check_backward
    from .grading.diagnose import Diagnosis
    from .grading.forward import ForwardCaseResult, ForwardReport, check_forward
    from .grading.here import NotebookReport, grade_notebook_here
    from .maths.activations import ACTIVATIONS
    from .maths.backprop import backward_pass, compute_network_output, manual_gradients
    from .maths.derivatives.ggn import manual_ggn_vp
    from .maths.derivatives.hvp import manual_hvp
    from .maths.derivatives.input_gradient import manual_input_gradient
    from .maths.derivatives.jvp import manual_jvp, manual_loss_jvp
    from .maths.derivatives.per_example import manual_per_example_gradients
    from .maths.losses import compute_loss, d_loss_d_output, least_squares_loss
    from .maths.network import random_network, udl_network
    from .validate import LOSSES


def __getattr__(name: str):
    if name == "__version__":  # read from the installed metadata (pyproject's version)
        from importlib.metadata import version

        return version("manual-backprop")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
