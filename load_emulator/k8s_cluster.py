"""Kubernetes-backed cluster view (official ``kubernetes`` client), for e2e runs of the emulator.

Thin adapter: two list calls per sync and one merge patch per label write. It reads Deployments
labelled ``inferno.server.managed=true`` and their pods, serialises the client's typed objects to
the API's JSON and turns them into servers with :func:`load_emulator.deployment_json.deployment_state`,
the same conversion the demo's views use (the rules are there).

Times: the engine counts seconds from ``origin_wall_s`` (unix time of its start).
Synchronous; the ``serve`` driver calls :meth:`SnapshotView.refresh` in a thread
(``asyncio.to_thread``) and hands the engine the snapshot. Tested with a fake API in
``tests/unit/load_emulator/test_k8s_cluster.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes.client import ApiClient

from load_emulator.cluster import MANAGED_SELECTOR, ClusterView, DeploymentState
from load_emulator.deployment_json import deployment_state


class KubernetesClusterView:
    def __init__(
        self, apps_api: Any, core_api: Any, origin_wall_s: float, namespaces: Sequence[str] | None = None
    ) -> None:
        self.apps = apps_api
        self.core = core_api
        self.origin_wall_s = origin_wall_s
        self.namespaces = list(namespaces) if namespaces else None
        self._client = ApiClient()  # only to serialise typed models to the API's JSON; no calls

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
            ns: [self._json(p) for p in self.core.list_namespaced_pod(ns).items]
            for ns in {d.metadata.namespace for d in deployments}
        }
        out: list[DeploymentState] = []
        for dep in deployments:
            state = deployment_state(
                self._json(dep), pods_by_ns.get(dep.metadata.namespace, []), self.origin_wall_s
            )
            if state is not None:
                out.append(state)
        return out

    def _json(self, model: Any) -> dict[str, Any]:
        out: dict[str, Any] = self._client.sanitize_for_serialization(model)  # type: ignore[no-untyped-call]
        return out

    def set_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        self.apps.patch_namespaced_deployment(name, namespace, {"metadata": {"labels": dict(labels)}})


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
