"""The built-in controller: ReplicaSets and Pods per Deployment, scheduling, readiness, status."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from load_emulator.kubeapi import (
    DEPLOYMENTS,
    PODS,
    REPLICASETS,
    BuiltinController,
    ControllerSettings,
    ObjectStore,
)
from load_emulator.kubeapi import builders as b
from tests.unit.load_emulator_kubeapi.conftest import Cluster, FakeClock

A100 = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
MI300X = {"amd.com/gpu.product": "AMD-Instinct-MI300X"}


def _nodes(store: ObjectStore) -> None:
    store.create(b.node("a100-0", A100, {"nvidia.com/gpu": 4}))
    store.create(b.node("a100-1", A100, {"nvidia.com/gpu": 2}))
    store.create(b.node("mi300x-0", MI300X, {"amd.com/gpu": 8}))
    store.create(b.node("cpu-0", {}, {}))


def _pods(store: ObjectStore, name: str = "llama") -> list[dict[str, Any]]:
    return store.list(PODS, "team-a", label_selector=f"app.kubernetes.io/name={name}")


def _phases(pods: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((p["status"]["phase"], p["spec"].get("nodeName", "")) for p in pods)


async def test_pods_are_scheduled_by_node_selector_and_gpus_and_extra_ones_stay_pending(
    cluster: Cluster,
) -> None:
    _nodes(cluster.store)
    dep = b.deployment("llama", "team-a", replicas=4, gpus=2, node_selector=A100)
    await cluster.call(cluster.apps.create_namespaced_deployment, "team-a", dep)
    cluster.reconcile()
    pods = await cluster.call(
        cluster.core.list_namespaced_pod, "team-a", label_selector="app.kubernetes.io/name=llama"
    )
    bound = sorted(p.spec.node_name for p in pods.items if p.spec.node_name)
    assert bound == ["a100-0", "a100-0", "a100-1"]  # 4 + 2 GPUs of 2 each: three pods fit
    pending = [p for p in pods.items if not p.spec.node_name]
    assert len(pending) == 1 and pending[0].status.phase == "Pending"
    cond = next(c for c in pending[0].status.conditions if c.type == "PodScheduled")
    assert (cond.status, cond.reason) == ("False", "Unschedulable")
    assert "Insufficient nvidia.com/gpu" in cond.message and "didn't match" in cond.message
    for pod in pods.items:
        rs = pod.metadata.owner_references[0]
        assert (rs.kind, rs.controller) == (
            "ReplicaSet",
            True,
        ) and rs.name == f"llama-{pod.metadata.labels['pod-template-hash']}"
        assert pod.metadata.name.startswith(rs.name + "-")
        if pod.status.pod_ip:
            assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network("127.0.0.0/8")
    assert len({p.status.pod_ip for p in pods.items if p.status.pod_ip}) == 3


async def test_amd_gpus_and_missing_resources(cluster: Cluster) -> None:
    _nodes(cluster.store)
    cluster.store.create(
        b.deployment("mi", "team-a", replicas=2, gpus=4, gpu_resource="amd.com/gpu", node_selector=MI300X)
    )
    cluster.store.create(b.deployment("nowhere", "team-a", replicas=1, gpus=1, node_selector={"x": "y"}))
    cluster.store.create(b.deployment("cpu-only", "team-a", replicas=2))
    cluster.reconcile()
    assert _phases(_pods(cluster.store, "mi")) == [("Running", "mi300x-0")] * 2
    assert _phases(_pods(cluster.store, "nowhere")) == [("Pending", "")]
    assert [n for _, n in _phases(_pods(cluster.store, "cpu-only"))] == [
        "a100-0",
        "a100-0",
    ]  # first fit by name


async def test_readiness_after_the_start_up_delay_with_a_fake_clock(cluster: Cluster) -> None:
    _nodes(cluster.store)
    cluster.store.create(b.deployment("llama", "team-a", replicas=2, gpus=1, node_selector=A100))
    cluster.reconcile()
    dep = await cluster.call(cluster.apps.read_namespaced_deployment, "llama", "team-a")
    assert (dep.status.replicas, dep.status.ready_replicas, dep.status.unavailable_replicas) == (2, None, 2)
    cluster.clock.advance(29.0)
    cluster.reconcile()
    assert cluster.store.get(DEPLOYMENTS, "team-a", "llama")["status"].get("readyReplicas") is None
    cluster.clock.advance(1.0)
    cluster.reconcile()
    dep = await cluster.call(cluster.apps.read_namespaced_deployment_status, "llama", "team-a")
    assert (dep.status.ready_replicas, dep.status.available_replicas, dep.status.updated_replicas) == (
        2,
        2,
        2,
    )
    assert dep.status.observed_generation == dep.metadata.generation == 1
    pod = _pods(cluster.store)[0]
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
    assert cluster.reconcile() == 0  # nothing left to do: no writes


async def test_scaling_through_the_scale_subresource_adds_and_removes_pods(cluster: Cluster) -> None:
    _nodes(cluster.store)
    cluster.store.create(b.deployment("llama", "team-a", replicas=1, gpus=1, node_selector=A100))
    cluster.reconcile()
    scale = await cluster.call(cluster.apps.read_namespaced_deployment_scale, "llama", "team-a")
    assert (scale.spec.replicas, scale.status.selector) == (1, "app.kubernetes.io/name=llama")
    await cluster.call(
        cluster.apps.patch_namespaced_deployment_scale, "llama", "team-a", {"spec": {"replicas": 3}}
    )
    cluster.reconcile()
    assert len(_pods(cluster.store)) == 3
    cluster.clock.advance(60)
    cluster.reconcile()
    await cluster.call(
        cluster.apps.patch_namespaced_deployment_scale, "llama", "team-a", {"spec": {"replicas": 1}}
    )
    cluster.reconcile()
    assert len(_pods(cluster.store)) == 1
    dep = cluster.store.get(DEPLOYMENTS, "team-a", "llama")
    assert (dep["spec"]["replicas"], dep["status"]["replicas"], dep["status"]["readyReplicas"]) == (1, 1, 1)


async def test_template_change_replaces_the_pods(cluster: Cluster) -> None:
    _nodes(cluster.store)
    cluster.store.create(
        b.deployment("llama", "team-a", replicas=2, gpus=1, node_selector=A100, args=["--max-num-seqs", "64"])
    )
    cluster.reconcile()
    cluster.clock.advance(60)
    cluster.reconcile()
    old = {p["metadata"]["name"] for p in _pods(cluster.store)}
    amd = {"nvidia.com/gpu": None, "amd.com/gpu": "1"}
    container = {"name": "vllm", "resources": {"requests": amd, "limits": amd}}
    selector = {"nvidia.com/gpu.product": None, **MI300X}
    patch = {"spec": {"template": {"spec": {"nodeSelector": selector, "containers": [container]}}}}
    await cluster.call(cluster.apps.patch_namespaced_deployment, "llama", "team-a", patch)
    cluster.reconcile()
    pods = _pods(cluster.store)
    assert not old & {p["metadata"]["name"] for p in pods}
    assert _phases(pods) == [("Running", "mi300x-0")] * 2
    assert len(cluster.store.list(REPLICASETS, "team-a")) == 1  # recreate: the old ReplicaSet is gone
    dep = cluster.store.get(DEPLOYMENTS, "team-a", "llama")
    assert dep["metadata"]["generation"] == 2 and dep["status"]["observedGeneration"] == 2
    assert dep["status"].get("readyReplicas") is None  # new pods start again
    cluster.clock.advance(30)
    cluster.reconcile()
    assert cluster.store.get(DEPLOYMENTS, "team-a", "llama")["status"]["readyReplicas"] == 2


async def test_a_driver_can_take_a_pod_out_and_pending_pods_land_when_capacity_appears(
    cluster: Cluster,
) -> None:
    cluster.store.create(b.deployment("llama", "team-a", replicas=2, gpus=1, node_selector=A100))
    cluster.reconcile()
    assert _phases(_pods(cluster.store)) == [("Pending", "")] * 2
    cluster.store.create(b.node("a100-9", A100, {"nvidia.com/gpu": 8}))
    cluster.reconcile()
    cluster.clock.advance(30)
    cluster.reconcile()
    name = _pods(cluster.store)[0]["metadata"]["name"]

    def not_ready(pod: dict[str, Any]) -> None:
        pod["status"]["conditions"] = [
            {**c, "status": "False"} if c["type"] == "Ready" else c for c in pod["status"]["conditions"]
        ]

    cluster.store.update(PODS, "team-a", name, not_ready)
    cluster.reconcile()
    assert cluster.store.get(DEPLOYMENTS, "team-a", "llama")["status"]["readyReplicas"] == 1


async def test_running_in_the_background_reacts_to_changes() -> None:
    clock = FakeClock()
    store = ObjectStore()
    controller = BuiltinController(
        store, clock, ControllerSettings(startup_delay_s=0.0, poll_interval_s=0.05)
    )
    store.create(b.node("a100-0", A100, {"nvidia.com/gpu": 8}))
    task = asyncio.create_task(controller.run())
    try:
        store.create(b.deployment("llama", "team-a", replicas=3, gpus=1, node_selector=A100))
        for _ in range(100):
            if (store.get(DEPLOYMENTS, "team-a", "llama").get("status") or {}).get("readyReplicas") == 3:
                break
            await asyncio.sleep(0.02)
        assert store.get(DEPLOYMENTS, "team-a", "llama")["status"]["readyReplicas"] == 3
    finally:
        controller.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
