"""A :class:`~load_emulator.cluster.ClusterView` read straight from the in-memory API server's store.

The demo runs the engine in the same process as the emulated API server, so it skips HTTP and
reads the :class:`~load_emulator.kubeapi.ObjectStore` (each call is atomic under the store's lock).
What the four services change through the API (replicas, nodeSelector, ``--max-num-seqs``) is
what the engine sees at its next sync.

Per pod: its batch is the pod's own ``--max-num-seqs`` (pods of an old template keep theirs), its
accelerator the Deployment's ``inferno.server.allocation.accelerator`` label (the built-in
controller recreates pods on a template change, so old and new never serve together), and it
serves from the ``lastTransitionTime`` of its ``Ready=True`` condition, in engine seconds
(unix time minus ``origin_wall_s``). Pending, not-Ready and terminating pods serve nothing.
The real-cluster demo reads a raw-JSON snapshot of a real API server through the same class
(:class:`~load_emulator.demo.cluster_view.ClusterDemoView`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from load_emulator.cluster import (
    LABEL_ACCELERATOR,
    LABEL_CLASS,
    LABEL_MAX_BATCH,
    LABEL_MODEL,
    LABEL_NAME,
    MANAGED_SELECTOR,
    DeploymentState,
    PodState,
    parse_max_num_seqs,
)
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
        return [state for d in deploys if (state := self._state(d, pods)) is not None]

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

    def _state(self, dep: Obj, pods: Sequence[Obj]) -> DeploymentState | None:
        meta, spec = dep["metadata"], dep.get("spec") or {}
        labels: dict[str, str] = dict(meta.get("labels") or {})
        model = labels.get(LABEL_MODEL, "")
        if not model:
            return None
        dep_batch = parse_max_num_seqs(_args(spec.get("template", {}).get("spec"))) or _int(
            labels.get(LABEL_MAX_BATCH)
        )
        accelerator = labels.get(LABEL_ACCELERATOR, "")
        selector = dict((spec.get("selector") or {}).get("matchLabels") or {})
        mine = [
            p for p in pods
            if selector and selector.items() <= dict(p["metadata"].get("labels") or {}).items()
        ]  # fmt: skip
        pod_states = tuple(
            PodState(
                name=p["metadata"]["name"],
                accelerator=accelerator,
                max_batch=parse_max_num_seqs(_args(p.get("spec"))) or dep_batch,
                ready_since_s=self._ready_since(p),
            )
            for p in sorted(mine, key=lambda p: str(p["metadata"]["name"]))
        )
        return DeploymentState(
            namespace=meta["namespace"],
            name=meta["name"],
            model=model,
            accelerator=accelerator,
            max_batch=dep_batch,
            replicas=int(spec.get("replicas", 1)),
            server_name=labels.get(LABEL_NAME, ""),
            service_class=labels.get(LABEL_CLASS, "Free"),
            pods=pod_states,
            labels=labels,
        )

    def _ready_since(self, pod: Obj) -> float | None:
        if pod["metadata"].get("deletionTimestamp"):
            return None
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                stamp = str(cond.get("lastTransitionTime") or "")
                try:
                    since = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                    return since.timestamp() - self.origin_wall_s
                except ValueError:
                    return 0.0
        return None


def _args(pod_spec: Obj | None) -> list[str]:
    containers = (pod_spec or {}).get("containers") or []
    return [str(a) for a in containers[0].get("args") or []] if containers else []


def _int(value: str | None) -> int:
    try:
        return max(int(value), 0) if value is not None else 0
    except ValueError:
        return 0
