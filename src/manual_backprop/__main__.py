"""``python -m manual_backprop``: the command line (see ``manual_backprop.cli.command``)."""

import os
import sys

# As ``python -P``: the current folder (sys.path[0] under ``-m``) is not where our modules come from, so a
# local oracle.py or numpy.py cannot stand in for ours.
sys.path[:] = [p for p in sys.path if p not in ("", ".", os.getcwd())]

from .cli.command import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
