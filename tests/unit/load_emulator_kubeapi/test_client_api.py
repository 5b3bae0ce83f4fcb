"""The official kubernetes client against the served store: the calls an autoscaler makes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import aiohttp
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from load_emulator.kubeapi import PODS, REPLICASETS
from load_emulator.kubeapi import builders as b
from tests.unit.load_emulator_kubeapi.conftest import Cluster

MANAGED = {"inferno.server.managed": "true"}


async def _deployments(cluster: Cluster) -> None:
    for name, ns, labels in [
        ("llama", "team-a", MANAGED),
        ("granite", "team-b", MANAGED),
        ("other", "team-a", {}),
    ]:
        await cluster.call(
            cluster.apps.create_namespaced_deployment, ns, b.deployment(name, ns, labels=labels)
        )


async def test_list_deployments_with_a_label_selector_across_and_per_namespace(cluster: Cluster) -> None:
    await _deployments(cluster)
    every = await cluster.call(
        cluster.apps.list_deployment_for_all_namespaces, label_selector="inferno.server.managed=true"
    )
    assert sorted((d.metadata.namespace, d.metadata.name) for d in every.items) == [
        ("team-a", "llama"),
        ("team-b", "granite"),
    ]
    assert int(every.metadata.resource_version) == cluster.store.resource_version
    one = await cluster.call(
        cluster.apps.list_namespaced_deployment, "team-a", label_selector="!inferno.server.managed"
    )
    assert [d.metadata.name for d in one.items] == ["other"]


async def test_paging_with_limit_and_continue(cluster: Cluster) -> None:
    for i in range(5):
        cluster.store.create(b.config_map(f"cm-{i}", "n", {}))
    names, token = [], None
    while True:
        page = await cluster.call(cluster.core.list_namespaced_config_map, "n", limit=2, _continue=token)
        names += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert names == [f"cm-{i}" for i in range(5)]


async def test_patch_replicas_with_the_default_content_type(cluster: Cluster) -> None:
    await _deployments(cluster)
    patched = await cluster.call(
        cluster.apps.patch_namespaced_deployment, "llama", "team-a", {"spec": {"replicas": 4}}
    )
    assert patched.spec.replicas == 4 and patched.metadata.generation == 2
    # kubernetes 37 picks json-patch for the header, then sends a dict body as a strategic merge patch
    assert cluster.server.requests[-1].content_type == "application/strategic-merge-patch+json"
    read = await cluster.call(cluster.apps.read_namespaced_deployment, "llama", "team-a")
    assert read.spec.replicas == 4


async def test_patch_replicas_with_a_json_patch_list(cluster: Cluster) -> None:
    await _deployments(cluster)
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 1},
        {"op": "replace", "path": "/spec/replicas", "value": 2},
    ]
    patched = await cluster.call(cluster.apps.patch_namespaced_deployment, "llama", "team-a", ops)
    assert patched.spec.replicas == 2
    assert cluster.server.requests[-1].content_type == "application/json-patch+json"
    with pytest.raises(ApiException) as err:
        await cluster.call(
            cluster.apps.patch_namespaced_deployment, "llama", "team-a", ops
        )  # the test op now fails
    assert err.value.status == 422


async def test_strategic_merge_of_container_args_by_name(cluster: Cluster) -> None:
    dep = b.deployment("llama", "team-a", args=["--port", "8000", "--max-num-seqs", "64"], env={"A": "1"})
    dep["spec"]["template"]["spec"]["containers"].append(
        {"name": "sidecar", "image": "busybox", "args": ["sleep"]}
    )
    await cluster.call(cluster.apps.create_namespaced_deployment, "team-a", dep)
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "vllm", "args": ["--max-num-seqs", "256"]}]}}}
    }
    out = await cluster.call(
        cluster.apps.patch_namespaced_deployment, "llama", "team-a", patch,
        _content_type="application/strategic-merge-patch+json",
    )  # fmt: skip
    vllm, sidecar = out.spec.template.spec.containers
    assert vllm.args == ["--max-num-seqs", "256"] and vllm.env[0].name == "A" and vllm.image
    assert sidecar.args == ["sleep"]


async def test_merge_patch_replaces_the_container_list(cluster: Cluster) -> None:
    await _deployments(cluster)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x"}]}}}}
    out = await cluster.call(
        cluster.apps.patch_namespaced_deployment,
        "llama",
        "team-a",
        patch,
        _content_type="application/merge-patch+json",
    )
    assert [c.name for c in out.spec.template.spec.containers] == ["only"]


async def test_stale_resource_version_is_409(cluster: Cluster) -> None:
    await _deployments(cluster)
    read = await cluster.call(cluster.apps.read_namespaced_deployment, "llama", "team-a")
    stale = read.metadata.resource_version
    await cluster.call(cluster.apps.patch_namespaced_deployment, "llama", "team-a", {"spec": {"replicas": 2}})
    body = {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 3}}
    with pytest.raises(ApiException) as err:
        await cluster.call(cluster.apps.patch_namespaced_deployment, "llama", "team-a", body)
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "Conflict"
    read.spec.replicas = 5
    with pytest.raises(ApiException) as err:
        await cluster.call(cluster.apps.replace_namespaced_deployment, "llama", "team-a", read)
    assert err.value.status == 409


async def test_read_config_map_and_404_is_an_api_exception(cluster: Cluster) -> None:
    cluster.store.create(b.config_map("inferno-static", "inferno", {"accelerators.json": "{}"}))
    cm = await cluster.call(cluster.core.read_namespaced_config_map, "inferno-static", "inferno")
    assert cm.data == {"accelerators.json": "{}"}
    with pytest.raises(ApiException) as err:
        await cluster.call(cluster.core.read_namespaced_config_map, "absent", "inferno")
    status = json.loads(err.value.body)
    assert err.value.status == 404 and status["kind"] == "Status" and status["reason"] == "NotFound"
    assert status["message"] == 'configmaps "absent" not found'


async def test_core_and_events_api_events(cluster: Cluster) -> None:
    involved = {"kind": "Deployment", "namespace": "team-a", "name": "llama"}
    event = {
        "metadata": {"generateName": "llama."},
        "reason": "Scaled",
        "message": "2 -> 3",
        "involvedObject": involved,
    }
    made = await cluster.call(cluster.core.create_namespaced_event, "team-a", event)
    assert made.metadata.name.startswith("llama.") and made.reason == "Scaled"
    listed = await cluster.call(cluster.core.list_namespaced_event, "team-a")
    assert [e.reason for e in listed.items] == ["Scaled"]
    events_v1 = client.EventsV1Api(cluster.api)
    new = client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="llama.1"),
        event_time=datetime(2024, 1, 1, tzinfo=UTC),
        action="Scale",
        reason="Scaled",
        note="2 -> 3",
        type="Normal",
        reporting_controller="inferno",
        reporting_instance="inferno-0",
        regarding=client.V1ObjectReference(kind="Deployment", namespace="team-a", name="llama"),
    )
    await cluster.call(events_v1.create_namespaced_event, "team-a", new)
    listed_v1 = await cluster.call(events_v1.list_namespaced_event, "team-a")
    assert [(e.metadata.name, e.note) for e in listed_v1.items] == [("llama.1", "2 -> 3")]
    async with aiohttp.ClientSession() as session:  # the client refuses to send an event without eventTime
        url = f"{cluster.server.url}/apis/events.k8s.io/v1/namespaces/team-a/events"
        async with session.post(url, json={"metadata": {"name": "x"}, "reason": "r"}) as resp:
            assert resp.status == 422 and (await resp.json())["reason"] == "Invalid"


async def test_invalid_create_is_422_and_unknown_patch_type_is_415(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as err:
        await cluster.call(
            cluster.apps.create_namespaced_deployment, "n", b.deployment("d", "n", replicas=-2)
        )
    assert err.value.status == 422
    await cluster.call(cluster.apps.create_namespaced_deployment, "n", b.deployment("d", "n"))
    with pytest.raises(ApiException) as err:
        await cluster.call(cluster.apps.create_namespaced_deployment, "n", b.deployment("d", "n"))
    assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as err:
        await cluster.call(
            cluster.apps.patch_namespaced_deployment,
            "d",
            "n",
            {"spec": {}},
            _content_type="application/apply-patch+yaml",
        )
    assert err.value.status == 415


async def test_delete_cascades_and_discovery_answers(cluster: Cluster) -> None:
    await _deployments(cluster)
    cluster.reconcile()
    assert cluster.store.list(PODS, "team-a", label_selector="app.kubernetes.io/name=llama")
    status = await cluster.call(cluster.apps.delete_namespaced_deployment, "llama", "team-a")
    assert status["status"] == "Success"  # kubernetes 37 returns the Status as a plain dict
    assert cluster.store.list(PODS, "team-a", label_selector="app.kubernetes.io/name=llama") == []
    assert cluster.store.list(REPLICASETS, "team-a", label_selector="app.kubernetes.io/name=llama") == []
    version = await cluster.call(client.VersionApi(cluster.api).get_code)
    assert version.major == "1"
    groups = await cluster.call(client.ApisApi(cluster.api).get_api_versions)
    assert "apps" in [g.name for g in groups.groups]
    resources = await cluster.call(client.AppsV1Api(cluster.api).get_api_resources)
    assert "deployments/scale" in [r.name for r in resources.resources]
