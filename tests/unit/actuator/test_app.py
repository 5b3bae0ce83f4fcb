"""The actuator's HTTP surface: /update answers, readable 400/422s, auth, upstream failures."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from actuator.app import Actuator, make_app
from plumbing.client import ErrorKind, UpstreamError
from tests.unit.actuator.fakes import PLACEMENT, FakeKube, decision, deployment, server, settings, solution


def _body(**overrides: Any) -> dict[str, Any]:
    return {
        "cycle_id": "c7",
        "solution": solution(decision(replicas=4)).model_dump(mode="json"),
        "servers": [server().model_dump(mode="json")],
        "placement": [p.model_dump(mode="json", by_alias=True) for p in PLACEMENT],
        **overrides,
    }


async def _client(kube: FakeKube, token: str | None = None) -> TestClient[Any, Any]:
    client = TestClient(TestServer(make_app(Actuator(kube, settings()), token)))
    await client.start_server()
    return client


async def test_update_happy_path_and_healthz() -> None:
    kube = FakeKube(deployment())
    client = await _client(kube)
    try:
        resp = await client.post("/update", json=_body())
        assert resp.status == 200
        data = await resp.json()
        assert data["actions"][0]["outcome"] == "applied"
        assert data["actions"][0]["replicas_target"] == 4
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_bad_bodies_get_readable_4xx() -> None:
    client = await _client(FakeKube(deployment()))
    try:
        resp = await client.post("/update", data=b"{not json")
        assert resp.status == 400 and "not valid JSON" in (await resp.json())["error"]
        resp = await client.post("/update", json=[1, 2])
        assert resp.status == 400
        bad = _body(cycle_id="")
        bad["solution"]["decisions"][0]["status"] = "maybe"
        resp = await client.post("/update", json=bad)
        assert resp.status == 422
        details = (await resp.json())["details"]
        assert any(d.startswith("cycle_id:") for d in details)
        assert any(d.startswith("solution.decisions[0].status:") and "'maybe'" in d for d in details)
    finally:
        await client.close()


async def test_token_required_when_configured() -> None:
    client = await _client(FakeKube(deployment()), token="s3cret")
    try:
        assert (await client.post("/update", json=_body())).status == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.post("/update", json=_body(), headers=wrong)).status == 401
        good = {"Authorization": "Bearer s3cret"}
        assert (await client.post("/update", json=_body(), headers=good)).status == 200
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_unreadable_deployments_are_503_or_424() -> None:
    kube = FakeKube(deployment())
    client = await _client(kube)
    try:
        kube.fail_list = UpstreamError(ErrorKind.TRANSIENT, "apiserver restarting", 503)
        resp = await client.post("/update", json=_body())
        assert resp.status == 503
        kube.fail_list = UpstreamError(ErrorKind.PERMANENT, "forbidden", 403)
        resp = await client.post("/update", json=_body())
        assert resp.status == 424 and "forbidden" in (await resp.json())["error"]
        assert kube.patches == []
    finally:
        await client.close()
