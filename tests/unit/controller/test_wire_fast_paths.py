"""The JSON fast paths between the containers change nothing but CPU.

The services answer with pydantic's ``model_dump_json``, the controller posts the UpdateRequest
that way and reads answers with ``model_validate_json``, the actuator parses its body in one pass
(``parse_body``). One cycle of the cycle benchmark's world through the real apps on 127.0.0.1
(benchmarks/profile_cycle.py) must give the same actions and the same patches as the same cycle
with ``json.dumps`` of ``model_dump`` and ``json.loads`` + ``model_validate`` on every hop. Answers
the fast path rejects take the general path: a wrapped optimizer answer still reads, a non-JSON
one still fails as permanent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from benchmarks.profile_cycle import NOW_S, Steps, build, http_cycles, run_cycle, services
from controller.cycle import HttpStages
from plumbing.client import ErrorKind, UpstreamError
from tests.unit.actuator.fakes import decision, solution
from tests.unit.controller.fakes import controller_settings, system_data

N_SERVERS = 24


def _actions(actions: Any) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json") for a in actions]


async def test_a_cycle_over_http_acts_exactly_as_with_the_general_json_paths() -> None:
    general = services(build(N_SERVERS))
    report = await run_cycle(general, NOW_S, Steps(), "", fast=False)  # json.dumps/loads, model_validate
    fast = await http_cycles(build(N_SERVERS), 1)

    assert general.port.patches, "the first cycle of this world patches"
    assert fast.patches[0] == general.port.patches
    assert _actions(fast.reports[0].actions) == _actions(report.actions)
    assert [d.model_dump() for d in fast.reports[0].decisions] == [d.model_dump() for d in report.decisions]


async def _optimizer_answering(text: str) -> TestServer:
    async def handle(_request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/json")

    app = web.Application()
    app.router.add_post("/optimize", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "wrapped"])
async def test_optimizer_answer_bare_or_wrapped(wrapped: bool) -> None:
    sol = solution(decision(replicas=3))
    body = sol.model_dump(mode="json")
    server = await _optimizer_answering(json.dumps({"solution": body} if wrapped else body))
    stages = HttpStages(controller_settings(optimizer_port=server.port))
    try:
        assert await stages.optimize(system_data()) == sol
    finally:
        await stages.close()
        await server.close()


async def test_optimizer_answer_that_is_not_json_is_still_a_permanent_failure() -> None:
    server = await _optimizer_answering("<html>proxy error</html>")
    stages = HttpStages(controller_settings(optimizer_port=server.port))
    try:
        with pytest.raises(UpstreamError) as caught:
            await stages.optimize(system_data())
    finally:
        await stages.close()
        await server.close()
    assert caught.value.kind is ErrorKind.PERMANENT
    assert "answer is not JSON" in str(caught.value)
    assert caught.value.status == 200
