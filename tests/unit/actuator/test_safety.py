"""Safety rules of plan_updates: what is never touched, bounds and scale-down limits."""

from __future__ import annotations

from typing import Any

import pytest

from actuator.plan import plan_updates
from actuator.safety import scale_down_floor
from actuator.settings import ENV_PREFIX, ActuatorSettings
from contract.solution import DecisionStatus
from contract.update import ActionKind, Outcome
from plumbing.settings import load_settings
from tests.unit.actuator.fakes import PLACEMENT, decision, deployment, server, settings, solution

KEY = ("team-a", "llama")


def load_actuator_settings_from(env: dict[str, str]) -> ActuatorSettings:
    return load_settings(ActuatorSettings, ENV_PREFIX, env)


def _plan(
    dec: Any = None, srv: Any = None, dep: Any = "default", *, decisions: Any = None, **opts: Any
) -> Any:
    deps = {} if dep is None else {KEY: deployment() if dep == "default" else dep}
    sol = solution(*(decisions if decisions is not None else [dec or decision()]))
    return plan_updates(sol, [srv or server()], PLACEMENT, deps, settings(**opts), 0.0)


SKIPS = [
    ("unallocated", {"dec": decision(status=DecisionStatus.UNALLOCATED)}, "solution: unallocated"),
    ("untrusted", {"srv": server(trusted=False, load_source="none")}, "data not trusted"),
    ("absent-from-solution", {"decisions": []}, "absent from the solution"),
    ("deployment-missing", {"dep": None}, "not found"),
    (
        "keep-accelerator",
        {"srv": server(keep_accelerator=True), "dec": decision(accelerator="L4")},
        "keep-accelerator",
    ),
    ("no-placement-for-new-type", {"dec": decision(accelerator="H100")}, "no placement"),
    ("bad-bounds", {"srv": server(min_replicas=5, max_replicas=2)}, "min_replicas 5 > max_replicas 2"),
    ("no-such-container", {"dep": deployment(name="llama")}, "no container named"),
]


@pytest.mark.parametrize(("kwargs", "why"), [(k, w) for _, k, w in SKIPS], ids=[i for i, _, _ in SKIPS])
def test_skipped_servers_are_kept_as_is(kwargs: dict[str, Any], why: str) -> None:
    opts = {"container_name": "nope"} if why == "no container named" else {}
    (action,) = _plan(**kwargs, **opts)
    assert action.kind is ActionKind.SKIP
    assert action.outcome is Outcome.SKIPPED
    assert action.patch is None
    assert any(why in r for r in action.reasons), action.reasons
    assert action.reasons[-1] == "kept as is"


def test_decision_without_a_managed_deployment_is_reported() -> None:
    actions = _plan(decisions=[decision(), decision(name="ghost")])
    ghost = next(a for a in actions if a.server == "ghost")
    assert ghost.kind is ActionKind.SKIP and "no managed Deployment" in ghost.reasons[0]


def test_duplicate_server_names_are_never_scaled() -> None:
    two = [server(), server(deployment="other")]
    actions = plan_updates(solution(decision()), two, PLACEMENT, {KEY: deployment()}, settings(), 0.0)
    assert [a.kind for a in actions] == [ActionKind.SKIP, ActionKind.SKIP]


@pytest.mark.parametrize(
    ("asked", "fields", "opts", "target"),
    [
        (1, {"min_replicas": 3}, {}, 3),
        (10, {"max_replicas": 4}, {}, 4),
        (0, {}, {}, 1),
        (0, {}, {"allow_scale_to_zero": True}, 0),
        (0, {"min_replicas": 1}, {"allow_scale_to_zero": True}, 1),
    ],
    ids=["min", "max", "zero-guard", "zero-allowed", "zero-allowed-but-min-1"],
)
def test_bounds_and_zero_guard(asked: int, fields: dict[str, Any], opts: dict[str, Any], target: int) -> None:
    (action,) = _plan(decision(replicas=asked), server(**fields), **opts)
    assert action.replicas_target == target
    assert action.replicas_recommended == asked


@pytest.mark.parametrize(
    ("opts", "target"),
    [
        ({"max_scale_down_replicas": 2}, 8),
        ({"max_scale_down_percent": 25}, 8),
        ({}, 3),
        ({"max_scale_down_replicas": 5, "max_scale_down_percent": 10}, 9),
    ],
    ids=["count", "percent", "no-limit", "stricter-wins"],
)
def test_scale_down_limit(opts: dict[str, Any], target: int) -> None:
    (action,) = _plan(decision(replicas=3), dep=deployment(replicas=10), **opts)
    assert action.replicas_target == target
    if target != 3:
        assert any("scale-down limited" in r for r in action.reasons)


def test_scale_up_is_not_limited() -> None:
    (action,) = _plan(decision(replicas=30), dep=deployment(replicas=2), max_scale_down_replicas=1)
    assert action.replicas_target == 30


def test_hard_max_wins_over_scale_down_limit() -> None:
    (action,) = _plan(
        decision(replicas=2), server(max_replicas=5), dep=deployment(replicas=10), max_scale_down_replicas=1
    )
    assert action.replicas_target == 5


def test_floor_percent_rounds_up() -> None:
    assert scale_down_floor(10, settings(max_scale_down_percent=25)) == 8
    assert scale_down_floor(1, settings(max_scale_down_percent=50)) == 1


def test_accelerator_change_skips_the_scale_down_limit() -> None:
    (action,) = plan_updates(
        solution(decision(replicas=2, accelerator="A100")),
        [server()],
        PLACEMENT,
        {KEY: deployment(replicas=8, accelerator="L4")},
        settings(max_scale_down_replicas=1),
        10.0,
    )
    assert action.replicas_target == 2
