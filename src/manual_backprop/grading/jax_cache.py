"""The command line's JAX persistent compilation cache: compiled programs kept on disk between runs."""

from __future__ import annotations

import os
import sys


def use_compilation_cache() -> None:
    """XLA's compiled programs kept on disk between runs (JAX's persistent compilation cache), so that only
    the first run on a machine pays the compilation (about 1 s of a check's 1.5 s). Only for this process,
    only if JAX is not loaded yet and the user has not chosen a cache: JAX reads these variables when it is
    imported, and they are taken back out of the environment at once (user code never sees them). The
    folder is ``$MANUAL_BACKPROP_CACHE_DIR`` (empty: no cache), else ``$XDG_CACHE_HOME/manual-backprop``."""
    if "jax" in sys.modules or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    folder = os.environ.get("MANUAL_BACKPROP_CACHE_DIR")
    if folder is None:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "manual-backprop", "jax")
    if not folder:
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return  # a read-only home: compile every time, as without the cache
    names = {"JAX_COMPILATION_CACHE_DIR": folder, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    try:
        import jax  # noqa: F401 (reads the variables now)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
