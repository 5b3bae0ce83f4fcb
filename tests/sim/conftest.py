"""Simulation-tier fixtures: the control loop's info logs (one line per stage per cycle) kept out of
the test output; warnings and errors still show."""

from __future__ import annotations

import logging

import pytest
import structlog


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
