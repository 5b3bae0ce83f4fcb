"""The real KubePort's error mapping, with the kubernetes client's API objects stubbed (no network)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from actuator.kube import KubernetesPort
from actuator.patch import PATCH_CONTENT_TYPE
from plumbing.client import ErrorKind, UpstreamError
from tests.unit.actuator.fakes import deployment, settings


class StubApps:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    def list_namespaced_deployment(self, namespace: str, **kwargs: Any) -> Any:
        self.calls.append(("list", namespace, kwargs))
        if self.error:
            raise self.error
        return SimpleNamespace(data=json.dumps({"items": [deployment()]}).encode())

    def read_namespaced_deployment(self, name: str, namespace: str, **kwargs: Any) -> Any:
        self.calls.append(("read", namespace, name, kwargs))
        if self.error:
            raise self.error
        return SimpleNamespace(data=json.dumps(deployment(name=name, resource_version="11")).encode())


class StubApiClient:
    """What ``KubernetesPort._write`` uses of an ``ApiClient``: records ``call_api``."""

    cookie = None
    configuration = SimpleNamespace(host="https://api", safe_chars_for_path_param="")

    def __init__(self, calls: list[tuple[Any, ...]], error: Exception | None) -> None:
        self.calls, self.error = calls, error
        self.default_headers: dict[str, str] = {}

    def update_params_for_auth(self, headers: dict[str, str], *_args: Any) -> None:
        headers["authorization"] = "Bearer t"

    def call_api(self, method: str, url: str, headers: dict[str, str], body: Any, *_a: Any, **kw: Any) -> Any:
        self.calls.append((method, url, headers, kw))
        if self.error:
            raise self.error
        return SimpleNamespace(status=200, response=SimpleNamespace(data=b"{}"))


def _port(error: Exception | None = None) -> tuple[KubernetesPort, StubApps]:
    port = KubernetesPort.__new__(KubernetesPort)
    stub = StubApps(error)
    port._apps = stub  # type: ignore[assignment]
    port._api = StubApiClient(stub.calls, error)  # type: ignore[assignment]
    port._settings = settings()
    port._threads = ThreadPoolExecutor(2)
    return port, stub


async def test_lists_by_label_selector_and_keys_by_namespace_and_name() -> None:
    port, stub = _port()
    found = await port.list_deployments(["team-a"])
    assert list(found) == [("team-a", "llama")]
    assert stub.calls[0][2]["label_selector"] == "inferno.server.managed=true"


async def test_reads_one_deployment_as_a_plain_dict() -> None:
    port, stub = _port()
    found = await port.read_deployment("team-a", "llama")
    assert found["metadata"]["resourceVersion"] == "11" and found["spec"]["replicas"] == 2
    [(_, namespace, name, kwargs)] = stub.calls
    assert (namespace, name) == ("team-a", "llama")
    assert kwargs == {"_preload_content": False, "_request_timeout": settings().kube_timeout_s}


async def test_patch_uses_strategic_merge() -> None:
    port, stub = _port()
    await port.patch_deployment("team-a", "llama", {"spec": {"replicas": 2}})
    method, url, headers, kw = stub.calls[0]
    assert (method, url) == ("PATCH", "https://api/apis/apps/v1/namespaces/team-a/deployments/llama")
    assert headers["Content-Type"] == PATCH_CONTENT_TYPE
    assert kw["_request_timeout"] == settings().kube_timeout_s


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ApiException(status=409, reason="Conflict"), ErrorKind.CONFLICT),
        (ApiException(status=403, reason="Forbidden"), ErrorKind.PERMANENT),
        (ApiException(status=503, reason="Unavailable"), ErrorKind.TRANSIENT),
        (urllib3.exceptions.MaxRetryError(None, "/apis", "refused"), ErrorKind.TRANSIENT),  # type: ignore[arg-type]
        (TimeoutError(), ErrorKind.TRANSIENT),
    ],
    ids=["409", "403", "503", "refused", "timeout"],
)
async def test_errors_are_classified(error: Exception, kind: ErrorKind) -> None:
    port, _ = _port(error)
    with pytest.raises(UpstreamError) as caught:
        await port.patch_deployment("team-a", "llama", {})
    assert caught.value.kind is kind
    with pytest.raises(UpstreamError) as caught:
        await port.read_deployment("team-a", "llama")
    assert caught.value.kind is kind and "read Deployment team-a/llama" in str(caught.value)
