"""A Deployment whose rollout has not finished is passed on as ``rollingOut`` (the rollout budget)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from collector.core import Ports, collect
from collector.kube_adapter import to_deployment
from collector.settings import CollectorSettings
from tests.unit.collector.fakes import NOW_S, NS, FakeKube, FakeMetrics, deployment, healthy_answers

SETTINGS = CollectorSettings(prometheus_url="http://prometheus:9090")


def as_json(generation: int, wanted: int, **status: int) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "llm", "name": "d", "generation": generation},
        "spec": {"replicas": wanted},
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "rolling"),
    [
        (as_json(3, 2, observedGeneration=3, replicas=2, updatedReplicas=2, availableReplicas=2), False),
        # maxSurge 0, the last new pod exists but still loads its model (a scale-up looks the same)
        (as_json(3, 4, observedGeneration=3, replicas=4, updatedReplicas=4, availableReplicas=3), True),
        # the controller has not seen the last patch yet
        (as_json(4, 2, observedGeneration=3, replicas=2, updatedReplicas=2, readyReplicas=2), True),
        # maxSurge 1: one new pod next to two old ones
        (as_json(4, 2, observedGeneration=4, replicas=3, updatedReplicas=1, readyReplicas=2), True),
        # maxSurge 0: an old pod was removed, its replacement not created yet
        (as_json(4, 2, observedGeneration=4, replicas=1, updatedReplicas=0, readyReplicas=1), True),
        # a Deployment the API server returned without status (just created)
        ({"metadata": {"namespace": "llm", "name": "d"}, "spec": {"replicas": 0}}, False),
    ],
    ids=["done", "new-pod-loading", "unobserved", "surge", "replace", "no-status"],
)
def test_rollout_status_as_kubectl_reads_it(obj: dict[str, Any], rolling: bool) -> None:
    assert to_deployment(obj).rolling_out is rolling


@pytest.mark.parametrize("rolling", [True, False])
async def test_collect_passes_it_to_the_optimizer(rolling: bool) -> None:
    kube = FakeKube([replace(deployment("granite"), rolling_out=rolling)])
    metrics = FakeMetrics(SETTINGS, healthy_answers([(NS, "granite")]))
    result = (await collect(NOW_S, Ports(kube, kube, metrics), SETTINGS, {})).result
    (entry,) = result.system.model_dump(mode="json")["servers"]["servers"]
    (server,) = result.servers
    assert entry.get("rollingOut", False) is rolling
    assert server.rolling_out is rolling
