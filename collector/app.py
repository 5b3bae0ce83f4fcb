"""The collector's HTTP service (aiohttp): ``GET /collect`` and ``GET /healthz``.

Thin on purpose: it reads the clock, keeps the last-known loads between calls, and turns
:func:`collector.core.collect` outcomes into HTTP answers:

- ``200`` with a :class:`CollectResult` (possibly ``degraded``, with ``errors``);
- ``503`` ``{"error": ..., "kind": "source"|"data"|"timeout"|"internal"}`` when no result could be
  built (API server unreachable, broken ConfigMap, deadline passed): the controller skips acting;
- ``401``/``403`` from the guard: with a token file, ``Authorization: Bearer <token>`` is required;
  without one only loopback callers are served. ``/healthz`` is open (liveness only).

Collections run one at a time (a lock), so the last-known store evolves in order; each has the
``collect_timeout_s`` deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from aiohttp import web

from collector.core import CollectError, Ports, collect
from collector.load import KnownLoad
from collector.metrics import Key
from collector.settings import CollectorSettings
from contract.collect import CALIBRATION_PARAM, CollectResult
from plumbing.web import error_middleware, guarded

log = structlog.get_logger("collector")


class CollectorService:
    """Holds what lives between collections: the last-known loads and the last outcome."""

    def __init__(
        self, settings: CollectorSettings, ports: Ports, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings, self.ports, self.clock = settings, ports, clock
        self.last_known: dict[Key, KnownLoad] = {}
        self.last_success_s: float | None = None
        self.last_error: str | None = None
        self._lock = asyncio.Lock()

    async def collect_once(self, *, calibration: bool = True) -> CollectResult:
        async with self._lock:
            now_s = self.clock()
            try:
                assembled = await asyncio.wait_for(
                    collect(now_s, self.ports, self.settings, self.last_known, calibration=calibration),
                    self.settings.collect_timeout_s,
                )
            except Exception as exc:
                self.last_error = str(exc) or type(exc).__name__
                raise
            self.last_known = assembled.last_known
            result = assembled.result.model_copy(update={"collected_at_s": self.clock()})
            self.last_success_s, self.last_error = result.collected_at_s, None
        for warning in assembled.warnings:
            log.warning("collect.warning", detail=warning)
        for error in result.errors:
            log.warning("collect.degraded", detail=error)
        untrusted = sum(not s.trusted for s in result.servers)
        log.info(
            "collect.done",
            servers=len(result.servers),
            untrusted=untrusted,
            skipped=len(result.skipped),
            degraded=result.degraded,
        )
        return result


SERVICE_KEY = web.AppKey("collector_service", CollectorService)


async def handle_collect(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE_KEY]
    wanted = request.query.get(CALIBRATION_PARAM, "on")
    if wanted not in ("on", "off"):
        return web.json_response(
            {"error": f"{CALIBRATION_PARAM}={wanted!r}: expected 'on' or 'off'", "kind": "request"},
            status=400,
        )
    try:
        result = await service.collect_once(calibration=wanted == "on")
    except CollectError as exc:
        log.error("collect.failed", kind=exc.kind, error=str(exc))
        return _unavailable(str(exc), exc.kind)
    except TimeoutError:
        message = f"collection did not finish within {service.settings.collect_timeout_s:g} s"
        log.error("collect.failed", kind="timeout", error=message)
        return _unavailable(message, "timeout")
    except Exception as exc:
        log.exception("collect.failed", kind="internal")
        return _unavailable(f"internal error ({type(exc).__name__}); see the collector log", "internal")
    return web.json_response(text=result.model_dump_json())  # 5x cheaper than json.dumps(model_dump())


def _unavailable(message: str, kind: str) -> web.Response:
    return web.json_response({"error": message, "kind": kind}, status=503)


async def handle_healthz(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE_KEY]
    return web.json_response(
        {"status": "ok", "last_success_s": service.last_success_s, "last_error": service.last_error}
    )


def make_app(service: CollectorService, token: str | None = None) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[SERVICE_KEY] = service
    app.router.add_get("/collect", guarded(handle_collect, token))
    app.router.add_get("/healthz", handle_healthz)
    return app
