"""``python -m features``: the command, in ``commands.features`` (the command layer, above the
stages)."""

import sys

from commands.features import main

if __name__ == "__main__":
    sys.exit(main())
