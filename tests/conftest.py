"""Repository-wide test fixtures: paths to the shipped samples and the inferno reference data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE_DATA = REPO.parent / "shared" / "reference-data" / "inferno-sample-data"
REFERENCE_SETS = sorted(p for p in REFERENCE_DATA.glob("v*/*") if p.is_dir())
SAMPLES = REPO / "samples"


@pytest.fixture
def samples_dir() -> Path:
    return SAMPLES
