"""A scrape endpoint in front of one emulated pod, for faults of that pod alone: 500s, a restart.

Role: `ScrapeProxy` is a tiny aiohttp server on 127.0.0.1 in a background thread; Prometheus
scrapes one pod through it (`Emulator.redirect[pod] = proxy.address`) with the pod's usual path
and labels. Modes: `proxy` passes the emulator's answer through; `http-500` answers 500 (the
endpoint broken while the pod stays Ready). `restart(down_s)` plays a container restart in the
middle of a rate window: 500 for `down_s`, then the pod's counters start again from zero (every
`_total`, `_sum`, `_count` and `_bucket` sample minus its value at the restart), as a new vLLM
process's would, while the load it serves goes on. Callers: tests/e2e/test_faults_partial_scrape.py.
"""

from __future__ import annotations

import re
import time
from typing import Literal

from aiohttp import web

from .threaded_server import ThreadedServer

COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")
_SAMPLE = re.compile(r"^(?P<series>(?P<name>[a-zA-Z_:][\w:]*)(\{.*\})?) (?P<value>\S+)(?P<rest>.*)$")


def is_counter(name: str) -> bool:
    return name.endswith(COUNTER_SUFFIXES)


def counters(text: str) -> dict[str, float]:
    """Counter samples of a text exposition, by series (name and labels)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and not line.startswith("#") and is_counter(m["name"]):
            out[m["series"]] = float(m["value"])
    return out


def minus(text: str, offsets: dict[str, float]) -> str:
    """The exposition with each counter sample lowered by its offset (a counter restarted at 0)."""
    lines = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and not line.startswith("#") and m["series"] in offsets:
            value = max(0.0, float(m["value"]) - offsets[m["series"]])
            lines.append(f"{m['series']} {value!r}{m['rest']}")
        else:
            lines.append(line)
    return "\n".join(lines) + "\n"


class ScrapeProxy(ThreadedServer):
    """One pod's scrape endpoint, forwarding to `upstream_url`; `mode` may change at any time."""

    def __init__(self, upstream_url: str, mode: Literal["proxy", "http-500"] = "proxy") -> None:
        super().__init__("scrape-proxy")
        self.upstream_url = upstream_url
        self.mode = mode
        self.scrapes = 0
        self._offsets: dict[str, float] = {}
        self._last_text = ""  # the pod's last answer, whose counters a restart starts again from
        self._down_until = 0.0

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/{tail:.*}", self._scrape)

    def restart(self, down_s: float) -> None:
        """The pod's process restarts now: 500 for `down_s`, then its counters count from zero
        (from their values in its last answer, at most a scrape interval old)."""

        def begin() -> None:
            self._offsets = counters(self._last_text)
            self._down_until = time.monotonic() + down_s

        self._loop.call_soon_threadsafe(begin)

    async def _scrape(self, request: web.Request) -> web.Response:
        assert self._session is not None
        self.scrapes += 1
        if self.mode == "http-500" or time.monotonic() < self._down_until:
            return web.Response(status=500, text="internal error (injected)")
        async with self._session.get(self.upstream_url + request.path_qs) as upstream:
            text = await upstream.text()
        self._last_text = text
        return web.Response(text=minus(text, self._offsets), content_type="text/plain")
