"""The notebook's globals that describe a network (K, D, D_i, D_o): which a function reads, set per call.

The published notebook's ``backward_pass`` reads the module-level ``K`` (the depth); a function graded on
networks of other depths gets each network's values for the call and its module's own back after it.
"""

from __future__ import annotations

import contextlib
import dis
import types

NETWORK_GLOBALS = ("K", "D", "D_i", "D_o")


def network_globals(all_weights) -> dict[str, int]:
    """The notebook's names for a network's sizes: ``K`` (hidden layers), ``D_i``, ``D_o``, and ``D`` when
    every hidden layer has the same width (the notebook's networks do; some of the battery's do not)."""
    values = {"K": len(all_weights) - 1, "D_i": int(all_weights[0].shape[1]),
              "D_o": int(all_weights[-1].shape[0])}
    widths = {int(w.shape[0]) for w in all_weights[:-1]}
    if len(widths) == 1:
        values["D"] = widths.pop()
    return values


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def globals_read(function) -> set[str]:
    """The global names ``function`` reads (``LOAD_GLOBAL`` / ``LOAD_NAME`` in its code and nested code),
    following the functions of the same module that it calls by name (a helper reading ``K`` counts)."""
    names: set[str] = set()
    seen: set[int] = set()
    pending = [function]
    while pending:
        func = pending.pop()
        code = getattr(func, "__code__", None)
        if not isinstance(code, types.CodeType) or id(code) in seen:
            continue
        seen.add(id(code))
        module_globals = getattr(func, "__globals__", {})
        for nested in _code_objects(code):
            for instruction in dis.get_instructions(nested):
                if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(instruction.argval, str):
                    names.add(instruction.argval)
                    helper = module_globals.get(instruction.argval)
                    if isinstance(helper, types.FunctionType) and helper.__globals__ is module_globals:
                        pending.append(helper)
    return names


@contextlib.contextmanager
def globals_set(function, values):
    """Set those of ``values`` that ``function`` reads as globals; put the old ones (or none) back after."""
    module_globals = getattr(function, "__globals__", None)
    if not values or not isinstance(module_globals, dict):
        yield ()
        return
    read = globals_read(function)
    chosen = tuple(name for name in values if name in read)
    missing = object()
    saved = {name: module_globals.get(name, missing) for name in chosen}
    try:
        for name in chosen:
            module_globals[name] = values[name]
        yield chosen
    finally:
        for name, old in saved.items():
            if old is missing:
                module_globals.pop(name, None)
            else:
                module_globals[name] = old


def globals_note(function_name: str, names) -> str | None:
    """The report's one line when network globals were set, e.g. "backward_pass reads the global K; it was
    set to each network's depth. K = len(all_weights) - 1 inside the function makes it self-contained."."""
    names = [n for n in NETWORK_GLOBALS if n in set(names)]
    if not names:
        return None
    what = {"K": "depth", "D": "hidden width", "D_i": "input size", "D_o": "output size"}
    fix = {"K": "K = len(all_weights) - 1", "D": "D = all_weights[0].shape[0]",
           "D_i": "D_i = all_weights[0].shape[1]", "D_o": "D_o = all_weights[-1].shape[0]"}

    def listed(words):
        return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]

    several = len(names) > 1
    sizes = listed([what[n] for n in names])
    return (f"{function_name} reads the global{'s' if several else ''} {listed(names)}; "
            f"{'they were' if several else 'it was'} set to each network's {sizes}. "
            f"{listed([fix[n] for n in names])} inside the function makes it self-contained.")
