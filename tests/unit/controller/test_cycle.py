"""run_cycle with fake stages: the happy path, failing stages skip acting, degraded collects."""

from __future__ import annotations

import io
import json

import pytest
import structlog
from pydantic import ValidationError

from contract.solution import DecisionStatus
from contract.steps import Step, StepCode
from contract.update import Outcome
from controller.cycle import CycleRunner
from plumbing.client import ErrorKind, UpstreamError
from plumbing.logs import configure_logging
from tests.unit.actuator.fakes import decision, server, solution
from tests.unit.controller.fakes import FakeStages, collect_result, controller_settings

NOW_S = 1_700_000_000.0


async def test_happy_path_reports_everything() -> None:
    stages = FakeStages(solution(decision(replicas=3)))
    report = await CycleRunner(stages, controller_settings()).run_cycle(NOW_S)
    assert stages.calls == ["collect", "optimize", "update"]
    assert stages.systems == [stages.collect_answer.system]
    assert report.outcome == "ok" and report.errors == []
    assert report.cycle_id == "20231114T221320Z-1"
    assert set(report.stage_ms) == {"collect", "optimize", "update"}
    assert report.collected is not None and report.collected.servers == 1 and report.collected.trusted == 1
    assert report.decisions[0].replicas == 3 and report.decisions[0].reasons == ["fits the SLO"]
    (action,) = report.actions
    assert action.outcome is Outcome.APPLIED and action.replicas_target == 3
    assert stages.kube.objects[("team-a", "llama")]["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    ("stage", "exc", "kind", "calls"),
    [
        ("collect", UpstreamError(ErrorKind.TRANSIENT, "refused"), "transient", ["collect"]),
        ("collect", ValueError("garbage"), "permanent", ["collect"]),
        (
            "optimize",
            UpstreamError(ErrorKind.PERMANENT, "bad system", 422),
            "permanent",
            ["collect", "optimize"],
        ),
        ("optimize", TimeoutError(), "transient", ["collect", "optimize"]),
        ("update", UpstreamError(ErrorKind.TRANSIENT, "503"), "transient", ["collect", "optimize", "update"]),
    ],
    ids=["collect-down", "collect-garbage", "optimize-422", "optimize-timeout", "update-down"],
)
async def test_failing_stage_skips_acting(
    stage: str, exc: BaseException, kind: str, calls: list[str]
) -> None:
    stages = FakeStages()
    stages.fail[stage] = exc
    report = await CycleRunner(stages, controller_settings()).run_cycle(NOW_S)
    assert stages.calls == calls
    assert report.outcome == "failed"
    assert [(e.stage, e.kind) for e in report.errors] == [(stage, kind)]
    assert report.actions == []
    assert stages.kube.patches == []
    assert report.notes


async def test_stage_timeout_is_transient() -> None:
    stages = FakeStages()
    stages.delay_s["optimize"] = 5.0
    report = await CycleRunner(stages, controller_settings(optimize_timeout_s=0.05)).run_cycle(NOW_S)
    assert report.errors[0].stage == "optimize" and report.errors[0].kind == "transient"
    assert "timed out" in report.errors[0].message
    assert stages.calls == ["collect", "optimize"]


async def test_bad_answer_is_permanent() -> None:
    stages = FakeStages()
    try:
        solution(decision()).model_validate({"decisions": "nope"})
    except ValidationError as exc:
        stages.fail["optimize"] = exc
    report = await CycleRunner(stages, controller_settings()).run_cycle(NOW_S)
    assert report.errors[0].kind == "permanent" and "bad answer" in report.errors[0].message


async def test_degraded_collect_acts_only_on_trusted_servers() -> None:
    collect = collect_result(
        degraded=True,
        errors=["prometheus down"],
        servers=[server(), server("other", deployment="other", trusted=False, load_source="none")],
    )
    stages = FakeStages(solution(decision(replicas=3), decision("other", replicas=9)), collect)
    report = await CycleRunner(stages, controller_settings()).run_cycle(NOW_S)
    assert report.outcome == "degraded"
    outcomes = {a.server: a.outcome for a in report.actions}
    assert outcomes == {"llama": Outcome.APPLIED, "other": Outcome.SKIPPED}
    assert report.collected is not None and report.collected.errors == ["prometheus down"]


async def test_unallocated_is_reported_and_kept() -> None:
    stages = FakeStages(solution(decision(status=DecisionStatus.UNALLOCATED)))
    report = await CycleRunner(stages, controller_settings()).run_cycle(NOW_S)
    assert report.decisions[0].status == "unallocated"
    assert report.actions[0].outcome is Outcome.SKIPPED
    assert stages.kube.patches == []


async def test_no_servers_skips_optimize() -> None:
    stages = FakeStages(collect=collect_result(servers=[]))
    report = await CycleRunner(stages, controller_settings()).run_cycle(NOW_S)
    assert stages.calls == ["collect"] and report.outcome == "ok"


async def test_dry_run_setting_reaches_the_actuator() -> None:
    stages = FakeStages()
    report = await CycleRunner(stages, controller_settings(dry_run=True)).run_cycle(NOW_S)
    assert report.dry_run and report.actions[0].outcome is Outcome.DRY_RUN
    assert stages.kube.patches == []


async def test_logs_are_json_with_cycle_id() -> None:
    out = io.StringIO()
    configure_logging("controller", stream=out)
    try:
        await CycleRunner(FakeStages(), controller_settings()).run_cycle(NOW_S)
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    done = next(line for line in lines if line["event"] == "cycle_done")
    assert done["cycle_id"] == "20231114T221320Z-1" and done["service"] == "controller"
    assert all(line.get("cycle_id") == done["cycle_id"] for line in lines)


async def test_standby_runs_no_stage() -> None:
    stages = FakeStages()
    report = await CycleRunner(stages, controller_settings(), is_leader=lambda: False).run_cycle(NOW_S)
    assert report.outcome == "standby" and stages.calls == [] and report.actions == []


async def test_the_rollout_budget_note_is_in_the_answer() -> None:
    answer = solution(decision(replicas=3))
    note = "rollout budget: 100 of 1000 running servers may roll at a time, 0 still rolling; 100 start"
    steps = [
        Step.note("solve", "CP-SAT 0.1 s"),
        Step(stage="rollout", code=StepCode.ROLLOUT_BUDGET, text=note),
    ]
    answer = answer.model_copy(update={"solver": answer.solver.model_copy(update={"steps": steps})})
    report = await CycleRunner(FakeStages(answer), controller_settings()).run_cycle(NOW_S)
    assert report.notes == [note]
    assert report.rollout_budget == note
