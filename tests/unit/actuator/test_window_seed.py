"""A server the stabilisation window knows nothing of enters it at its current count.

After a start or a leader change the actuator's history is empty, and the first rates are the least
reliable (a rate window reaching back before a pod's first sample reads low): without the seed the
first cycle scaled Deployments down at once (seen in the real-cluster demo: 2 -> 1 on cycle 1).
"""

from __future__ import annotations

from actuator.app import Actuator
from contract.update import Outcome, UpdateRequest
from tests.unit.actuator.fakes import PLACEMENT, FakeKube, decision, deployment, server, settings, solution

WINDOW_S = 300.0
START_S = 1_000.0


def _request(replicas: int, cycle: str) -> UpdateRequest:
    return UpdateRequest(
        cycle_id=cycle,
        solution=solution(decision(replicas=replicas)),
        servers=[server(current_replicas=4, current_accelerator="A100")],
        placement=PLACEMENT,
    )


async def test_first_sight_holds_a_scale_down_for_one_window() -> None:
    now_s = [START_S]
    kube = FakeKube(deployment(replicas=4))
    actuator = Actuator(kube, settings(scale_down_window_s=WINDOW_S), clock=lambda: now_s[0])

    first = (await actuator.update(_request(2, "c1"))).actions[0]
    assert first.replicas_target == 4 and kube.patches == [], first
    assert any("window" in r for r in first.reasons), first.reasons

    now_s[0] = START_S + WINDOW_S / 2  # still within the window of the first sight: held
    middle = (await actuator.update(_request(2, "c2"))).actions[0]
    assert middle.replicas_target == 4 and kube.patches == [], middle

    now_s[0] = START_S + WINDOW_S + 1.0  # the seed has left the window; 2 was recommended since
    later = (await actuator.update(_request(2, "c3"))).actions[0]
    assert later.outcome == Outcome.APPLIED and later.replicas_target == 2, later


async def test_scale_up_on_first_sight_is_not_held() -> None:
    kube = FakeKube(deployment(replicas=4))
    actuator = Actuator(kube, settings(scale_down_window_s=WINDOW_S), clock=lambda: START_S)
    action = (await actuator.update(_request(6, "c1"))).actions[0]
    assert action.outcome == Outcome.APPLIED and action.replicas_target == 6, action


async def test_no_seed_without_a_window() -> None:
    kube = FakeKube(deployment(replicas=4))
    actuator = Actuator(kube, settings(scale_down_window_s=0.0), clock=lambda: START_S)
    action = (await actuator.update(_request(2, "c1"))).actions[0]
    assert action.outcome == Outcome.APPLIED and action.replicas_target == 2, action
