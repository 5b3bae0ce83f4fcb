"""Prometheus metrics of the controller, in its own registry, updated from each cycle report.

Series (all prefixed ``inferno_``): ``cycle_duration_seconds`` (histogram), ``cycles_total{outcome}``,
``last_success_timestamp_seconds``, ``desired_replicas`` / ``current_replicas``
``{namespace,deployment,server}``, ``cost_per_hour{accelerator_type}``, ``unallocated_servers``,
``errors_total{stage,kind}`` (stage failures, and ``stage="update"`` per failed patch),
``actions_total{outcome}``, ``leader`` (1 while this replica may act: it holds the leader Lease, or
leader election is off; 0 on standby). Per-server series are reset every cycle, so removed servers
vanish.
Per stage and server, for dashboards and alerts (manifests/components/monitoring):
``stage_duration_seconds{stage}`` (the last cycle that ran the stage), ``ready_replicas``
``{namespace,deployment,server}`` (ready pods the collect found: below ``desired_replicas`` for long
means pods that do not start, e.g. Pending), ``server_trusted{server,class}`` (1: its load is trusted),
``observed_ttft_seconds`` / ``observed_itl_seconds{server,class}`` (the collector's means), and the
optimizer's decision ``decision_replicas``, ``decision_max_batch``, ``decision_cost_per_hour``,
``predicted_ttft_seconds``, ``predicted_itl_seconds{server,class,accelerator}``.
``prediction_error_ratio{server,class,metric="ttft"|"itl"}``: the previous cycle's predicted mean
over the mean observed since, minus 1 (the collector's rate window, so it partly covers the
allocation before; 0.1 is 10 % high); with online calibration (:mod:`controller.calibrate`)
``calibration_factor{model,accelerator,part="fixed"|"work"}`` and ``calibration_confidence``
``{model,accelerator}`` show what was learned.
``untrusted_servers``: servers of the last collect whose load is not trusted, which nothing acts on
(Prometheus down or answering garbage). ``held_servers``: servers of the last collect held because
fewer pods report metrics than are Ready (:mod:`collector.coverage`; the reasons are in the
report's ``collected.held`` and each decision). ``rollouts_waiting``: servers whose GPU-type or batch change
waits for the optimizer's rollout budget (their decision says so); one that stays above zero for
many cycles means rollouts do not finish (pods that never become ready keep the room taken).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from contract.cycle import CycleReport
from contract.steps import StepCode
from contract.update import ActionKind, Outcome

SERVER_LABELS = ("namespace", "deployment", "server")
CLASS_LABELS = ("server", "class")
DECISION_LABELS = ("server", "class", "accelerator")
DURATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
__all__ = ["CONTENT_TYPE_LATEST", "ControllerMetrics"]


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cycle_duration = Histogram(
            "inferno_cycle_duration_seconds",
            "Duration of a control cycle",
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self.cycles = Counter("inferno_cycles", "Control cycles by outcome", ["outcome"], registry=r)
        self.last_success = Gauge(
            "inferno_last_success_timestamp_seconds",
            "Unix time of the last cycle that ran all stages",
            registry=r,
        )
        self.desired = Gauge(
            "inferno_desired_replicas", "Replicas the actuator aims for", SERVER_LABELS, registry=r
        )
        self.current = Gauge(
            "inferno_current_replicas", "Replicas before this cycle", SERVER_LABELS, registry=r
        )
        self.cost = Gauge(
            "inferno_cost_per_hour",
            "Cost of the allocation per accelerator type",
            ["accelerator_type"],
            registry=r,
        )
        self.unallocated = Gauge(
            "inferno_unallocated_servers", "Servers the solution left unallocated", registry=r
        )
        self.untrusted = Gauge(
            "inferno_untrusted_servers",
            "Servers of the last collect whose load is not trusted (left as they are)",
            registry=r,
        )
        self.held = Gauge(
            "inferno_held_servers",
            "Servers of the last collect held because fewer pods report metrics than are Ready "
            "(no scale-down, GPU-type or batch change; load scaled up to the Ready pods)",
            registry=r,
        )
        self.rollouts_waiting = Gauge(
            "inferno_rollouts_waiting",
            "Servers whose GPU-type or batch change waits for the rollout budget",
            registry=r,
        )
        self.errors = Counter("inferno_errors", "Errors by stage and kind", ["stage", "kind"], registry=r)
        self.actions = Counter("inferno_actions", "Actuator actions by outcome", ["outcome"], registry=r)
        self.leader = Gauge(
            "inferno_leader", "1 while this replica holds the leader Lease (or election is off)", registry=r
        )
        self.leader.set(1)
        self.stage_duration = Gauge(
            "inferno_stage_duration_seconds", "Duration of each stage in the last cycle that ran it",
            ["stage"], registry=r,
        )  # fmt: skip
        self.ready = Gauge("inferno_ready_replicas", "Ready pods of the server", SERVER_LABELS, registry=r)
        self.trusted = Gauge(
            "inferno_server_trusted", "1 when the server's load is trusted, 0 when it is left as it is",
            CLASS_LABELS, registry=r,
        )  # fmt: skip
        self.observed_ttft = Gauge(
            "inferno_observed_ttft_seconds", "Observed mean time to first token", CLASS_LABELS, registry=r
        )
        self.observed_itl = Gauge(
            "inferno_observed_itl_seconds", "Observed mean inter-token latency", CLASS_LABELS, registry=r
        )
        self.decision_replicas = Gauge(
            "inferno_decision_replicas", "Replicas the optimizer allocated", DECISION_LABELS, registry=r
        )
        self.decision_batch = Gauge(
            "inferno_decision_max_batch", "Batch size (vLLM --max-num-seqs) the optimizer chose",
            DECISION_LABELS, registry=r,
        )  # fmt: skip
        self.decision_cost = Gauge(
            "inferno_decision_cost_per_hour", "Cost per hour of the server's allocation", DECISION_LABELS,
            registry=r,
        )  # fmt: skip
        self.predicted_ttft = Gauge(
            "inferno_predicted_ttft_seconds", "Predicted mean time to first token", DECISION_LABELS,
            registry=r,
        )  # fmt: skip
        self.predicted_itl = Gauge(
            "inferno_predicted_itl_seconds", "Predicted mean inter-token latency", DECISION_LABELS, registry=r
        )
        self.prediction_error = Gauge(
            "inferno_prediction_error_ratio",
            "Previous cycle's predicted mean TTFT or ITL over the one observed since, minus 1",
            ("server", "class", "metric"),
            registry=r,
        )
        self.calibration_factor = Gauge(
            "inferno_calibration_factor", "Learned factor on the static data's fixed or work part",
            ("model", "accelerator", "part"), registry=r,
        )  # fmt: skip
        self.calibration_confidence = Gauge(
            "inferno_calibration_confidence", "Confidence (0-1) of the learned factors",
            ("model", "accelerator"), registry=r,
        )  # fmt: skip
        self._predicted: dict[str, tuple[float | None, float | None]] = {}

    def track_leader(self, is_leader: Callable[[], bool]) -> None:
        """``inferno_leader`` follows ``is_leader()`` at every scrape."""
        self.leader.set_function(lambda: float(is_leader()))

    def observe(self, report: CycleReport) -> None:
        self.cycle_duration.observe(report.duration_s)
        self.cycles.labels(report.outcome).inc()
        for failure in report.errors:
            self.errors.labels(failure.stage, failure.kind).inc()
        for stage, ms in report.stage_ms.items():
            self.stage_duration.labels(stage).set(ms / 1000)
        if report.collected is not None:
            self.untrusted.set(report.collected.servers - report.collected.trusted)
            self.held.set(len(report.collected.held))
            self._observe_servers(report)
            self._observe_errors(report)
        if report.outcome in ("failed", "standby"):
            return  # keep the last good per-server view rather than blanking it
        if report.decisions:
            self._observe_decisions(report)
            self._predicted = {d.server: (d.ttft_ms, d.itl_ms) for d in report.decisions if d.replicas}
        self._observe_calibration(report)
        self.last_success.set(report.started_at_s + report.duration_s)
        if report.decisions:
            self.unallocated.set(sum(d.status == "unallocated" for d in report.decisions))
            waiting = (StepCode.ROLLOUT_BUDGET in d.codes for d in report.decisions)
            self.rollouts_waiting.set(sum(waiting))
            self.cost.clear()
            for acc_type, cost in report.cost_by_type.items():
                self.cost.labels(acc_type).set(cost)
        self.desired.clear()
        self.current.clear()
        for action in report.actions:
            self.actions.labels(action.outcome.value).inc()
            if action.outcome is Outcome.FAILED:
                self.errors.labels("update", action.error_kind or "permanent").inc()
            if not action.deployment:
                continue
            labels = (action.namespace, action.deployment, action.server)
            if action.replicas_now is not None:
                self.current.labels(*labels).set(action.replicas_now)
            target = action.replicas_target if action.kind is not ActionKind.SKIP else action.replicas_now
            if target is not None:
                self.desired.labels(*labels).set(target)

    def _observe_servers(self, report: CycleReport) -> None:
        assert report.collected is not None
        for gauge in (self.ready, self.trusted, self.observed_ttft, self.observed_itl):
            gauge.clear()
        for s in report.collected.observed:
            self.ready.labels(s.namespace, s.deployment, s.server).set(s.ready_replicas)
            self.trusted.labels(s.server, s.service_class).set(float(s.trusted))
            if s.ttft_ms is not None:
                self.observed_ttft.labels(s.server, s.service_class).set(s.ttft_ms / 1000)
            if s.itl_ms is not None:
                self.observed_itl.labels(s.server, s.service_class).set(s.itl_ms / 1000)

    def _observe_errors(self, report: CycleReport) -> None:
        """Last cycle's predictions against what was observed since (the collector's window)."""
        assert report.collected is not None
        self.prediction_error.clear()
        for s in report.collected.observed:
            ttft_ms, itl_ms = self._predicted.get(s.server, (None, None))
            for metric, predicted, observed in (("ttft", ttft_ms, s.ttft_ms), ("itl", itl_ms, s.itl_ms)):
                if predicted is not None and observed:
                    self.prediction_error.labels(s.server, s.service_class, metric).set(
                        predicted / observed - 1
                    )

    def _observe_calibration(self, report: CycleReport) -> None:
        self.calibration_factor.clear()
        self.calibration_confidence.clear()
        for c in report.calibration:
            self.calibration_factor.labels(c.model, c.acc, "fixed").set(c.fixed_factor)
            self.calibration_factor.labels(c.model, c.acc, "work").set(c.work_factor)
            self.calibration_confidence.labels(c.model, c.acc).set(c.confidence)

    def _observe_decisions(self, report: CycleReport) -> None:
        gauges = (
            self.decision_replicas, self.decision_batch, self.decision_cost,
            self.predicted_ttft, self.predicted_itl,
        )  # fmt: skip
        for gauge in gauges:
            gauge.clear()
        for d in report.decisions:
            if d.replicas is None:  # unallocated: kept as it is, nothing predicted
                continue
            labels = (d.server, d.service_class, d.accelerator)
            self.decision_replicas.labels(*labels).set(d.replicas)
            for gauge, value, scale in (
                (self.decision_batch, d.max_batch, 1.0),
                (self.decision_cost, d.cost, 1.0),
                (self.predicted_ttft, d.ttft_ms, 1e-3),
                (self.predicted_itl, d.itl_ms, 1e-3),
            ):
                if value is not None:
                    gauge.labels(*labels).set(value * scale)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
