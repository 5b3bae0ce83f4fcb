"""Prometheus metrics of the controller, in its own registry, updated from each cycle report.

Series (all prefixed ``inferno_``): ``cycle_duration_seconds`` (histogram), ``cycles_total{outcome}``,
``last_success_timestamp_seconds``, ``desired_replicas`` / ``current_replicas``
``{namespace,deployment,server}``, ``cost_per_hour{accelerator_type}``, ``unallocated_servers``,
``errors_total{stage,kind}`` (stage failures, and ``stage="update"`` per failed patch),
``actions_total{outcome}``, ``leader`` (1 while this replica may act: it holds the leader Lease, or
leader election is off; 0 on standby). Per-server series are reset every cycle, so removed servers
vanish.
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

    def track_leader(self, is_leader: Callable[[], bool]) -> None:
        """``inferno_leader`` follows ``is_leader()`` at every scrape."""
        self.leader.set_function(lambda: float(is_leader()))

    def observe(self, report: CycleReport) -> None:
        self.cycle_duration.observe(report.duration_s)
        self.cycles.labels(report.outcome).inc()
        for failure in report.errors:
            self.errors.labels(failure.stage, failure.kind).inc()
        if report.collected is not None:
            self.untrusted.set(report.collected.servers - report.collected.trusted)
            self.held.set(len(report.collected.held))
        if report.outcome in ("failed", "standby"):
            return  # keep the last good per-server view rather than blanking it
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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
