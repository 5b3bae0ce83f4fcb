"""``load_headroom``: replicas are sized for the measured demand x (1 + headroom)."""

from __future__ import annotations

import math

import pytest

from optimizer.candidates import build_problem
from optimizer.settings import OptimizerSettings
from tests.unit.optimizer.test_candidates import server, system


@pytest.mark.parametrize("rpm", [60, 600, 2400])
@pytest.mark.parametrize("headroom", [0.0, 0.15, 0.5])
def test_replicas_cover_the_demand_plus_headroom(rpm: int, headroom: float) -> None:
    problem = build_problem(system(server(rpm=rpm)), OptimizerSettings(load_headroom=headroom))
    demand_rps = rpm / 60.0 * (1.0 + headroom)
    candidates = problem.servers[0].candidates
    assert candidates
    for c in candidates:
        assert c.replicas == max(1, math.ceil(demand_rps / c.max_rate_per_replica_rps - 1e-9)), c


def test_headroom_never_sizes_for_less() -> None:
    plain = build_problem(system(server(rpm=600)), OptimizerSettings())
    roomy = build_problem(system(server(rpm=600)), OptimizerSettings(load_headroom=0.3))
    for a, b in zip(plain.servers[0].candidates, roomy.servers[0].candidates, strict=True):
        assert a.accelerator == b.accelerator and b.replicas >= a.replicas
    assert any(
        b.replicas > a.replicas
        for a, b in zip(plain.servers[0].candidates, roomy.servers[0].candidates, strict=True)
    )
