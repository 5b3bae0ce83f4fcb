"""Capacity derived from Nodes, reservation for untrusted servers, and the adapter's conversions."""

from __future__ import annotations

import pytest
from kubernetes import client

from collector.capacity import node_capacity, pod_requests, reserve
from collector.kube_adapter import owning_deployment, to_node, to_pod
from collector.ports import NodeInfo, PodInfo
from contract.collect import Placement
from plumbing.kube import load_api_client

GPU = "nvidia.com/gpu"
PRODUCT = "nvidia.com/gpu.product"
PLACEMENT = [
    Placement.model_validate(p)
    for p in (
        {"type": "A100", "nodeLabelValue": "NVIDIA-A100-SXM4-80GB"},
        {"type": "L4", "nodeLabelValue": "NVIDIA-L4"},
        {
            "type": "MI300",
            "nodeLabelKey": "amd.com/gpu.product",
            "nodeLabelValue": "MI300X",
            "resource": "amd.com/gpu",
        },
    )
]


def node(
    name: str, product: str, gpus: float = 8, key: str = PRODUCT, resource: str = GPU, **kw: bool
) -> NodeInfo:
    return NodeInfo(name, {key: product}, {resource: gpus}, **kw)


def pod(name: str, node_name: str, gpus: float, deployment: str | None = None, ns: str = "llm") -> PodInfo:
    return PodInfo(ns, name, node_name, deployment, {GPU: gpus})


@pytest.mark.parametrize(
    ("nodes", "pods", "expected"),
    [
        ([node("a", "NVIDIA-A100-SXM4-80GB")], [], {"A100": 8, "L4": 0, "MI300": 0}),
        ([node("a", "NVIDIA-A100-SXM4-80GB"), node("b", "NVIDIA-A100-SXM4-80GB", 4)], [], {"A100": 12}),
        ([node("a", "NVIDIA-A100-SXM4-80GB", ready=False)], [], {"A100": 0}),
        ([node("a", "NVIDIA-A100-SXM4-80GB", unschedulable=True)], [], {"A100": 0}),
        ([node("a", "NVIDIA-H100")], [], {"A100": 0}),
        ([node("a", "MI300X", key="amd.com/gpu.product", resource="amd.com/gpu")], [], {"MI300": 8}),
        ([node("a", "NVIDIA-L4", 2)], [pod("train", "a", 2)], {"L4": 0}),
        ([node("a", "NVIDIA-L4", 2)], [pod("train", "a", 5)], {"L4": 0}),
        ([node("a", "NVIDIA-A100-SXM4-80GB")], [pod("w-1", "a", 4, "web"), pod("t", "a", 2)], {"A100": 6}),
        ([node("a", "NVIDIA-A100-SXM4-80GB")], [pod("o-1", "a", 4, "other")], {"A100": 4}),
        ([node("a", "NVIDIA-A100-SXM4-80GB")], [pod("p", "", 4), pod("q", "b", 4)], {"A100": 8}),
    ],
    ids=[
        "one-node",
        "nodes-add-up",
        "not-ready",
        "cordoned",
        "unknown-product",
        "amd",
        "used-by-outsider",
        "overcommitted-floors-at-zero",
        "managed-pods-are-replanned",
        "unmanaged-deployment-counts-as-used",
        "pending-or-other-node",
    ],
)
def test_node_capacity(nodes: list[NodeInfo], pods: list[PodInfo], expected: dict[str, int]) -> None:
    cards, _ = node_capacity(nodes, pods, PLACEMENT, optimized={("llm", "web")})
    assert {t: cards[t] for t in expected} == expected


def test_left_out_nodes_are_noted() -> None:
    _, notes = node_capacity([node("a", "NVIDIA-L4", ready=False)], [], PLACEMENT, set())
    assert notes == ["node a: not Ready, its L4 cards are not counted"]


def test_pod_requests_take_init_containers_max() -> None:
    assert pod_requests([{GPU: 1}, {GPU: 2}], [{GPU: 4}, {GPU: 1}]) == {GPU: 4}
    assert pod_requests([{GPU: 2}, {GPU: 2}], [{GPU: 1}]) == {GPU: 4}


def test_reserve_takes_held_cards_off() -> None:
    left, notes = reserve({"A100": 8, "L4": 4}, [("s1", "A100", 4), ("s2", "L4", 6)])
    assert left == {"A100": 4, "L4": 0}
    assert notes == [
        "reserved 4 A100 cards held by s1 (untrusted)",
        "reserved 6 L4 cards held by s2 (untrusted) (only 4 were left)",
    ]


def _k8s_pod(
    owner: str | None, template_hash: str | None, gpus: str | None, limits_only: bool = False
) -> client.V1Pod:
    resources = None
    if gpus is not None:
        quantities = {GPU: gpus, "cpu": "500m", "memory": "1Gi"}
        resources = (
            client.V1ResourceRequirements(limits=quantities)
            if limits_only
            else client.V1ResourceRequirements(requests=quantities)
        )
    refs = (
        [
            client.V1OwnerReference(
                api_version="apps/v1", kind="ReplicaSet", name=owner, uid="u", controller=True
            )
        ]
        if owner
        else None
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(
            name="p",
            namespace="llm",
            labels={"pod-template-hash": template_hash} if template_hash else None,
            owner_references=refs,
        ),
        spec=client.V1PodSpec(node_name="n1", containers=[client.V1Container(name="c", resources=resources)]),
    )


@pytest.mark.parametrize(
    ("pod_obj", "deployment", "gpus"),
    [
        (_k8s_pod("web-7d9f8c", "7d9f8c", "2"), "web", 2.0),
        (_k8s_pod("web-7d9f8c", "7d9f8c", "2", limits_only=True), "web", 2.0),
        (_k8s_pod("web-7d9f8c", None, None), None, None),
        (_k8s_pod("web-abc", "7d9f8c", "1"), None, 1.0),
        (_k8s_pod(None, None, "lots"), None, None),
    ],
    ids=["replicaset", "limits-only", "no-hash", "hash-mismatch", "bare-pod-garbage-quantity"],
)
def test_pod_conversion(pod_obj: client.V1Pod, deployment: str | None, gpus: float | None) -> None:
    info = to_pod(pod_obj)
    assert owning_deployment(pod_obj) == info.deployment == deployment
    assert info.requests.get(GPU) == gpus
    assert "cpu" not in info.requests and info.node_name == "n1"


def test_node_conversion() -> None:
    obj = client.V1Node(
        metadata=client.V1ObjectMeta(name="n1", labels={PRODUCT: "NVIDIA-L4"}),
        spec=client.V1NodeSpec(unschedulable=True),
        status=client.V1NodeStatus(
            allocatable={GPU: "4", "cpu": "64"},
            conditions=[client.V1NodeCondition(type="Ready", status="False")],
        ),
    )
    assert to_node(obj) == NodeInfo("n1", {PRODUCT: "NVIDIA-L4"}, {GPU: 4.0}, ready=False, unschedulable=True)


def test_unit_tests_cannot_load_a_kube_config() -> None:
    with pytest.raises(RuntimeError, match="must not load a kube config"):
        load_api_client()
