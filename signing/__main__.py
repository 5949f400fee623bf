"""``python -m signing``: the command line (:mod:`signing.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
