"""manual-backprop: backpropagation by hand, checked against jax.grad and finite differences.

Conventions (Understanding Deep Learning, notebook 7.2): column vectors; ``all_weights[k]`` is Omega_k of
shape (D_out, D_in), ``all_biases[k]`` is beta_k of shape (D_out, 1); ``net_input`` is (D_i, N) with one
column per example; the loss is summed over the batch; no activation after the last layer.
"""

from .fd.fd_limits import default_step
from .fd.finite_diff import numerical_gradients
from .maths.activations import ACTIVATIONS
from .maths.backprop import backward_pass, compute_network_output, manual_gradients
from .maths.losses import compute_loss, d_loss_d_output, least_squares_loss
from .maths.network import random_network, udl_network
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

from .checks.testing import assert_gradients_close  # noqa: E402
from .checks.three_way import three_way_check  # noqa: E402
from .compare.compare import Comparison, TensorComparison, compare_gradients  # noqa: E402
from .compare.report import BackwardReport, ThreeWayReport  # noqa: E402
from .fd.directional import directional_check  # noqa: E402
from .fd.taylor import taylor_check  # noqa: E402
from .grading.backward import check_backward  # noqa: E402
from .grading.diagnose import Diagnosis  # noqa: E402

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

from .maths.derivatives.ggn import manual_ggn_vp  # noqa: E402
from .maths.derivatives.hvp import manual_hvp  # noqa: E402
from .maths.derivatives.input_gradient import manual_input_gradient  # noqa: E402
from .maths.derivatives.jvp import manual_jvp, manual_loss_jvp  # noqa: E402
from .maths.derivatives.per_example import manual_per_example_gradients  # noqa: E402

__all__ += [
    "manual_ggn_vp",
    "manual_hvp",
    "manual_input_gradient",
    "manual_jvp",
    "manual_loss_jvp",
    "manual_per_example_gradients",
]

from .checks.derivative_check import DERIVATIVES, DerivativeReport, check_derivative  # noqa: E402

__all__ += ["DERIVATIVES", "DerivativeReport", "check_derivative"]

from .checks.derivative_check import DerivativeRow  # noqa: E402
from .compare.report import CaseResult  # noqa: E402
from .grading.forward import ForwardCaseResult, ForwardReport, check_forward  # noqa: E402
from .grading.here import NotebookReport, grade_notebook_here  # noqa: E402

__all__ += ["CaseResult", "DerivativeRow", "ForwardCaseResult", "ForwardReport", "NotebookReport",
            "check_forward", "grade_notebook_here"]
from .checks.user_check import assert_gradient_correct, check_gradient, check_loss_and_grad  # noqa: E402
from .checks.user_report import GradientReport  # noqa: E402
from .checks.vjp_check import check_vjp  # noqa: E402

__all__ += ["GradientReport", "assert_gradient_correct", "check_gradient", "check_loss_and_grad", "check_vjp"]

# Grading code one does not trust: the graded code runs in a worker process (see docs/untrusted-code.md).
from .cli.class_grading import grade_file, grade_notebook  # noqa: E402

__all__ += ["grade_file", "grade_notebook"]


def __getattr__(name: str) -> str:
    if name == "__version__":  # read from the installed metadata (pyproject's version) on first access only
        from importlib.metadata import version

        return version("manual-backprop")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
