"""structlog JSON logging for all services, with secrets redacted before rendering.

``configure_logging("actuator")`` once at start-up; then ``structlog.get_logger()`` anywhere.
Bind per-cycle context with ``structlog.contextvars.bound_contextvars(cycle_id=...)`` so every line
of the cycle carries it. Values under keys that look like credentials, any ``Bearer ...``
string, and every value registered with :func:`register_secret` (``read_secret_file`` registers
what it reads, so a token echoed back in an upstream error body is caught too) are replaced by
``"[redacted]"``: a token never reaches a log line.

The standard library's loggers (aiohttp, the kubernetes client, urllib3) go through the same
redaction and JSON rendering when logging to stdout (``stream`` unset, as in the services).
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_SECRET_KEY = re.compile(r"(token|authorization|password|secret|credential|api_key)", re.IGNORECASE)
_BEARER = re.compile(r"Bearer\s+\S+", re.IGNORECASE)
REDACTED = "[redacted]"
MIN_SECRET_CHARS = 4  # shorter values would redact ordinary words; no real token is this short
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Redact ``value`` wherever it appears in a log line from now on."""
    if value and len(value) >= MIN_SECRET_CHARS:
        _SECRETS.add(value)


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Whether a key looks like a credential's. Keys repeat on every line (the actuator logs one
    line per server per cycle), so the regex runs once per distinct key."""
    return bool(_SECRET_KEY.search(key))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _SECRETS:
            if secret in value:
                value = value.replace(secret, REDACTED)
        # The regex needs "bearer" in some case first; lower() finds exactly the strings where
        # IGNORECASE would (no other code point matches b, e, a or r), for less than the regex.
        if "bearer" not in value.lower():
            return value
        return _BEARER.sub("Bearer " + REDACTED, value)
    if isinstance(value, dict):
        return {k: REDACTED if _secret_key(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hide credential-looking keys and bearer strings."""
    for key in list(event):
        if _secret_key(key) and not key.endswith("_file"):
            event[key] = REDACTED
        else:
            event[key] = _scrub(event[key])
    return event


def configure_logging(service: str, level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines on ``stream`` (stdout), each with ``service``, ``level`` and an ISO timestamp."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.format_exc_info,
            redact_secrets,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    if stream is None:
        _route_stdlib_logging(numeric, timestamper)


def _route_stdlib_logging(level: int, timestamper: structlog.processors.TimeStamper) -> None:
    """Standard-library records as the same redacted JSON lines on stdout (services only: tests
    pass a ``stream`` and keep pytest's own log capture)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,
                structlog.processors.JSONRenderer(sort_keys=True),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(max(level, logging.WARNING))  # one line per probe
