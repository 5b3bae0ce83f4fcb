"""Real-time driver: paces the engine's virtual clock with the wall clock, for ``serve`` and e2e.

Every ``tick_s`` it advances the engine to "seconds since start"; every ``refresh_period_s`` it
re-reads the cluster (through a :class:`~load_emulator.k8s_cluster.SnapshotView` refreshed in a
worker thread, so no network call blocks the loop) and re-syncs the engine; every
``label_period_s`` it steps the label walker; every ``trim_period_s`` it forgets exact statistics
older than ``retention_s`` so memory stays bounded. The loop ends after ``duration_s`` or when
``stop`` is set, whichever comes first (at most ``duration_s / tick_s`` ticks). A failing refresh
or label write is counted in ``errors`` and the loop goes on.

Clock and sleep are parameters so tests run it on a fake clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from load_emulator.engine import FleetEngine
from load_emulator.k8s_cluster import SnapshotView
from load_emulator.labels import LabelWalker


@dataclass
class RealtimeSettings:
    duration_s: float = 3600.0
    tick_s: float = 0.25
    refresh_period_s: float = 5.0
    label_period_s: float = 30.0
    trim_period_s: float = 600.0
    retention_s: float = 3600.0


@dataclass
class RealtimeReport:
    ticks: int = 0
    refreshes: int = 0
    label_steps: int = 0
    errors: list[str] = field(default_factory=list)


async def run_realtime(
    engine: FleetEngine,
    settings: RealtimeSettings,
    *,
    snapshot: SnapshotView | None = None,
    walker: LabelWalker | None = None,
    stop: asyncio.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> RealtimeReport:
    report = RealtimeReport()
    origin = clock() - engine.now_s
    next_refresh = next_label = next_trim = engine.now_s
    max_ticks = math.ceil(settings.duration_s / settings.tick_s) + 1
    end_s = engine.now_s + settings.duration_s
    for _ in range(max_ticks):
        now_s = min(max(clock() - origin, engine.now_s), end_s)
        engine.advance_to(now_s)
        report.ticks += 1
        if snapshot is not None and now_s >= next_refresh:
            next_refresh = now_s + settings.refresh_period_s
            try:
                await asyncio.to_thread(snapshot.refresh, now_s)
                engine.sync()
                report.refreshes += 1
            except Exception as exc:  # a cluster hiccup must not stop the emulation
                report.errors.append(f"refresh at {now_s:.1f}s: {exc}")
        if walker is not None and now_s >= next_label:
            next_label = now_s + settings.label_period_s
            try:
                await asyncio.to_thread(walker.step, now_s)
                report.label_steps += 1
            except Exception as exc:
                report.errors.append(f"label step at {now_s:.1f}s: {exc}")
        if now_s >= next_trim:
            next_trim = now_s + settings.trim_period_s
            for entry in engine.entries.values():
                entry.sim.stats.trim_before(now_s - settings.retention_s)
        if now_s >= end_s or (stop is not None and stop.is_set()):
            break
        await sleep(settings.tick_s)
    return report
