"""Time ``manual-backprop check --backward FILE.py:backward_pass`` as a student runs it: a fresh process.

    python benchmarks/bench_grading_startup.py [--repeats 5] [--json]

Against ``python -c "import jax"`` on the same machine, in one run with the two commands alternated
(``--repeats`` of each; medians). Both with bytecode compiled (``PYTHONPYCACHEPREFIX`` in a scratch folder,
after one untimed run of each), as an installed package has it. Two settings of JAX's persistent
compilation cache, which the command line keeps in ``~/.cache/manual-backprop``: *warm* (the student's
second run and every one after it) and *first run* (an empty cache folder each time: the run compiles).
The graded file is a self-contained right solution in the published notebook's style.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SOLUTION = """\
import numpy as np

def backward_pass(all_weights, all_biases, all_f, all_h, y):
    K = len(all_weights) - 1
    all_dl_dweights, all_dl_dbiases = [None] * (K + 1), [None] * (K + 1)
    dl_df = all_f[K] - y
    for layer in range(K, -1, -1):
        all_dl_dbiases[layer] = dl_df
        all_dl_dweights[layer] = dl_df @ all_h[layer].T
        if layer > 0:
            dl_df = (all_f[layer - 1] > 0) * (all_weights[layer].T @ dl_df)
    return all_dl_dweights, all_dl_dbiases
"""


def _seconds(command, env) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def measure(repeats: int) -> dict:
    scratch = Path(tempfile.mkdtemp(prefix="grading-startup-"))
    (scratch / "solution.py").write_text(SOLUTION)
    source = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(scratch / "pycache"),
               PYTHONPATH=os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]))  # fmt: skip
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    jax_command = [sys.executable, "-c", "import jax"]
    check = [sys.executable, "-m", "manual_backprop", "check", "--backward",
             f"{scratch / 'solution.py'}:backward_pass"]  # fmt: skip
    warm_env = dict(env, MANUAL_BACKPROP_CACHE_DIR=str(scratch / "cache"))
    for command, environment in ((jax_command, env), (check, warm_env)):  # bytecode and the disk cache
        _seconds(command, environment)
    times: dict = {"import_jax": [], "check_warm_cache": [], "check_first_run": []}
    for repeat in range(repeats):
        times["import_jax"].append(_seconds(jax_command, env))
        times["check_warm_cache"].append(_seconds(check, warm_env))
        fresh = dict(env, MANUAL_BACKPROP_CACHE_DIR=str(scratch / f"empty-{repeat}"))
        times["check_first_run"].append(_seconds(check, fresh))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "repeats": repeats,
        "seconds": times,
        "median": medians,
        "ratio_warm_cache": medians["check_warm_cache"] / medians["import_jax"],
        "ratio_first_run": medians["check_first_run"] / medians["import_jax"],
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "command": " ".join(check[1:]),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.repeats)
    if args.json:
        print(json.dumps(result))
        return 0
    m = result["median"]
    print(f"python -c 'import jax': {m['import_jax']:.3f} s (median of {args.repeats})")
    print(f"check --backward, warm compilation cache: {m['check_warm_cache']:.3f} s, "
          f"ratio {result['ratio_warm_cache']:.2f}")
    print(f"check --backward, first run (empty cache): {m['check_first_run']:.3f} s, "
          f"ratio {result['ratio_first_run']:.2f}")
    print(f"load average {result['load_average']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
