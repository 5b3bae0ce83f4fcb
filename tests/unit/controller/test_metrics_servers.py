"""Per-server and per-stage series: decisions beside observations, reset every cycle."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from contract.cycle import CollectedSummary, CycleReport, DecisionSummary, ServerObserved
from controller.metrics import ControllerMetrics


def _samples(metrics: ControllerMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = metrics.exposition().decode()
    return {
        tuple(sorted(s.labels.items())): float(s.value)
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name
    }


def _observed(server: str, trusted: bool, ttft_ms: float | None) -> ServerObserved:
    return ServerObserved(
        server=server, namespace="ns", deployment=server, service_class="Premium",
        ready_replicas=2, trusted=trusted, ttft_ms=ttft_ms, itl_ms=None,
    )  # fmt: skip


def test_decisions_and_observations_become_series_in_seconds() -> None:
    metrics = ControllerMetrics()
    collected = CollectedSummary(
        servers=2, trusted=1, observed=[_observed("a", True, 250.0), _observed("b", False, None)]
    )
    decisions = [
        DecisionSummary(
            server="a",
            status="allocated",
            service_class="Premium",
            accelerator="A100",
            replicas=3,
            max_batch=16,
            cost=120.0,
            ttft_ms=400.0,
            itl_ms=20.0,
        ),
        DecisionSummary(server="b", status="unallocated", service_class="Premium"),
    ]
    report = CycleReport(
        cycle_id="c1", started_at_s=1.0, stage_ms={"collect": 120.0, "optimize": 30.0},
        collected=collected, decisions=decisions,
    )  # fmt: skip
    metrics.observe(report)

    a = (("accelerator", "A100"), ("class", "Premium"), ("server", "a"))
    assert _samples(metrics, "inferno_decision_replicas") == {a: 3}
    assert _samples(metrics, "inferno_decision_max_batch") == {a: 16}
    assert _samples(metrics, "inferno_decision_cost_per_hour") == {a: 120}
    assert _samples(metrics, "inferno_predicted_ttft_seconds") == {a: 0.4}
    assert _samples(metrics, "inferno_predicted_itl_seconds") == {a: 0.02}
    assert _samples(metrics, "inferno_observed_ttft_seconds") == {
        (("class", "Premium"), ("server", "a")): 0.25
    }
    assert _samples(metrics, "inferno_server_trusted") == {
        (("class", "Premium"), ("server", "a")): 1.0,
        (("class", "Premium"), ("server", "b")): 0.0,
    }
    assert _samples(metrics, "inferno_stage_duration_seconds") == {
        (("stage", "collect"),): 0.12,
        (("stage", "optimize"),): 0.03,
    }
    ready = _samples(metrics, "inferno_ready_replicas")
    assert ready[(("deployment", "a"), ("namespace", "ns"), ("server", "a"))] == 2

    # The next cycle no longer has server a: its series vanish.
    metrics.observe(
        CycleReport(
            cycle_id="c2",
            started_at_s=2.0,
            decisions=decisions[1:],
            collected=CollectedSummary(servers=1, trusted=0, observed=[_observed("b", False, None)]),
        )
    )
    assert _samples(metrics, "inferno_decision_replicas") == {}
    assert _samples(metrics, "inferno_observed_ttft_seconds") == {}
    assert set(_samples(metrics, "inferno_server_trusted")) == {(("class", "Premium"), ("server", "b"))}


def test_observations_stay_out_of_the_invoke_json() -> None:
    collected = CollectedSummary(servers=1, trusted=1, observed=[_observed("a", True, 1.0)])
    text = CycleReport(cycle_id="c", started_at_s=1.0, collected=collected).model_dump_json()
    assert "observed" not in text


def test_prediction_error_compares_last_cycles_prediction_with_what_was_observed_since() -> None:
    metrics = ControllerMetrics()
    decision = DecisionSummary(
        server="a", status="allocated", service_class="Premium", accelerator="A100", replicas=3,
        ttft_ms=400.0, itl_ms=20.0,
    )  # fmt: skip
    observed = ServerObserved(
        server="a", namespace="ns", deployment="a", service_class="Premium", ready_replicas=3,
        trusted=True, ttft_ms=500.0, itl_ms=16.0,
    )  # fmt: skip
    first = CycleReport(
        cycle_id="c1", started_at_s=1.0, decisions=[decision],
        collected=CollectedSummary(servers=1, trusted=1, observed=[observed]),
    )  # fmt: skip
    metrics.observe(first)
    assert _samples(metrics, "inferno_prediction_error_ratio") == {}  # nothing predicted before
    metrics.observe(first.model_copy(update={"cycle_id": "c2"}))
    assert _samples(metrics, "inferno_prediction_error_ratio") == {
        (("class", "Premium"), ("metric", "ttft"), ("server", "a")): 400.0 / 500.0 - 1,
        (("class", "Premium"), ("metric", "itl"), ("server", "a")): 20.0 / 16.0 - 1,
    }


def test_calibration_factors_and_confidence_are_series() -> None:
    from contract.calibration import CalibrationSummary  # noqa: PLC0415

    metrics = ControllerMetrics()
    summary = CalibrationSummary(
        model="granite_13b", acc="A100", prior={}, learned={}, fixed_factor=1.9, work_factor=0.6,
        identified="split", confidence=0.7, applied=True, evidence_windows=12, accepted=1,
    )  # fmt: skip
    metrics.observe(CycleReport(cycle_id="c1", started_at_s=1.0, calibration=[summary]))
    assert _samples(metrics, "inferno_calibration_factor") == {
        (("accelerator", "A100"), ("model", "granite_13b"), ("part", "fixed")): 1.9,
        (("accelerator", "A100"), ("model", "granite_13b"), ("part", "work")): 0.6,
    }
    assert _samples(metrics, "inferno_calibration_confidence") == {
        (("accelerator", "A100"), ("model", "granite_13b")): 0.7
    }
