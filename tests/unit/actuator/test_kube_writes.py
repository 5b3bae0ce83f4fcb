"""The actuator's writes (``KubernetesPort._write``) send what the generated client sends.

Patches and Events skip the generated methods' per-call layers (argument validation, the body
walk of ``param_serialize``) and go through ``ApiClient.call_api`` directly. A recording HTTP
stub on 127.0.0.1 receives the same requests both ways: method, path, headers (bearer token
included) and body, byte for byte for a patch. An Event's body differs only in how its two
timestamps are spelled: the generated method turns the dict into a ``CoreV1Event`` and writes
``2026-09-21T14:13:20Z`` back as ``...+00:00``; the API server reads both as the same time.
A 409 still becomes a conflict.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from actuator.executor import event_for
from actuator.kube import KubernetesPort
from actuator.patch import PATCH_CONTENT_TYPE
from contract.targets import Shape, TargetRef
from contract.update import ActionKind, FieldChange, Outcome, ServerAction
from plumbing.client import ErrorKind, UpstreamError
from tests.unit.actuator.fakes import deployment, loopback_api, settings

Seen = tuple[str, str, dict[str, str], bytes]
PATCH = {"metadata": {"resourceVersion": "7", "labels": {"a": "b"}}, "spec": {"replicas": 3, "x": None}}
ACTION = ServerAction(
    server="llama", namespace="team-a", deployment="llama", kind=ActionKind.UPDATE, outcome=Outcome.APPLIED,
    changes=[FieldChange(field="replicas", old="1", new="2", rolls_pods=False)], reasons=["why: é ünïcode"],
)  # fmt: skip
EVENT = event_for(ACTION, deployment(), 1_790_000_000.0, "cycle-1", settings())


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.status = 200
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.seen.append((self.command, self.path, dict(self.headers.items()), body))
                payload = b'{"kind": "Status"}'
                self.send_response(recorder.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_PATCH(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def log_message(self, format: str, *args: object) -> None:
                return

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, client.ApiClient]]:
    server = Recorder()
    auth = {"api_key": {"authorization": "t0ken-value"}, "api_key_prefix": {"authorization": "Bearer"}}
    with loopback_api(server, **auth) as api:
        yield server, api


def _generated(api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    kw: dict[str, Any] = {"_request_timeout": 10, "_preload_content": False}
    answers: list[Any] = [
        apps.patch_namespaced_deployment("llama", "team-a", PATCH, _content_type=PATCH_CONTENT_TYPE, **kw),
        core.create_namespaced_event("team-a", EVENT, **kw),  # type: ignore[arg-type]
    ]
    assert all(raw.data for raw in answers)  # read, as the port drains its answers


async def test_patch_and_event_requests_match_the_generated_client(
    recorder: tuple[Recorder, client.ApiClient],
) -> None:
    server, api = recorder
    await asyncio.to_thread(_generated, api)
    generated, server.seen = server.seen, []
    port = KubernetesPort(api, settings())
    await port.patch_deployment("team-a", "llama", PATCH)
    await port.create_event("team-a", EVENT)

    assert server.seen[0] == generated[0]  # the patch
    (method, path, headers, body), (g_method, g_path, g_headers, g_body) = server.seen[1], generated[1]
    assert (method, path) == (g_method, g_path)  # the Event
    assert {**headers, "Content-Length": ""} == {**g_headers, "Content-Length": ""}
    assert json.loads(re.sub(rb'(:\d\d)Z"', rb'\1+00:00"', body)) == json.loads(g_body)
    (patch_method, patch_path, headers, _), (event_method, event_path, _, _) = server.seen
    assert (patch_method, patch_path) == ("PATCH", "/apis/apps/v1/namespaces/team-a/deployments/llama")
    assert (event_method, event_path) == ("POST", "/api/v1/namespaces/team-a/events")
    assert headers["authorization"] == "Bearer t0ken-value"
    assert headers["Content-Type"] == PATCH_CONTENT_TYPE


async def test_a_conflict_is_still_a_conflict(recorder: tuple[Recorder, client.ApiClient]) -> None:
    server, api = recorder
    server.status = 409
    port = KubernetesPort(api, settings())
    with pytest.raises(UpstreamError) as caught:
        await port.patch_deployment("team-a", "llama", PATCH)
    assert caught.value.kind is ErrorKind.CONFLICT
    assert caught.value.status == 409


def test_a_custom_resource_patch_is_a_merge_patch_on_its_own_path(
    recorder: tuple[Recorder, client.ApiClient],
) -> None:
    server, api = recorder
    ref = TargetRef(
        kind="Rollout", group="argoproj.io", version="v1alpha1", resource="rollouts", shape=Shape.SCALE
    )
    port = KubernetesPort(api, settings())
    body = {"metadata": {"resourceVersion": "5"}, "spec": {"replicas": 4}}
    asyncio.run(
        port.patch_object(
            ref, "team-a", "ro", body, content_type="application/merge-patch+json", subresource="scale"
        )
    )
    ((method, path, headers, sent),) = server.seen
    assert (method, path) == ("PATCH", "/apis/argoproj.io/v1alpha1/namespaces/team-a/rollouts/ro/scale")
    assert headers["Content-Type"] == "application/merge-patch+json"
    assert headers["authorization"] == "Bearer t0ken-value"
    assert json.loads(sent) == body
    server.status = 409
    with pytest.raises(UpstreamError) as caught:
        asyncio.run(port.patch_object(ref, "team-a", "ro", body, content_type="application/merge-patch+json"))
    assert caught.value.kind is ErrorKind.CONFLICT
    assert server.seen[-1][1] == "/apis/argoproj.io/v1alpha1/namespaces/team-a/rollouts/ro"
