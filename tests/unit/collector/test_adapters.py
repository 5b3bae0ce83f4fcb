"""The adapters over stand-ins for the API objects and the HTTP layer: no network, no kubeconfig.

Kubernetes: the generated ``AppsV1Api``/``CoreV1Api`` are replaced by recorders that take the same
keyword arguments and return the client's real model objects. Prometheus: a ``requests`` transport
adapter answers in place of the server, so ``PrometheusConnect`` runs unchanged.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from requests.adapters import BaseAdapter

from collector.kube_adapter import KubeAdapter, ready_since_s, to_deployment
from collector.ports import SourceError
from collector.prom_adapter import PrometheusAdapter


def _deployment(name: str, ns: str = "llm", replicas: int | None = 2) -> client.V1Deployment:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, namespace=ns, labels={"inferno.server.managed": "true"}),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels={"app": name}),
            template=client.V1PodTemplateSpec(),
        ),
        status=client.V1DeploymentStatus(ready_replicas=1),
    )


class RawResponse:
    def __init__(self, data: bytes) -> None:
        self.data = data


class Recorder:
    """Stands in for a generated API class: records calls, pages lists two items at a time."""

    def __init__(self, items: list[Any], fail: ApiException | None = None) -> None:
        self.items, self.fail, self.calls = items, fail, list[tuple[str, dict[str, Any]]]()

    def _page(self, name: str, kwargs: dict[str, Any]) -> Any:
        self.calls.append((name, kwargs))
        if self.fail:
            raise self.fail
        start = int(kwargs.get("_continue") or 0)
        token = str(start + 2) if start + 2 < len(self.items) else None
        page = client.V1DeploymentList(
            items=self.items[start : start + 2],
            metadata=client.V1ListMeta.model_validate({"continue": token}),
        )
        if kwargs.get("_preload_content") is False:  # the raw response: JSON bytes in .data
            return RawResponse(json.dumps(client.ApiClient().sanitize_for_serialization(page)).encode())
        return page

    def list_deployment_for_all_namespaces(self, **kwargs: Any) -> Any:
        return self._page("all", kwargs)

    def list_namespaced_deployment(self, namespace: str, **kwargs: Any) -> Any:
        return self._page(namespace, kwargs)

    def read_namespaced_config_map(self, name: str, namespace: str, **kwargs: Any) -> Any:
        self.calls.append((f"{namespace}/{name}", kwargs))
        if self.fail:
            raise self.fail
        return client.V1ConfigMap(data={"model-data.json": "{}"})


def adapter(apps: Recorder | None = None, core: Recorder | None = None) -> KubeAdapter:
    kube = KubeAdapter(client.ApiClient(), timeout_s=7)
    kube._apps = apps or Recorder([])  # type: ignore[assignment]
    kube._core = core or Recorder([])  # type: ignore[assignment]
    return kube


async def test_deployments_are_listed_by_label_page_by_page() -> None:
    apps = Recorder([_deployment(f"d{i}") for i in range(5)] + [_deployment("x", replicas=None)])
    found = await adapter(apps).list_managed_deployments(())
    assert [d.name for d in found] == ["d0", "d1", "d2", "d3", "d4", "x"]
    assert (found[0].replicas, found[0].ready_replicas, found[-1].replicas) == (2, 1, 1)
    assert len(apps.calls) == 3
    assert all(
        kw["label_selector"] == "inferno.server.managed=true"
        and kw["_request_timeout"] == 7
        and kw["limit"] == 500
        and kw["_preload_content"] is False  # raw JSON: typed models cost ~5 s at 1,000 Deployments
        for _, kw in apps.calls
    )


def test_deployment_from_api_json() -> None:
    """The JSON fields the collector reads; absent ones take the API's defaults."""
    full = {
        "metadata": {"namespace": "llm", "name": "d", "labels": {"a": "1"}, "annotations": {"b": "2"}},
        "spec": {"replicas": 0},
        "status": {"readyReplicas": 3},
    }
    info = to_deployment(full)
    assert (info.namespace, info.name, info.labels, info.annotations) == ("llm", "d", {"a": "1"}, {"b": "2"})
    assert (info.replicas, info.ready_replicas) == (0, 3)  # 0 stays 0: only an absent count means 1
    bare = to_deployment({"metadata": {"namespace": "llm", "name": "e"}})
    assert (bare.replicas, bare.ready_replicas, bare.labels, bare.annotations) == (1, 0, {}, {})


async def test_watched_namespaces_are_listed_one_by_one() -> None:
    apps = Recorder([_deployment("d")])
    await adapter(apps).list_managed_deployments(("a", "b"))
    assert [name for name, _ in apps.calls] == ["a", "b"]


async def test_config_map_read_and_404() -> None:
    assert await adapter(core=Recorder([])).read_config_map("inferno", "s") == {"model-data.json": "{}"}
    assert (
        await adapter(core=Recorder([], ApiException(404, "Not Found"))).read_config_map("inferno", "s")
        is None
    )


@pytest.mark.parametrize(
    ("fail", "fragment"),
    [(ApiException(403, "Forbidden"), "403 Forbidden"), (ApiException(500, "Internal"), "500 Internal")],
    ids=["forbidden", "server-error"],
)
async def test_api_errors_become_source_errors(fail: ApiException, fragment: str) -> None:
    with pytest.raises(SourceError, match=fragment):
        await adapter(Recorder([], fail)).list_managed_deployments(())
    with pytest.raises(SourceError, match=fragment):
        await adapter(core=Recorder([], fail)).read_config_map("inferno", "s")


class FakeTransport(BaseAdapter):
    """Answers every request with one canned response (or raises), recording the URLs."""

    def __init__(self, status: int = 200, body: Any = None, error: Exception | None = None) -> None:
        super().__init__()
        self.status, self.body, self.error, self.urls = status, body, error, list[str]()

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.urls.append(str(request.url))
        if self.error:
            raise self.error
        response = requests.Response()
        response.status_code = self.status
        response._content = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        response.request = request
        return response

    def close(self) -> None:
        pass


def prometheus(transport: FakeTransport) -> PrometheusAdapter:
    session = requests.Session()
    session.mount("http://prom:9090/api", transport)  # longer than the client's own mount: wins
    return PrometheusAdapter("http://prom:9090", timeout_s=2, session=session)


async def test_prometheus_vector_answer() -> None:
    vector = [{"metric": {"namespace": "a", "deployment": "d"}, "value": [1.0, "NaN"]}]
    transport = FakeTransport(body={"status": "success", "data": {"resultType": "vector", "result": vector}})
    assert await prometheus(transport).query('sum(up{namespace="a"})') == vector
    assert transport.urls[0].startswith("http://prom:9090/api/v1/query?query=sum%28up%7Bnamespace%3D%22a%22")


@pytest.mark.parametrize(
    ("transport", "fragment"),
    [
        (FakeTransport(503, b"overloaded"), "Prometheus answered HTTP Status Code 503"),
        (FakeTransport(200, b"<html>proxy login</html>"), "not a query result"),
        (FakeTransport(200, {"status": "success"}), "not a query result"),
        (FakeTransport(200, {"data": {"result": "7"}}), "not a vector"),
        (FakeTransport(error=requests.ConnectionError("refused")), "Prometheus unreachable: ConnectionError"),
        (FakeTransport(error=requests.Timeout("slow")), "Prometheus unreachable: Timeout"),
    ],
    ids=["503", "html", "no-data", "scalar", "refused", "timeout"],
)
async def test_prometheus_failures_become_source_errors(transport: FakeTransport, fragment: str) -> None:
    with pytest.raises(SourceError, match=fragment):
        await prometheus(transport).query("up")


def _pod_status(ready: str | None, ready_at_s: float, started_at_s: float | None = None) -> Any:
    def at(t: float) -> datetime:
        return datetime.fromtimestamp(t, UTC)

    conditions = (
        []
        if ready is None
        else [client.V1PodCondition(type="Ready", status=ready, last_transition_time=at(ready_at_s))]
    )
    statuses = None
    if started_at_s is not None:
        running = client.V1ContainerStateRunning(started_at=at(started_at_s))
        statuses = [
            client.V1ContainerStatus(
                name="vllm", image="x", image_id="x", ready=True, restart_count=1,
                state=client.V1ContainerState(running=running),
            )
        ]  # fmt: skip
    return client.V1PodStatus(conditions=conditions, container_statuses=statuses)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (_pod_status("True", 1000.0), 1000.0),
        (_pod_status("True", 1000.0, started_at_s=900.0), 1000.0),
        (_pod_status("True", 1000.0, started_at_s=1200.0), 1200.0),  # restarted since Ready
        (_pod_status("False", 1000.0), None),
        (_pod_status(None, 1000.0), None),
        (None, None),
    ],
    ids=["ready", "started-before-ready", "restarted-after-ready", "not-ready", "no-condition", "no-status"],
)
def test_ready_since_is_the_later_of_ready_and_the_last_container_start(
    status: Any, expected: float | None
) -> None:
    assert ready_since_s(status) == expected
