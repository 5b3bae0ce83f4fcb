"""Fault injectors for the e2e fault scenarios: a garbage Prometheus, a concurrent writer, label load.

Role: `GarbagePrometheus` is a tiny aiohttp server on 127.0.0.1 that answers the Prometheus HTTP
API (`/api/v1/query`) by forwarding to a real Prometheus and, depending on `mode`, spoiling the
answer (malformed JSON, NaN, +Inf, negative values, wrong types, HTTP 500); mode `proxy` passes
answers through, so a scenario recovers without restarting the collector. `ConcurrentWriter` keeps
bumping a Deployment's resourceVersion (an annotation) from a thread, so the actuator's patch,
planned from an older read, gets 409. `add_label_load_servers` creates Deployments whose load is
declared in labels: with no Prometheus configured those are the trusted load source, so scenarios
that fault something else need neither the emulator nor Prometheus.
Callers: tests/e2e/test_faults*.py.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Literal

from aiohttp import web
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .data import ServerSpec, server_deployment
from .scenario import Scenario
from .threaded_server import ThreadedServer

GARBAGE_MODES = ("malformed-json", "nan", "inf", "negative", "wrong-types", "http-500")


def _spoil_values(result: list[Any], value: str) -> list[Any]:
    return [{**r, "value": [r["value"][0], value]} if isinstance(r, dict) else r for r in result]


def spoil(body: dict[str, Any], mode: str) -> tuple[int, str]:
    """(status, text) of a Prometheus answer spoiled the way `mode` says; `proxy`: unchanged."""
    data = body.get("data") if isinstance(body, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if mode == "proxy" or not isinstance(data, dict) or not isinstance(result, list):
        return 200, json.dumps(body)
    if mode == "malformed-json":
        return 200, json.dumps(body)[: max(1, len(json.dumps(body)) // 2)] + '{"oops'
    if mode == "http-500":
        return 500, "internal error (injected)"
    if mode == "wrong-types":
        spoiled = [{"metric": r.get("metric"), "value": {"not": "a pair"}} for r in result]
        return 200, json.dumps({**body, "data": {**data, "result": spoiled or "not a list"}})
    value = {"nan": "NaN", "inf": "+Inf", "negative": "-42"}[mode]
    return 200, json.dumps({**body, "data": {**data, "result": _spoil_values(result, value)}})


class GarbagePrometheus(ThreadedServer):
    """A Prometheus look-alike on 127.0.0.1 in a background thread; `mode` may change at any time."""

    def __init__(self, upstream_url: str, mode: str = "proxy") -> None:
        super().__init__("garbage-prom")
        self.upstream_url = upstream_url
        self.mode = mode
        self.queries = 0  # answered /api/v1/query calls, spoiled or not

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v1/query", self._query)

    async def _query(self, request: web.Request) -> web.Response:
        assert self._session is not None
        params = dict(request.query)
        if request.method == "POST":
            params.update({k: str(v) for k, v in (await request.post()).items()})
        async with self._session.get(f"{self.upstream_url}/api/v1/query", params=params) as upstream:
            body = await upstream.json(content_type=None)
        self.queries += 1
        status, text = spoil(body, self.mode)
        return web.Response(status=status, text=text, content_type="application/json")


class ConcurrentWriter:
    """Bumps a label or an annotation (``field``) of one Deployment in a loop (bounded in count and
    time) from a thread. A label is what a plan reads, so the actuator's patch stays a 409; an
    annotation is not, so the actuator re-reads and patches again."""

    KEY = "e2e.inferno/touched"

    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        name: str,
        max_s: float = 60.0,
        field: Literal["labels", "annotations"] = "labels",
    ) -> None:
        self.apps = client.AppsV1Api(api_client)
        self.namespace, self.name = namespace, name
        self.max_s = max_s
        self.field = field
        self.writes = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="concurrent-writer", daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        for _ in range(100_000):
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            body = {"metadata": {self.field: {self.KEY: str(self.writes + 1)}}}
            try:
                self.apps.patch_namespaced_deployment(self.name, self.namespace, body, _request_timeout=5)
                self.writes += 1
            except ApiException:
                self.errors += 1
                time.sleep(0.05)

    def written(self, deployment: client.V1Deployment) -> str | None:
        """The writer's last value as ``deployment`` holds it."""
        meta = deployment.metadata
        return (getattr(meta, self.field) or {}).get(self.KEY) if meta else None

    def start(self) -> ConcurrentWriter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def label_load_deployment(spec: ServerSpec, pool: str) -> client.V1Deployment:
    """`server_deployment` plus the load labels (rpm, input and output tokens) the collector reads."""
    dep = server_deployment(spec, pool)
    assert dep.metadata is not None and dep.metadata.labels is not None
    dep.metadata.labels.update(
        {
            "inferno.server.load.rpm": f"{spec.rpm:g}",
            "inferno.server.load.intokens": str(spec.in_tokens),
            "inferno.server.load.outtokens": str(spec.out_tokens),
        }
    )
    return dep


def add_label_load_servers(scenario: Scenario, *servers: ServerSpec) -> None:
    """Create the servers' Deployments with their load in labels (the scenario deletes them after)."""
    for spec in servers:
        scenario.apps.create_namespaced_deployment(scenario.ns, label_load_deployment(spec, scenario.ns))
        scenario.servers.append(spec)
