"""Smoke tests of the local real test environment itself (cluster/ and the conftest fixtures).

Role: proves, against the real servers, the behaviours the e2e scenarios rely on: GPU-aware
scheduling on KWOK nodes with loopback pod IPs, Pending beyond capacity, moving pods by patching
the nodeSelector, RBAC enforcement for a ServiceAccount kubeconfig, and Prometheus scraping a
loopback target. Each test uses its own namespace and node pool so they do not share capacity.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import NamedTuple

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from .cluster.local_cluster import LocalCluster, client_for
from .cluster.nodes import LOOPBACK_NET, POOL_LABEL, gpu_product
from .cluster.procs import free_port
from .cluster.prometheus import LocalPrometheus, ScrapeTarget

pytestmark = pytest.mark.e2e


class PodView(NamedTuple):
    """The few pod fields the assertions need, with the client's Optionals resolved once."""

    name: str
    node: str | None
    phase: str | None
    pod_ip: str | None
    host_ip: str | None
    unschedulable: bool

    @classmethod
    def of(cls, pod: client.V1Pod) -> PodView:
        meta, spec, status = pod.metadata, pod.spec, pod.status or client.V1PodStatus()
        return cls(
            name=meta.name or "" if meta else "",
            node=spec.node_name if spec else None,
            phase=status.phase,
            pod_ip=status.pod_ip,
            host_ip=status.host_ip,
            unschedulable=any(
                c.type == "PodScheduled" and c.reason == "Unschedulable" for c in status.conditions or []
            ),
        )

    @property
    def running(self) -> bool:
        return self.phase == "Running" and bool(self.pod_ip)


def deployment(name: str, product: str, pool: str, replicas: int) -> client.V1Deployment:
    spec = gpu_product(product)
    container = client.V1Container(
        name="vllm",
        image="registry.invalid/vllm:fake",
        resources=client.V1ResourceRequirements(limits={spec.resource: "1"}),
    )
    return client.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels={"app": name}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": name}),
                spec=client.V1PodSpec(
                    node_selector={spec.product_label: product, POOL_LABEL: pool}, containers=[container]
                ),
            ),
        ),
    )


def pods_of(cluster: LocalCluster, namespace: str, app: str) -> list[PodView]:
    """Pods of an app, leaving out those already being deleted (old ReplicaSet leftovers)."""
    pods = client.CoreV1Api(cluster.api_client).list_namespaced_pod(namespace, label_selector=f"app={app}")
    return [PodView.of(p) for p in pods.items if p.metadata is None or p.metadata.deletion_timestamp is None]


def is_loopback(ip: str | None) -> bool:
    return ip is not None and ipaddress.IPv4Address(ip) in LOOPBACK_NET


@pytest.fixture
def namespace(local_cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace per test, also used as the test's node pool name."""
    name = "smoke-" + request.node.name.split("[")[0].removeprefix("test_").replace("_", "-")[:40]
    if "[" in request.node.name:
        name += "-" + request.node.callspec.id.lower()[:10]
    yield local_cluster.create_namespace(name)
    # Nodes are cluster-wide: remove this test's pool so later tests never see its capacity.
    local_cluster.delete_gpu_nodes(pool=name)
    client.CoreV1Api(local_cluster.api_client).delete_namespace(name)


@pytest.mark.parametrize("product", ["NVIDIA-A100-SXM4-80GB", "AMD-Instinct-MI300X"], ids=["a100", "mi300x"])
def test_gpu_pods_run_on_matching_nodes_and_overflow_stays_pending(
    local_cluster: LocalCluster, namespace: str, product: str
) -> None:
    pool = namespace
    local_cluster.add_gpu_nodes("NVIDIA-L4", count=1, gpus_per_node=8, pool=pool)  # must stay unused
    wanted = set(local_cluster.add_gpu_nodes(product, count=2, gpus_per_node=2, pool=pool))
    apps = client.AppsV1Api(local_cluster.api_client)
    apps.create_namespaced_deployment(namespace, deployment("server", product, pool, replicas=6))

    def settled() -> list[PodView] | None:
        pods = pods_of(local_cluster, namespace, "server")
        ok = sum(p.running for p in pods) == 4 and sum(p.unschedulable for p in pods) == 2
        return pods if ok and len(pods) == 6 else None

    pods = local_cluster.wait_for(settled, what="4 running + 2 unschedulable pods", timeout_s=60)
    ran = [p for p in pods if p.running]
    assert {p.node for p in ran} <= wanted, ran
    assert all(is_loopback(p.pod_ip) and is_loopback(p.host_ip) for p in ran), ran
    assert len({p.pod_ip for p in ran}) == 4, f"pod IPs must be distinct: {ran}"


def test_patching_node_selector_moves_pods(local_cluster: LocalCluster, namespace: str) -> None:
    pool = namespace
    l40s = set(local_cluster.add_gpu_nodes("NVIDIA-L40S", count=1, gpus_per_node=2, pool=pool))
    h100 = set(local_cluster.add_gpu_nodes("NVIDIA-H100-80GB-HBM3", count=1, gpus_per_node=2, pool=pool))
    apps = client.AppsV1Api(local_cluster.api_client)
    apps.create_namespaced_deployment(namespace, deployment("mover", "NVIDIA-L40S", pool, replicas=2))

    def nodes_of_running() -> set[str] | None:
        pods = pods_of(local_cluster, namespace, "mover")
        ok = len(pods) == 2 and all(p.running for p in pods)
        return {p.node or "" for p in pods} if ok else None

    assert local_cluster.wait_for(nodes_of_running, what="2 pods on L40S", timeout_s=60) == l40s
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3", POOL_LABEL: pool}
                }
            }
        }
    }
    apps.patch_namespaced_deployment("mover", namespace, patch)
    # Pods being deleted are filtered out, so this also waits for the old ones to be gone.
    local_cluster.wait_for(lambda: nodes_of_running() == h100, what="2 pods moved to H100", timeout_s=90)


def test_serviceaccount_rbac_allows_patch_but_forbids_delete(
    local_cluster: LocalCluster, namespace: str
) -> None:
    rbac = client.RbacAuthorizationV1Api(local_cluster.api_client)
    client.CoreV1Api(local_cluster.api_client).create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="autoscaler"))
    )
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="scale"),
            rules=[
                client.V1PolicyRule(
                    api_groups=["apps"], resources=["deployments"], verbs=["get", "list", "patch"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="scale"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="scale"),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="autoscaler", namespace=namespace)],
        ),
    )
    client.AppsV1Api(local_cluster.api_client).create_namespaced_deployment(
        namespace, deployment("target", "NVIDIA-L4", "nowhere", replicas=0)
    )

    kubeconfig = local_cluster.serviceaccount_kubeconfig(namespace, "autoscaler")
    sa_client = client_for(kubeconfig)
    try:
        apps = client.AppsV1Api(sa_client)
        patched = apps.patch_namespaced_deployment("target", namespace, {"spec": {"replicas": 1}})
        assert patched.spec is not None and patched.spec.replicas == 1
        names = [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items if d.metadata]
        assert names == ["target"]
        with pytest.raises(ApiException) as denied:
            apps.delete_namespaced_deployment("target", namespace)
        assert denied.value.status == 403
        with pytest.raises(ApiException) as other_ns:
            apps.list_namespaced_deployment("default")
        assert other_ns.value.status == 403
        still_there = client.AppsV1Api(local_cluster.api_client).read_namespaced_deployment(
            "target", namespace
        )
        assert still_there.spec is not None and still_there.spec.replicas == 1
    finally:
        sa_client.close()  # type: ignore[no-untyped-call]


def test_prometheus_scrapes_loopback_target(local_prometheus: LocalPrometheus) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("inferno_e2e_smoke_value", "smoke-test gauge", registry=registry)
    gauge.set(42.5)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        address = f"127.0.0.1:{port}"
        local_prometheus.set_targets(
            [ScrapeTarget(address, {"namespace": "smoke", "deployment": "server", "pod": "server-0"})]
        )
        local_prometheus.wait_target_up(address, timeout_s=30)
        query = 'inferno_e2e_smoke_value{namespace="smoke",deployment="server",pod="server-0"}'
        value = local_prometheus.wait_for_value(query, timeout_s=30)
        assert value == 42.5
        with pytest.raises(ValueError, match="not a loopback"):
            ScrapeTarget("10.1.2.3:80")
    finally:
        local_prometheus.set_targets([])
        server.shutdown()
        thread.join(timeout=10)
