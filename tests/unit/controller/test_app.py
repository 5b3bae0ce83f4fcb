"""The controller's HTTP surface: /invoke returns the report, joins, rate limits; probes; /metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from controller.app import make_app, observed
from controller.cycle import CycleRunner
from controller.loop import CycleLoop
from controller.metrics import ControllerMetrics
from tests.unit.actuator.fakes import decision, solution
from tests.unit.controller.fakes import FakeStages, controller_settings


async def _client(stages: FakeStages, token: str | None = None, **opts: Any) -> TestClient[Any, Any]:
    settings = controller_settings(control_period_s=0, **opts)
    metrics = ControllerMetrics()
    loop = CycleLoop(observed(CycleRunner(stages, settings), metrics), settings.control_period_s)
    client = TestClient(TestServer(make_app(loop, metrics, settings, token)))
    await client.start_server()
    return client


async def test_invoke_returns_the_report_and_metrics_follow() -> None:
    sol = solution(decision(replicas=3)).model_copy(update={"cost_by_type": {"A100": 120.0}})
    client = await _client(FakeStages(sol))
    try:
        resp = await client.get("/invoke")
        assert resp.status == 200
        report = await resp.json()
        assert report["outcome"] == "ok"
        assert report["actions"][0]["outcome"] == "applied"
        assert report["decisions"][0]["reasons"] == ["fits the SLO"]
        text = await (await client.get("/metrics")).text()
        for line in (
            'inferno_desired_replicas{deployment="llama",namespace="team-a",server="llama"} 3.0',
            'inferno_current_replicas{deployment="llama",namespace="team-a",server="llama"} 2.0',
            'inferno_cost_per_hour{accelerator_type="A100"} 120.0',
            "inferno_cycle_duration_seconds_count 1.0",
            "inferno_unallocated_servers 0.0",
            'inferno_cycles_total{outcome="ok"} 1.0',
            'inferno_actions_total{outcome="applied"} 1.0',
        ):
            assert line in text, line
        assert "inferno_last_success_timestamp_seconds" in text
    finally:
        await client.close()


async def test_metrics_count_errors_by_stage() -> None:
    stages = FakeStages()
    stages.fail["collect"] = ConnectionError("refused")
    client = await _client(stages)
    try:
        report = await (await client.get("/invoke")).json()
        assert report["outcome"] == "failed"
        text = await (await client.get("/metrics")).text()
        assert 'inferno_errors_total{kind="transient",stage="collect"} 1.0' in text
    finally:
        await client.close()


async def test_concurrent_invokes_share_one_cycle() -> None:
    stages = FakeStages()
    stages.gate = asyncio.Event()
    client = await _client(stages, invoke_burst=1)
    try:
        first = asyncio.ensure_future(client.get("/invoke"))
        for _ in range(500):  # until the first cycle is in its collect stage (at most 5 s)
            if "collect" in stages.calls:
                break
            await asyncio.sleep(0.01)
        rest = [asyncio.ensure_future(client.get("/invoke")) for _ in range(30)]
        await asyncio.sleep(0.5)  # room for 30 loopback requests to reach the handler on a busy machine
        stages.gate.set()
        responses = await asyncio.gather(first, *rest)
        assert [r.status for r in responses] == [200] * 31  # joiners cost no rate-limit token
        ids = {(await r.json())["cycle_id"] for r in responses}
        assert len(ids) == 1 and stages.calls.count("collect") == 1
    finally:
        await client.close()


async def test_invoke_is_rate_limited() -> None:
    client = await _client(FakeStages(), invoke_burst=2, invoke_rate_per_s=0.001)
    try:
        statuses = [(await client.get("/invoke")).status for _ in range(3)]
        assert statuses == [200, 200, 429]
    finally:
        await client.close()


async def test_invoke_needs_the_token_when_set() -> None:
    client = await _client(FakeStages(), token="t0ken")
    try:
        assert (await client.get("/invoke")).status == 401
        ok = await client.get("/invoke", headers={"Authorization": "Bearer t0ken"})
        assert ok.status == 200
        assert (await client.get("/metrics")).status == 200
    finally:
        await client.close()


async def test_probes() -> None:
    client = await _client(FakeStages())
    try:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200
    finally:
        await client.close()
