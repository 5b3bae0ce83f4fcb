"""The Kubernetes API as the collector and the actuator see it, served from an :class:`EmulatedCluster`.

Used by :mod:`load_emulator.whatif.driver`. One object implements both narrow ports:

- the collector's ``KubePort`` (:mod:`collector.ports`): managed Deployments as
  :class:`DeploymentInfo` with the ``inferno.server.*`` labels the collector parses, and the two
  data ConfigMaps (static: the samples' files plus ``placement-data.json``; dynamic:
  ``capacity-data.json``);
- the collector's ``ClusterPort`` for pods only: each pod with the time it turned Ready, for the
  check of pods reporting against pods Ready (:mod:`collector.coverage`); Nodes are not emulated;
- the actuator's ``KubePort`` (:mod:`actuator.executor`): Deployments as API-server-shaped dicts
  (``spec.replicas``, a ``vllm`` container with ``--max-num-seqs N`` and GPU requests/limits, the
  card type's node selector, ``metadata.resourceVersion``), and a strategic-merge patch applied
  back to the cluster: replicas -> ``scale``; accelerator label (or node selector), batch flag and
  GPU count -> ``set_template``. A stale resourceVersion raises a 409 ``UpstreamError``.

Annotations a patch sets are kept and served back on both ports (the actuator's
``inferno.server/accelerator-changed-at`` reaches the collector, as with a real API server).
Events are recorded in :attr:`EmulatedKube.events` (the report counts them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from actuator.deployment import flag_value
from collector.ports import DeploymentInfo, NodeInfo, PodInfo, SourceError
from load_emulator.cluster import (
    BATCH_FLAG,
    LABEL_ACCELERATOR,
    LABEL_CLASS,
    LABEL_MAX_BATCH,
    STATIC_FILES,
    DeploymentState,
)
from load_emulator.emulated_cluster import EmulatedCluster
from plumbing.client import ErrorKind, UpstreamError


def config_maps_from(samples: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(static data, dynamic data) of the two ConfigMaps, from a directory of inferno data files."""
    static = {name: (samples / name).read_text() for name in STATIC_FILES if (samples / name).exists()}
    dynamic = {"capacity-data.json": (samples / "capacity-data.json").read_text()}
    return static, dynamic


class EmulatedKube:
    """Both ports over one cluster; ``clock`` gives the virtual time of every change."""

    def __init__(
        self,
        cluster: EmulatedCluster,
        config_maps: Mapping[tuple[str, str], dict[str, str]],
        clock: Callable[[], float],
        acc_counts: Mapping[tuple[str, str], int],
    ) -> None:
        """``acc_counts``: accelerator units per replica of each Deployment, as created."""
        self.cluster = cluster
        self.config_maps = dict(config_maps)
        self.clock = clock
        self.events: list[dict[str, Any]] = []
        self.patches: list[tuple[float, str, dict[str, Any]]] = []
        self._versions: dict[tuple[str, str], int] = {}
        self._annotations: dict[tuple[str, str], dict[str, str]] = {}
        self._acc_counts = dict(acc_counts)
        placement: dict[str, Any] = {}
        for data in self.config_maps.values():
            placement = json.loads(data.get("placement-data.json", "null")) or placement
        self._placement = {p["type"]: p for p in placement.get("placement", [])}

    # --- collector KubePort ----------------------------------------------------------------------
    async def list_managed_deployments(self, namespaces: tuple[str, ...]) -> list[DeploymentInfo]:
        return [
            DeploymentInfo(
                namespace=s.namespace,
                name=s.name,
                labels=self._labels(s),
                replicas=s.replicas,
                ready_replicas=sum(1 for p in s.pods if self._ready(p.ready_since_s)),
                rolling_out=s.rolling_out,
                annotations=dict(self._annotations.get((s.namespace, s.name), {})),
            )
            for s in self._states(namespaces)
        ]

    async def list_pods(self, namespaces: tuple[str, ...]) -> list[PodInfo]:
        return [
            PodInfo(
                s.namespace,
                p.name,
                deployment=s.name,
                ready_since_s=p.ready_since_s if self._ready(p.ready_since_s) else None,
            )
            for s in self._states(namespaces)
            for p in s.pods
        ]

    async def list_nodes(self) -> list[NodeInfo]:
        raise SourceError("the what-if cluster has no Nodes: use capacity_source=configmap")

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        data = self.config_maps.get((namespace, name))
        return dict(data) if data is not None else None

    # --- actuator KubePort -----------------------------------------------------------------------
    async def list_deployments(self, namespaces: Collection[str]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(s.namespace, s.name): self._object(s) for s in self._states(tuple(namespaces))}

    async def read_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        for state in self._states((namespace,)):
            if state.name == name:
                return self._object(state)
        raise UpstreamError(ErrorKind.PERMANENT, f"404: Deployment {namespace}/{name} not found")

    async def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        key = (namespace, name)
        wanted = str((patch.get("metadata") or {}).get("resourceVersion", ""))
        if wanted and wanted != str(self._versions.get(key, 1)):
            raise UpstreamError(ErrorKind.CONFLICT, f"409: {namespace}/{name} changed (rv {wanted})")
        now_s = self.clock()
        self.patches.append((now_s, name, patch))
        labels = dict((patch.get("metadata") or {}).get("labels") or {})
        spec = patch.get("spec") or {}
        pod = (spec.get("template") or {}).get("spec") or {}
        accelerator = labels.pop(LABEL_ACCELERATOR, None) or self._accelerator_of(pod.get("nodeSelector"))
        max_batch = acc_count = None
        for container in pod.get("containers") or []:
            batch = flag_value([str(a) for a in container.get("args") or []], BATCH_FLAG)
            max_batch = int(batch) if batch is not None else max_batch
            for value in ((container.get("resources") or {}).get("limits") or {}).values():
                if value is not None:
                    acc_count = int(value)
        labels.pop(LABEL_MAX_BATCH, None)
        if acc_count is not None:
            unit = accelerator or self._current_accelerator(namespace, name)
            acc_count = max(acc_count // self.cluster.accelerators[unit][1], 1)
            self._acc_counts[key] = acc_count
        if accelerator is not None or max_batch is not None or acc_count is not None:
            self.cluster.set_template(
                namespace, name, now_s, accelerator=accelerator, max_batch=max_batch, acc_count=acc_count
            )
        if labels:
            self.cluster.set_labels(namespace, name, {k: str(v) for k, v in labels.items() if v is not None})
        if "replicas" in spec:
            self.cluster.scale(namespace, name, int(spec["replicas"]), now_s)
        self._keep_annotations(key, (patch.get("metadata") or {}).get("annotations") or {})
        self._versions[key] = self._versions.get(key, 1) + 1

    async def create_event(self, namespace: str, event: dict[str, Any]) -> None:
        self.events.append(event)

    def acc_counts(self) -> dict[tuple[str, str], int]:
        """Accelerator units per replica of each Deployment, as its template says now."""
        return dict(self._acc_counts)

    # --- internals -------------------------------------------------------------------------------
    def _keep_annotations(self, key: tuple[str, str], patched: Mapping[str, Any]) -> None:
        """Merge a patch's annotations as the API server does (a None value deletes the key)."""
        stored = self._annotations.setdefault(key, {})
        for name, value in patched.items():
            if value is None:
                stored.pop(name, None)
            else:
                stored[name] = str(value)

    def _states(self, namespaces: tuple[str, ...]) -> list[DeploymentState]:
        states = self.cluster.deployments(self.clock())
        return [s for s in states if not namespaces or s.namespace in namespaces]

    def _current_accelerator(self, namespace: str, name: str) -> str:
        states = self._states((namespace,))
        return next(s.accelerator for s in states if s.name == name)

    def _ready(self, ready_since_s: float | None) -> bool:
        return ready_since_s is not None and ready_since_s <= self.clock()

    def _labels(self, s: DeploymentState) -> dict[str, str]:
        return {
            **s.labels,
            LABEL_CLASS: s.service_class,
            LABEL_ACCELERATOR: s.accelerator,
            LABEL_MAX_BATCH: str(s.max_batch),
        }

    def _accelerator_of(self, selector: Mapping[str, Any] | None) -> str | None:
        for key, value in (selector or {}).items():
            for card_type, entry in self._placement.items():
                if entry.get("nodeLabelKey") == key and entry.get("nodeLabelValue") == value:
                    return next(
                        (a for a, (t, _) in self.cluster.accelerators.items() if t == card_type), None
                    )
        return None

    def _object(self, s: DeploymentState) -> dict[str, Any]:
        card_type, per_unit = self.cluster.accelerators[s.accelerator]
        place = self._placement.get(card_type, {})
        resource = place.get("resource", "nvidia.com/gpu")
        cards = str(per_unit * self._acc_counts.get((s.namespace, s.name), 1))
        selector = {place["nodeLabelKey"]: place["nodeLabelValue"]} if place else {}
        container = {
            "name": "vllm",
            "args": ["--model", s.model, BATCH_FLAG, str(s.max_batch)],
            "resources": {"requests": {resource: cards}, "limits": {resource: cards}},
        }
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "namespace": s.namespace,
                "name": s.name,
                "uid": f"uid-{s.namespace}-{s.name}",
                "resourceVersion": str(self._versions.get((s.namespace, s.name), 1)),
                "labels": self._labels(s),
                "annotations": dict(self._annotations.get((s.namespace, s.name), {})),
            },
            "spec": {
                "replicas": s.replicas,
                "template": {"spec": {"nodeSelector": selector, "containers": [container]}},
            },
            "status": {"readyReplicas": sum(1 for p in s.pods if self._ready(p.ready_since_s))},
        }
