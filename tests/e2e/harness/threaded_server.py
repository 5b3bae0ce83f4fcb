"""A tiny aiohttp server on 127.0.0.1 in a background thread, for the e2e fault injectors.

Role: the base of `faults.GarbagePrometheus` and `scrape_proxy.ScrapeProxy`, which stand between a
component and a real upstream and spoil or drop its answers. A subclass adds its routes in
`_routes` and may use `self._session` (an aiohttp client, 5 s timeout) to reach its upstream.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self

import aiohttp
from aiohttp import web

from ..cluster.procs import LOOPBACK, free_port


class ThreadedServer:
    def __init__(self, name: str) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        app = web.Application()
        self._routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, self.port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def start(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
