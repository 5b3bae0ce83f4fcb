"""The services' garbage-collector settings (plumbing.gc_tuning), applied by run_service."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from plumbing import main as service_main
from plumbing.gc_tuning import YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    _, middle, old = gc.get_threshold()
    gc.unfreeze()

    tune_gc()

    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    assert gc.get_freeze_count() > 1000  # the modules, classes and functions imported so far
    assert gc.isenabled()  # cycles are still collected, only less often


class _Settings(BaseModel):
    log_level: str = "INFO"


@pytest.mark.usefixtures("restore_gc")
def test_run_service_tunes_the_collector_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int, int]] = []
    monkeypatch.setattr(service_main, "configure_logging", lambda *_a, **_k: None)

    async def serve(_settings: _Settings) -> None:
        seen.append(gc.get_threshold())

    assert service_main.run_service("test", _Settings, "INFERNO_TEST_", serve, []) == 0
    assert seen and seen[0][0] == YOUNG_THRESHOLD
