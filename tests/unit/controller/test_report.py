"""DecisionSummary carries the optimizer's predictions per server; the /invoke JSON only grows."""

from __future__ import annotations

import pytest

from contract.cycle import CycleReport, DecisionSummary
from contract.solution import DecisionStatus
from tests.unit.actuator.fakes import decision, solution

OLD_KEYS = {"server", "status", "accelerator", "replicas", "max_batch", "cost", "reasons"}


def test_allocated_decision_carries_predicted_latencies_and_throughput() -> None:
    d = decision(replicas=3)
    assert d.allocation is not None
    alloc = d.allocation.model_copy(update={"ttft_ms": 123.5, "itl_ms": 17.25, "ttft_percentile_ms": 240.0})
    d = d.model_copy(update={"allocation": alloc, "demand_rpm": 150.0, "served_rpm": 140.0})
    (summary,) = DecisionSummary.all_of(solution(d))
    assert (summary.ttft_ms, summary.itl_ms, summary.ttft_percentile_ms) == (123.5, 17.25, 240.0)
    assert summary.utilization == alloc.utilization
    assert (summary.demand_rpm, summary.served_rpm) == (150.0, 140.0)
    assert summary.capacity_rpm == pytest.approx(alloc.max_rpm_per_replica * 3)
    assert summary.replicas == 3 and summary.accelerator == "A100"


def test_unallocated_decision_has_no_predictions_but_keeps_its_demand() -> None:
    (summary,) = DecisionSummary.all_of(solution(decision(status=DecisionStatus.UNALLOCATED)))
    assert summary.status == "unallocated"
    assert summary.ttft_ms is None and summary.itl_ms is None and summary.capacity_rpm is None
    assert summary.replicas is None
    assert summary.demand_rpm == 60


def test_json_is_additive_and_old_reports_still_parse() -> None:
    report = CycleReport(
        cycle_id="c-1", started_at_s=0.0, decisions=DecisionSummary.all_of(solution(decision()))
    )
    dumped = report.model_dump(mode="json")["decisions"][0]
    assert set(dumped) >= OLD_KEYS
    assert dumped["ttft_ms"] == 100 and dumped["itl_ms"] == 20
    old_style = {k: dumped[k] for k in OLD_KEYS}  # what an earlier controller returned
    parsed = CycleReport.model_validate({"cycle_id": "c-0", "started_at_s": 0.0, "decisions": [old_style]})
    assert parsed.decisions[0].ttft_ms is None and parsed.decisions[0].replicas == dumped["replicas"]
