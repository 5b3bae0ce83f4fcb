"""The controller's aiohttp app: ``GET /invoke``, ``/healthz``, ``/readyz``, ``/metrics``.

- ``/invoke`` runs a cycle now (or joins the one in flight) and returns its :class:`CycleReport`.
  It needs the bearer token when one is configured, else a localhost caller. Starting a new cycle
  costs a token-bucket token (429 with ``Retry-After``, whole seconds, when empty); joining one in
  flight is free, since it adds no load.
- ``/healthz`` fails when the loop task died or a cycle has run longer than every timeout allows.
- ``/readyz`` fails while starting or stopping. ``/metrics`` is the controller's own registry.
The loop starts with the app and stops (with a grace period) on cleanup.

With a :class:`LeaderElector` (two replicas): the election starts before the loop and, on cleanup,
stops after it and releases the Lease, so the standby takes over at its next retry. A standby's
``/invoke`` answers 200 with ``outcome: standby`` and a note naming the leader; every ``/invoke``
body then carries ``leader: {identity, holder, is_leader}``; ``inferno_leader`` shows the state;
``/healthz`` also fails when the election loop died. Becoming leader starts a cycle at once when
a timer period is set (so failover does not wait a full period).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from contract.cycle import CycleReport
from controller.cycle import CycleRunner
from controller.leader import LeaderElector
from controller.loop import CycleLoop, LoopStoppedError, RunCycle
from controller.metrics import CONTENT_TYPE_LATEST, ControllerMetrics
from controller.settings import ControllerSettings
from plumbing.web import TokenBucket, error_middleware, guarded, json_error

LOOP_KEY = web.AppKey("loop", CycleLoop)
METRICS_KEY = web.AppKey("metrics", ControllerMetrics)
SETTINGS_KEY = web.AppKey("settings", ControllerSettings)
BUCKET_KEY = web.AppKey("bucket", TokenBucket)
LEADER_KEY = web.AppKey("leader", LeaderElector)


def standby_note(leader: LeaderElector) -> str:
    holder = leader.holder or "unknown (no holder yet)"
    return f"standby: the leader is {holder}; this replica ({leader.identity}) runs no cycle"


def observed(
    runner: CycleRunner, metrics: ControllerMetrics, leader: LeaderElector | None = None
) -> RunCycle:
    """``run_cycle`` that also updates the metrics from its report (and names the leader on standby)."""

    async def run(now_s: float) -> CycleReport:
        report = await runner.run_cycle(now_s)
        if report.outcome == "standby" and leader is not None:
            report = report.model_copy(update={"notes": [*report.notes, standby_note(leader)]})
        metrics.observe(report)
        return report

    return run


async def invoke(request: web.Request) -> web.Response:
    loop = request.app[LOOP_KEY]
    settings = request.app[SETTINGS_KEY]
    bucket = request.app[BUCKET_KEY]
    if not loop.in_flight and not bucket.try_acquire(time.monotonic()):
        retry_after_s = max(1, math.ceil(bucket.retry_after_s()))
        return json_error(
            429,
            f"too many /invoke calls; retry in {retry_after_s} s",
            [f"limit: {settings.invoke_rate_per_s}/s, burst {settings.invoke_burst}"],
            headers={"Retry-After": str(retry_after_s)},
        )
    try:
        future = loop.request()
        async with asyncio.timeout(settings.invoke_wait_s):
            report = await asyncio.shield(future)
    except LoopStoppedError:
        return json_error(503, "shutting down: no cycle will run")
    except TimeoutError:
        return json_error(504, f"the cycle did not finish within {settings.invoke_wait_s:g}s; see /metrics")
    text = report.model_dump_json()  # with 1,000 servers ~4x cheaper than json.dumps(model_dump())
    if (leader := request.app.get(LEADER_KEY)) is not None:
        who = {"identity": leader.identity, "holder": leader.holder, "is_leader": leader.is_leader()}
        text = f'{text[:-1]},"leader":{json.dumps(who)}}}'  # the report is a non-empty object
    return web.json_response(text=text)


async def healthz(request: web.Request) -> web.Response:
    loop = request.app[LOOP_KEY]
    if loop.task is None or loop.task.done():
        return json_error(503, "the cycle loop is not running")
    leader = request.app.get(LEADER_KEY)
    if leader is not None and (leader.task is None or leader.task.done()):
        return json_error(503, "the leader election loop is not running")
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


def make_app(
    loop: CycleLoop,
    metrics_: ControllerMetrics,
    settings: ControllerSettings,
    token: str | None = None,
    on_cleanup: Callable[[], object] | None = None,
    *,
    leader: LeaderElector | None = None,
) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[LOOP_KEY] = loop
    app[METRICS_KEY] = metrics_
    app[SETTINGS_KEY] = settings
    app[BUCKET_KEY] = TokenBucket(settings.invoke_rate_per_s, settings.invoke_burst)
    if leader is not None:
        app[LEADER_KEY] = leader
        metrics_.track_leader(leader.is_leader)
        if loop.period_s > 0 and leader.on_started_leading is None:
            leader.on_started_leading = lambda: loop.request() if loop.running else None
    app.router.add_get("/invoke", guarded(invoke, token))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        if leader is not None:
            leader.start()
        loop.start()
        yield
        await loop.stop(settings.shutdown_grace_s)
        if leader is not None:
            await leader.stop(release=True)  # after the last cycle: then the standby may act
        if on_cleanup is not None:
            result = on_cleanup()
            if asyncio.iscoroutine(result):
                await result

    app.cleanup_ctx.append(lifecycle)
    return app
