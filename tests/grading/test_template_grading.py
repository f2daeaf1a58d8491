"""Every template generation of notebook 7.2, solved right, passes ``check --notebook``; wrong ones fail.

The notebooks come from ``template_generations`` (four generations, either ReLU'(0) convention, and the
habits real notebooks have). Graded through the command line's ``main`` in this process, as a teacher's
``manual-backprop check --notebook NB.ipynb --json`` would, and read from its one JSON document.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

import template_generations as tg
from manual_backprop.cli.command import main


def grade(tmp_path, generation, *extra, indicator=None, variant="right"):
    path = tmp_path / f"{generation}-{indicator}-{variant}.ipynb"
    tg.write(path, tg.notebook(generation, indicator=indicator, variant=variant))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["check", "--notebook", str(path), "--json", *extra])
    return code, json.loads(out.getvalue())


@pytest.mark.parametrize("indicator", sorted(tg.INDICATORS))
@pytest.mark.parametrize("generation", list(tg.GENERATIONS))
def test_a_right_solution_of_every_generation_passes_with_either_kink_convention(tmp_path, generation,
                                                                                  indicator):
    code, document = grade(tmp_path, generation, indicator=indicator)
    backward = document["reports"]["backward_pass"]
    assert code == 0 and document["ok"], json.dumps(backward["cases"][:1])
    assert document["reports"]["compute_network_output"]["ok"]
    assert backward["loss"] == "sum_of_squares" and not backward["strict"]
    kink_notes = [note for note in backward["notes"] if "valid subgradients" in note]
    if indicator == "ge0":  # the notebook's x >= 0 mask, named from the notebook's own indicator_function
        assert kink_notes == ["your indicator_function gives 1 at 0 (x >= 0, as the notebook's template "
                              "before late 2024), so ReLU'(0) = 1 where a pre-activation is exactly 0; "
                              "jax.nn takes 0; both are valid subgradients (case 'exact kinks')"]
    else:
        assert kink_notes == []
        assert "kink: your indicator_function gives 0 at 0 (x > 0, as the notebook's template since late " \
               "2024 and jax.nn)" in backward["context"]
    assert any("all_h of K+1 entries" in line for line in backward["context"])


@pytest.mark.parametrize("generation", ["2023-07", "2025-01"])
def test_a_crash_beyond_the_notebooks_task_is_reported_and_counts_only_when_strict(tmp_path, generation):
    code, document = grade(tmp_path, generation, variant="d_i_crash")
    backward = document["reports"]["backward_pass"]
    assert code == 0 and backward["ok"]
    other_sizes = [case for case in backward["cases"] if case["sizes"][0] != case["sizes"][-1]]
    assert other_sizes and all(case["group"] == "beyond" and not case["ok"] for case in other_sizes)
    assert all(case["error_kind"] == "exception" for case in other_sizes)
    assert all("ValueError" in case["error"] and "cell" in case["error"]  # the cause and the line
               for case in other_sizes)
    strict_code, strict = grade(tmp_path, generation, "--strict", variant="d_i_crash")
    assert strict_code == 1 and not strict["reports"]["backward_pass"]["ok"]
    assert strict["reports"]["backward_pass"]["strict"]


@pytest.mark.parametrize("generation", ["2024-03", "2025-01"])
def test_the_notebooks_habits_are_harmless(tmp_path, generation):
    for variant in ("inplace_all_h", "rebinds_globals", "empty_cells", "debug_prints", "extra_kwarg"):
        code, document = grade(tmp_path, generation, variant=variant)
        assert code == 0 and document["ok"], variant
    code, document = grade(tmp_path, generation, variant="inplace_all_h")
    notes = document["reports"]["backward_pass"]["notes"]
    assert any("all_h (the list) was modified: harmless for the gradient here, but the caller's copy changed"
               in note for note in notes), notes


@pytest.mark.parametrize("variant", tg.WRONG_VARIANTS)
@pytest.mark.parametrize("generation", ["2023-07", "2025-01"])
def test_a_wrong_solution_fails_on_the_notebooks_own_task(tmp_path, generation, variant):
    code, document = grade(tmp_path, generation, variant=variant)
    assert code == 1 and not document["ok"]
    backward = document["reports"]["backward_pass"]
    assert not backward["ok"]
    assert any(not case["ok"] for case in backward["cases"] if case["group"] == "task")


def test_a_relu_after_the_last_layer_is_caught_although_the_notebooks_own_output_is_positive(tmp_path):
    code, document = grade(tmp_path, "2025-01", variant="relu_after_last")
    cases = {case["name"]: case for case in document["reports"]["backward_pass"]["cases"]}
    assert cases["notebook"]["ok"]  # output 1.907 > 0: the extra mask changes nothing there
    assert not cases["notebook shapes, negative output"]["ok"]


def test_a_timing_cell_magic_runs_its_body(tmp_path):
    # %%time (or %%capture) on the cell that defines backward_pass: Jupyter runs the body, and so do we
    node = tg.notebook("2025-01")
    cell = next(c for c in node.cells if c.cell_type == "code" and "def backward_pass" in c.source)
    cell.source = "%%time\n" + cell.source
    path = tmp_path / "timed.ipynb"
    tg.write(path, node)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["check", "--notebook", str(path), "--json"])
    document = json.loads(out.getvalue())
    assert code == 0 and document["ok"] and document["reports"]["backward_pass"]["ok"]


def test_a_d_loss_d_output_off_its_own_loss_fails_the_backward_pass_built_on_it(tmp_path):
    node = tg.notebook("2025-01")
    cell = next(c for c in node.cells if c.cell_type == "code" and "def d_loss_d_output" in c.source)
    assert "2*(net_output -y)" in cell.source
    cell.source = cell.source.replace("2*(net_output -y)", "(net_output -y)")  # the factor 2 dropped
    path = tmp_path / "half.ipynb"
    tg.write(path, node)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["check", "--notebook", str(path), "--json"])
    backward = json.loads(out.getvalue())["reports"]["backward_pass"]
    assert code == 1 and not backward["ok"] and backward["loss"] == "sum_of_squares"
    assert "half the gradient of your loss" in backward["diagnosis"]["text"]
