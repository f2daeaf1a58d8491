"""manual-backprop: backpropagation by hand, checked against jax.grad and finite differences.

Conventions (Understanding Deep Learning, notebook 7.2): column vectors; ``all_weights[k]`` is Omega_k of
shape (D_out, D_in), ``all_biases[k]`` is beta_k of shape (D_out, 1); ``net_input`` is (D_i, N) with one
column per example; the loss is summed over the batch; no activation after the last layer.
"""

from .activations import ACTIVATIONS
from .backprop import backward_pass, compute_network_output, manual_gradients
from .fd_limits import default_step
from .finite_diff import numerical_gradients
from .losses import compute_loss, d_loss_d_output, least_squares_loss
from .network import random_network, udl_network
from .validate import LOSSES

__version__: str  # see __getattr__ below

__all__ = [
    "ACTIVATIONS",
    "__version__",
    "LOSSES",
    "backward_pass",
    "compute_loss",
    "compute_network_output",
    "d_loss_d_output",
    "default_step",
    "least_squares_loss",
    "manual_gradients",
    "numerical_gradients",
    "random_network",
    "udl_network",
]

from .compare import Comparison, TensorComparison, compare_gradients  # noqa: E402
from .diagnose import Diagnosis  # noqa: E402
from .directional import directional_check  # noqa: E402
from .grading import check_backward  # noqa: E402
from .report import BackwardReport, ThreeWayReport  # noqa: E402
from .taylor import taylor_check  # noqa: E402
from .testing import assert_gradients_close  # noqa: E402
from .three_way import three_way_check  # noqa: E402

__all__ += [
    "BackwardReport",
    "Comparison",
    "Diagnosis",
    "TensorComparison",
    "ThreeWayReport",
    "assert_gradients_close",
    "check_backward",
    "compare_gradients",
    "directional_check",
    "taylor_check",
    "three_way_check",
]

from .ggn import manual_ggn_vp  # noqa: E402
from .hvp import manual_hvp  # noqa: E402
from .input_gradient import manual_input_gradient  # noqa: E402
from .jvp import manual_jvp, manual_loss_jvp  # noqa: E402
from .per_example import manual_per_example_gradients  # noqa: E402

__all__ += [
    "manual_ggn_vp",
    "manual_hvp",
    "manual_input_gradient",
    "manual_jvp",
    "manual_loss_jvp",
    "manual_per_example_gradients",
]

from .derivative_check import DERIVATIVES, DerivativeReport, check_derivative  # noqa: E402

__all__ += ["DERIVATIVES", "DerivativeReport", "check_derivative"]

from .derivative_check import DerivativeRow  # noqa: E402
from .forward_grading import ForwardCaseResult, ForwardReport, check_forward  # noqa: E402
from .here import NotebookReport, grade_notebook_here  # noqa: E402
from .report import CaseResult  # noqa: E402

__all__ += ["CaseResult", "DerivativeRow", "ForwardCaseResult", "ForwardReport", "NotebookReport",
            "check_forward", "grade_notebook_here"]
from .user_check import assert_gradient_correct, check_gradient, check_loss_and_grad  # noqa: E402
from .user_report import GradientReport  # noqa: E402
from .vjp_check import check_vjp  # noqa: E402

__all__ += ["GradientReport", "assert_gradient_correct", "check_gradient", "check_loss_and_grad", "check_vjp"]

# Grading code one does not trust: the graded code runs in a worker process (see docs/untrusted-code.md).
from .class_grading import grade_file, grade_notebook  # noqa: E402

__all__ += ["grade_file", "grade_notebook"]


def __getattr__(name: str) -> str:
    if name == "__version__":  # read from the installed metadata (pyproject's version) on first access only
        from importlib.metadata import version

        return version("manual-backprop")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
