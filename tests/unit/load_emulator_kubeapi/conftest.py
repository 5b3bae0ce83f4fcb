"""A served emulated API server per test, the official client pointed at it, and a fake clock.

The built-in controller is created but not run in the background: tests call
``cluster.reconcile()`` so each step is deterministic. Every client call goes through
``cluster.call`` (a worker thread, bounded by a timeout) because the server shares the test's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from kubernetes import client

from load_emulator.kubeapi import (
    BuiltinController,
    ControllerSettings,
    KubeApiServer,
    ObjectStore,
    start_kubeapi,
)

T = TypeVar("T")
CALL_TIMEOUT_S = 10.0


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@dataclass
class Cluster:
    server: KubeApiServer
    store: ObjectStore
    controller: BuiltinController
    clock: FakeClock
    api: client.ApiClient

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        kwargs.setdefault("_request_timeout", 5)
        return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), CALL_TIMEOUT_S)

    def reconcile(self) -> int:
        return self.controller.reconcile()


def api_client(url: str, token: str | None = None) -> client.ApiClient:
    config = client.Configuration(host=url)
    if token:
        config.api_key = {"BearerToken": token}
        config.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(config)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    clock = FakeClock()
    store = ObjectStore(wall_clock=lambda: 1_700_000_000.0 + clock.now_s)
    controller = BuiltinController(store, clock, ControllerSettings(startup_delay_s=30.0))
    server = await start_kubeapi(store=store)
    api = api_client(server.url)
    try:
        yield Cluster(server, store, controller, clock, api)
    finally:
        api.close()
        await server.close()
