"""``python -m manual_backprop``: the command line (see ``manual_backprop.cli``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
