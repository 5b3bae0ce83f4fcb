"""``python -m load_emulator``: see :mod:`load_emulator.cli`."""

from __future__ import annotations

import sys

from load_emulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
