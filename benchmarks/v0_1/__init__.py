"""manual-backprop 0.1.0's finite differences, frozen for the side-by-side benchmark (bench_small_network.py).

The five modules beside this file are byte-for-byte copies of ``src/manual_backprop/`` at commit
827c8794ef830500a58431aab5b18893db43d117 (the last commit whose ``pyproject.toml`` says ``version =
"0.1.0"``; the next one, 8b3f2e1, opened 0.2.0): ``numerical_gradients`` and everything it imports, no
more. ``tests/test_benchmarks.py`` checks the copies against ``git show`` where the history is there.
Nothing in the library imports this package; this file is the only one that is not a copy.
"""

COMMIT = "827c8794ef830500a58431aab5b18893db43d117"
MODULES = ("activations", "backprop", "finite_diff", "losses", "validate")
