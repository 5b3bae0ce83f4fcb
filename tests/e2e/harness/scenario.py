"""One e2e scenario's world: namespace, node pool, ConfigMaps, labelled Deployments, and helpers.

Role: `Scenario` gives a test its own namespace (also its node pool and config namespace), so
tests sharing the session's cluster never see each other's capacity; it applies the data
ConfigMaps and Deployments, starts the emulator and the services on demand, reads Deployments,
pods and Events back, and tears everything down by pid and by name. Callers: the `scenario`
fixture of each e2e test module (`scenario_fixture`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from kubernetes import client

from ..cluster.local_cluster import LocalCluster
from ..cluster.prometheus import LocalPrometheus
from .data import (
    DYNAMIC_CONFIGMAP,
    PRODUCTS,
    STATIC_CONFIGMAP,
    ServerSpec,
    capacity_document,
    configmap,
    server_deployment,
    static_documents,
)
from .emulator import Emulator
from .services import Autoscaler


class PodInfo(NamedTuple):
    name: str
    node: str
    phase: str
    gpu_product: str


class Scenario:
    def __init__(self, cluster: LocalCluster, prometheus: LocalPrometheus, name: str, work_dir: Path) -> None:
        self.cluster = cluster
        self.prometheus = prometheus
        self.ns = name
        self.work_dir = work_dir
        self.apps = client.AppsV1Api(cluster.api_client)
        self.core = client.CoreV1Api(cluster.api_client)
        self.config_namespace = name  # where the data ConfigMaps live (RBAC tests use "inferno")
        self.servers: list[ServerSpec] = []
        self.cards: dict[str, int] = {}
        self._stack: list[Any] = []

    # --- world -----------------------------------------------------------------------------
    def add_nodes(self, accelerator: str, count: int, gpus_per_node: int) -> list[str]:
        self.cards[accelerator] = self.cards.get(accelerator, 0) + count * gpus_per_node
        return self.cluster.add_gpu_nodes(PRODUCTS[accelerator], count, gpus_per_node, pool=self.ns)

    def apply_data(
        self, static: Mapping[str, Any | str] | None = None, cards: Mapping[str, int] | None = None
    ) -> None:
        """Create or replace the two ConfigMaps (default: restricted data, this pool's cards)."""
        ns = self.config_namespace
        docs = [
            configmap(STATIC_CONFIGMAP, ns, static if static is not None else static_documents()),
            configmap(DYNAMIC_CONFIGMAP, ns, {"capacity-data.json": capacity_document(cards or self.cards)}),
        ]
        for cm in docs:
            name = cm.metadata.name if cm.metadata and cm.metadata.name else ""
            if any(
                c.metadata and c.metadata.name == name for c in self.core.list_namespaced_config_map(ns).items
            ):
                self.core.replace_namespaced_config_map(name, ns, cm)
            else:
                self.core.create_namespaced_config_map(ns, cm)

    def add_servers(self, *servers: ServerSpec) -> None:
        for spec in servers:
            self.apps.create_namespaced_deployment(self.ns, server_deployment(spec, self.ns))
            self.servers.append(spec)

    def start_emulator(
        self, pattern: str = "constant", params: dict[str, str] | None = None, gateway: bool = False
    ) -> Emulator:
        emulator = Emulator(
            self.cluster, self.prometheus, self.work_dir, self.servers, self.cards,
            namespaces=[self.ns], pattern=pattern, params=params, gateway=gateway,
        )  # fmt: skip
        self._stack.append(emulator.start())
        return emulator

    def start_autoscaler(self, kubeconfig: Path | None = None, **env: str) -> Autoscaler:
        autoscaler = Autoscaler(
            kubeconfig or self.cluster.kubeconfig_path, self.work_dir,
            prometheus_url=env.pop("prometheus_url", self.prometheus.url),
            namespaces=[self.ns], config_namespace=self.config_namespace, extra_env=env,
        )  # fmt: skip
        self._stack.append(autoscaler.start())
        return autoscaler

    def close(self) -> None:
        while self._stack:
            self._stack.pop().stop()

    # --- reading back ------------------------------------------------------------------------
    def deployment(self, name: str) -> client.V1Deployment:
        return self.apps.read_namespaced_deployment(name, self.ns)

    def replicas(self, name: str) -> int:
        spec = self.deployment(name).spec
        return int(spec.replicas or 0) if spec else 0

    def pods(self, name: str) -> list[PodInfo]:
        """Live pods of a Deployment (terminating ones left out) with their node's GPU product."""
        nodes = {
            n.metadata.name: (n.metadata.labels or {}) for n in self.core.list_node().items if n.metadata
        }
        out = []
        for pod in self.core.list_namespaced_pod(self.ns, label_selector=f"app={name}").items:
            if pod.metadata is None or pod.metadata.deletion_timestamp is not None:
                continue
            node = (pod.spec.node_name if pod.spec else None) or ""
            phase = (pod.status.phase if pod.status else None) or ""
            product = nodes.get(node, {}).get("nvidia.com/gpu.product", "")
            out.append(PodInfo(pod.metadata.name or "", node, phase, product))
        return out

    def events(self, name: str) -> list[client.CoreV1Event]:
        """The Deployment's Events. The actuator posts its own after answering (off the cycle's
        critical path): first wait (bounded) until every running actuator has posted what it
        queued, so "no Event" means none was made, not "not posted yet"."""
        for autoscaler in self._stack:
            if isinstance(autoscaler, Autoscaler):
                autoscaler.wait_events_posted()
        selector = f"involvedObject.name={name},involvedObject.kind=Deployment"
        return list(self.core.list_namespaced_event(self.ns, field_selector=selector).items)

    def inferno_events(self, name: str) -> list[str]:
        """`reason: message` of the Events the autoscaler recorded (not the deployment controller's)."""
        return [
            f"{e.reason}: {e.message}" for e in self.events(name) if (e.reason or "").startswith("Inferno")
        ]

    def diagnostics(self) -> str:
        """Emulator log, scrape targets and their health: what a failed wait needs to be debugged."""
        parts = [f"targets: {[(t.address, dict(t.labels)) for t in e.targets]}\n{e.log_tail()}"
                 for e in self._stack if isinstance(e, Emulator)]  # fmt: skip
        parts += [a.logs() for a in self._stack if isinstance(a, Autoscaler)]
        health = self.prometheus.query("up")
        return "\n".join([*parts, f"up: {health}"])

    def wait_load(self, deployment: str, timeout_s: float = 45.0) -> None:
        """Until Prometheus has a completion rate for the Deployment (what the collector trusts)."""
        sel = f'namespace="{self.ns}",deployment="{deployment}"'
        query = f"sum(rate(vllm:request_success_total{{{sel}}}[10s]))"
        try:
            self.wait(
                lambda: (self.prometheus.query_value(query) or 0) > 0, f"load of {deployment}", timeout_s
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{self.diagnostics()}") from None

    def wait(self, check: Any, what: str, timeout_s: float = 60.0) -> Any:
        return self.cluster.wait_for(check, what=what, timeout_s=timeout_s)


def scenario_fixture(
    cluster: LocalCluster, prometheus: LocalPrometheus, request: pytest.FixtureRequest
) -> Iterator[Scenario]:
    """Body of a per-test `scenario` fixture: namespace = node pool = config namespace."""
    name = "e2e-" + request.node.name.removeprefix("test_").replace("_", "-")[:40].rstrip("-").lower()
    cluster.create_namespace(name)
    work_dir = Path(tempfile.mkdtemp(prefix=f"inferno-{name}-"))
    scenario = Scenario(cluster, prometheus, name, work_dir)
    try:
        yield scenario
    finally:
        scenario.close()
        cluster.delete_gpu_nodes(pool=name)
        scenario.apps.delete_collection_namespaced_deployment(name)
        scenario.core.delete_namespace(name)
        if os.environ.get("INFERNO_E2E_KEEP", "") in {"", "0"}:
            shutil.rmtree(work_dir, ignore_errors=True)
