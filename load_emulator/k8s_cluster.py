"""Kubernetes-backed cluster view (official ``kubernetes`` client), for e2e runs of the emulator.

Thin adapter: two list calls per sync and one merge patch per label write. It reads Deployments
labelled ``inferno.server.managed=true`` (``inferno.server.model`` required; accelerator from
``inferno.server.allocation.accelerator``; batch from ``inferno.server.allocation.maxbatchsize``,
else ``--max-num-seqs`` in the first container's args, else 0 = the model data's batch), and the
pods their ``spec.selector.matchLabels`` select. A pod counts from the ``lastTransitionTime`` of
its ``Ready=True`` condition; Pending, not-Ready and terminating pods (``deletionTimestamp``) are
listed without readiness, so the engine stops routing to them. Per-pod batch comes from the pod's
own args (pods of an old template keep theirs during a rollout).

Times: the engine counts seconds from ``origin_wall_s`` (unix time of its start).
Synchronous; the ``serve`` driver calls :meth:`SnapshotView.refresh` in a thread
(``asyncio.to_thread``) and hands the engine the snapshot. Tested with a fake API in
``tests/unit/load_emulator/test_k8s_cluster.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from load_emulator.cluster import (
    LABEL_ACCELERATOR,
    LABEL_CLASS,
    LABEL_MAX_BATCH,
    LABEL_MODEL,
    LABEL_NAME,
    MANAGED_SELECTOR,
    ClusterView,
    DeploymentState,
    PodState,
    parse_max_num_seqs,
)


class KubernetesClusterView:
    def __init__(
        self, apps_api: Any, core_api: Any, origin_wall_s: float, namespaces: Sequence[str] | None = None
    ) -> None:
        self.apps = apps_api
        self.core = core_api
        self.origin_wall_s = origin_wall_s
        self.namespaces = list(namespaces) if namespaces else None

    def deployments(self, now_s: float) -> Sequence[DeploymentState]:
        if self.namespaces is None:
            deployments = self.apps.list_deployment_for_all_namespaces(label_selector=MANAGED_SELECTOR).items
        else:
            deployments = [
                d
                for ns in self.namespaces
                for d in self.apps.list_namespaced_deployment(ns, label_selector=MANAGED_SELECTOR).items
            ]
        pods_by_ns = {
            ns: self.core.list_namespaced_pod(ns).items for ns in {d.metadata.namespace for d in deployments}
        }
        out: list[DeploymentState] = []
        for dep in deployments:
            state = self._state(dep, pods_by_ns.get(dep.metadata.namespace, []))
            if state is not None:
                out.append(state)
        return out

    def set_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        self.apps.patch_namespaced_deployment(name, namespace, {"metadata": {"labels": dict(labels)}})

    def _state(self, dep: Any, pods: Sequence[Any]) -> DeploymentState | None:
        labels: dict[str, str] = dict(dep.metadata.labels or {})
        model = labels.get(LABEL_MODEL, "")
        if not model:
            return None
        dep_batch = (
            _int(labels.get(LABEL_MAX_BATCH)) or parse_max_num_seqs(_args(dep.spec.template.spec)) or 0
        )
        accelerator = labels.get(LABEL_ACCELERATOR, "")
        selector = dict((dep.spec.selector.match_labels if dep.spec.selector else None) or {})
        mine = [p for p in pods if selector and selector.items() <= dict(p.metadata.labels or {}).items()]
        pod_states = tuple(
            PodState(
                name=p.metadata.name,
                accelerator=dict(p.metadata.labels or {}).get(LABEL_ACCELERATOR, accelerator),
                max_batch=parse_max_num_seqs(_args(p.spec)) or dep_batch,
                ready_since_s=self._ready_since(p),
            )
            for p in sorted(mine, key=lambda p: p.metadata.name)
        )
        return DeploymentState(
            namespace=dep.metadata.namespace,
            name=dep.metadata.name,
            model=model,
            accelerator=accelerator,
            max_batch=dep_batch,
            replicas=dep.spec.replicas if dep.spec.replicas is not None else 1,
            server_name=labels.get(LABEL_NAME, ""),
            service_class=labels.get(LABEL_CLASS, "Free"),
            pods=pod_states,
            labels=labels,
        )

    def _ready_since(self, pod: Any) -> float | None:
        if pod.metadata.deletion_timestamp is not None or pod.status is None:
            return None
        for condition in pod.status.conditions or []:
            if condition.type == "Ready" and condition.status == "True":
                since = condition.last_transition_time
                return since.timestamp() - self.origin_wall_s if since is not None else 0.0
        return None


class SnapshotView:
    """The last answer of another view, refreshed on demand: keeps network calls off the engine."""

    def __init__(self, inner: ClusterView) -> None:
        self.inner = inner
        self._snapshot: Sequence[DeploymentState] = ()

    def refresh(self, now_s: float) -> None:
        self._snapshot = self.inner.deployments(now_s)

    def deployments(self, now_s: float) -> Sequence[DeploymentState]:
        return self._snapshot

    def set_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        self.inner.set_labels(namespace, name, labels)


def _args(pod_spec: Any) -> list[str]:
    containers = (pod_spec.containers if pod_spec is not None else None) or []
    return list(containers[0].args or []) if containers else []


def _int(value: str | None) -> int:
    try:
        return max(int(value), 0) if value is not None else 0
    except ValueError:
        return 0
