"""Hostile answers to the controller (hypothesis): its collector and optimizer answer any status
with any body (garbage bytes, JSON of the wrong shape, NaN tokens, a Solution with one node
mutated). The cycle always produces a report, never raises; when either answer is unusable the
cycle fails at that stage with a message, and the actuator is never called, so nothing is scaled
on bad data. The real ``HttpStages`` (``JsonClient``) talk to a fake upstream on loopback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

from contract.cycle import CycleReport
from controller.cycle import CycleRunner, HttpStages
from tests.unit.actuator.fakes import decision, solution
from tests.unit.controller.fakes import collect_result, controller_settings
from tests.unit.hostile.profile import HOSTILE, count
from tests.unit.hostile.services import LiveApp
from tests.unit.hostile.strategies import JSON, dumps, mutated

GOOD_COLLECT = collect_result().model_dump(mode="json")
GOOD_SOLUTION = solution(decision(replicas=3)).model_dump(mode="json")


@dataclass
class Script:
    collect: tuple[int, bytes] = (200, dumps(GOOD_COLLECT))
    optimize: tuple[int, bytes] = (200, dumps(GOOD_SOLUTION))
    updates: list[Any] = field(default_factory=list)


def upstream(script: Script) -> web.Application:
    async def collect(_request: web.Request) -> web.Response:
        status, body = script.collect
        return web.Response(status=status, body=body, content_type="application/json")

    async def optimize(_request: web.Request) -> web.Response:
        status, body = script.optimize
        return web.Response(status=status, body=body, content_type="application/json")

    async def update(request: web.Request) -> web.Response:
        body = await request.json()
        script.updates.append(body)
        return web.json_response(
            {"cycle_id": body["cycle_id"], "dry_run": False, "actions": [], "counts": {}}
        )

    app = web.Application()
    app.router.add_get("/collect", collect)
    app.router.add_post("/optimize", optimize)
    app.router.add_post("/update", update)
    return app


@dataclass
class Harness:
    live: LiveApp
    script: Script
    runner: CycleRunner
    stages: HttpStages

    def cycle(self) -> CycleReport:
        self.script.updates.clear()
        return self.live.loop.run_until_complete(self.runner.run_cycle(time.time()))


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    script = Script()
    live = LiveApp(upstream(script))
    server = live.client.server
    assert isinstance(server, TestServer)
    port = server.port
    settings = controller_settings(
        collector_port=port, optimizer_port=port, actuator_port=port, optimize_timeout_s=5, update_timeout_s=5
    )
    stages = HttpStages(settings)
    yield Harness(live, script, CycleRunner(stages, settings), stages)
    live.loop.run_until_complete(stages.close())
    live.close()


def test_the_scripted_upstream_runs_a_clean_cycle(harness: Harness) -> None:
    harness.script.collect = (200, dumps(GOOD_COLLECT))
    harness.script.optimize = (200, dumps(GOOD_SOLUTION))
    report = harness.cycle()
    assert report.outcome == "ok", report.errors
    assert len(harness.script.updates) == 1


STATUS = st.sampled_from([200, 200, 200, 201, 204, 400, 404, 409, 422, 429, 500, 502, 503])
BODY = st.binary(max_size=64) | JSON.map(dumps) | st.sampled_from([b"", b"NaN", b"null", b"[]", b"{}"])


def _assert_failed_at(report: CycleReport, stage: str, harness: Harness, what: str) -> None:
    assert report.outcome == "failed", (what, report.outcome)
    assert report.errors and report.errors[0].stage == stage, (what, report.errors)
    assert report.errors[0].message.strip(), what
    assert harness.script.updates == [], f"{what}: the actuator was called"


@HOSTILE
@given(status=STATUS, body=BODY | mutated(GOOD_COLLECT).map(lambda case: dumps(case[1])))
def test_any_collector_answer(harness: Harness, status: int, body: bytes) -> None:
    count("controller: collector answers")
    harness.script.collect = (status, body)
    harness.script.optimize = (200, dumps(GOOD_SOLUTION))
    report = harness.cycle()
    if report.outcome == "failed":
        _assert_failed_at(report, "collect", harness, f"{status} {body[:80]!r}")
    else:  # it was a CollectResult after all
        assert 200 <= status < 300, (status, body[:80])


@HOSTILE
@given(status=STATUS, body=BODY | mutated(GOOD_SOLUTION).map(lambda case: dumps(case[1])))
def test_any_optimizer_answer(harness: Harness, status: int, body: bytes) -> None:
    count("controller: optimizer answers")
    harness.script.collect = (200, dumps(GOOD_COLLECT))
    harness.script.optimize = (status, body)
    report = harness.cycle()
    if report.outcome == "failed":
        _assert_failed_at(report, "optimize", harness, f"{status} {body[:80]!r}")
    else:
        assert 200 <= status < 300, (status, body[:80])
        for action in report.actions:
            assert action.replicas_target is None or action.replicas_target >= 1
