"""A /update read after the caller's deadline (a hung actuator resumed) is not acted on; the
controller's HTTP port stamps each request with its wall-clock deadline (now + update timeout)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from actuator.app import Actuator
from contract.update import Outcome, UpdateRequest
from controller.cycle import HttpStages
from tests.unit.actuator.fakes import PLACEMENT, FakeKube, decision, deployment, server, settings, solution
from tests.unit.controller.fakes import controller_settings

NOW_S = 1_000.0


def _request(deadline_s: float | None) -> UpdateRequest:
    return UpdateRequest(
        cycle_id="c1",
        solution=solution(decision(replicas=4)),
        servers=[server()],
        placement=PLACEMENT,
        deadline_s=deadline_s,
    )


@pytest.mark.parametrize(
    ("deadline_s", "acted"),
    [(None, True), (NOW_S + 0.5, True), (NOW_S - 0.001, False)],
    ids=["none", "in-time", "late"],
)
async def test_a_request_past_its_deadline_changes_nothing(deadline_s: float | None, acted: bool) -> None:
    kube = FakeKube(deployment())
    response = await Actuator(kube, settings(), clock=lambda: NOW_S).update(_request(deadline_s))
    if acted:
        assert [a.outcome for a in response.actions] == [Outcome.APPLIED]
        assert len(kube.patches) == 1
    else:
        assert response.actions == [] and response.counts == {}
        assert kube.patches == [] and kube.events == []


async def test_http_stages_send_the_update_deadline() -> None:
    bodies: list[dict[str, Any]] = []

    async def handle_update(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.json_response({"cycle_id": "c1", "dry_run": False, "actions": [], "counts": {}})

    app = web.Application()
    app.router.add_post("/update", handle_update)
    actuator = TestServer(app, host="127.0.0.1")
    await actuator.start_server()
    cfg = controller_settings(actuator_port=actuator.port, update_timeout_s=7.0)
    stages = HttpStages(cfg)
    try:
        before_s = time.time()
        await stages.update(_request(None))
        after_s = time.time()
    finally:
        await stages.close()
        await actuator.close()
    [body] = bodies
    assert before_s + 7.0 <= body["deadline_s"] <= after_s + 7.0
