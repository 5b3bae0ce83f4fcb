"""The repo's own Kubernetes adapters (collector, actuator) and a subprocess, against the emulator.

This is the embedded demo's wiring in small: the real adapters over the official client, and a
separate process that finds the server through ``KUBECONFIG``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actuator.kube import KubernetesPort
from actuator.settings import ActuatorSettings
from collector.kube_adapter import KubeAdapter
from load_emulator.kubeapi import builders as b
from tests.unit.load_emulator_kubeapi.conftest import Cluster

A100 = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}


async def test_collector_and_actuator_adapters(cluster: Cluster) -> None:
    cluster.store.create(b.node("a100-0", A100, {"nvidia.com/gpu": 4}))
    labels = {"inferno.server.managed": "true"}
    dep = b.deployment(
        "llama",
        "team-a",
        replicas=2,
        gpus=1,
        node_selector=A100,
        labels=labels,
        args=["--max-num-seqs", "64"],
    )
    cluster.store.create(dep)
    cluster.reconcile()
    cluster.clock.advance(30)
    cluster.reconcile()
    collector = KubeAdapter(cluster.api, 5.0)
    (info,) = await collector.list_managed_deployments(())
    assert (info.name, info.replicas, info.ready_replicas) == ("llama", 2, 2)
    pods = await collector.list_pods(("team-a",))
    assert {p.deployment for p in pods} == {"llama"} and {p.node_name for p in pods} == {"a100-0"}
    assert [n.allocatable.get("nvidia.com/gpu") for n in await collector.list_nodes()] == [4.0]

    actuator = KubernetesPort(cluster.api, ActuatorSettings())
    seen = (await actuator.list_deployments(["team-a"]))[("team-a", "llama")]
    version = seen["metadata"]["resourceVersion"]
    container = {"name": "vllm", "args": ["--max-num-seqs", "128"]}
    patch = {
        "metadata": {"resourceVersion": version},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [container]}}},
    }
    await actuator.patch_deployment("team-a", "llama", patch)
    with pytest.raises(Exception) as err:  # the same version again: the object moved
        await actuator.patch_deployment("team-a", "llama", patch)
    assert str(getattr(err.value, "kind", "")) == "conflict" and getattr(err.value, "status", None) == 409
    involved = {"kind": "Deployment", "namespace": "team-a", "name": "llama"}
    await actuator.create_event(
        "team-a", {"metadata": {"generateName": "llama."}, "involvedObject": involved, "reason": "Scaled"}
    )
    cluster.reconcile()
    (info,) = await collector.list_managed_deployments(("team-a",))
    assert info.replicas == 3
    events = await cluster.call(cluster.core.list_namespaced_event, "team-a")
    assert [e.reason for e in events.items] == ["Scaled"]


async def test_a_subprocess_reaches_it_through_kubeconfig(cluster: Cluster, tmp_path: Path) -> None:
    cluster.store.create(b.config_map("inferno-static", "inferno", {"k": "v"}))
    path = cluster.server.write_kubeconfig(tmp_path / "kubeconfig")
    script = (
        "from kubernetes import client, config\n"
        "config.load_kube_config()\n"
        "api = client.CoreV1Api()\n"
        "print(api.read_namespaced_config_map('inferno-static', 'inferno', _request_timeout=5).data)\n"
    )
    env = {**os.environ, "KUBECONFIG": str(path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == "{'k': 'v'}"
