"""Grading from inside a notebook, in a real Jupyter kernel (nbclient + ipykernel): notebook 7.2 (published
style, and each template generation) with the two lines a student appends to its last cell shows the report
as HTML, passes when solved right with no loss given, names the first wrong layer when not, and leaves the
notebook's K as it was.

The notebooks run in turn in one kernel (a kernel start and the JAX import are seconds), each after
``%reset -f``; the tests read their outputs. The kernel is this Python with the package the tests import
first on its path (this checkout, not an installed copy elsewhere).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

import manual_backprop
import template_generations as tg
from display_helpers import NO_MASK
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


NOTEBOOKS = {  # name -> cells; each solved right but "wrong"
    "published style": published_cells(),
    **{f"template {generation}": tg.cells(generation) for generation in tg.GENERATIONS},
    "wrong": published_cells(backward=NO_MASK),
}


@pytest.fixture(scope="module")
def graded(kernel_dir):
    """{notebook: outputs of its three last cells (check_backward, grade_notebook_here, print(K))}: every
    notebook of NOTEBOOKS run in turn in one kernel, its namespace cleared (%reset -f) before each."""
    cells, ends = [], {}
    for name, body in NOTEBOOKS.items():
        cells += [v4.new_code_cell("%reset -f"), *body, *(v4.new_code_cell(s) for s in (CHECK, HERE, SHOW_K))]
        ends[name] = len(cells)
    executed = _run(kernel_dir, cells).cells
    return {name: [_outputs(cell) for cell in executed[end - 3:end]] for name, end in ends.items()}


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_the_cells_display_html_and_leave_k_as_it_was(graded, name):
    check, here, k = graded[name]
    assert check["error"] == "" and here["error"] == ""
    for shown in (check, here):
        assert shown["html"].startswith('<div class="manual-backprop-report"')
        assert "Report(" not in shown["plain"]  # the text table, never the dataclass dump
    assert k["stream"].strip() == "K = 5"


@pytest.mark.parametrize("name", [name for name in NOTEBOOKS if name != "wrong"])
def test_a_notebook_solved_right_passes_with_no_loss_given(graded, name):
    check, here, _ = graded[name]
    assert "OK: backward_pass agrees with jax.grad on the notebook&#x27;s task" in check["html"]
    assert "OK: compute_network_output and backward_pass pass" in here["html"]
    assert check["plain"].startswith("backward_pass: 8/8 cases of the notebook's task pass")
    assert "OK: backward_pass agrees with jax.grad on the notebook's task" in check["plain"]


def test_a_wrong_backward_pass_fails_and_its_html_names_the_first_wrong_layer(graded):
    wrong, here, _ = graded["wrong"]
    assert "FAIL: 8 of 8 cases fail" in wrong["html"]
    assert "first wrong layer: 4" in wrong["html"]  # the notebook's network: the mask of f_4 is missing
    assert "activation mask missing" in wrong["html"]
    assert "FAIL: backward_pass fails; compute_network_output passes" in here["html"]
