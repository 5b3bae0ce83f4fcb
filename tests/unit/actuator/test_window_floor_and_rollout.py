"""What the load needs next to what the window held, the accelerator-changed-at stamp, the rollout guard."""

from __future__ import annotations

from typing import Any

import pytest

from actuator.plan import plan_updates
from actuator.rollout import surge_pods
from contract.solution import ServerDecision, Solution, SolverReport
from contract.update import ActionKind, ServerAction
from tests.unit.actuator.fakes import PLACEMENT, decision, deployment, server, settings

KEY = ("team-a", "llama")
OPTS = settings()


def with_demand(dec: ServerDecision, demand: int) -> ServerDecision:
    assert dec.allocation is not None
    return dec.model_copy(
        update={"allocation": dec.allocation.model_copy(update={"demand_replicas": demand})}
    )


def sol(*decisions: ServerDecision, capacity: dict[str, int] | None = None) -> Solution:
    used: dict[str, int] = {}
    for d in decisions:
        if d.allocation:
            used[d.allocation.accelerator_type] = (
                used.get(d.allocation.accelerator_type, 0) + d.allocation.cards
            )
    return Solution(
        decisions=list(decisions),
        solver=SolverReport(name="greedy", status="heuristic"),
        cards_by_type=used,
        capacity_by_type=capacity or {},
        unlimited=capacity is None,
    )


def plan_one(
    dec: ServerDecision,
    dep: dict[str, Any],
    *,
    now_s: float = 0.0,
    **kw: Any,
) -> ServerAction:
    (action,) = plan_updates(
        sol(dec, capacity=kw.pop("capacity", None)),
        [server(current_replicas=dep["spec"]["replicas"])],
        PLACEMENT,
        {KEY: dep},
        kw.pop("opts", OPTS),
        now_s,
    )
    return action


# --- the window's floor, applied by the optimizer ------------------------------------------------


def test_the_actuator_follows_the_optimizer_and_reports_what_the_load_needs() -> None:
    """The optimizer gave the held replicas away (demand 2, allocated 2): the actuator scales to 2
    and holds nothing itself; it reports 2 needed, which the controller's window records."""
    action = plan_one(with_demand(decision(replicas=2), 2), deployment(replicas=6), now_s=60)
    assert (action.replicas_target, action.replicas_needed) == (2, 2)
    without_floor = plan_one(decision(replicas=2), deployment(replicas=6), now_s=60)
    assert (without_floor.replicas_target, without_floor.replicas_needed) == (2, 2)


def test_a_held_count_is_applied_and_the_need_is_the_loads() -> None:
    action = plan_one(with_demand(decision(replicas=6), 2), deployment(replicas=6), now_s=60)
    assert (action.replicas_target, action.replicas_needed) == (6, 2)
    assert any(
        "stabilisation window applied by the optimizer: 6 kept, the load needs 2" in r for r in action.reasons
    )


def test_the_need_is_bounded_like_the_target() -> None:
    """min_replicas 3 and the zero guard apply to the need as to the target: the window never
    records a count the actuator would not run."""
    (action,) = plan_updates(
        sol(with_demand(decision(replicas=4), 0)),
        [server(current_replicas=4, min_replicas=3)],
        PLACEMENT,
        {KEY: deployment(replicas=4)},
        OPTS,
        0.0,
    )
    assert action.replicas_needed == 3


def test_a_skipped_server_needs_nothing_recorded() -> None:
    (action,) = plan_updates(sol(decision()), [server(trusted=False)], PLACEMENT, {}, OPTS, 0.0)
    assert action.kind is ActionKind.SKIP and action.replicas_needed is None


# --- accelerator-changed-at ---------------------------------------------------------------------


@pytest.mark.parametrize(("accelerator", "stamped"), [("L4", True), ("A100", False)], ids=["moved", "stays"])
def test_accelerator_change_is_stamped(accelerator: str, stamped: bool) -> None:
    action = plan_one(decision(replicas=2, accelerator=accelerator, batch=32), deployment(), now_s=1795434605)
    assert action.patch is not None
    annotations = action.patch["metadata"].get("annotations", {})
    assert annotations == (
        {"inferno.server/accelerator-changed-at": "2026-11-23T11:50:05Z"} if stamped else {}
    )


# --- rollout deadlock guard ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "replicas", "surge"),
    [
        (None, 3, 1),
        ({"type": "RollingUpdate"}, 8, 2),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}, 8, 0),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2}}, 8, 2),
        ({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "50%"}}, 3, 2),
        ({"type": "Recreate"}, 8, 0),
    ],
    ids=["default-25%", "no-rolling-update", "surge-0", "int", "percent-rounds-up", "recreate"],
)
def test_surge_pods(strategy: dict[str, Any] | None, replicas: int, surge: int) -> None:
    dep = deployment()
    if strategy is not None:
        dep["spec"]["strategy"] = strategy
    assert surge_pods(dep, replicas) == surge


def batch_change(capacity: dict[str, int], dep: dict[str, Any] | None = None) -> ServerAction:
    """3 x A100 now on batch 64; the solution keeps 3 replicas but wants batch 32."""
    return plan_one(decision(replicas=3, batch=32), dep or deployment(replicas=3), capacity=capacity)


def test_batch_change_with_no_free_card_for_the_surge_pod_is_deferred_with_the_reason() -> None:
    action = batch_change({"A100": 3})
    assert not action.rolls_pods
    assert action.patch is None or "template" not in action.patch.get("spec", {})
    assert any(
        "rollout would deadlock: maxSurge 1 pod(s) need 1 free A100 card(s), 0 free" in r
        for r in action.reasons
    )


def test_batch_change_with_scale_up_keeps_the_replicas() -> None:
    dep = deployment(replicas=2)
    action = plan_one(decision(replicas=3, batch=32), dep, capacity={"A100": 3})
    assert action.patch is not None and action.patch["spec"] == {"replicas": 3}
    assert any("batch 32 deferred, replicas set" in r for r in action.reasons)


@pytest.mark.parametrize(
    ("capacity", "strategy"),
    [
        ({"A100": 4}, None),
        ({"A100": 3}, {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}),
        ({"A100": 3}, {"type": "Recreate"}),
        (None, None),
    ],
    ids=["a-free-card", "surge-0", "recreate", "unlimited"],
)
def test_batch_change_rolls_when_it_can(
    capacity: dict[str, int] | None, strategy: dict[str, Any] | None
) -> None:
    dep = deployment(replicas=3)
    if strategy is not None:
        dep["spec"]["strategy"] = strategy
    action = plan_one(decision(replicas=3, batch=32), dep, capacity=capacity)
    assert action.rolls_pods and not any("deadlock" in r for r in action.reasons)


def test_surge_cards_are_shared_between_rollouts_of_one_cycle() -> None:
    """One free A100 card, two servers changing batch: the first (by name) rolls, the second waits."""
    names = ("alpha", "beta")
    decisions = [decision(name=n, replicas=2, batch=32) for n in names]
    deps = {("team-a", n): deployment(name="vllm", replicas=2) for n in names}
    for n in names:
        deps[("team-a", n)]["metadata"]["name"] = n
    servers = [server(name=n, current_replicas=2) for n in names]
    actions = plan_updates(sol(*decisions, capacity={"A100": 5}), servers, PLACEMENT, deps, OPTS, 0.0)
    assert [a.rolls_pods for a in actions] == [True, False]


def test_unit_change_within_the_card_type_is_skipped_whole_when_it_would_deadlock() -> None:
    # A100 -> 2xA100: same node selector, new pods need 2 cards each; all 4 cards allocated.
    dec = decision(replicas=2, accelerator="2xA100", cards=2, acc_type="A100")
    action = plan_one(dec, deployment(replicas=4), capacity={"A100": 4})
    assert action.kind is ActionKind.SKIP
    assert any("rollout would deadlock" in r for r in action.reasons)


def test_move_to_another_card_type_is_not_blocked() -> None:
    # The new ReplicaSet never exceeds its replicas, all allocated on L4.
    action = plan_one(
        decision(replicas=2, accelerator="L4"), deployment(replicas=2), capacity={"A100": 2, "L4": 2}
    )
    assert action.rolls_pods and action.kind is ActionKind.UPDATE
