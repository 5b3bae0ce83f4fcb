"""A server the collector holds (fewer pods report metrics than are Ready): the actuator's last line.

The optimizer was asked to plan it as it runs with room to grow only; whatever the solution says,
the actuator never scales it down or changes its GPU type or batch, says why first, and posts a
Warning Event when the hold starts or its reason changes, then once per ``hold_event_repeat_s``.
"""

from __future__ import annotations

import pytest

from actuator.events import RepeatFilter
from actuator.executor import REASON_HELD, execute
from actuator.plan import plan_updates
from contract.solution import ServerDecision
from contract.steps import Step, StepCode
from contract.update import ActionKind, Outcome
from tests.unit.actuator.fakes import PLACEMENT, FakeKube, decision, deployment, server, settings, solution

HOLD = Step(
    stage="collect",
    code=StepCode.UNREPORTED_PODS,
    text="3 of 4 pod(s) Ready for 240 s report metrics (4 Ready in all): load scaled x1.33 ...; held",
)
HELD = server(current_replicas=4, current_accelerator="A100", current_max_batch=64, hold=HOLD)


@pytest.mark.parametrize(
    ("asked", "kind", "replicas", "reason"),
    [
        (decision(replicas=2), ActionKind.NOOP, 4, "held at 4 (asked 2)"),
        (decision(replicas=6), ActionKind.UPDATE, 6, ""),
        (decision(replicas=4, accelerator="L4"), ActionKind.SKIP, None, "held, but the solution changes"),
        (decision(replicas=4, batch=32), ActionKind.SKIP, None, "held, but the solution changes"),
    ],
    ids=["scale-down-refused", "scale-up-allowed", "gpu-type-change-refused", "batch-change-refused"],
)
def test_a_held_server_only_grows(
    asked: ServerDecision, kind: ActionKind, replicas: int | None, reason: str
) -> None:
    (action,) = plan_updates(
        solution(asked),
        [HELD],
        PLACEMENT,
        {("team-a", "llama"): deployment(replicas=4)},
        settings(),
        0.0,
    )
    assert action.kind is kind, action.reasons
    assert action.reasons[0] == HOLD.text and action.hold == HOLD
    if replicas is not None:
        assert action.replicas_target == replicas
    assert not reason or any(reason in r for r in action.reasons), action.reasons


@pytest.mark.parametrize(
    ("held", "dry_run", "replicas", "expected"),
    [
        (True, False, 2, ["Warning " + REASON_HELD]),
        (True, False, 6, ["Normal InfernoScaled", "Warning " + REASON_HELD]),
        (True, True, 6, []),
        (False, False, 3, []),
    ],
    ids=["held-unchanged", "held-scaled-up", "dry-run", "not-held"],
)
async def test_a_held_server_gets_a_warning_event(
    held: bool, dry_run: bool, replicas: int, expected: list[str]
) -> None:
    kube = FakeKube(deployment(replicas=4 if held else 3))
    srv = HELD if held else server(current_replicas=3)
    deployments = await kube.list_deployments(["team-a"])
    actions = plan_updates(
        solution(decision(replicas=replicas)), [srv], PLACEMENT, deployments, settings(), 0.0
    )
    (done,) = await execute(actions, kube, deployments, settings(), dry_run=dry_run, now_s=0.0, cycle_id="c1")
    assert [f"{e['type']} {e['reason']}" for e in kube.events] == expected
    if held and not dry_run:
        assert HOLD.text in kube.events[-1]["message"]
        assert kube.events[-1]["involvedObject"]["name"] == "llama"
    assert done.outcome in (Outcome.UNCHANGED, Outcome.APPLIED, Outcome.DRY_RUN)


def test_the_repeat_filter_posts_the_first_a_change_and_one_per_interval() -> None:
    repeats, key = RepeatFilter(600.0), ("team-a", "llama")
    seen = [repeats.due(key, "held", t) for t in (0.0, 30.0, 599.0, 600.0)]
    assert seen == [True, False, False, True]
    assert repeats.due(key, "held, 2 pods", 630.0)  # the reason changed
    repeats.keep_only(set())  # the hold ended
    assert repeats.due(key, "held, 2 pods", 660.0)  # and came back: at once
    assert all(RepeatFilter(0.0).due(key, "held", t) for t in (0.0, 0.0))


async def test_a_held_fleet_posts_its_warnings_once_per_interval_not_each_cycle() -> None:
    kube = FakeKube(deployment(replicas=4))
    deployments = await kube.list_deployments(["team-a"])
    cfg, repeats = settings(hold_event_repeat_s=300.0), RepeatFilter(300.0)
    for cycle, now_s in enumerate((0.0, 30.0, 60.0, 300.0, 330.0)):
        actions = plan_updates(solution(decision(replicas=2)), [HELD], PLACEMENT, deployments, cfg, now_s)
        await execute(
            actions, kube, deployments, cfg, dry_run=False, now_s=now_s, cycle_id=f"c{cycle}",
            hold_repeats=repeats,
        )  # fmt: skip
    assert [e["message"].split(":")[0] for e in kube.events] == ["cycle c0", "cycle c3"]
    released = server(current_replicas=4, current_accelerator="A100", current_max_batch=64)
    for cycle, (srv, now_s) in enumerate(((released, 360.0), (HELD, 390.0)), start=5):
        actions = plan_updates(solution(decision(replicas=4)), [srv], PLACEMENT, deployments, cfg, now_s)
        await execute(
            actions, kube, deployments, cfg, dry_run=False, now_s=now_s, cycle_id=f"c{cycle}",
            hold_repeats=repeats,
        )  # fmt: skip
    assert kube.events[-1]["message"].startswith("cycle c6")  # held again after a release: at once
