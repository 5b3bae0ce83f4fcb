"""The cycle over real HTTP on localhost: fake collector and optimizer apps, the real actuator app
(with a fake API server), and ``HttpStages``. Checks the JSON round trips between the services."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from actuator.app import Actuator, make_app
from contract.update import Outcome
from controller.cycle import CycleRunner, HttpStages
from tests.unit.actuator.fakes import FakeKube, decision, deployment, settings, solution
from tests.unit.controller.fakes import collect_result, controller_settings


async def _serve(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_cycle_over_http_moves_a_server_to_amd() -> None:
    collect = collect_result()
    sol = solution(decision(replicas=2, accelerator="MI300X", batch=32))
    seen: list[Any] = []

    async def handle_collect(_request: web.Request) -> web.Response:
        return web.json_response(text=collect.model_dump_json(by_alias=True))

    async def handle_optimize(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.json_response(text=sol.model_dump_json())

    collector_app = web.Application()
    collector_app.router.add_get("/collect", handle_collect)
    optimizer_app = web.Application()
    optimizer_app.router.add_post("/optimize", handle_optimize)
    kube = FakeKube(deployment())
    servers = [
        await _serve(collector_app),
        await _serve(optimizer_app),
        await _serve(make_app(Actuator(kube, settings()), token="tok")),
    ]
    try:
        ports = {
            f"{name}_port": s.port
            for name, s in zip(("collector", "optimizer", "actuator"), servers, strict=True)
        }
        cfg = controller_settings(**ports)
        stages = HttpStages(cfg, token="tok")
        report = await CycleRunner(stages, cfg).run_cycle(0.0)
        await stages.close()
    finally:
        for server in servers:
            await server.close()
    assert report.outcome == "ok", report.errors
    assert seen == [collect.system.model_dump(mode="json")]  # inferno JSON, by alias
    (action,) = report.actions
    assert action.outcome is Outcome.APPLIED
    pod = kube.objects[("team-a", "llama")]["spec"]["template"]["spec"]
    # placement crossed two JSON hops with its defaults filled in; AMD still gets the AMD key
    assert pod["nodeSelector"] == {"amd.com/gpu.product": "AMD-Instinct-MI300X"}
    assert pod["containers"][0]["resources"]["limits"] == {"amd.com/gpu": "1"}
    assert "--max-num-seqs" in pod["containers"][0]["args"]


async def test_unreachable_collector_is_a_transient_collect_failure() -> None:
    cfg = controller_settings(collector_port=9, collect_timeout_s=2.0)
    stages = HttpStages(cfg)
    try:
        report = await CycleRunner(stages, cfg).run_cycle(0.0)
    finally:
        await stages.close()
    assert [(e.stage, e.kind) for e in report.errors] == [("collect", "transient")]


async def test_the_collector_is_told_when_calibration_is_off() -> None:
    collect = collect_result()
    asked: list[str | None] = []

    async def handle_collect(request: web.Request) -> web.Response:
        asked.append(request.query.get("calibration"))
        return web.json_response(text=collect.model_dump_json(by_alias=True))

    collector_app = web.Application()
    collector_app.router.add_get("/collect", handle_collect)
    server = await _serve(collector_app)
    try:
        for mode in ("off", "observe", "apply"):
            stages = HttpStages(controller_settings(collector_port=server.port, calibration=mode))
            await stages.collect()
            await stages.close()
    finally:
        await server.close()
    assert asked == ["off", None, None]
