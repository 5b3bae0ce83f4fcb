"""Load tier: the numbers a load test measured, printed at the end of the run."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

RESULTS: dict[str, dict[str, Any]] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    terminalreporter.section("load results")
    for name, numbers in RESULTS.items():
        terminalreporter.write_line(f"{name}: {json.dumps(numbers, sort_keys=True)}")
    target = os.environ.get("INFERNO_LOAD_REPORT")
    if target:
        Path(target).write_text(json.dumps(RESULTS, indent=2, sort_keys=True))
