"""Replicas still starting are passed on as ``startingReplicas``; the measured start-up time of a
Deployment's pods (creation -> Ready) as ``startupS``."""

from __future__ import annotations

from dataclasses import replace

import pytest

from collector.assemble import measured_startup_s
from collector.core import Ports, collect
from collector.ports import PodInfo
from collector.settings import CollectorSettings
from tests.unit.collector.fakes import NOW_S, NS, FakeKube, FakeMetrics, deployment, healthy_answers

SETTINGS = CollectorSettings(prometheus_url="http://prometheus:9090")


@pytest.mark.parametrize(
    ("replicas", "ready", "starting"), [(5, 2, 3), (3, 3, 0)], ids=["starting", "all-ready"]
)
async def test_starting_replicas_reach_the_optimizer(replicas: int, ready: int, starting: int) -> None:
    kube = FakeKube([replace(deployment("granite"), replicas=replicas, ready_replicas=ready)])
    metrics = FakeMetrics(SETTINGS, healthy_answers([(NS, "granite")]))
    result = (await collect(NOW_S, Ports(kube, kube, metrics), SETTINGS, {})).result
    (spec,) = result.system.servers.servers
    assert spec.starting_replicas == starting
    (entry,) = result.system.model_dump(mode="json")["servers"]["servers"]
    assert ("startingReplicas" in entry) is (starting > 0)


def pod(name: str, created_s: float | None, ready_s: float | None, deployment: str | None = "d") -> PodInfo:
    return PodInfo("ns", name, deployment=deployment, created_s=created_s, ready_since_s=ready_s)


def test_the_start_up_time_is_the_median_over_ready_pods() -> None:
    pods = [
        pod("a", 0.0, 95.0),
        pod("b", 10.0, 110.0),
        pod("c", 0.0, 400.0),  # a container restart: Ready turned True again later
        pod("d", 0.0, None),  # not Ready: no time yet
        pod("e", None, 50.0),  # creation unknown
        pod("f", 0.0, 30.0, deployment=None),  # no owning Deployment
    ]
    assert measured_startup_s(pods) == {("ns", "d"): 100.0}
    assert measured_startup_s([]) == {}
