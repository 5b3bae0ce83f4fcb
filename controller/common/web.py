"""aiohttp server helpers shared by the services: JSON errors, typed bodies, auth guard, rate limit.

- ``json_error(status, message, details)``: ``{"error": message, "details": [...]}``.
- ``await parse_body(request, Model)``: 400 when the body is not a JSON object, 422 with one
  readable line per problem (``solution.decisions[0].status: Input should be ...``) when it does not
  match the model. Never a 500 for bad input.
- ``guarded(handler, token)``: with a token, require ``Authorization: Bearer <token>``
  (constant-time compare); without one, accept only loopback peers (the "bind to localhost" rule
  enforced per request, so probes and /metrics on the same port stay reachable).
- ``TokenBucket``: a rate limit with time as an argument.
- ``serve(app, host, port, stop)``: run until ``stop`` is set (SIGTERM/SIGINT set it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ModelT = TypeVar("ModelT", bound=BaseModel)
LOOPBACK = ("127.", "::1", "::ffff:127.")
MAX_PROBLEMS = 20


def json_error(status: int, message: str, details: list[str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return web.json_response(body, status=status)


def validation_problems(exc: ValidationError) -> list[str]:
    """One line per problem: dotted location, message, and the offending value when short."""
    lines = []
    for err in exc.errors()[:MAX_PROBLEMS]:
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        value = repr(err.get("input"))
        shown = f" (got {value})" if len(value) <= 80 and err["type"] != "missing" else ""
        lines.append(f"{loc or '<body>'}: {err['msg']}{shown}")
    return lines


async def parse_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """The request's JSON body as ``model``; raises an HTTP 400/422 with a JSON explanation."""
    try:
        raw = await request.read()
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"body is not valid JSON: {exc}"}), content_type="application/json"
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        body = {"error": f"body does not match {model.__name__}", "details": validation_problems(exc)}
        raise web.HTTPUnprocessableEntity(text=json.dumps(body), content_type="application/json") from None


def is_loopback(remote: str | None) -> bool:
    return bool(remote) and (remote == "localhost" or str(remote).startswith(LOOPBACK))


def guarded(handler: Handler, token: str | None) -> Handler:
    """Wrap ``handler``: bearer token when configured, else loopback callers only."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        if token:
            given = request.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
                return json_error(401, "missing or wrong bearer token")
        elif not is_loopback(request.remote):
            return json_error(403, "no token configured: only callers on localhost are accepted")
        return await handler(request)

    return wrapper


class TokenBucket:
    """``rate_per_s`` tokens per second up to ``burst``; ``rate_per_s <= 0`` disables the limit."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._last_s: float | None = None

    def try_acquire(self, now_s: float) -> bool:
        if self.rate_per_s <= 0:
            return True
        if self._last_s is not None:
            elapsed_s = max(0.0, now_s - self._last_s)
            self._tokens = min(float(self.burst), self._tokens + elapsed_s * self.rate_per_s)
        self._last_s = now_s
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


async def serve(app: web.Application, host: str, port: int, stop: asyncio.Event | None = None) -> None:
    """Serve ``app`` until ``stop`` is set; SIGTERM and SIGINT set it. Cleans up on the way out."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-main thread / Windows
            loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn an unexpected exception into a JSON 500 without a trace (the log keeps the detail)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        structlog.get_logger().exception("unhandled", path=request.path, error=type(exc).__name__)
        return json_error(500, f"internal error ({type(exc).__name__}); see the service log")
