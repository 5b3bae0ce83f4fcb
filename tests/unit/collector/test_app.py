"""GET /collect and /healthz through aiohttp's test client, over fakes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import CollectorService, make_app
from collector.core import Ports
from collector.promql import QUERIES
from collector.settings import CollectorSettings
from contract.collect import CollectResult
from tests.unit.collector.fakes import NOW_S, NS, FakeKube, FakeMetrics, deployment, healthy_answers, sample

SETTINGS = CollectorSettings(prometheus_url="http://prometheus:9090", collect_timeout_s=0.5)


class Clock:
    def __init__(self) -> None:
        self.now_s = NOW_S

    def __call__(self) -> float:
        return self.now_s


def service(kube: FakeKube | None = None, metrics: FakeMetrics | None = None) -> CollectorService:
    kube = kube or FakeKube([deployment("g")])
    metrics = metrics or FakeMetrics(SETTINGS, healthy_answers([(NS, "g")]))
    return CollectorService(SETTINGS, Ports(kube, kube, metrics), clock=Clock())


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(service()))) as c:
        yield c


async def test_collect_returns_a_collect_result(client: TestClient[Any, Any]) -> None:
    response = await client.get("/collect")
    assert response.status == 200, await response.text()
    result = CollectResult.model_validate(await response.json())
    assert result.collected_at_s == NOW_S and result.servers[0].trusted
    health = await (await client.get("/healthz")).json()
    assert health == {"status": "ok", "last_success_s": NOW_S, "last_error": None}


async def test_last_known_carries_over_between_calls() -> None:
    metrics = FakeMetrics(SETTINGS, healthy_answers([(NS, "g")]))
    svc = service(metrics=metrics)
    async with TestClient(TestServer(make_app(svc))) as c:
        assert (await c.get("/collect")).status == 200
        metrics.down = True
        svc.clock.now_s += 60  # type: ignore[attr-defined]
        result = CollectResult.model_validate(await (await c.get("/collect")).json())
    server = result.servers[0]
    assert result.degraded and server.load_source == "last-known" and not server.trusted
    assert server.arrival_rpm == pytest.approx(120) and "60 s old" in " ".join(server.notes)


async def test_broken_source_is_a_503_with_the_reason() -> None:
    kube = FakeKube([deployment("g")], config_maps={})
    svc = service(kube=kube)
    async with TestClient(TestServer(make_app(svc))) as c:
        response = await c.get("/collect")
        assert response.status == 503
        body = await response.json()
        health = await (await c.get("/healthz")).json()
    assert body == {"error": "ConfigMap inferno/inferno-static-data not found", "kind": "data"}
    assert health["last_error"] == body["error"]


async def test_a_hung_source_times_out() -> None:
    class Hung(FakeKube):
        async def list_managed_deployments(self, namespaces: tuple[str, ...]) -> Any:
            await asyncio.sleep(30)

    async with TestClient(TestServer(make_app(service(kube=Hung())))) as c:
        response = await c.get("/collect")
        assert response.status == 503
        assert (await response.json())["kind"] == "timeout"


async def test_a_bug_is_a_503_without_a_trace() -> None:
    class Buggy(FakeKube):
        async def list_managed_deployments(self, namespaces: tuple[str, ...]) -> Any:
            raise KeyError("secret internals")

    async with TestClient(TestServer(make_app(service(kube=Buggy())))) as c:
        response = await c.get("/collect")
        body = await response.json()
    assert response.status == 503 and body["kind"] == "internal"
    assert "secret internals" not in body["error"] and "Traceback" not in body["error"]


async def test_token_is_required_when_configured(tmp_path: Path) -> None:
    async with TestClient(TestServer(make_app(service(), token="s3cret"))) as c:
        assert (await c.get("/collect")).status == 401
        assert (await c.get("/collect", headers={"Authorization": "Bearer wrong"})).status == 401
        assert (await c.get("/collect", headers={"Authorization": "Bearer s3cret"})).status == 200
        assert (await c.get("/healthz")).status == 200


async def test_calibration_off_leaves_out_the_queries_only_calibration_reads() -> None:
    answers = healthy_answers([(NS, "g")])
    window = {"reporting_pods": 1.0, "window_pods": 1.0, "running_avg": 3.0, "finished_requests": 2.0}
    window |= {"finished_prompt_tokens": 400.0, "finished_output_tokens": 1000.0}
    answers |= {name: [sample(NS, "g", value)] for name, value in window.items()}
    metrics = FakeMetrics(SETTINGS, answers)
    async with TestClient(TestServer(make_app(service(metrics=metrics)))) as c:
        on = CollectResult.model_validate(await (await c.get("/collect")).json())
        sent_on = list(metrics.calls)
        off = CollectResult.model_validate(await (await c.get("/collect?calibration=off")).json())
        sent_off = metrics.calls[len(sent_on) :]
        bad = await c.get("/collect?calibration=maybe")
        assert bad.status == 400 and "expected 'on' or 'off'" in (await bad.json())["error"]
    assert len(sent_on) == len(QUERIES) and len(sent_off) == len(QUERIES) - 15
    assert {q.name for q in QUERIES if q.calibration} == set(sent_on) - set(sent_off)
    assert on.servers[0].measured is not None and off.servers[0].measured is None
    assert off.servers[0].trusted and off.servers[0].arrival_rpm == on.servers[0].arrival_rpm
    assert len(metrics.calls) == len(sent_on) + len(sent_off)  # the bad request sent nothing
