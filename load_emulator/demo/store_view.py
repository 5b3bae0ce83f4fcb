"""A :class:`~load_emulator.cluster.ClusterView` read straight from the in-memory API server's store.

The demo runs the engine in the same process as the emulated API server, so it skips HTTP and
reads the :class:`~load_emulator.kubeapi.ObjectStore` (each call is atomic under the store's lock).
What the four services change through the API (replicas, nodeSelector, ``--max-num-seqs``) is
what the engine sees at its next sync.

Each Deployment and its pods become a server through :func:`load_emulator.deployment_json.deployment_state`
(the rules are there).
The real-cluster demo reads a raw-JSON snapshot of a real API server through the same class
(:class:`~load_emulator.demo.cluster_view.ClusterDemoView`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from load_emulator.cluster import MANAGED_SELECTOR, DeploymentState
from load_emulator.deployment_json import deployment_state
from load_emulator.kubeapi import DEPLOYMENTS, PODS, ObjectStore
from load_emulator.kubeapi.resources import ResourceType

Obj = dict[str, Any]
APP_LABEL = "app.kubernetes.io/name"
"""The selector label of :func:`load_emulator.kubeapi.builders.deployment`: the Deployment's name."""


class ObjectSource(Protocol):
    """What the view reads: an :class:`~load_emulator.kubeapi.ObjectStore`, or a real cluster's snapshot."""

    def list(self, rt: ResourceType, namespace: str | None = None, label_selector: str = "") -> list[Obj]: ...

    def update(self, rt: ResourceType, namespace: str, name: str, mutate: Callable[[Obj], None]) -> Obj: ...


class StoreClusterView:
    """Managed Deployments of one namespace and their pods, from the store."""

    def __init__(self, store: ObjectSource | ObjectStore, namespace: str, origin_wall_s: float) -> None:
        self.store = store
        self.namespace = namespace
        self.origin_wall_s = origin_wall_s

    def deployments(self, now_s: float) -> Sequence[DeploymentState]:
        deploys = self.store.list(DEPLOYMENTS, self.namespace, label_selector=MANAGED_SELECTOR)
        pods = self.store.list(PODS, self.namespace)
        return [s for d in deploys if (s := deployment_state(d, pods, self.origin_wall_s)) is not None]

    def set_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        def mutate(obj: Obj) -> None:
            obj["metadata"].setdefault("labels", {}).update(labels)

        self.store.update(DEPLOYMENTS, namespace, name, mutate)

    def unschedulable(self) -> dict[str, int]:
        """Pods the scheduler left Pending (no node with free cards), by ``app.kubernetes.io/name``."""
        out: dict[str, int] = {}
        for pod in self.store.list(PODS, self.namespace):
            for cond in (pod.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                    app = str((pod["metadata"].get("labels") or {}).get(APP_LABEL, "?"))
                    out[app] = out.get(app, 0) + 1
        return out
