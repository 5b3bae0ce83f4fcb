"""The actuator's use case: read Deployments, plan, execute.

``Actuator.update`` is what ``POST /update`` calls. Updates are serialised by a lock (one plan at a
time, so two plans' patches never interleave); the clock is injected. The actuator keeps no state
between updates that a decision depends on: the scale-down window is the controller's
(:mod:`controller.window`), and reaches the actuator as the optimizer's allocation.

``make_app`` serves it: ``POST /update`` (body :class:`UpdateRequest`, answer
:class:`UpdateResponse`): bad JSON -> 400, wrong shape -> 422 (one line per problem), Deployments
unreadable -> 503 (transient) or 424 (permanent, e.g. RBAC), never a 500 with a trace. The work is
shielded from client disconnects so an update is never left half-done because the caller gave up.
``GET /healthz`` for the probes, ``GET /metrics`` for the Events (:mod:`actuator.metrics`).

Events: the answer returns once the patches are applied; the recorder (``events``, built by
``__main__``: an :class:`actuator.events.EventBroadcaster`) posts them afterwards, and the app's
shutdown gives it ``event_flush_timeout_s`` to finish. Without one they are posted inside the cycle.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from actuator.events import EventRecorder, InlineEvents, RepeatFilter
from actuator.executor import KubePort, ObjectPort, execute
from actuator.metrics import CONTENT_TYPE_LATEST, exposition
from actuator.plan import plan_updates
from actuator.settings import ActuatorSettings
from contract.targets import Shape, TargetRef
from contract.update import UpdateRequest, UpdateResponse
from plumbing.client import ErrorKind, UpstreamError
from plumbing.web import error_middleware, guarded, json_error, parse_body

log = structlog.get_logger()


class Actuator:
    def __init__(
        self,
        port: KubePort,
        settings: ActuatorSettings,
        clock: Callable[[], float] = time.time,
        events: EventRecorder | None = None,
    ) -> None:
        self.port = port
        self.settings = settings
        self.events: EventRecorder = events if events is not None else InlineEvents(port.create_event)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._hold_repeats = RepeatFilter(settings.hold_event_repeat_s)  # held servers' Warnings

    async def update(self, request: UpdateRequest) -> UpdateResponse:
        """Plan and apply one solution. Raises ``UpstreamError`` if the Deployments cannot be read."""
        async with self._lock:
            with structlog.contextvars.bound_contextvars(cycle_id=request.cycle_id):
                return await self._update(request)

    async def _update(self, request: UpdateRequest) -> UpdateResponse:
        now_s = self._clock()
        settings = self.settings
        if request.deadline_s is not None and now_s > request.deadline_s:
            # The controller has timed out and reported this cycle failed: acting now would apply
            # a plan nobody waits for, possibly minutes old. The next cycle re-plans.
            late_s = round(now_s - request.deadline_s, 3)
            log.warning("update_expired", late_s=late_s, detail="past the caller's deadline: nothing done")
            dry_run = settings.dry_run or request.dry_run
            return UpdateResponse(cycle_id=request.cycle_id, dry_run=dry_run, actions=[], counts={})
        deployments, problems = await self._read_targets(request)
        actions = plan_updates(
            request.solution,
            request.servers,
            request.placement,
            deployments,
            settings,
            now_s,
            target_problems=problems,
        )
        dry_run = settings.dry_run or request.dry_run
        with self.events.paused():  # Events wait until the patches are done
            actions = await execute(
                actions,
                self.port,
                deployments,
                settings,
                dry_run=dry_run,
                now_s=now_s,
                cycle_id=request.cycle_id,
                events=self.events,
                hold_repeats=self._hold_repeats,
            )
        for action in actions:
            log.info(
                "server_action",
                server=action.server,
                namespace=action.namespace,
                deployment=action.deployment,
                outcome=action.outcome.value,
                replicas_now=action.replicas_now,
                replicas_target=action.replicas_target,
                rolls_pods=action.rolls_pods,
                reasons=action.reasons,
                error=action.error,
            )
        counts = Counter(a.outcome.value for a in actions)
        return UpdateResponse(
            cycle_id=request.cycle_id, dry_run=dry_run, actions=actions, counts=dict(counts)
        )

    async def _read_targets(
        self, request: UpdateRequest
    ) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[TargetRef, str]]:
        """Every server's object, by (namespace, name), one list per kind and namespace; and why a
        kind cannot be used at all (its servers are kept as they are with that reason)."""
        by_kind: dict[TargetRef, set[str]] = {}
        for server in request.servers:
            by_kind.setdefault(server.target, set()).add(server.namespace)
        found: dict[tuple[str, str], dict[str, Any]] = {}
        problems: dict[TargetRef, str] = {}
        for ref, namespaces in sorted(by_kind.items(), key=lambda item: item[0].name):
            if ref.shape is Shape.DEPLOYMENT:
                found |= await self.port.list_deployments(sorted(namespaces))
                continue
            if not isinstance(self.port, ObjectPort):
                problems[ref] = f"this actuator cannot read {ref.name}: only Deployments are supported here"
                continue
            problem = await self.port.target_problem(ref)
            if problem:
                problems[ref] = problem
                continue
            objects = await self.port.list_objects(ref, sorted(namespaces))
            mine = {(s.namespace, s.deployment) for s in request.servers if s.target == ref}
            found |= {key: obj for key, obj in objects.items() if key in mine}
        return found, problems


ACTUATOR_KEY = web.AppKey("actuator", Actuator)


async def update(request: web.Request) -> web.Response:
    body = await parse_body(request, UpdateRequest)
    actuator = request.app[ACTUATOR_KEY]
    try:
        result = await asyncio.shield(actuator.update(body))
    except UpstreamError as exc:
        log.warning("update_failed", cycle_id=body.cycle_id, error=str(exc))
        status = 503 if exc.kind is ErrorKind.TRANSIENT else 424
        return json_error(status, f"cannot read Deployments: {exc}", [f"kind: {exc.kind.value}"])
    return web.json_response(text=result.model_dump_json())  # 4x cheaper than json.dumps(model_dump())


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = exposition(request.app[ACTUATOR_KEY].events)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _flush_events(app: web.Application) -> None:
    """On shutdown (SIGTERM): post the queued Events, bounded by ``event_flush_timeout_s``."""
    actuator = app[ACTUATOR_KEY]
    await actuator.events.close(actuator.settings.event_flush_timeout_s)


def make_app(actuator: Actuator, token: str | None = None) -> web.Application:
    app = web.Application(client_max_size=actuator.settings.max_body_bytes, middlewares=[error_middleware])
    app[ACTUATOR_KEY] = actuator
    app.router.add_post("/update", guarded(update, token))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.on_shutdown.append(_flush_events)
    return app
