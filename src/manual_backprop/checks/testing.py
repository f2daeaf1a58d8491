"""Assertions for your own tests, in the manner of ``numpy.testing``: one line in a pytest test.

    from manual_backprop.checks.testing import assert_gradients_close

    def test_my_backward_pass():
        assert_gradients_close(jax_gradients(W, B, x, y), my_gradients(W, B, x, y))
"""

from __future__ import annotations

from ..compare.compare import compare_gradients

__all__ = ["assert_gradients_close"]


def assert_gradients_close(expected: object, actual: object, *, rtol: float | None = None,
                           atol: float | None = None) -> None:
    """Raise ``AssertionError`` with the comparison table unless two gradients agree; return None if they do.

    ``expected`` is the trusted gradient ``(all_dl_dweights, all_dl_dbiases)`` (e.g. ``jax_gradients``), two
    lists of K+1 arrays shaped like the parameters (Omega_k: (D_out, D_in), beta_k: (D_out, 1));
    ``actual`` the one under test, in the same structure (a wrong shape or a missing tensor fails its row).
    Entries agree when ``|actual - expected| <= atol * scale + rtol * |expected|``, ``scale`` the largest
    entry of ``expected``; ``rtol``/``atol`` default to the table's tolerances for two analytic gradients of
    ``expected``'s dtype (float64: rtol 1e-10). Against finite differences, pass a looser ``rtol`` (1e-5).
    The message is ``str()`` of the ``Comparison`` that ``compare_gradients`` returns: one row per tensor.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    comparison = compare_gradients(expected, actual, rtol=rtol, atol=atol, label="expected vs actual")
    if not comparison.ok:
        failing = ", ".join(row.name for row in comparison.failing)
        raise AssertionError(f"gradients differ in {failing}\n{comparison}")
