"""The real-cluster demo's view of its namespace, and the Prometheus scrape targets of its Deployments.

:class:`ClusterDemoView` is what :class:`~load_emulator.demo.run.DemoLoop` and the fleet engine
read: :class:`~load_emulator.demo.store_view.StoreClusterView` (the in-memory demo's view) over
:class:`Snapshot`, the last raw JSON of two list calls (managed Deployments, pods of the
namespace). :meth:`~ClusterDemoView.refresh` runs in a worker thread, so the event loop never
waits on the network; it skips the client's model classes (``_preload_content=False`` +
``json.loads``) because deserialising ~50 pods into them every second cost enough CPU, under the
GIL, to stall the event loop that serves Prometheus' scrapes.

:func:`scrape_groups` turns the engine's Deployments into Prometheus file_sd target groups: one
target per Deployment on the emulator's metrics server (127.0.0.1), told apart by
``__metrics_path__`` ``/metrics/<ns>/<deployment>`` and labelled ``namespace`` and
``deployment``; the samples carry ``namespace``, ``deployment`` and ``pod`` in the text, so the
collector sees what a pod-role scrape job with relabelling gives it on a real cluster. One target
per pod would be closer still, but 50 pods scraped every second by one event loop that also runs
the engine missed Prometheus' 1 s scrape timeout on a busy 2-core machine (targets went down, the
load became untrusted). :func:`write_targets` replaces the file atomically, so Prometheus never
reads half of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kubernetes import client

from load_emulator.cluster import MANAGED_SELECTOR
from load_emulator.demo.store_view import StoreClusterView
from load_emulator.kubeapi import DEPLOYMENTS, PODS
from load_emulator.kubeapi.resources import ResourceType

Obj = dict[str, Any]


class Snapshot:
    """The namespace's last listing, read like :class:`~load_emulator.kubeapi.ObjectStore`."""

    def __init__(self) -> None:
        self.objects: dict[str, list[Obj]] = {DEPLOYMENTS.plural: [], PODS.plural: []}

    def list(self, rt: ResourceType, namespace: str | None = None, label_selector: str = "") -> list[Obj]:
        """The stored objects of ``rt`` (already listed with the managed selector and namespace)."""
        return list(self.objects.get(rt.plural, []))

    def update(self, rt: ResourceType, namespace: str, name: str, mutate: Callable[[Obj], None]) -> Obj:
        raise NotImplementedError("the real-cluster demo writes no labels: Prometheus measures the load")


class ClusterDemoView(StoreClusterView):
    def __init__(self, api_client: client.ApiClient, namespace: str, origin_wall_s: float) -> None:
        self.snapshot = Snapshot()
        super().__init__(self.snapshot, namespace, origin_wall_s)
        self.core: Any = client.CoreV1Api(api_client)
        self.apps: Any = client.AppsV1Api(api_client)

    def refresh(self, now_s: float) -> None:
        """Re-list Deployments and pods (blocking: call it through ``asyncio.to_thread``)."""
        ns = self.namespace
        deps = self.apps.list_namespaced_deployment(
            ns, label_selector=MANAGED_SELECTOR, _preload_content=False
        )
        pods = self.core.list_namespaced_pod(ns, _preload_content=False)
        self.snapshot.objects = {
            DEPLOYMENTS.plural: _items(deps.data, "Deployment"),
            PODS.plural: _items(pods.data, "Pod"),
        }


def _items(raw: bytes, kind: str) -> list[Obj]:
    """``items`` of a list answer, each with its ``kind``; a body without them is a clear error."""
    body = json.loads(raw)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise ValueError(f"list of {kind} answered {str(body)[:200]!r}")
    return [{**item, "kind": kind} for item in body["items"]]


def scrape_groups(address: str, deployments: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """file_sd groups for ``(namespace, deployment)`` pairs served at ``address``.

    Example: ``("127.0.0.1:9000", [("ns", "llama")])`` -> ``[{"targets": ["127.0.0.1:9000"],
    "labels": {"__metrics_path__": "/metrics/ns/llama", "namespace": "ns", "deployment": "llama"}}]``.
    """
    return [
        {
            "targets": [address],
            "labels": {
                "__metrics_path__": f"/metrics/{ns}/{deployment}",
                "namespace": ns,
                "deployment": deployment,
            },
        }
        for ns, deployment in sorted(set(deployments))
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
