"""A small JSON-over-HTTP client with a timeout per call and errors classified at the edge.

Used by the controller for its stages; usable by any service. Every failure becomes an
``UpstreamError`` whose ``kind`` is transient (timeout, refused connection, 5xx, 429) or permanent
(other 4xx, a body that is not JSON). The bearer token is sent but never logged or put in errors.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from controller.common.errors import ErrorKind, UpstreamError, classify_status

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

    async def request(self, method: str, path: str, body: Any, timeout_s: float) -> Any:
        url = f"{self.base_url}{path}"
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        session = await self._get_session()
        try:
            async with asyncio.timeout(timeout_s):
                async with session.request(method, url, json=body, headers=headers) as resp:
                    text = await resp.text()
                    status = resp.status
        except TimeoutError:
            raise UpstreamError(ErrorKind.TRANSIENT, f"{method} {url} timed out after {timeout_s}s") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(ErrorKind.TRANSIENT, f"{method} {url} failed: {exc}") from None
        if status >= 400:
            raise UpstreamError(classify_status(status), f"{method} {url}: {text[:MAX_ERROR_TEXT]}", status)
        try:
            return json.loads(text)
        except ValueError:
            raise UpstreamError(
                ErrorKind.PERMANENT, f"{method} {url}: answer is not JSON: {text[:MAX_ERROR_TEXT]!r}", status
            ) from None
