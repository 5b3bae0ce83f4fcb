"""Calling other services: error kinds, classified once at the edge, and a small JSON client.

``ErrorKind``: transient (retried next cycle: timeouts, refused connections, 5xx, 429), permanent
(other 4xx, bad answers) or conflict (409: a concurrent writer; retry next cycle, not a failure).
``classify_status`` / ``classify_exception`` map statuses and exceptions; ``UpstreamError`` carries
the kind.

``JsonClient``: JSON over HTTP with a timeout per call, used by the controller for its stages;
every failure becomes an ``UpstreamError``. The bearer token is sent but never put in errors, not
even when the upstream echoes it back in its error body (it is replaced by ``[redacted]``).
"""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from typing import Any

import aiohttp

from plumbing.logs import REDACTED


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


# Error kinds our own services put in their error bodies ({"error": ..., "kind": ...}) that mean
# "the input is wrong; retrying the same input will not help", whatever the HTTP status says.
PERMANENT_BODY_KINDS = frozenset({"data", "permanent", "validation"})


def classify_error_body(status: int, text: str) -> tuple[ErrorKind, str]:
    """Kind and readable message of an error answer.

    The services answer ``{"error": message, "kind": ...}``; the collector, for one, answers 503
    with ``kind: data`` for a broken ConfigMap, which is permanent (fix the data) although 503
    alone would read as transient. Other bodies fall back to :func:`classify_status` and the raw text.
    """
    kind = classify_status(status)
    try:
        body = json.loads(text)
    except ValueError:
        return kind, text
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return kind, text
    if str(body.get("kind", "")).lower() in PERMANENT_BODY_KINDS and kind is ErrorKind.TRANSIENT:
        kind = ErrorKind.PERMANENT
    return kind, body["error"]


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


MAX_ERROR_TEXT = 300


class JsonClient:
    def __init__(self, base_url: str, token: str | None = None, session: aiohttp.ClientSession | None = None):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._session = session
        self._owns_session = session is None

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()

    async def get_json(self, path: str, timeout_s: float) -> Any:
        return await self.request("GET", path, None, timeout_s)

    async def post_json(self, path: str, body: Any, timeout_s: float) -> Any:
        return await self.request("POST", path, body, timeout_s)

    def _hide_token(self, text: str) -> str:
        return text.replace(self._token, REDACTED) if self._token else text

    async def request(self, method: str, path: str, body: Any, timeout_s: float) -> Any:
        status, text = await self.exchange(method, path, timeout_s, body=body)
        return self.decode(method, path, status, text)

    async def exchange(
        self, method: str, path: str, timeout_s: float, *, body: Any = None, encoded: str | None = None
    ) -> tuple[int, str]:
        """The answer's status (below 400: errors raise) and text. ``encoded``: a body already
        serialised as JSON (a pydantic ``model_dump_json``: at 1,000 servers ~5x cheaper than
        ``json.dumps`` of its ``model_dump``), sent instead of ``body``."""
        url = f"{self.base_url}{path}"
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        session = await self._get_session()
        if encoded is None:
            call = session.request(method, url, json=body, headers=headers)
        else:
            typed = {**headers, "Content-Type": "application/json"}
            call = session.request(method, url, data=encoded.encode(), headers=typed)
        try:
            async with asyncio.timeout(timeout_s):
                async with call as resp:
                    text = await resp.text()
                    status = resp.status
        except TimeoutError:
            raise UpstreamError(ErrorKind.TRANSIENT, f"{method} {url} timed out after {timeout_s}s") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(ErrorKind.TRANSIENT, f"{method} {url} failed: {exc}") from None
        if status >= 400:
            kind, message = classify_error_body(status, self._hide_token(text))
            raise UpstreamError(kind, f"{method} {url}: HTTP {status}: {message[:MAX_ERROR_TEXT]}", status)
        return status, text

    def decode(self, method: str, path: str, status: int, text: str) -> Any:
        """An answer's text as JSON; a permanent ``UpstreamError`` when it is not JSON."""
        try:
            return json.loads(text)
        except ValueError:
            url = f"{self.base_url}{path}"
            raise UpstreamError(
                ErrorKind.PERMANENT,
                f"{method} {url}: answer is not JSON: {self._hide_token(text)[:MAX_ERROR_TEXT]!r}",
                status,
            ) from None
