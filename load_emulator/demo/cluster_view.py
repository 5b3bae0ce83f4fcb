"""The real-cluster demo's view of its namespace, and the Prometheus scrape targets of its pods.

:class:`ClusterDemoView` is what :class:`~load_emulator.demo.run.DemoLoop` and the fleet engine
read: the last snapshot of :class:`~load_emulator.k8s_cluster.KubernetesClusterView` (two list
calls per :meth:`~ClusterDemoView.refresh`, run in a worker thread so the event loop never waits
on the network) plus the pods the scheduler left Pending for lack of cards.

:func:`scrape_groups` turns the engine's pods into Prometheus file_sd target groups: one target
per pod, all on the emulator's metrics server (127.0.0.1), told apart by ``__metrics_path__``
``/metrics/<ns>/<deployment>/<pod>`` and labelled ``namespace``, ``deployment``, ``pod`` (what a
pod-role scrape job with relabelling gives the collector on a real cluster). :func:`write_targets`
replaces the file atomically, so Prometheus never reads half of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kubernetes import client

from load_emulator.cluster import DeploymentState
from load_emulator.k8s_cluster import KubernetesClusterView, SnapshotView

APP_LABEL = "app.kubernetes.io/name"
"""The selector label of the demo's Deployments: the Deployment's name."""


class ClusterDemoView:
    def __init__(self, api_client: client.ApiClient, namespace: str, origin_wall_s: float) -> None:
        self.core: Any = client.CoreV1Api(api_client)
        inner = KubernetesClusterView(client.AppsV1Api(api_client), self.core, origin_wall_s, [namespace])
        self.snapshot = SnapshotView(inner)
        self.namespace = namespace
        self._unschedulable: dict[str, int] = {}

    def refresh(self, now_s: float) -> None:
        """Re-read Deployments and pods (blocking: call it through ``asyncio.to_thread``)."""
        self.snapshot.refresh(now_s)
        pods = self.core.list_namespaced_pod(self.namespace).items
        self._unschedulable = unschedulable(pods)

    def deployments(self, now_s: float) -> Sequence[DeploymentState]:
        return self.snapshot.deployments(now_s)

    def set_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        self.snapshot.set_labels(namespace, name, labels)

    def unschedulable(self) -> dict[str, int]:
        return dict(self._unschedulable)


def unschedulable(pods: Iterable[Any]) -> dict[str, int]:
    """Pods with ``PodScheduled=False, reason=Unschedulable``, counted by their app label."""
    out: dict[str, int] = {}
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None or pod.status is None:
            continue
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
                app = str((pod.metadata.labels or {}).get(APP_LABEL, "?"))
                out[app] = out.get(app, 0) + 1
    return out


def scrape_groups(address: str, pods: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """file_sd groups for ``(namespace, deployment, pod)`` triples served at ``address``.

    Example: ``("127.0.0.1:9000", [("ns", "llama", "llama-1")])`` ->
    ``[{"targets": ["127.0.0.1:9000"], "labels": {"__metrics_path__": "/metrics/ns/llama/llama-1",
    "namespace": "ns", "deployment": "llama", "pod": "llama-1"}}]``.
    """
    return [
        {
            "targets": [address],
            "labels": {
                "__metrics_path__": f"/metrics/{ns}/{deployment}/{pod}",
                "namespace": ns,
                "deployment": deployment,
                "pod": pod,
            },
        }
        for ns, deployment, pod in sorted(pods)
    ]


def write_targets(path: Path, groups: list[dict[str, Any]]) -> bool:
    """Replace ``path`` with ``groups`` unless it already holds them; True when it was written."""
    text = json.dumps(groups, indent=1)
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(f".{path.name}.tmp")  # not matched by Prometheus' *.json glob
    tmp.write_text(text)
    tmp.replace(path)
    return True
