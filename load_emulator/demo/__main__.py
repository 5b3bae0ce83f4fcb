"""``python -m load_emulator.demo``: see :mod:`load_emulator.demo.cli`."""

import sys

from load_emulator.demo.cli import main

sys.exit(main())
