"""The actuator's aiohttp app: ``POST /update`` and ``GET /healthz``.

``POST /update`` body: :class:`actuator.model.UpdateRequest`; answer:
:class:`actuator.model.UpdateResponse` (one action per server, with reasons). Bad JSON -> 400,
wrong shape -> 422 (one line per problem), Deployments unreadable -> 503 (transient) or 424
(permanent, e.g. RBAC), never a 500 with a trace. The work is shielded from client disconnects so
an update is never left half-done because the caller gave up.
"""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from actuator.model import UpdateRequest
from actuator.service import Actuator
from controller.common.errors import ErrorKind, UpstreamError
from controller.common.web import error_middleware, guarded, json_error, parse_body

ACTUATOR_KEY = web.AppKey("actuator", Actuator)
log = structlog.get_logger()


async def update(request: web.Request) -> web.Response:
    body = await parse_body(request, UpdateRequest)
    actuator = request.app[ACTUATOR_KEY]
    try:
        result = await asyncio.shield(actuator.update(body))
    except UpstreamError as exc:
        log.warning("update_failed", cycle_id=body.cycle_id, error=str(exc))
        status = 503 if exc.kind is ErrorKind.TRANSIENT else 424
        return json_error(status, f"cannot read Deployments: {exc}", [f"kind: {exc.kind.value}"])
    return web.json_response(result.model_dump(mode="json"))


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(actuator: Actuator, token: str | None = None) -> web.Application:
    app = web.Application(client_max_size=actuator.settings.max_body_bytes, middlewares=[error_middleware])
    app[ACTUATOR_KEY] = actuator
    app.router.add_post("/update", guarded(update, token))
    app.router.add_get("/healthz", healthz)
    return app
