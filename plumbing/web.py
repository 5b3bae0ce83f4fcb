"""aiohttp server helpers shared by the services: JSON errors, typed bodies, auth guard, rate limit.

- ``json_error(status, message, details)``: ``{"error": message, "details": [...]}``.
- ``await read_json(request)``: the body as JSON, or an HTTP 400 (not JSON, not UTF-8, nested deeper
  than ``MAX_JSON_DEPTH``) / 413 (larger than the app's ``client_max_size``) with a JSON explanation.
- ``await parse_body(request, Model)``: the body as ``Model`` (parsed by pydantic in one pass); 400
  when the body is not a JSON object, 422 with one readable line per problem
  (``solution.decisions[0].status: Input should be ...``) when it does not match the model. Never
  a 500 for bad input.
- ``error_middleware``: every error answer is JSON (aiohttp's own 404/405/413 included) and an
  unexpected exception is a JSON 500 without a trace.
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
import ipaddress
import json
import reprlib
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ModelT = TypeVar("ModelT", bound=BaseModel)
MAX_PROBLEMS = 20
# Deeper JSON is refused before parsing: the stdlib parser recurses once per level and would hit
# the interpreter's recursion limit (a RecursionError, i.e. a 500) near 1,000 levels. Our bodies
# (SystemData, UpdateRequest) nest fewer than 10 levels.
MAX_JSON_DEPTH = 64
_SHORT = reprlib.Repr()  # the offending value in a 422, cut short (a body may be megabytes)
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 3, 60, 60, 5, 5


def json_error(
    status: int, message: str, details: list[str] | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return web.json_response(body, status=status, headers=headers)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


_STRUCTURE = b'[]{}"\\'
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _STRUCTURE)


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """True when brackets outside strings nest deeper than ``limit``.

    A linear scan over the bytes that matter (brackets, quotes, backslashes): a 2 MB SystemData
    body costs a few milliseconds, and a body with fewer than ``limit`` brackets none.
    """
    skeleton = raw.translate(None, _NOT_STRUCTURE)
    if skeleton.count(b"[") + skeleton.count(b"{") <= limit:
        return False
    depth, in_string, escaped = 0, False, False
    for byte in skeleton:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


async def read_json(request: web.Request) -> Any:
    """The request body parsed as JSON (``None`` when empty); raises a JSON HTTP 400 or 413."""
    raw = await request.read()  # 413 (HTTPRequestEntityTooLarge) above the app's client_max_size
    if not raw:
        return None
    if json_depth_exceeds(raw, MAX_JSON_DEPTH):
        raise _bad_request(f"body is not acceptable JSON: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _bad_request(f"body is not valid JSON: {exc}") from None


def validation_problems(exc: ValidationError) -> list[str]:
    """One line per problem: dotted location, message, and the offending value when short."""
    lines = []
    for err in exc.errors()[:MAX_PROBLEMS]:
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        value = _SHORT.repr(err.get("input"))
        shown = f" (got {value})" if len(value) <= 80 and err["type"] != "missing" else ""
        lines.append(f"{loc or '<body>'}: {err['msg']}{shown}")
    return lines


async def parse_body(request: web.Request, model: type[ModelT]) -> ModelT:
    """The request's JSON body as ``model``; raises an HTTP 400/422 with a JSON explanation.

    A body that pydantic's JSON parser validates straight into ``model`` is taken as it is (at
    1,000 servers an UpdateRequest costs half the CPU of ``json.loads`` and ``model_validate``);
    any other body takes the general path below, which names every problem (400 or 422)."""
    raw = await request.read()  # 413 above the app's client_max_size; read once, then cached
    if raw and not json_depth_exceeds(raw, MAX_JSON_DEPTH):
        try:
            return model.model_validate_json(raw)
        except ValidationError:
            pass
    data = await read_json(request)
    if not isinstance(data, dict):
        raise _bad_request("body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        body = {"error": f"body does not match {model.__name__}", "details": validation_problems(exc)}
        raise web.HTTPUnprocessableEntity(text=json.dumps(body), content_type="application/json") from None


def is_loopback(remote: str | None) -> bool:
    """127.0.0.0/8, ::1 or an IPv4-mapped 127.x address (``localhost`` for a bind host).

    Parsed, not prefix-matched: ``::1:5`` starts like ``::1`` but is not loopback.
    """
    if not remote:
        return False
    if remote == "localhost":
        return True
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def guarded(handler: Handler, token: str | None) -> Handler:
    """Wrap ``handler``: bearer token when configured, else loopback callers only."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        if token:
            given = request.headers.get("Authorization", "")
            scheme, _, value = given.partition(" ")
            # surrogateescape: aiohttp decodes header bytes that are not UTF-8 into surrogates
            given_b = value.strip().encode("utf-8", "surrogateescape")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given_b, token.encode()):
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

    def retry_after_s(self) -> float:
        """Seconds until the next token, as of the last ``try_acquire`` (0 when one is there)."""
        if self.rate_per_s <= 0:
            return 0.0
        return max(0.0, (1.0 - self._tokens) / self.rate_per_s)


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


_KEEP_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def _as_json(exc: web.HTTPException) -> web.StreamResponse | None:
    """aiohttp's own plain-text errors (404, 405, 413...) as JSON; None to re-raise as it is."""
    if exc.status < 400 or exc.content_type == "application/json":
        return None
    headers = {k: exc.headers[k] for k in _KEEP_HEADERS if k in exc.headers}
    message = (exc.text or exc.reason or "").strip()
    if message.startswith(f"{exc.status}:"):
        message = message.partition(":")[2].strip()
    return json_error(exc.status, message or exc.reason, headers=headers or None)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer is JSON; an unexpected exception is a JSON 500 without a trace (the log
    keeps the detail)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        converted = _as_json(exc)
        if converted is None:
            raise
        return converted
    except Exception as exc:
        structlog.get_logger().exception("unhandled", path=request.path, error=type(exc).__name__)
        return json_error(500, f"internal error ({type(exc).__name__}); see the service log")
