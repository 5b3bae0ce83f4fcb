"""Hand-written fake stages for the controller: scripted answers, failures, delays; calls recorded."""

from __future__ import annotations

import asyncio
from typing import Any

from actuator.app import Actuator
from contract.collect import CollectResult
from contract.data.loader import load_system_dir
from contract.data.system import SystemData
from contract.solution import Solution
from contract.update import UpdateRequest, UpdateResponse
from controller.settings import ControllerSettings
from tests.conftest import SAMPLES
from tests.unit.actuator.fakes import PLACEMENT, FakeKube, decision, deployment, server, settings, solution

SMALL = load_system_dir(SAMPLES / "small")


def system_data(*names: str, accelerator: str = "A100", replicas: int = 5) -> SystemData:
    """samples/small's data with one server per name (llama_13b, Premium), running ``replicas`` on
    ``accelerator``."""
    servers = [
        {
            "name": name,
            "class": "Premium",
            "model": "llama_13b",
            "currentAlloc": {"accelerator": accelerator, "numReplicas": replicas},
        }
        for name in names
    ]
    return SystemData.model_validate({**SMALL.model_dump(), "servers": {"servers": servers}})


def collect_result(**overrides: Any) -> CollectResult:
    base: dict[str, Any] = {
        "collected_at_s": 1000.0,
        "system": system_data(),
        "servers": [server()],
        "placement": PLACEMENT,
    }
    return CollectResult(**{**base, **overrides})


def controller_settings(**overrides: Any) -> ControllerSettings:
    base: dict[str, Any] = {"collect_timeout_s": 1.0, "optimize_timeout_s": 1.0, "update_timeout_s": 1.0}
    return ControllerSettings(**{**base, **overrides})


class FakeStages:
    def __init__(self, solution_: Solution | None = None, collect: CollectResult | None = None) -> None:
        self.kube = FakeKube(deployment())
        self.actuator = Actuator(self.kube, settings())
        self.collect_answer = collect or collect_result()
        self.solution = solution_ or solution(decision(replicas=3))
        self.fail: dict[str, BaseException] = {}
        self.delay_s: dict[str, float] = {}
        self.gate: asyncio.Event | None = None  # collect waits on it when set
        self.calls: list[str] = []
        self.systems: list[SystemData] = []

    async def _enter(self, stage: str) -> None:
        self.calls.append(stage)
        if stage == "collect" and self.gate is not None:
            await self.gate.wait()
        if stage in self.delay_s:
            await asyncio.sleep(self.delay_s[stage])
        if stage in self.fail:
            raise self.fail[stage]

    async def collect(self) -> CollectResult:
        await self._enter("collect")
        return self.collect_answer

    async def optimize(self, system: SystemData) -> Solution:
        await self._enter("optimize")
        self.systems.append(system)
        return self.solution

    async def update(self, request: UpdateRequest) -> UpdateResponse:
        await self._enter("update")
        return await self.actuator.update(request)
