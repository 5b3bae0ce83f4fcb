"""Hostile-input tier: report how many generated cases ran, per test and in total."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.hostile.profile import CASES, EXAMPLES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CASES:
        return
    total = sum(CASES.values())
    terminalreporter.section("hostile input cases")
    for name, n in sorted(CASES.items()):
        terminalreporter.write_line(f"{n:6d}  {name}")
    terminalreporter.write_line(f"{total:6d}  total ({EXAMPLES} examples per property test)")
    target = os.environ.get("INFERNO_HOSTILE_REPORT")
    if target:
        Path(target).write_text(json.dumps({"total": total, "per_test": dict(CASES)}, indent=2))
