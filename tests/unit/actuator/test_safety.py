"""Safety rules of plan_updates: what is never touched, bounds, scale-down limits and stabilisation."""

from __future__ import annotations

from typing import Any

import pytest

from actuator.plan import plan_updates, record_recommendations, seed_history
from actuator.safety import ScaleHistory, scale_down_floor
from actuator.settings import ENV_PREFIX, ActuatorSettings
from contract.solution import DecisionStatus
from contract.update import ActionKind, Outcome
from plumbing.settings import SettingsError, load_settings
from tests.unit.actuator.fakes import PLACEMENT, apply_patch, decision, deployment, server, settings, solution

KEY = ("team-a", "llama")


def load_actuator_settings_from(env: dict[str, str]) -> ActuatorSettings:
    return load_settings(ActuatorSettings, ENV_PREFIX, env)


def _plan(
    dec: Any = None, srv: Any = None, dep: Any = "default", *, decisions: Any = None, **opts: Any
) -> Any:
    deps = {} if dep is None else {KEY: deployment() if dep == "default" else dep}
    sol = solution(*(decisions if decisions is not None else [dec or decision()]))
    return plan_updates(sol, [srv or server()], PLACEMENT, deps, settings(**opts), 0.0, ScaleHistory())


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
    actions = plan_updates(
        solution(decision()), two, PLACEMENT, {KEY: deployment()}, settings(), 0.0, ScaleHistory()
    )
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


def test_stabilisation_window_with_fake_clock() -> None:
    """Highest recommendation in the last 300 s wins on the way down; applied state is fed back."""
    opts = settings(scale_down_window_s=300)
    history = ScaleHistory()
    dep = deployment(replicas=10)
    seen = []
    for now_s, asked in [(0, 10), (60, 4), (200, 6), (301, 4), (420, 3), (601, 3)]:
        (action,) = plan_updates(
            solution(decision(replicas=asked)), [server()], PLACEMENT, {KEY: dep}, opts, float(now_s), history
        )
        record_recommendations(history, [action], float(now_s))
        dep = apply_patch(dep, action.patch or {})
        seen.append(action.replicas_target)
    # t=301: (1, 301] holds 4, 6 -> 6; t=420: (120, 420] holds 6, 4, 3 -> 6; t=601: (301, 601] holds 3
    assert seen == [10, 10, 10, 6, 6, 3]


@pytest.mark.parametrize(
    ("service_class", "expected"), [("Premium", [10, 10, 10, 6, 6, 3]), ("Free", [10, 4, 6, 4, 3, 3])]
)
def test_a_class_window_replaces_the_default_for_that_class(service_class: str, expected: list[int]) -> None:
    """The same recommendations as above; ``Free=0`` turns the window off for Free servers only,
    and the seeded first-sight hold and the holds the controller floors on go with it."""
    opts = settings(scale_down_window_s=300, scale_down_window_by_class_s="Free=0, Batch=60")
    srv = server(service_class=service_class, current_replicas=10, current_accelerator="A100")
    history = ScaleHistory()
    dep = deployment(replicas=10)
    seen, windows, holds = [], set(), []
    for now_s, asked in [(0, 10), (60, 4), (200, 6), (301, 4), (420, 3), (601, 3)]:
        seed_history(history, [srv], float(now_s), opts)
        (action,) = plan_updates(
            solution(decision(replicas=asked)), [srv], PLACEMENT, {KEY: dep}, opts, float(now_s), history
        )
        record_recommendations(history, [action], float(now_s))
        dep = apply_patch(dep, action.patch or {})
        seen.append(action.replicas_target)
        windows.add(action.window_s)
        holds.append(action.window_holds)
    assert seen == expected
    assert windows == {0.0 if service_class == "Free" else 300.0}
    assert (holds[-1] == []) is (service_class == "Free") and len(history) == (service_class != "Free")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("Free", "is not Class=seconds"),
        ("=5", "is not Class=seconds"),
        ("Free=-1", "seconds >= 0"),
        ("Free=x", ""),
    ],
)
def test_class_windows_are_checked(raw: str, problem: str) -> None:
    with pytest.raises(SettingsError, match="INFERNO_ACTUATOR_SCALE_DOWN_WINDOW_BY_CLASS_S") as caught:
        load_actuator_settings_from({"INFERNO_ACTUATOR_SCALE_DOWN_WINDOW_BY_CLASS_S": raw})
    assert problem in str(caught.value)


def test_class_windows_from_the_environment() -> None:
    env = {"INFERNO_ACTUATOR_SCALE_DOWN_WINDOW_BY_CLASS_S": " Free=0 ,Bronze=120.5,"}
    loaded = load_actuator_settings_from(env)
    assert loaded.scale_down_window_by_class_s == {"Free": 0.0, "Bronze": 120.5}
    assert [loaded.window_s_for(c) for c in ("Free", "Bronze", "Premium")] == [0.0, 120.5, 300.0]


def test_accelerator_change_skips_stabilisation() -> None:
    opts = settings(scale_down_window_s=300, max_scale_down_replicas=1)
    history = ScaleHistory()
    history.record(KEY, 0.0, "L4", 8, 300)
    (action,) = plan_updates(
        solution(decision(replicas=2, accelerator="A100")),
        [server()],
        PLACEMENT,
        {KEY: deployment(replicas=8, accelerator="L4")},
        opts,
        10.0,
        history,
    )
    assert action.replicas_target == 2


def test_history_forgets_unmanaged_and_old_entries() -> None:
    history = ScaleHistory()
    history.record(KEY, 0.0, "A100", 5, 60)
    history.record(("x", "y"), 0.0, "A100", 5, 60)
    history.forget_except({KEY})
    assert len(history) == 1
    history.record(KEY, 100.0, "A100", 2, 60)
    assert history.max_in_window(KEY, "A100", 100.0, 60) == 2
