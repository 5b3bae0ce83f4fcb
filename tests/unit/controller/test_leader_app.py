"""Leader election wired into the controller app: standby /invoke, inferno_leader, release, guarded update."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from controller.app import make_app, observed
from controller.cycle import CycleRunner
from controller.leader import LeaderElector, LeaderGuardedStages, LeaseRecord, LeaseTimings
from controller.loop import CycleLoop
from controller.metrics import ControllerMetrics
from tests.unit.controller.fakes import FakeStages, controller_settings
from tests.unit.controller.test_leader import FakeLeases

T = LeaseTimings()


async def _client(stages: FakeStages, leader: LeaderElector) -> TestClient[Any, Any]:
    settings = controller_settings(control_period_s=0)
    metrics = ControllerMetrics()
    runner = CycleRunner(LeaderGuardedStages(stages, leader.is_leader), settings, is_leader=leader.is_leader)
    loop = CycleLoop(observed(runner, metrics, leader), settings.control_period_s)
    client = TestClient(TestServer(make_app(loop, metrics, settings, leader=leader)))
    await client.start_server()
    return client


async def _until(check: Any, tries: int = 500) -> None:
    """Poll ``check`` every 10 ms (the elector's first round runs as the app starts)."""
    for _ in range(tries):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{check} did not hold within {tries * 0.01:g}s")


async def test_standby_invoke_names_the_leader_runs_nothing_and_metrics_say_standby() -> None:
    leases = FakeLeases()
    leases.lease = LeaseRecord("pod-b", 15.0, renew_time_s=1.0, resource_version="3")
    stages = FakeStages()
    leader = LeaderElector(leases, "pod-a", T)
    client = await _client(stages, leader)
    try:
        await _until(lambda: leader.holder == "pod-b")
        resp = await client.get("/invoke")
        assert resp.status == 200
        report = await resp.json()
        assert report["outcome"] == "standby" and report["actions"] == []
        assert any("the leader is pod-b" in n and "pod-a" in n for n in report["notes"]), report["notes"]
        assert report["leader"] == {"identity": "pod-a", "holder": "pod-b", "is_leader": False}
        assert stages.calls == []
        text = await (await client.get("/metrics")).text()
        assert "inferno_leader 0.0" in text and 'inferno_cycles_total{outcome="standby"} 1.0' in text
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()
    assert leases.lease.holder == "pod-b"  # a standby never writes the lease
    assert "replace" not in leases.calls and "create" not in leases.calls


async def test_leader_acts_shows_it_and_releases_the_lease_on_shutdown() -> None:
    leases, stages = FakeLeases(), FakeStages()
    leader = LeaderElector(leases, "pod-a", T)
    client = await _client(stages, leader)
    try:
        await _until(leader.is_leader)
        report = await (await client.get("/invoke")).json()
        assert report["outcome"] == "ok" and report["leader"]["is_leader"] is True
        assert stages.calls == ["collect", "optimize", "update"]
        assert "inferno_leader 1.0" in await (await client.get("/metrics")).text()
    finally:
        await client.close()
    assert leases.lease is not None and leases.lease.holder == ""  # released: the standby takes over now
    assert not leader.is_leader()


async def test_update_is_refused_when_leadership_lapsed_mid_cycle() -> None:
    stages = FakeStages()
    leading = [True]
    guarded = LeaderGuardedStages(stages, lambda: leading[0])
    runner = CycleRunner(guarded, controller_settings(), is_leader=lambda: True)
    stages.delay_s["optimize"] = 0.05
    task = asyncio.ensure_future(runner.run_cycle(1000.0))
    await asyncio.sleep(0.01)
    leading[0] = False  # the renew deadline passes while the optimizer works
    report = await task
    assert report.outcome == "failed" and report.errors[0].stage == "update"
    assert "lost the leader Lease" in report.errors[0].message and report.errors[0].kind == "transient"
    assert stages.calls == ["collect", "optimize"] and stages.kube.patches == []


async def test_guarded_update_passes_through_for_the_leader() -> None:
    stages = FakeStages()
    runner = CycleRunner(LeaderGuardedStages(stages, lambda: True), controller_settings())
    report = await runner.run_cycle(1000.0)
    assert report.outcome == "ok" and stages.calls == ["collect", "optimize", "update"]
