"""Fake GPU nodes for the local cluster: product catalogue, labels and loopback addressing.

Role: builds the Node bodies that `LocalCluster.add_gpu_nodes` creates; KWOK then keeps them
Ready and plays the pods scheduled onto them. Every address handed out lies in 127.0.0.0/8:
the node's InternalIP and its spec.podCIDR (which KWOK uses to give pods their IPs), so a client
that follows a pod or node IP can only ever reach this machine.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kubernetes import client

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
POOL_LABEL = "inferno.e2e/pool"
LOOPBACK_NET = ipaddress.IPv4Network("127.0.0.0/8")
MAX_NODES = 250 * 250  # node k gets 127.0.<k // 250>.<k % 250 + 2>


@dataclass(frozen=True)
class GpuProduct:
    """A GPU model as the device plugins label it: vendor resource, product label, memory."""

    product: str
    vendor: str  # "nvidia" or "amd": selects the label prefix and extended resource name
    memory_mib: int

    @property
    def short_name(self) -> str:
        """Lowercase product without the vendor prefix: "NVIDIA-L40S" -> "l40s"."""
        return self.product.lower().split("-", 1)[1]

    @property
    def resource(self) -> str:
        return f"{self.vendor}.com/gpu"

    @property
    def product_label(self) -> str:
        return f"{self.vendor}.com/gpu.product"


GPU_PRODUCTS: dict[str, GpuProduct] = {
    p.product: p
    for p in (
        GpuProduct("NVIDIA-A100-SXM4-80GB", "nvidia", 81920),
        GpuProduct("NVIDIA-H100-80GB-HBM3", "nvidia", 81559),
        GpuProduct("NVIDIA-L40S", "nvidia", 46068),
        GpuProduct("NVIDIA-L4", "nvidia", 23034),
        GpuProduct("AMD-Instinct-MI300X", "amd", 196608),
    )
}


def gpu_product(name: str) -> GpuProduct:
    try:
        return GPU_PRODUCTS[name]
    except KeyError:
        raise ValueError(f"unknown GPU product {name!r}; known: {sorted(GPU_PRODUCTS)}") from None


def node_addresses(index: int) -> tuple[str, str]:
    """(InternalIP, podCIDR) for the index-th node of a cluster, both inside 127.0.0.0/8.

    Example: index 3 -> ("127.0.0.5", "127.64.3.0/24"); pods of that node get 127.64.3.x.
    """
    if not 0 <= index < MAX_NODES:
        raise ValueError(f"node index {index} outside 0..{MAX_NODES - 1}")
    node_ip = f"127.0.{index // 250}.{index % 250 + 2}"  # 127.0.0.1 stays the servers' address
    pod_cidr = f"127.{64 + index // 256}.{index % 256}.0/24"
    for value in (node_ip, pod_cidr):
        assert ipaddress.IPv4Network(value).subnet_of(LOOPBACK_NET), value
    return node_ip, pod_cidr


def gpu_node_body(
    name: str,
    index: int,
    product: GpuProduct,
    gpus: int,
    pool: str,
    extra_labels: dict[str, str] | None = None,
) -> client.V1Node:
    """A Node with GPU labels and allocatable GPUs; status is kept on create and by KWOK's stage."""
    node_ip, pod_cidr = node_addresses(index)
    resources = {"cpu": "96", "memory": "1Ti", "pods": "110", product.resource: str(gpus)}
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        POOL_LABEL: pool,
        product.product_label: product.product,
        f"{product.vendor}.com/gpu.count": str(gpus),
        f"{product.vendor}.com/gpu.memory": str(product.memory_mib),
        **(extra_labels or {}),
    }
    return client.V1Node(
        api_version="v1",
        kind="Node",
        metadata=client.V1ObjectMeta(
            name=name,
            labels=labels,
            annotations={KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        ),
        spec=client.V1NodeSpec(pod_cidr=pod_cidr, pod_cidrs=[pod_cidr]),
        status=client.V1NodeStatus(
            allocatable=dict(resources),
            capacity=dict(resources),
            addresses=[
                client.V1NodeAddress(type="InternalIP", address=node_ip),
                client.V1NodeAddress(type="Hostname", address=name),
            ],
        ),
    )
