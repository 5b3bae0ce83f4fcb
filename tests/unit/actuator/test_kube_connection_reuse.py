"""The real adapters reuse one HTTP connection for many calls (raw answers are read and released).

A raw (``_preload_content=False``) answer that is never read closes its connection, so every
patch and Event paid a new TLS handshake against kube-apiserver: ~11 CPU seconds in the actuator
and ~19 in the API server for 769 patches (benchmarks/bench_cycle.py, 1,000 Deployments).
Here the real kubernetes client talks to a keep-alive HTTP/1.1 stub on 127.0.0.1 that counts
the connections it accepts.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kubernetes import client

from actuator.kube import KubernetesPort, kube_threads
from collector.kube_adapter import KubeAdapter
from tests.unit.actuator.fakes import deployment, loopback_api, settings

EVENT = {
    "metadata": {"generateName": "llama.", "namespace": "team-a"},
    "involvedObject": {"kind": "Deployment", "name": "llama", "namespace": "team-a"},
    "reason": "InfernoScaled",
}


class KeepAliveStub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[str] = []
        self.barrier: threading.Barrier | None = None  # set: each PATCH waits for the others
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like kube-apiserver
            wbufsize = -1  # headers and body in one write: no delayed-ACK stalls

            def setup(self) -> None:
                stub.connections += 1
                super().setup()

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.requests.append(f"{self.command} {self.path.split('?')[0]}")
                item = deployment()
                payload = {"kind": "DeploymentList", "metadata": {}, "items": [item]}
                body = json.dumps(payload if self.command == "GET" else item).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def do_PATCH(self) -> None:
                if stub.barrier is not None:
                    try:
                        stub.barrier.wait()
                    except threading.BrokenBarrierError:
                        self.send_error(500, "fewer patches in flight than expected")
                        return
                self._answer()

            def log_message(self, format: str, *args: object) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def stub() -> Iterator[tuple[KeepAliveStub, client.ApiClient]]:
    server = KeepAliveStub()
    with loopback_api(server) as api:
        yield server, api


async def test_actuator_patches_events_and_lists_share_one_connection(
    stub: tuple[KeepAliveStub, client.ApiClient],
) -> None:
    server, api = stub
    port = KubernetesPort(api, settings())
    for _ in range(10):  # one after the other: each call may take the pooled connection
        await port.patch_deployment("team-a", "llama", {"spec": {"replicas": 2}})
        await port.create_event("team-a", EVENT)
    assert list(await port.list_deployments(["team-a"])) == [("team-a", "llama")]
    assert len(server.requests) == 21
    assert server.connections == 1, server.requests


async def test_collector_lists_share_one_connection(stub: tuple[KeepAliveStub, client.ApiClient]) -> None:
    server, api = stub
    adapter = KubeAdapter(api, timeout_s=5)
    for _ in range(5):
        (found,) = await adapter.list_managed_deployments(("team-a",))
        assert (found.namespace, found.name) == ("team-a", "llama")
    assert server.connections == 1, server.requests


async def test_actuator_runs_max_concurrent_patches_at_once_on_pooled_connections(
    stub: tuple[KeepAliveStub, client.ApiClient],
) -> None:
    """12 patches in flight at once (asyncio's default pool has cpu_count + 4 threads: 6 here).

    The stub holds each PATCH until 12 have arrived, so fewer threads would break the barrier;
    a second round must reuse the 12 pooled connections (none discarded, no new handshakes).
    """
    server, api = stub
    s = settings(max_concurrent_patches=12)
    api.configuration.connection_pool_maxsize = kube_threads(s)  # as load_api_client does
    api.rest_client = type(api.rest_client)(api.configuration)
    server.barrier = threading.Barrier(12, timeout=5)
    port = KubernetesPort(api, s)
    for _ in range(2):
        await asyncio.gather(
            *(port.patch_deployment("team-a", f"d{i}", {"spec": {"replicas": 2}}) for i in range(12))
        )
    assert len(server.requests) == 24
    assert server.connections == 12, server.requests
