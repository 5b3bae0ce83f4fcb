"""The real-time driver on a fake clock: paced advances, periodic refresh and labels, errors kept."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from load_emulator.cluster import ClusterView, DeploymentState
from load_emulator.k8s_cluster import SnapshotView
from load_emulator.labels import LabelWalker
from load_emulator.patterns import Constant
from load_emulator.realtime import RealtimeSettings, run_realtime
from load_emulator.tokens import TokenSpec
from tests.unit.load_emulator.builders import DEP, decode_only, one_server


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class FlakyView:
    """Delegates to a real view, failing on every other refresh."""

    def __init__(self, inner: ClusterView) -> None:
        self.inner, self.calls = inner, 0

    def deployments(self, now_s: float) -> Sequence[DeploymentState]:
        self.calls += 1
        if self.calls % 2 == 0:
            raise ConnectionError("apiserver went away")
        return self.inner.deployments(now_s)

    def set_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        self.inner.set_labels(namespace, name, labels)


async def test_runs_for_its_duration_on_the_clock() -> None:
    engine, cluster = one_server(decode_only(5, 0.1), Constant(120.0, TokenSpec(0, 20, "geometric")))
    clock = FakeClock()
    snapshot = SnapshotView(FlakyView(cluster))
    walker = LabelWalker(cluster, seed=1)
    settings = RealtimeSettings(duration_s=60.0, tick_s=0.5, refresh_period_s=5.0, label_period_s=20.0)
    report = await run_realtime(
        engine, settings, snapshot=snapshot, walker=walker, clock=clock, sleep=clock.sleep
    )
    assert engine.now_s == 60.0 and report.ticks == 121
    # Refreshes at 0, 5, ..., 60 s; every other one failed and the loop went on.
    assert report.refreshes == 7 and len(report.errors) == 6
    assert report.label_steps == 4  # at 0, 20, 40, 60 s
    assert engine.window(DEP, 0, 60).completed > 80


async def test_stop_event_ends_the_loop() -> None:
    engine, _ = one_server(decode_only(5, 0.1), None)
    clock = FakeClock()
    stop = asyncio.Event()
    stop.set()
    report = await run_realtime(
        engine, RealtimeSettings(duration_s=1e6), stop=stop, clock=clock, sleep=clock.sleep
    )
    assert report.ticks == 1
