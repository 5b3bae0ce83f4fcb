"""The demo's sample world on a real API server: KWOK GPU nodes, the data ConfigMaps, the Deployments.

The same servers, cards and data files as the in-memory demo (:mod:`.world`), adapted to a real
control plane (``tests/e2e/cluster``):

- nodes carry the annotation ``kwok.x-k8s.io/node=fake`` (KWOK keeps them Ready and plays their
  pods), a loopback InternalIP and podCIDR (pods get 127.x addresses; nothing dials them), the
  placement label of their card type and the pool label ``inferno.e2e/pool=<namespace>`` (the key
  the e2e harness uses), so several demos or tests can share one cluster;
- Deployments select that pool too (the actuator keeps foreign nodeSelector keys), stop at once
  (``terminationGracePeriodSeconds: 0``) and roll with ``maxSurge: 0, maxUnavailable: 1``: on full
  GPUs a surge pod would wait for a card that only its own rollout frees;
- the two ConfigMaps live in the demo's namespace (the collector's config namespace).

:func:`cluster_objects` is pure (dicts in the API's JSON shape); :class:`KubeWorld` creates and
deletes them with the official client (synchronous: call it through ``asyncio.to_thread``).
Called by :mod:`.cluster_run`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from contract.data.system import SystemData
from load_emulator.demo.world import (
    DemoServer,
    NodePlan,
    config_data,
    deployment_of,
    node_plans,
    placement_of,
)

Obj = dict[str, Any]
POOL_LABEL = "inferno.e2e/pool"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
STATIC_CONFIGMAP, DYNAMIC_CONFIGMAP = "inferno-static-data", "inferno-dynamic-data"


@dataclass(frozen=True)
class ClusterObjects:
    namespace: str
    nodes: list[Obj]
    config_maps: list[Obj]
    deployments: list[Obj]


def node_body(plan: NodePlan, index: int, pool: str) -> Obj:
    """A KWOK node; index 3 gets InternalIP 127.1.0.5 and podCIDR 127.128.3.0/24."""
    node_ip = f"127.1.{index // 250}.{index % 250 + 2}"
    pod_cidr = f"127.{128 + index // 256}.{index % 256}.0/24"
    resources = {"cpu": "96", "memory": "1Ti", "pods": "110", plan.resource: str(plan.cards)}
    labels = {
        "kubernetes.io/hostname": plan.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        POOL_LABEL: pool,
        plan.label_key: plan.label_value,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": plan.name,
            "labels": labels,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        "status": {
            "allocatable": dict(resources),
            "capacity": dict(resources),
            "addresses": [
                {"type": "InternalIP", "address": node_ip},
                {"type": "Hostname", "address": plan.name},
            ],
        },
    }


def cluster_deployment(s: DemoServer, placement: Mapping[str, str], namespace: str) -> Obj:
    """The in-memory demo's Deployment, pinned to the demo's pool and rolling without surge."""
    body = copy.deepcopy(deployment_of(s, placement))
    body["metadata"]["namespace"] = namespace
    spec = body["spec"]
    spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    pod = spec["template"]["spec"]
    pod["nodeSelector"] = {**pod.get("nodeSelector", {}), POOL_LABEL: namespace}
    pod["terminationGracePeriodSeconds"] = 0
    return body


def cluster_objects(
    data_dir: Path,
    system: SystemData,
    servers: Sequence[DemoServer],
    cards: Mapping[str, int],
    namespace: str,
) -> ClusterObjects:
    """Everything the demo applies to a real cluster; node names start with the namespace."""
    placement = placement_of(data_dir)
    plans = node_plans(placement, cards, prefix=f"{namespace}-")
    static, dynamic = config_data(data_dir, cards)
    config_maps = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": data,
        }
        for name, data in ((STATIC_CONFIGMAP, static), (DYNAMIC_CONFIGMAP, dynamic))
    ]
    units = system.accelerator_by_name()
    deployments = [cluster_deployment(s, placement[units[s.accelerator].type], namespace) for s in servers]
    nodes = [node_body(plan, i, namespace) for i, plan in enumerate(plans)]
    return ClusterObjects(namespace, nodes, config_maps, deployments)


class KubeWorld:
    """Creates the demo's objects on a cluster and deletes them again (namespace, pool nodes)."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        # Any: the client's typed signatures want V1 models; plain dicts are what it sends anyway.
        self.core: Any = client.CoreV1Api(api_client)
        self.apps: Any = client.AppsV1Api(api_client)
        self.namespace = namespace

    def create(self, objs: ClusterObjects) -> None:
        """Namespace, nodes, ConfigMaps, Deployments; an existing namespace is a clear error."""
        ns = objs.namespace
        try:
            self.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        except ApiException as exc:
            if exc.status == 409:
                raise RuntimeError(
                    f"namespace {ns!r} already exists on this cluster: pass --namespace with a new name"
                ) from None
            raise
        for node in objs.nodes:
            self.core.create_node(node)
        for cm in objs.config_maps:
            self.core.create_namespaced_config_map(ns, cm)
        for dep in objs.deployments:
            self.apps.create_namespaced_deployment(ns, dep)

    def delete(self) -> list[str]:
        """Best effort: the Deployments, the pool's nodes, the namespace; returns what failed."""
        errors = []
        selector = f"{POOL_LABEL}={self.namespace}"
        steps: list[tuple[str, Any, tuple[Any, ...], dict[str, str]]] = [
            ("deployments", self.apps.delete_collection_namespaced_deployment, (self.namespace,), {}),
            ("nodes", self.core.delete_collection_node, (), {"label_selector": selector}),
            ("namespace", self.core.delete_namespace, (self.namespace,), {}),
        ]
        for what, call, args, kwargs in steps:
            try:
                call(*args, **kwargs)
            except Exception as exc:  # the cluster may already be going away
                errors.append(f"delete {what}: {type(exc).__name__}: {exc}")
        return errors
