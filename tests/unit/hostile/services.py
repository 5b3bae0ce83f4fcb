"""The four real aiohttp apps over hand-written fakes, served on loopback, driven synchronously.

Hypothesis runs each example as a plain function call, so every service lives in a
:class:`LiveApp` that owns an event loop and an aiohttp test server for a whole module (starting a
server per example would dominate the run). ``LiveApp.call`` sends one raw request and returns the
status, headers and text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict, CIMultiDictProxy

from actuator.app import Actuator
from actuator.app import make_app as actuator_app
from collector.app import CollectorService
from collector.app import make_app as collector_app
from collector.core import Ports
from collector.settings import CollectorSettings
from controller.app import make_app as controller_app
from controller.app import observed
from controller.cycle import CycleRunner
from controller.loop import CycleLoop
from controller.metrics import ControllerMetrics
from optimizer.app import ServiceSettings
from optimizer.app import make_app as optimizer_app
from tests.unit.actuator import fakes as actuator_fakes
from tests.unit.collector import fakes as collector_fakes
from tests.unit.controller.fakes import FakeStages, controller_settings

TOKEN = "hostile-test-token-5f1c"
MAX_BODY_BYTES = 64 * 1024  # small limits, so "huge" bodies stay cheap to send


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    text: str


def build_controller(token: str | None) -> web.Application:
    settings = controller_settings(control_period_s=0, invoke_rate_per_s=0)
    metrics = ControllerMetrics()
    loop = CycleLoop(observed(CycleRunner(FakeStages(), settings), metrics), settings.control_period_s)
    return controller_app(loop, metrics, settings, token)


def build_collector(token: str | None) -> web.Application:
    kube = collector_fakes.FakeKube([collector_fakes.deployment("granite", load__rpm="60")])
    service = CollectorService(CollectorSettings(), Ports(kube=kube, cluster=kube, metrics=None))
    return collector_app(service, token)


def build_optimizer(token: str | None) -> web.Application:
    return optimizer_app(ServiceSettings(solver="greedy", max_body_bytes=MAX_BODY_BYTES), token)


def build_actuator(token: str | None) -> web.Application:
    kube = actuator_fakes.FakeKube(actuator_fakes.deployment())
    settings = actuator_fakes.settings(max_body_bytes=MAX_BODY_BYTES)
    return actuator_app(Actuator(kube, settings), token)


# service -> (builder, method, path of its main endpoint)
SERVICES: dict[str, tuple[Callable[[str | None], web.Application], str, str]] = {
    "controller": (build_controller, "GET", "/invoke"),
    "collector": (build_collector, "GET", "/collect"),
    "optimizer": (build_optimizer, "POST", "/optimize"),
    "actuator": (build_actuator, "POST", "/update"),
}


class LiveApp:
    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.client: TestClient[Any, Any] = TestClient(TestServer(app, loop=self.loop), loop=self.loop)
        self.loop.run_until_complete(self.client.start_server())

    def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        async def go() -> Answer:
            async with self.client.request(method, path, **kwargs) as resp:
                return Answer(resp.status, resp.headers, await resp.text())

        return self.loop.run_until_complete(asyncio.wait_for(go(), 30))

    def raw(self, request: bytes) -> Answer:
        """Send ``request`` bytes as they are (headers a client library would refuse) over TCP."""

        async def go() -> Answer:
            reader, writer = await asyncio.open_connection(self.client.host, self.client.port)
            try:
                writer.write(request)
                await writer.drain()
                data = await reader.read(-1)  # the request says Connection: close
            finally:
                writer.close()
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines[1:]:
                key, _, value = line.partition(":")
                headers.add(key.strip(), value.strip())
            return Answer(
                int(lines[0].split()[1]), CIMultiDictProxy(headers), body.decode("utf-8", "replace")
            )

        return self.loop.run_until_complete(asyncio.wait_for(go(), 30))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()
