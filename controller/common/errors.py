"""Error classification, done once at the edge: transient, permanent or conflict.

Callers retry transient errors on the next cycle, report permanent ones, and treat a conflict
(HTTP 409, a concurrent writer) as "retry next cycle" without counting it as a failure.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum


class ErrorKind(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    CONFLICT = "conflict"


def classify_status(status: int) -> ErrorKind:
    """HTTP status -> kind. 409 conflict; 408, 425, 429 and 5xx transient; other 4xx permanent."""
    if status == 409:
        return ErrorKind.CONFLICT
    if status in (408, 425, 429) or status >= 500:
        return ErrorKind.TRANSIENT
    return ErrorKind.PERMANENT


def classify_exception(exc: BaseException) -> ErrorKind:
    """Timeouts and connection problems are transient; anything else (bad data, bugs) permanent."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | ConnectionError | OSError):
        return ErrorKind.TRANSIENT
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status > 0:
        return classify_status(status)
    return ErrorKind.PERMANENT


class UpstreamError(Exception):
    """A call to another service or the API server failed; ``kind`` says what to do about it."""

    def __init__(self, kind: ErrorKind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.message = message

    def __str__(self) -> str:
        status = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.kind.value}{status}: {self.message}"
