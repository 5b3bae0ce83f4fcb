"""``python -m collector``: serve ``GET /collect`` on INFERNO_COLLECTOR_HOST:PORT (127.0.0.1:3301)."""

from __future__ import annotations

import sys

from collector.app import main

if __name__ == "__main__":
    sys.exit(main())
