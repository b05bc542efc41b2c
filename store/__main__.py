"""``python -m store``: the command, in ``commands.store`` (the command layer, above the
stages)."""

import sys

from commands.store import main

if __name__ == "__main__":
    sys.exit(main())
