"""A held server (fewer pods report metrics than are Ready) in the cycle report and /metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from contract.cycle import CollectedSummary, CycleReport, DecisionSummary
from contract.solution import DecisionStatus, ServerDecision, Solution, SolverReport
from contract.steps import Step, StepCode
from controller.metrics import ControllerMetrics

HOLD = Step(stage="collect", code=StepCode.UNREPORTED_PODS, text="3 of 4 pod(s) ... report metrics; held")


def _decision(name: str) -> ServerDecision:
    return ServerDecision(
        server=name,
        service_class="Premium",
        model="m",
        priority=1,
        status=DecisionStatus.UNALLOCATED,
        demand_rpm=60,
        served_rpm=0,
        steps=[Step.note("solve", "fits")],
    )


def test_the_hold_comes_first_in_the_held_servers_decision_only() -> None:
    solution = Solution(
        decisions=[_decision("a"), _decision("b")], solver=SolverReport(name="g", status="ok")
    )
    a, b = DecisionSummary.all_of(solution, {}, {"a": HOLD})
    assert (a.reasons, a.codes) == ([HOLD.text, "fits"], [StepCode.UNREPORTED_PODS, StepCode.NOTE])
    assert (b.reasons, b.codes) == (["fits"], [StepCode.NOTE])


def _held(metrics: ControllerMetrics) -> float:
    text = metrics.exposition().decode()
    (value,) = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "inferno_held_servers"
    ]
    return float(value)


def test_held_servers_gauge_follows_the_collect() -> None:
    metrics = ControllerMetrics()
    assert _held(metrics) == 0
    held = CollectedSummary(servers=2, trusted=2, held=["ns/a: " + HOLD.text])
    metrics.observe(CycleReport(cycle_id="c1", started_at_s=1.0, collected=held))
    assert _held(metrics) == 1
    metrics.observe(
        CycleReport(cycle_id="c2", started_at_s=2.0, collected=CollectedSummary(servers=2, trusted=2))
    )
    assert _held(metrics) == 0
