"""Builders and a recording fake of the actuator's KubePort (applies strategic merge patches)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from http.server import HTTPServer
from typing import Any

from kubernetes import client

from actuator.settings import ActuatorSettings
from contract.collect import ManagedServer, Placement
from contract.solution import DecisionStatus, ServerAllocation, ServerDecision, Solution, SolverReport
from contract.steps import Step
from load_emulator.kubeapi.strategic import strategic_merge
from plumbing.client import ErrorKind, UpstreamError

NS = "team-a"
PLACEMENT = [
    Placement(type="A100", nodeLabelKey="nvidia.com/gpu.product", nodeLabelValue="NVIDIA-A100-SXM4-80GB"),
    Placement(type="L4", nodeLabelValue="NVIDIA-L4"),
    Placement(type="MI300X", nodeLabelValue="AMD-Instinct-MI300X"),
]
SELECTOR = {"A100": "NVIDIA-A100-SXM4-80GB", "L4": "NVIDIA-L4"}


def settings(**overrides: Any) -> ActuatorSettings:
    return ActuatorSettings(**overrides)


def deployment(
    name: str = "llama",
    replicas: int = 2,
    accelerator: str = "A100",
    batch: int = 64,
    args: list[str] | None = None,
    gpus: int = 1,
    resource_version: str = "10",
    **container: Any,
) -> dict[str, Any]:
    labels = {
        "inferno.server.managed": "true",
        "inferno.server.allocation.accelerator": accelerator,
        "inferno.server.allocation.maxbatchsize": str(batch),
    }
    vllm: dict[str, Any] = {
        "name": "vllm",
        "image": "vllm/vllm-openai:v0.6.0",
        "args": ["--model", "meta-llama/Llama-2-13b", "--max-num-seqs", str(batch)] if args is None else args,
        "resources": {
            "requests": {"cpu": "4", "nvidia.com/gpu": str(gpus)},
            "limits": {"nvidia.com/gpu": str(gpus)},
        },
        **container,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "resourceVersion": resource_version,
            "labels": labels,
        },
        "spec": {
            "replicas": replicas,
            "template": {
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": SELECTOR.get(accelerator, "x")},
                    "containers": [vllm, {"name": "sidecar", "image": "busybox"}],
                }
            },
        },
    }


def server(name: str = "llama", **fields: Any) -> ManagedServer:
    base: dict[str, Any] = {
        "server": name,
        "namespace": NS,
        "deployment": name,
        "model": "llama_13b",
        "service_class": "Premium",
        "current_replicas": 2,
        "trusted": True,
        "load_source": "prometheus",
    }
    return ManagedServer(**{**base, **fields})


def decision(
    name: str = "llama",
    replicas: int = 3,
    accelerator: str = "A100",
    batch: int = 64,
    cards: int = 1,
    status: DecisionStatus = DecisionStatus.ALLOCATED,
    acc_type: str | None = None,
) -> ServerDecision:
    alloc = None
    if status is not DecisionStatus.UNALLOCATED:
        alloc = ServerAllocation(
            accelerator=accelerator,
            accelerator_type=acc_type or accelerator.rsplit("x", maxsplit=1)[-1],
            num_replicas=replicas,
            max_batch=batch,
            cards_per_replica=cards,
            cost=40.0 * replicas * cards,
            itl_ms=20,
            ttft_ms=100,
            utilization=0.5,
            max_rpm_per_replica=60,
        )
    return ServerDecision(
        server=name,
        service_class="Premium",
        model="llama_13b",
        priority=1,
        status=status,
        allocation=alloc,
        demand_rpm=60,
        served_rpm=60,
        steps=[Step.note("solve", "fits the SLO")],
    )


def solution(*decisions: ServerDecision) -> Solution:
    return Solution(decisions=list(decisions), solver=SolverReport(name="greedy", status="heuristic"))


def apply_patch(obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores after a strategic merge patch (the emulated API server's merge)."""
    merged = strategic_merge(obj, patch)
    assert merged is not None, "the actuator never deletes a whole object by patch"
    return merged


class FakeKube:
    """Deployments in memory; patches checked against resourceVersion like the API server (409)."""

    def __init__(self, *deployments: dict[str, Any]) -> None:
        self.objects = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in deployments}
        self.patches: list[tuple[str, str, dict[str, Any]]] = []
        self.reads: list[tuple[str, str]] = []
        self.events: list[dict[str, Any]] = []
        self.fail_patch: list[UpstreamError] = []
        self.fail_list: UpstreamError | None = None

    def bump(self, namespace: str, name: str) -> None:
        """A concurrent writer changed the object."""
        meta = self.objects[(namespace, name)]["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)

    async def list_deployments(self, namespaces: Collection[str]) -> dict[tuple[str, str], dict[str, Any]]:
        if self.fail_list:
            raise self.fail_list
        return {k: copy.deepcopy(v) for k, v in self.objects.items() if k[0] in namespaces}

    async def read_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads.append((namespace, name))
        if (namespace, name) not in self.objects:
            raise UpstreamError(ErrorKind.PERMANENT, f"deployments {name!r} not found", 404)
        return copy.deepcopy(self.objects[(namespace, name)])

    async def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.patches.append((namespace, name, patch))
        if self.fail_patch:
            raise self.fail_patch.pop(0)
        current = self.objects[(namespace, name)]
        if patch["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise UpstreamError(ErrorKind.CONFLICT, "the object has been modified", 409)
        body = copy.deepcopy(patch)
        body["metadata"].pop("resourceVersion")
        self.objects[(namespace, name)] = apply_patch(current, body)
        self.bump(namespace, name)

    async def create_event(self, namespace: str, event: dict[str, Any]) -> None:
        self.events.append(event)


@contextmanager
def loopback_api(server: HTTPServer, **config: Any) -> Iterator[client.ApiClient]:
    """``server`` (bound to 127.0.0.1) served from a thread, and a kubernetes ApiClient pointed at
    it (``config``: more ``client.Configuration`` attributes, e.g. ``api_key``); stopped after."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
    for name, value in config.items():
        setattr(configuration, name, value)
    try:
        yield client.ApiClient(configuration)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
