"""The production ``Stages``: JSON over localhost HTTP to the collector, optimizer and actuator.

Paths: ``GET /collect`` -> :class:`CollectResult`; ``POST /optimize`` with the collected system
JSON -> :class:`Solution` (a body ``{"solution": {...}}`` is accepted too); ``POST /update`` ->
:class:`UpdateResponse`. Timeouts are applied by the cycle per stage; the client adds its own so
a hung socket cannot outlive the stage. The token (if any) goes to the actuator only.
"""

from __future__ import annotations

from typing import Any

from actuator.model import UpdateRequest, UpdateResponse
from collector.contract import CollectResult
from controller.common.client import JsonClient
from controller.settings import ControllerSettings
from optimizer.solution import Solution


class HttpStages:
    def __init__(self, settings: ControllerSettings, token: str | None = None) -> None:
        self.settings = settings
        self._collector = JsonClient(settings.url("collector"))
        self._optimizer = JsonClient(settings.url("optimizer"))
        self._actuator = JsonClient(settings.url("actuator"), token=token)

    async def collect(self) -> CollectResult:
        data = await self._collector.get_json("/collect", self.settings.collect_timeout_s)
        return CollectResult.model_validate(data)

    async def optimize(self, system: dict[str, Any]) -> Solution:
        data = await self._optimizer.post_json("/optimize", system, self.settings.optimize_timeout_s)
        if isinstance(data, dict) and "solution" in data and "decisions" not in data:
            data = data["solution"]
        return Solution.model_validate(data)

    async def update(self, request: UpdateRequest) -> UpdateResponse:
        body = request.model_dump(mode="json", by_alias=True)
        data = await self._actuator.post_json("/update", body, self.settings.update_timeout_s)
        return UpdateResponse.model_validate(data)

    async def close(self) -> None:
        for client in (self._collector, self._optimizer, self._actuator):
            await client.close()
