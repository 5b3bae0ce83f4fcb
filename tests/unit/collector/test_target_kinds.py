"""The collector on scale targets of every kind: reading each into one record, mapping pods to
them, kinds that cannot be listed, name clashes across kinds, and the kinds setting."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from collector.core import Ports, collect
from collector.ports import DeploymentInfo, KindProblem, PodInfo
from collector.settings import CollectorSettings
from collector.target_kinds import owning_target, to_target
from contract.targets import DEPLOYMENT, INFERENCE_SERVICE, LEADER_WORKER_SET, Shape, TargetRef
from plumbing.settings import SettingsError
from tests.unit.collector.fakes import NOW_S, NS, FakeKube, FakeMetrics, deployment, healthy_answers

ROLLOUTS = TargetRef(
    kind="Rollout", group="argoproj.io", version="v1alpha1", resource="rollouts", shape=Shape.SCALE
)
SETTINGS = CollectorSettings(prometheus_url="http://prometheus:9090")


def meta(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "labels": {"inferno.server.managed": "true"}}


@pytest.mark.parametrize(
    ("ref", "obj", "scale", "expected"),
    [
        (
            LEADER_WORKER_SET,
            {
                "metadata": meta("a"),
                "spec": {"replicas": 3},
                "status": {"readyReplicas": 2, "updatedReplicas": 3},
            },
            None,
            (3, 2, True),
        ),
        (
            LEADER_WORKER_SET,
            {"metadata": meta("a"), "spec": {}, "status": {"readyReplicas": 1, "updatedReplicas": 1}},
            None,
            (1, 1, False),
        ),
        (
            INFERENCE_SERVICE,
            {
                "metadata": meta("a"),
                "spec": {"predictor": {"minReplicas": 2}},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            },
            None,
            (2, 2, False),
        ),
        (INFERENCE_SERVICE, {"metadata": meta("a"), "spec": {"predictor": {}}}, None, (1, 0, False)),
        (
            ROLLOUTS,
            {"metadata": meta("a")},
            {"spec": {"replicas": 4}, "status": {"replicas": 3}},
            (4, 3, False),
        ),
    ],
    ids=["lws-rolling", "lws-default-one", "isvc-ready", "isvc-default-not-ready", "scale"],
)
def test_each_kind_reads_into_one_record(
    ref: TargetRef, obj: dict[str, Any], scale: dict[str, Any] | None, expected: tuple[int, int, bool]
) -> None:
    info = to_target(ref, obj, scale)
    assert (info.replicas, info.ready_replicas, info.rolling_out) == expected
    assert (info.namespace, info.name, info.target) == (NS, "a", ref)
    assert info.labels == {"inferno.server.managed": "true"}


@pytest.mark.parametrize(
    ("labels", "replica_set", "expected"),
    [
        (
            {"leaderworkerset.sigs.k8s.io/name": "big", "leaderworkerset.sigs.k8s.io/worker-index": "0"},
            None,
            ("big", True),
        ),
        (
            {"leaderworkerset.sigs.k8s.io/name": "big", "leaderworkerset.sigs.k8s.io/worker-index": "1"},
            None,
            ("big", False),
        ),
        ({"serving.kserve.io/inferenceservice": "isvc"}, "isvc-predictor", ("isvc", True)),
        ({}, "llama", ("llama", True)),
        ({}, None, (None, True)),
    ],
    ids=["lws-leader", "lws-worker", "kserve", "deployment", "none"],
)
def test_pods_map_to_their_scale_target(
    labels: dict[str, str], replica_set: str | None, expected: tuple[str | None, bool]
) -> None:
    assert owning_target(labels, replica_set) == expected


class KindsKube(FakeKube):
    def __init__(self, items: list[DeploymentInfo | KindProblem], pods: list[PodInfo] | None = None) -> None:
        super().__init__([], pods=pods)
        self.items = items

    async def list_managed_deployments(
        self, namespaces: tuple[str, ...]
    ) -> list[DeploymentInfo | KindProblem]:  # type: ignore[override]
        return self.items


async def test_a_kind_that_cannot_be_listed_is_reported_and_the_others_are_managed() -> None:
    problem = KindProblem(
        LEADER_WORKER_SET,
        "leaderworkersets.leaderworkerset.x-k8s.io/v1 is not served by the API server: is its CRD installed?",
    )
    kube = KindsKube([deployment("granite"), problem])
    out = await collect(
        NOW_S, Ports(kube, kube, FakeMetrics(SETTINGS, healthy_answers([(NS, "granite")]))), SETTINGS, {}
    )
    assert [s.deployment for s in out.result.servers] == ["granite"]
    (skipped,) = out.result.skipped
    assert (skipped.kind, skipped.namespace, skipped.deployment, skipped.reason) == (
        "LeaderWorkerSet",
        "",
        "",
        problem.reason,
    )
    assert not out.result.degraded  # the Deployments are collected as usual


async def test_an_lws_server_carries_its_kind_and_only_leader_pods_must_report() -> None:
    big = dataclasses.replace(deployment("big", replicas=2), target=LEADER_WORKER_SET)
    pods = [
        PodInfo(NS, f"big-{g}{w}", "n1", "big", ready_since_s=NOW_S - 3600, serves=w == "")
        for g in ("0", "1")
        for w in ("", "-1")
    ]
    kube = KindsKube([big], pods=pods)
    metrics = FakeMetrics(SETTINGS, healthy_answers([(NS, "big")]))
    out = await collect(NOW_S, Ports(kube, kube, metrics), SETTINGS, {})
    (server,) = out.result.servers
    assert server.target == LEADER_WORKER_SET
    assert server.trusted


async def test_objects_of_two_kinds_with_one_name_are_both_skipped() -> None:
    lws = dataclasses.replace(deployment("llama"), target=LEADER_WORKER_SET)
    kube = KindsKube([deployment("llama"), lws, deployment("other")])
    metrics = FakeMetrics(SETTINGS, healthy_answers([(NS, "other")]))
    out = await collect(NOW_S, Ports(kube, kube, metrics), SETTINGS, {})
    assert [s.deployment for s in out.result.servers] == ["other"]
    assert sorted(s.kind for s in out.result.skipped) == ["Deployment", "LeaderWorkerSet"]
    assert all(
        f"Deployment, LeaderWorkerSet share the name {NS}/llama" in s.reason for s in out.result.skipped
    )


async def test_a_scale_only_server_keeps_its_gpu_type() -> None:
    ro = dataclasses.replace(deployment("ro"), target=ROLLOUTS)
    kube = KindsKube([ro])
    out = await collect(
        NOW_S, Ports(kube, kube, FakeMetrics(SETTINGS, healthy_answers([(NS, "ro")]))), SETTINGS, {}
    )
    (server,) = out.result.servers
    assert server.keep_accelerator and server.target == ROLLOUTS


def test_the_kinds_setting_parses_names_and_scale_resources() -> None:
    settings = CollectorSettings.from_env(
        {
            "INFERNO_TARGET_KINDS": "Deployment, LeaderWorkerSet,"
            "inferenceservices.serving.kserve.io/v1beta1,rollouts.argoproj.io/v1alpha1"
        }
    )
    unnamed = ROLLOUTS.model_copy(update={"kind": ""})  # discovery names the kind
    assert settings.targets == (DEPLOYMENT, LEADER_WORKER_SET, INFERENCE_SERVICE, unnamed)
    assert CollectorSettings().targets == (DEPLOYMENT,)


def test_an_unknown_kind_fails_at_start_up_naming_it() -> None:
    with pytest.raises(SettingsError, match="unknown scale target kind 'StatefulThing'"):
        CollectorSettings.from_env({"INFERNO_TARGET_KINDS": "Deployment,StatefulThing"})
