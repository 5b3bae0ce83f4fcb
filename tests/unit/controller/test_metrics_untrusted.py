"""``inferno_untrusted_servers`` follows the last collect: servers nothing acts on, and why not zero."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from contract.cycle import CollectedSummary, CycleReport, DecisionSummary, StageFailure
from contract.steps import StepCode
from controller.metrics import ControllerMetrics

NOTE, WAITS = StepCode.NOTE, StepCode.ROLLOUT_BUDGET


def _value(metrics: ControllerMetrics, name: str) -> float:
    text = metrics.exposition().decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]
    assert len(samples) == 1, samples
    return float(samples[0].value)


@pytest.mark.parametrize(
    ("outcome", "errors"),
    [("degraded", []), ("failed", [StageFailure(stage="optimize", kind="transient", message="timed out")])],
    ids=["degraded-collect", "later-stage-failed"],
)
def test_untrusted_servers_gauge_follows_the_collect(outcome: str, errors: list[StageFailure]) -> None:
    metrics = ControllerMetrics()
    assert _value(metrics, "inferno_untrusted_servers") == 0
    down = CollectedSummary(servers=3, trusted=1, degraded=True, errors=["Prometheus unreachable"])
    metrics.observe(
        CycleReport(cycle_id="c1", started_at_s=1.0, outcome=outcome, collected=down, errors=errors)
    )
    assert _value(metrics, "inferno_untrusted_servers") == 2
    healthy = CollectedSummary(servers=3, trusted=3)
    metrics.observe(CycleReport(cycle_id="c2", started_at_s=2.0, collected=healthy))
    assert _value(metrics, "inferno_untrusted_servers") == 0


def test_a_cycle_that_collected_nothing_leaves_the_gauge() -> None:
    metrics = ControllerMetrics()
    metrics.observe(
        CycleReport(cycle_id="c1", started_at_s=1.0, collected=CollectedSummary(servers=2, trusted=0))
    )
    failed = StageFailure(stage="collect", kind="transient", message="refused")
    metrics.observe(CycleReport(cycle_id="c2", started_at_s=2.0, outcome="failed", errors=[failed]))
    assert _value(metrics, "inferno_untrusted_servers") == 2


def test_rollouts_waiting_counts_the_decisions_the_budget_held() -> None:
    metrics = ControllerMetrics()
    held = "rollout budget: 2 of 12 running servers may roll at a time (...): the move to A100 batch 16 waits"
    decisions = [
        DecisionSummary(server="a", status="allocated", reasons=["fits", held], codes=[NOTE, WAITS]),
        DecisionSummary(server="b", status="allocated", reasons=["fits"], codes=[NOTE]),
        DecisionSummary(server="c", status="partial", reasons=[held], codes=[WAITS]),
    ]
    metrics.observe(CycleReport(cycle_id="c1", started_at_s=1.0, decisions=decisions))
    assert _value(metrics, "inferno_rollouts_waiting") == 2
    metrics.observe(CycleReport(cycle_id="c2", started_at_s=2.0, decisions=decisions[1:2]))
    assert _value(metrics, "inferno_rollouts_waiting") == 0
