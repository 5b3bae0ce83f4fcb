"""The Kubernetes cluster view against a hand-written fake of the official client's APIs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s

from load_emulator.cluster import MANAGED_SELECTOR, parse_max_num_seqs
from load_emulator.k8s_cluster import KubernetesClusterView, SnapshotView

ORIGIN = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _deployment(name: str, labels: dict[str, str], args: list[str] | None = None, replicas: int = 2) -> Any:
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name=name, namespace="llm", labels=labels),
        spec=k8s.V1DeploymentSpec(
            replicas=replicas,
            selector=k8s.V1LabelSelector(match_labels={"app": name}),
            template=k8s.V1PodTemplateSpec(
                spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="vllm", args=args)])
            ),
        ),
    )


def _pod(name: str, app: str, *, ready_after_s: float | None, args: list[str] | None = None,
         terminating: bool = False) -> Any:  # fmt: skip
    conditions = []
    if ready_after_s is not None:
        since = ORIGIN + dt.timedelta(seconds=ready_after_s)
        conditions.append(k8s.V1PodCondition(type="Ready", status="True", last_transition_time=since))
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(
            name=name, namespace="llm", labels={"app": app},
            deletion_timestamp=ORIGIN if terminating else None,
        ),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="vllm", args=args)]),
        status=k8s.V1PodStatus(phase="Running", conditions=conditions),
    )  # fmt: skip


@dataclass
class FakeApps:
    items: list[Any]
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def list_deployment_for_all_namespaces(self, label_selector: str) -> Any:
        self.calls.append(("list", label_selector))
        return k8s.V1DeploymentList(items=self.items)

    def list_namespaced_deployment(self, namespace: str, label_selector: str) -> Any:
        self.calls.append(("list-ns", (namespace, label_selector)))
        return k8s.V1DeploymentList(items=[d for d in self.items if d.metadata.namespace == namespace])

    def patch_namespaced_deployment(self, name: str, namespace: str, body: Any) -> None:
        self.calls.append(("patch", (namespace, name, body)))


@dataclass
class FakeCore:
    items: list[Any]
    calls: list[str] = field(default_factory=list)

    def list_namespaced_pod(self, namespace: str) -> Any:
        self.calls.append(namespace)
        return k8s.V1PodList(items=[p for p in self.items if p.metadata.namespace == namespace])


def _view() -> tuple[KubernetesClusterView, FakeApps, FakeCore]:
    managed = {"inferno.server.managed": "true", "inferno.server.model": "granite_13b",
               "inferno.server.name": "Premium-granite_13b", "inferno.server.class": "Premium",
               "inferno.server.allocation.accelerator": "A100"}  # fmt: skip
    apps = FakeApps([
        _deployment("granite", managed, args=["--model", "g", "--max-num-seqs", "16"]),
        _deployment("labelled", {**managed, "inferno.server.allocation.maxbatchsize": "24"},
                    args=["--max-num-seqs=8"]),
        _deployment("no-model", {"inferno.server.managed": "true"}),
    ])  # fmt: skip
    core = FakeCore([
        _pod("granite-1", "granite", ready_after_s=30.0),
        _pod("granite-2", "granite", ready_after_s=None),
        _pod("granite-3", "granite", ready_after_s=5.0, terminating=True),
        _pod("granite-4", "granite", ready_after_s=50.0, args=["--max-num-seqs", "4"]),
        _pod("other-1", "other", ready_after_s=1.0),
    ])  # fmt: skip
    return KubernetesClusterView(apps, core, origin_wall_s=ORIGIN.timestamp()), apps, core


def test_reads_managed_deployments_pods_readiness_and_batch() -> None:
    view, apps, core = _view()
    granite, labelled = view.deployments(0.0)
    assert apps.calls == [("list", MANAGED_SELECTOR)] and core.calls == ["llm"]  # two calls per sync
    assert (granite.server, granite.model, granite.accelerator, granite.max_batch, granite.replicas) == (
        "Premium-granite_13b", "granite_13b", "A100", 16, 2,
    )  # fmt: skip
    assert granite.service_class == "Premium"
    pods = {p.name: p for p in granite.pods}
    assert set(pods) == {"granite-1", "granite-2", "granite-3", "granite-4"}
    assert pods["granite-1"].ready_since_s == 30.0
    assert pods["granite-2"].ready_since_s is None
    assert pods["granite-3"].ready_since_s is None  # terminating: no new work
    assert pods["granite-4"].max_batch == 4 and pods["granite-1"].max_batch == 16
    assert labelled.max_batch == 8  # the args vLLM runs with win over the label (24)
    assert granite.ready_replicas == 2


def test_namespaces_restrict_the_listing_and_labels_patch() -> None:
    view, apps, _ = _view()
    view.namespaces = ["llm"]
    assert len(view.deployments(0.0)) == 2
    view.set_labels("llm", "granite", {"inferno.server.load.rpm": "60"})
    assert apps.calls[-1] == (
        "patch",
        ("llm", "granite", {"metadata": {"labels": {"inferno.server.load.rpm": "60"}}}),
    )


def test_snapshot_answers_from_its_last_refresh() -> None:
    view, apps, _ = _view()
    snapshot = SnapshotView(view)
    assert snapshot.deployments(0.0) == ()
    snapshot.refresh(0.0)
    calls = len(apps.calls)
    assert len(snapshot.deployments(1.0)) == 2 and len(apps.calls) == calls


def test_parse_max_num_seqs() -> None:
    assert parse_max_num_seqs(["--max-num-seqs", "12"]) == 12
    assert parse_max_num_seqs(["--max-num-seqs=7", "--x"]) == 7
    assert parse_max_num_seqs(["--max-num-seqs", "many"]) is None
    assert parse_max_num_seqs(["--max-num-seqs"]) is None
    assert parse_max_num_seqs(["--max-num-seqs=0"]) is None
