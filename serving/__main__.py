"""``python -m serving``: the command, in ``commands.serving`` (the command layer, above the
stages)."""

import sys

from commands.serving import main

if __name__ == "__main__":
    sys.exit(main())
