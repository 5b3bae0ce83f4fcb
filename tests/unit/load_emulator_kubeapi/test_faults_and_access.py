"""Injected failures seen through the client; token auth, kubeconfig, leases, watch, raw HTTP."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from load_emulator.kubeapi import (
    DEPLOYMENTS,
    BuiltinController,
    ControllerSettings,
    Fault,
    ObjectStore,
    ThreadedKubeApi,
    start_kubeapi,
)
from load_emulator.kubeapi import builders as b
from tests.unit.load_emulator_kubeapi.conftest import Cluster, api_client


async def test_injected_409_then_success(cluster: Cluster) -> None:
    cluster.store.create(b.deployment("llama", "team-a"))
    cluster.store.faults.fail_next("patch", "deployments", name="llama", status=409, count=2)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            await cluster.call(
                cluster.apps.patch_namespaced_deployment, "llama", "team-a", {"spec": {"replicas": 2}}
            )
        assert err.value.status == 409 and json.loads(err.value.body)["reason"] == "Conflict"
    done = await cluster.call(
        cluster.apps.patch_namespaced_deployment, "llama", "team-a", {"spec": {"replicas": 2}}
    )
    assert done.spec.replicas == 2 and len(cluster.store.faults.fired) == 2


async def test_injected_500_only_hits_the_matching_requests(cluster: Cluster) -> None:
    cluster.store.create(b.deployment("llama", "team-a"))
    cluster.store.faults.add(Fault(status=500, count=-1, verb="list", resource="deployments"))
    with pytest.raises(ApiException) as err:
        await cluster.call(cluster.apps.list_deployment_for_all_namespaces)
    assert err.value.status == 500
    read = await cluster.call(cluster.apps.read_namespaced_deployment, "llama", "team-a")  # a get, not a list
    assert read.metadata.name == "llama"
    cluster.store.faults.clear()
    assert len((await cluster.call(cluster.apps.list_deployment_for_all_namespaces)).items) == 1


async def test_injected_delay_is_a_client_timeout_and_the_write_still_happens(cluster: Cluster) -> None:
    cluster.store.create(b.deployment("llama", "team-a"))
    cluster.store.faults.add(Fault(status=0, verb="patch", delay_s=0.6))
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        await cluster.call(
            cluster.apps.patch_namespaced_deployment,
            "llama",
            "team-a",
            {"spec": {"replicas": 5}},
            _request_timeout=0.2,
        )
    for _ in range(50):  # as with a real server, a timed-out write may still land
        if cluster.store.get(DEPLOYMENTS, "team-a", "llama")["spec"]["replicas"] == 5:
            break
        await asyncio.sleep(0.05)
    assert cluster.store.get(DEPLOYMENTS, "team-a", "llama")["spec"]["replicas"] == 5


async def test_token_auth_and_kubeconfig(tmp_path: Path) -> None:
    async with await start_kubeapi(token="s3cret") as server:
        server.store.create(b.config_map("cm", "inferno", {"k": "v"}))
        anonymous = api_client(server.url)
        with pytest.raises(ApiException) as err:
            await asyncio.to_thread(client.CoreV1Api(anonymous).list_namespace, _request_timeout=5)
        assert err.value.status == 401
        path = server.write_kubeconfig(tmp_path / "kubeconfig")
        assert json.loads(path.read_text())["clusters"][0]["cluster"]["server"] == server.url
        from_file = config.new_client_from_config(config_file=str(path))
        cm = await asyncio.to_thread(client.CoreV1Api(from_file).read_namespaced_config_map, "cm", "inferno")
        assert cm.data == {"k": "v"}
        anonymous.close()
        from_file.close()


async def test_only_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await start_kubeapi(host="0.0.0.0")


async def test_leases_create_get_replace(cluster: Cluster) -> None:
    coord = client.CoordinationV1Api(cluster.api)
    spec = client.V1LeaseSpec(holder_identity="controller-0", lease_duration_seconds=15,
                              renew_time=datetime(2024, 1, 1, tzinfo=UTC))  # fmt: skip
    lease = client.V1Lease(metadata=client.V1ObjectMeta(name="inferno-leader"), spec=spec)
    await cluster.call(coord.create_namespaced_lease, "inferno", lease)
    got = await cluster.call(coord.read_namespaced_lease, "inferno-leader", "inferno")
    assert got.spec.holder_identity == "controller-0" and got.spec.renew_time.year == 2024
    got.spec.holder_identity = "controller-1"
    replaced = await cluster.call(coord.replace_namespaced_lease, "inferno-leader", "inferno", got)
    assert replaced.spec.holder_identity == "controller-1"
    with pytest.raises(ApiException) as err:  # a second candidate with the stale version loses
        await cluster.call(coord.replace_namespaced_lease, "inferno-leader", "inferno", got)
    assert err.value.status == 409


async def test_watch_streams_added_and_modified(cluster: Cluster) -> None:
    cluster.store.create(b.deployment("llama", "team-a"))
    events: list[tuple[str, Any]] = []
    seen_modified = threading.Event()

    def consume() -> None:
        w = watch.Watch()
        for ev in w.stream(cluster.apps.list_namespaced_deployment, "team-a", timeout_seconds=5):
            events.append((ev["type"], ev["object"].spec.replicas))
            if ev["type"] == "MODIFIED":
                seen_modified.set()
                w.stop()

    consumer = asyncio.create_task(asyncio.to_thread(consume))
    for _ in range(100):
        if events:
            break
        await asyncio.sleep(0.02)
    cluster.store.update(DEPLOYMENTS, "team-a", "llama", lambda d: d["spec"].update(replicas=4))
    await asyncio.wait_for(consumer, 10)
    assert events == [("ADDED", 1), ("MODIFIED", 4)]


async def test_raw_http_shapes(cluster: Cluster) -> None:
    cluster.store.create(b.deployment("llama", "team-a"))
    async with aiohttp.ClientSession(cluster.server.url) as http:
        async with http.get("/apis/apps/v1/namespaces/team-a/deployments") as resp:
            body = await resp.json()
            assert (body["kind"], body["apiVersion"]) == ("DeploymentList", "apps/v1")
        async with http.get("/apis/apps/v1/namespaces/team-a/widgets") as resp:
            assert resp.status == 404 and (await resp.json())["kind"] == "Status"
        async with http.post("/apis/apps/v1/namespaces/team-a/deployments/llama", data="{}") as resp:
            assert resp.status == 405
        headers = {"Content-Type": "application/merge-patch+json"}
        async with http.patch(
            "/apis/apps/v1/namespaces/team-a/deployments/llama", data="{not json", headers=headers
        ) as r:
            assert r.status == 400
        async with http.get("/healthz") as resp:
            assert await resp.text() == "ok"


def test_threaded_server_for_synchronous_callers() -> None:
    controller = BuiltinController(ObjectStore(), settings=ControllerSettings(poll_interval_s=0.05))
    with ThreadedKubeApi(controller=controller) as server:
        server.store.create(b.node("a100-0", {"gpu": "a100"}, {"nvidia.com/gpu": 2}))
        apps = client.AppsV1Api(api_client(server.url))
        apps.create_namespaced_deployment("n", b.deployment("d", "n", replicas=2, gpus=1), _request_timeout=5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = apps.read_namespaced_deployment_status("d", "n", _request_timeout=5).status
            if status.ready_replicas == 2:
                break
            time.sleep(0.05)
        assert status.ready_replicas == 2
