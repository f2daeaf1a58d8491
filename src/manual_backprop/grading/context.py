"""What the graded code's own namespace says: its loss convention, its list layout, its kink convention.

A function defined in a notebook or script carries that namespace (``function.__globals__``); ``--notebook``
runs the notebook into one. From it the grader reads, by calling the user's functions (through
``call_user``), never by guessing from source text:

- the least-squares convention (``conventions.find_loss_convention``: its ``least_squares_loss`` /
  ``d_loss_d_output``);
- the list layout its ``compute_network_output`` makes: ``all_h`` of K+1 entries with the output in
  ``all_f[K]`` (the published notebook's), or K+2 with the output last; a published-style ``backward_pass``
  is then handed exactly those lists;
- the value its ``indicator_function`` gives at 0: ReLU'(0) = 1 (``x >= 0``, the notebook's template before
  late 2024) or 0 (``x > 0``, after); both are valid subgradients, and the report names the one in use;
- whether it is a notebook (Jupyter's or Colab's namespace, or one ``--notebook`` ran): then the notebook's
  task decides the verdict (see ``battery.make_notebook_battery``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..maths.network import udl_network
from ..user_globals import network_globals
from ..usercode import call_user
from .conventions import find_loss_convention

_PROBE_TIMEOUT = 10.0  # seconds: one call on the notebook's own network
LIST_LAYOUTS = {
    "K+1": "all_h of K+1 entries, the output in all_f[K] (the published notebook's)",
    "K+2": "all_h of K+2 entries, the output last",
}
INDICATOR_NAMES = ("indicator_function", "indicator", "relu_derivative", "d_relu", "ReLU_derivative")


@dataclass(frozen=True)
class Indicator:
    """The user's ReLU-derivative helper, evaluated at -1, 0 and 1: its ``name`` and its value at 0."""

    name: str
    at_zero: float

    def describe(self) -> str:
        era = {1: " (x >= 0, as the notebook's template before late 2024)",
               0: " (x > 0, as the notebook's template since late 2024 and jax.nn)"}.get(self.at_zero, "")
        return f"your {self.name} gives {self.at_zero:g} at 0{era}"


@dataclass(frozen=True)
class Context:
    """What was found (each None when not): ``loss`` with its header line ``loss_source`` and ``loss_note``;
    ``lists`` ("K+1" or "K+2") with ``lists_source``; the ``indicator``; ``notebook``: the namespace is a
    notebook's."""

    loss: str | None = None
    loss_source: str | None = None
    loss_note: str | None = None
    lists: str | None = None
    lists_source: str | None = None
    indicator: Indicator | None = None
    notebook: bool = False

    def header(self) -> tuple[str, ...]:
        """The report's lines saying what was found and from where."""
        lines = []
        if self.loss_source:
            lines.append(self.loss_source)
        if self.lists_source:
            lines.append(self.lists_source)
        if self.indicator is not None:
            lines.append(f"kink: {self.indicator.describe()}")
        return tuple(lines)


def is_notebook(namespace: dict) -> bool:
    """A Jupyter/Colab user namespace, or one that ``--notebook`` ran (its ``__file__`` is the .ipynb)."""
    return bool("get_ipython" in namespace or "_ih" in namespace
                or str(namespace.get("__file__", "")).endswith(".ipynb"))


def _callable(namespace: dict, name: str):
    value = namespace.get(name)
    return value if callable(value) else None


def _read_layout(value, n_layers: int) -> str | None:
    """"K+1" or "K+2" from what a forward pass returned, else None (runs inside ``call_user``)."""
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        return None
    all_f, all_h = value[1], value[2]
    if not isinstance(all_h, (list, tuple)) or not isinstance(all_f, (list, tuple)) or len(all_f) != n_layers:
        return None
    return {n_layers: "K+1", n_layers + 1: "K+2"}.get(len(all_h))


def list_layout(forward) -> str | None:
    """The list layout ``forward(net_input, all_weights, all_biases)`` makes on the notebook's network."""
    weights, biases = udl_network()
    call = call_user(forward, (np.full((1, 1), 1.2), list(weights), list(biases)), timeout=_PROBE_TIMEOUT,
                     globals_to_set=network_globals(weights))
    if not call.ok:
        return None
    reading = call_user(_read_layout, (call.value, len(weights)), timeout=_PROBE_TIMEOUT)
    return reading.value if reading.ok else None


def _read_at_zero(value) -> float | None:
    """The value at 0 of a helper evaluated on [[-1], [0], [1]], when it acts as a ReLU derivative."""
    values = np.asarray(value, dtype=np.float64).ravel()
    if values.shape != (3,) or values[0] != 0 or values[2] != 1:
        return None
    return float(values[1])


def find_indicator(namespace: dict) -> Indicator | None:
    """The namespace's ReLU-derivative helper (``indicator_function`` and the like), evaluated at 0."""
    for name in INDICATOR_NAMES:
        helper = _callable(namespace, name)
        if helper is None:
            continue
        call = call_user(helper, (np.array([[-1.0], [0.0], [1.0]]),), timeout=_PROBE_TIMEOUT)
        if not call.ok:
            continue
        reading = call_user(_read_at_zero, (call.value,), timeout=_PROBE_TIMEOUT)
        if reading.ok and reading.value is not None:
            return Indicator(name, reading.value)
    return None


def read_context(namespace, *, loss: bool = True, lists: bool = True) -> Context:
    """What ``namespace`` (a dict of globals, or None) says; ``loss``/``lists``: whether to look for each."""
    if not isinstance(namespace, dict):
        return Context()
    found: dict = {"notebook": is_notebook(namespace), "indicator": find_indicator(namespace)}
    if loss and any(_callable(namespace, n) for n in ("least_squares_loss", "d_loss_d_output")):
        convention = find_loss_convention(namespace)
        found.update(loss=convention.loss, loss_source=convention.header(), loss_note=convention.note)
    forward = _callable(namespace, "compute_network_output") if lists else None
    if forward is not None:
        layout = list_layout(forward)
        if layout is not None:
            found.update(lists=layout, lists_source=f"lists: {LIST_LAYOUTS[layout]}, as your "
                         "compute_network_output makes them")  # fmt: skip
    return Context(**found)
