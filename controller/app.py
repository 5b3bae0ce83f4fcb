"""The controller's aiohttp app: ``GET /invoke``, ``/healthz``, ``/readyz``, ``/metrics``.

- ``/invoke`` runs a cycle now (or joins the one in flight) and returns its :class:`CycleReport`.
  It needs the bearer token when one is configured, else a localhost caller. Starting a new cycle
  costs a token-bucket token (429 when empty); joining one in flight is free, since it adds no load.
- ``/healthz`` fails when the loop task died or a cycle has run longer than every timeout allows.
- ``/readyz`` fails while starting or stopping. ``/metrics`` is the controller's own registry.
The loop starts with the app and stops (with a grace period) on cleanup.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from controller.common.web import TokenBucket, error_middleware, guarded, json_error
from controller.cycle import CycleRunner
from controller.loop import CycleLoop, LoopStoppedError, RunCycle
from controller.metrics import CONTENT_TYPE_LATEST, ControllerMetrics
from controller.report import CycleReport
from controller.settings import ControllerSettings

LOOP_KEY = web.AppKey("loop", CycleLoop)
METRICS_KEY = web.AppKey("metrics", ControllerMetrics)
SETTINGS_KEY = web.AppKey("settings", ControllerSettings)
BUCKET_KEY = web.AppKey("bucket", TokenBucket)


def observed(runner: CycleRunner, metrics: ControllerMetrics) -> RunCycle:
    """``run_cycle`` that also updates the metrics from its report."""

    async def run(now_s: float) -> CycleReport:
        report = await runner.run_cycle(now_s)
        metrics.observe(report)
        return report

    return run


async def invoke(request: web.Request) -> web.Response:
    loop = request.app[LOOP_KEY]
    settings = request.app[SETTINGS_KEY]
    if not loop.in_flight and not request.app[BUCKET_KEY].try_acquire(time.monotonic()):
        return json_error(
            429, "too many /invoke calls; retry later", [f"limit: {settings.invoke_rate_per_s}/s"]
        )
    try:
        future = loop.request()
        async with asyncio.timeout(settings.invoke_wait_s):
            report = await asyncio.shield(future)
    except LoopStoppedError:
        return json_error(503, "shutting down: no cycle will run")
    except TimeoutError:
        return json_error(504, f"the cycle did not finish within {settings.invoke_wait_s:g}s; see /metrics")
    return web.json_response(report.model_dump(mode="json"))


async def healthz(request: web.Request) -> web.Response:
    loop = request.app[LOOP_KEY]
    if loop.task is None or loop.task.done():
        return json_error(503, "the cycle loop is not running")
    started = loop.cycle_started_at_s
    limit_s = request.app[SETTINGS_KEY].stuck_after_s
    if started is not None and time.time() - started > limit_s:
        return json_error(503, f"a cycle has been running for more than {limit_s:g}s")
    return web.json_response({"status": "ok", "cycles_run": loop.cycles_run})


async def readyz(request: web.Request) -> web.Response:
    if not request.app[LOOP_KEY].running:
        return json_error(503, "not ready: the loop is starting or stopping")
    return web.json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS_KEY].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(
    loop: CycleLoop,
    metrics_: ControllerMetrics,
    settings: ControllerSettings,
    token: str | None = None,
    on_cleanup: Callable[[], object] | None = None,
) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[LOOP_KEY] = loop
    app[METRICS_KEY] = metrics_
    app[SETTINGS_KEY] = settings
    app[BUCKET_KEY] = TokenBucket(settings.invoke_rate_per_s, settings.invoke_burst)
    app.router.add_get("/invoke", guarded(invoke, token))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        loop.start()
        yield
        await loop.stop(settings.shutdown_grace_s)
        if on_cleanup is not None:
            result = on_cleanup()
            if asyncio.iscoroutine(result):
                await result

    app.cleanup_ctx.append(lifecycle)
    return app
