"""The command line: ``manual-backprop check`` and ``grade``, parsing, printing, exit codes.

Imports: every subpackage below it.
"""

from .command import main

__all__ = ["main"]
