"""Grading from inside a notebook, in a real Jupyter kernel (nbclient + ipykernel): a published-style notebook
with the two lines a student appends to its last cell shows the report as HTML, passes when solved right,
names the first wrong layer when not, and leaves the notebook's K as it was.

Each notebook runs once (a kernel start and the JAX import are seconds); the tests read its outputs. The
kernel is this Python with the package the tests import first on its path (this checkout, not an
installed copy elsewhere).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import manual_backprop
from display_helpers import HALF_LOSS, NO_MASK
from published_style import published_cells

nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (the test extra has it)")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (the test extra has it)")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402 (after the skip: ipykernel brings it)
from jupyter_client.manager import KernelManager  # noqa: E402
from nbformat import v4  # noqa: E402

KERNEL = "manual-backprop-test"
SOURCE = str(Path(manual_backprop.__file__).resolve().parents[1])  # the src/ holding manual_backprop, oracle
CHECK = "from manual_backprop import check_backward\ncheck_backward(backward_pass)"
HERE = "from manual_backprop import grade_notebook_here\ngrade_notebook_here()"
WRONG = NO_MASK + "\n\ncheck_backward(backward_pass)"  # the student breaks it, and checks again
SHOW_K = 'print("K =", K)'


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """A kernelspec running this Python with SOURCE first on its path."""
    folder = tmp_path_factory.mktemp("kernels")
    (folder / KERNEL).mkdir()
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [SOURCE, os.environ.get("PYTHONPATH")])),
           "JAX_PLATFORMS": "cpu", "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "manual-backprop tests", "language": "python", "env": env}
    (folder / KERNEL / "kernel.json").write_text(json.dumps(spec))
    return folder


def _run(kernel_dir, cells):
    """The notebook of ``cells`` executed in a fresh kernel (cells that raise recorded, as after Run all)."""
    notebook = v4.new_notebook(cells=cells)
    specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)])
    manager = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    client = nbclient.NotebookClient(notebook, km=manager, timeout=300, allow_errors=True, kernel_name=KERNEL)
    client.execute()
    return notebook


def _outputs(cell) -> dict:
    """A cell's outputs: {"html": ..., "plain": ..., "stream": ..., "error": ...} (joined, "" where none)."""
    found = {"html": "", "plain": "", "stream": "", "error": ""}
    for output in cell.outputs:
        if output.output_type in ("execute_result", "display_data"):
            found["html"] += output.data.get("text/html", "")
            found["plain"] += output.data.get("text/plain", "")
        elif output.output_type == "stream":
            found["stream"] += output.text
        elif output.output_type == "error":
            found["error"] += f"{output.ename}: {output.evalue}"
    return found


@pytest.fixture(scope="module")
def published(kernel_dir):
    """The published-style notebook (sum-of-squares loss) solved right, checked, broken, checked again."""
    cells = published_cells() + [v4.new_code_cell(s) for s in (CHECK, HERE, SHOW_K, WRONG, HERE, SHOW_K)]
    return [_outputs(cell) for cell in _run(kernel_dir, cells).cells[-6:]]


@pytest.fixture(scope="module")
def half_loss(kernel_dir):
    """The same notebook with the loss 0.5 * sum((out - y)^2) (check_backward's default convention)."""
    cells = published_cells(loss=HALF_LOSS) + [v4.new_code_cell(s) for s in (CHECK, HERE, SHOW_K)]
    return [_outputs(cell) for cell in _run(kernel_dir, cells).cells[-3:]]


def test_the_cells_display_html_and_leave_k_as_it_was(published):
    for check, here, k in (published[:3], published[3:]):
        assert check["error"] == "" and here["error"] == ""
        for shown in (check, here):
            assert shown["html"].startswith('<div class="manual-backprop-report"')
            assert "Report(" not in shown["plain"]  # the text table, never the dataclass dump
        assert k["stream"].strip() == "K = 5"


def test_a_notebook_solved_right_passes_with_no_loss_given(published):
    check, here, _ = published[:3]
    assert "OK: backward_pass agrees with jax.grad on all 11 cases" in check["html"]
    assert "OK: compute_network_output and backward_pass pass" in here["html"]


def test_a_wrong_backward_pass_fails_and_its_html_names_the_first_wrong_layer(published):
    wrong, here, _ = published[3:]
    assert "FAIL: 10 of 11 cases fail" in wrong["html"]
    assert "first wrong layer: 4" in wrong["html"]  # the notebook's network: the mask of f_4 is missing
    assert "activation mask missing" in wrong["html"]
    assert "FAIL: backward_pass fails; compute_network_output passes" in here["html"]


def test_the_half_least_squares_notebook_passes_and_its_plain_text_is_the_table(half_loss):
    check, here, k = half_loss
    assert "OK: backward_pass agrees with jax.grad on all 11 cases" in check["html"]
    assert "OK: compute_network_output and backward_pass pass" in here["html"]
    assert check["plain"].startswith("backward_pass: 11/11 cases pass")
    assert check["plain"].rstrip().endswith("OK: backward_pass agrees with jax.grad on all 11 cases")
    assert k["stream"].strip() == "K = 5"
