"""E2e: the ServiceAccount of manifests/rbac.yaml can do exactly what the services need.

Role: applies the shipped namespace and RBAC to the real kube-apiserver, takes a token for the
`inferno-autoscaler` ServiceAccount (TokenRequest), and checks allowed and forbidden calls: it
gets, lists and patches Deployments, reads its two ConfigMaps and patches the dynamic one (where
calibration keeps what it learned), but cannot create, replace or delete Deployments, read, list
or create Secrets (in any namespace), read or write other ConfigMaps, write its static one or
delete either, patch Nodes, or grant itself more (RoleBindings). Then runs the full cycle with
that kubeconfig for all services: the least-privilege grant is enough to scale and move a server.

Restricted to namespaces: the same ClusterRole bound by a RoleBinding in one namespace only (the
way to confine the autoscaler to the namespaces it watches) lets a ServiceAccount patch
Deployments there and nowhere else: other namespaces, and cluster-wide lists, are forbidden.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .cluster.local_cluster import LocalCluster, client_for
from .harness.data import DYNAMIC_CONFIGMAP, GPU_LABEL, PRODUCTS, STATIC_CONFIGMAP, ServerSpec, configmap
from .harness.rbac import apply_rbac
from .harness.scenario import Scenario

pytestmark = pytest.mark.e2e

SERVER = ServerSpec(
    name="premium-llama", model="llama_13b", service_class="Premium", accelerator="L4",
    replicas=1, cards_per_replica=2, max_batch=9, rpm=3000, in_tokens=128, out_tokens=32,
)  # fmt: skip


@pytest.fixture
def sa_kubeconfig(local_cluster: LocalCluster) -> Iterator[Path]:
    namespace, name = apply_rbac(local_cluster)
    yield local_cluster.serviceaccount_kubeconfig(namespace, name)
    core = client.CoreV1Api(local_cluster.api_client)
    for cm in (STATIC_CONFIGMAP, DYNAMIC_CONFIGMAP, "not-ours"):
        try:
            core.delete_namespaced_config_map(cm, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise


def status_of(call: Callable[[], Any]) -> int:
    """HTTP status of an API call: 200 when it succeeded, else the ApiException's status."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status)
    return 200


def test_serviceaccount_can_do_only_what_the_manifests_grant(scenario: Scenario, sa_kubeconfig: Path) -> None:
    ns = scenario.ns
    scenario.add_servers(SERVER)
    admin_core = scenario.core
    for name in (STATIC_CONFIGMAP, DYNAMIC_CONFIGMAP, "not-ours"):
        admin_core.create_namespaced_config_map("inferno", configmap(name, "inferno", {"k": "v"}))
    admin_core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name="s"), string_data={"k": "v"})
    )

    api = client_for(sa_kubeconfig)
    try:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        body = scenario.deployment(SERVER.name)
        body.metadata.resource_version = None  # type: ignore[union-attr]
        body.metadata.name = "copy"  # type: ignore[union-attr]
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name="rbac-"),
            involved_object=client.V1ObjectReference(kind="Deployment", name=SERVER.name, namespace=ns),
            reason="RbacCheck", message="e2e", type="Normal",
        )  # fmt: skip
        allowed: dict[str, Callable[[], Any]] = {
            "list deployments (all namespaces)": apps.list_deployment_for_all_namespaces,
            "get deployment": lambda: apps.read_namespaced_deployment(SERVER.name, ns),
            "patch deployment": lambda: apps.patch_namespaced_deployment(
                SERVER.name, ns, {"spec": {"replicas": 2}}
            ),
            "list nodes": core.list_node,
            "list pods": core.list_pod_for_all_namespaces,
            "get static ConfigMap": lambda: core.read_namespaced_config_map(STATIC_CONFIGMAP, "inferno"),
            "patch the dynamic ConfigMap (calibration-data.json)": lambda: core.patch_namespaced_config_map(
                DYNAMIC_CONFIGMAP, "inferno", {"data": {"calibration-data.json": '{"entries": []}'}}
            ),
            "create event": lambda: core.create_namespaced_event(ns, event),
        }
        forbidden: dict[str, Callable[[], Any]] = {
            "delete deployment": lambda: apps.delete_namespaced_deployment(SERVER.name, ns),
            "create deployment": lambda: apps.create_namespaced_deployment(ns, body),
            "patch deployments/scale": lambda: apps.patch_namespaced_deployment_scale(
                SERVER.name, ns, {"spec": {"replicas": 3}}
            ),
            "read secret": lambda: core.read_namespaced_secret("s", ns),
            "list secrets": core.list_secret_for_all_namespaces,
            "get another ConfigMap": lambda: core.read_namespaced_config_map("not-ours", "inferno"),
            "list ConfigMaps": lambda: core.list_namespaced_config_map("inferno"),
            "patch node": lambda: core.patch_node("any", {"metadata": {"labels": {"x": "y"}}}),
            "delete pod": lambda: core.delete_collection_namespaced_pod(ns),
            "replace deployment": lambda: apps.replace_namespaced_deployment(SERVER.name, ns, body),
            "delete all deployments": lambda: apps.delete_collection_namespaced_deployment(ns),
            "list secrets in its namespace": lambda: core.list_namespaced_secret("inferno"),
            "create secret": lambda: core.create_namespaced_secret(
                ns, client.V1Secret(metadata=client.V1ObjectMeta(name="mine"), string_data={"k": "v"})
            ),
            "patch its ConfigMap": lambda: core.patch_namespaced_config_map(
                STATIC_CONFIGMAP, "inferno", {"data": {"k": "w"}}
            ),
            "delete its ConfigMap": lambda: core.delete_namespaced_config_map(STATIC_CONFIGMAP, "inferno"),
            "get ConfigMap in another namespace": lambda: core.read_namespaced_config_map(
                STATIC_CONFIGMAP, ns
            ),
            "create lease in another namespace": lambda: client.CoordinationV1Api(
                api
            ).create_namespaced_lease(
                ns, client.V1Lease(metadata=client.V1ObjectMeta(name="inferno-autoscaler"))
            ),
            "create namespace": lambda: core.create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name="rbac-escape"))
            ),
            "grant itself a RoleBinding": lambda: client.RbacAuthorizationV1Api(
                api
            ).create_namespaced_role_binding(
                ns,
                client.V1RoleBinding(
                    metadata=client.V1ObjectMeta(name="escalate"),
                    role_ref=client.V1RoleRef(
                        api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="admin"
                    ),
                    subjects=[
                        client.RbacV1Subject(
                            kind="ServiceAccount", name="inferno-autoscaler", namespace="inferno"
                        )
                    ],
                ),
            ),
        }
        got_allowed = {what: status_of(call) for what, call in allowed.items()}
        got_forbidden = {what: status_of(call) for what, call in forbidden.items()}
    finally:
        api.close()  # type: ignore[no-untyped-call]
    assert got_allowed == dict.fromkeys(allowed, 200)
    assert got_forbidden == dict.fromkeys(forbidden, 403)
    assert scenario.replicas(SERVER.name) == 2  # the allowed patch landed; the scale one did not


def test_full_cycle_runs_with_the_serviceaccount(scenario: Scenario, sa_kubeconfig: Path) -> None:
    scenario.config_namespace = "inferno"  # the Role grants its two ConfigMaps there only
    scenario.add_nodes("L4", count=1, gpus_per_node=4)
    scenario.add_nodes("A100", count=2, gpus_per_node=4)
    scenario.apply_data()
    scenario.add_servers(SERVER)
    scenario.start_emulator()
    scenario.wait_load(SERVER.name)
    autoscaler = scenario.start_autoscaler(
        kubeconfig=sa_kubeconfig,
        INFERNO_CONTROLLER_CALIBRATION_CONFIGMAP=DYNAMIC_CONFIGMAP,
        INFERNO_CONTROLLER_CALIBRATION_NAMESPACE="inferno",
    )

    report = autoscaler.invoke_until(
        lambda r: any(a["deployment"] == SERVER.name and a["outcome"] == "applied" for a in r["actions"]),
        "an applied action with the ServiceAccount's rights",
    )
    assert report["outcome"] == "ok", report
    assert not report["errors"], report["errors"]
    dep = scenario.deployment(SERVER.name)
    assert dep.spec is not None and dep.spec.template.spec is not None
    assert (dep.spec.template.spec.node_selector or {})[GPU_LABEL] == PRODUCTS["A100"]
    assert (dep.spec.replicas or 0) > SERVER.replicas
    assert scenario.inferno_events(SERVER.name), "the actuator may create Events"
    # calibration (observe) keeps its book in the dynamic ConfigMap, with the ServiceAccount's rights
    report = autoscaler.invoke_until(lambda r: bool(r["calibration"]), "a calibration entry", interval_s=1.0)
    assert not any("calibration not persisted" in n for n in report["notes"]), report["notes"]
    stored = scenario.core.read_namespaced_config_map(DYNAMIC_CONFIGMAP, "inferno").data or {}
    entries = json.loads(stored["calibration-data.json"])["entries"]
    assert [(e["model"], e["acc"]) for e in entries] == [
        (c["model"], c["acc"]) for c in report["calibration"]
    ]
    assert "capacity-data.json" in stored  # the patch touched its own key only


RESTRICTED_SA = "inferno-restricted"


@pytest.fixture
def other_namespace(local_cluster: LocalCluster, scenario: Scenario) -> Iterator[str]:
    name = f"{scenario.ns}-other"[:63]
    local_cluster.create_namespace(name)
    yield name
    scenario.apps.delete_collection_namespaced_deployment(name)
    scenario.core.delete_namespace(name)


def test_a_namespace_bound_serviceaccount_cannot_touch_other_namespaces(
    scenario: Scenario, local_cluster: LocalCluster, other_namespace: str
) -> None:
    apply_rbac(local_cluster)  # the ClusterRole of the manifests
    ns, other = scenario.ns, other_namespace
    admin_core = scenario.core
    rbac = client.RbacAuthorizationV1Api(local_cluster.api_client)
    admin_core.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=RESTRICTED_SA))
    )
    rbac.create_namespaced_role_binding(
        ns,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=RESTRICTED_SA),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="inferno-autoscaler"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=RESTRICTED_SA, namespace=ns)],
        ),
    )
    scenario.add_servers(SERVER)
    copy = scenario.deployment(SERVER.name)
    copy.metadata = client.V1ObjectMeta(name=SERVER.name, namespace=other, labels=copy.metadata.labels)  # type: ignore[union-attr]
    copy.status = None
    scenario.apps.create_namespaced_deployment(other, copy)

    api = client_for(local_cluster.serviceaccount_kubeconfig(ns, RESTRICTED_SA))
    try:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        allowed: dict[str, Callable[[], Any]] = {
            "list deployments in its namespace": lambda: apps.list_namespaced_deployment(ns),
            "patch deployment in its namespace": lambda: apps.patch_namespaced_deployment(
                SERVER.name, ns, {"spec": {"replicas": 2}}
            ),
            "list pods in its namespace": lambda: core.list_namespaced_pod(ns),
        }
        forbidden: dict[str, Callable[[], Any]] = {
            "list deployments (all namespaces)": apps.list_deployment_for_all_namespaces,
            "list deployments in another namespace": lambda: apps.list_namespaced_deployment(other),
            "get deployment in another namespace": lambda: apps.read_namespaced_deployment(
                SERVER.name, other
            ),
            "patch deployment in another namespace": lambda: apps.patch_namespaced_deployment(
                SERVER.name, other, {"spec": {"replicas": 5}}
            ),
            "delete deployment in its namespace": lambda: apps.delete_namespaced_deployment(SERVER.name, ns),
            "read secrets in its namespace": lambda: core.list_namespaced_secret(ns),
            "list nodes (cluster scope)": core.list_node,
        }
        got_allowed = {what: status_of(call) for what, call in allowed.items()}
        got_forbidden = {what: status_of(call) for what, call in forbidden.items()}
    finally:
        api.close()  # type: ignore[no-untyped-call]
    assert got_allowed == dict.fromkeys(allowed, 200)
    assert got_forbidden == dict.fromkeys(forbidden, 403)
    other_dep = scenario.apps.read_namespaced_deployment(SERVER.name, other)
    assert other_dep.spec is not None and other_dep.spec.replicas == SERVER.replicas  # untouched
