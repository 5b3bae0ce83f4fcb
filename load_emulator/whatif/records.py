"""What a what-if run records: one :class:`Row` per control cycle and server, and summaries of them.

Called by :mod:`load_emulator.whatif.driver` after each cycle (:func:`rows_of`) and by the report
and the tests (:func:`summarize`, :func:`replica_changes`). Latencies and attainment are exact,
from the engine's event log over the period that ended at the cycle (``[t0_s, t1_s)``), judged
against the service class's targets (TTFT per request, ITL on each request's mean inter-token
gap, as :mod:`load_emulator.report` does). The allocation columns are the state after the cycle
acted. ``cost_per_hour`` counts every pod holding cards (Pending pods hold none; during a rollout
old and new pods both count), each at its accelerator's cost times the model's ``accCount``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from contract.data.system import SystemData
from load_emulator.emulated_cluster import EmulatedCluster
from load_emulator.engine import FleetEngine
from load_emulator.whatif.deciders import Decision


@dataclass(frozen=True)
class Row:
    t_s: float
    server: str
    service_class: str
    load_rpm: float
    replicas: int
    ready: int
    accelerator: str
    max_batch: int
    ttft_p50_ms: float
    ttft_p95_ms: float
    ttft_target_ms: float
    itl_p50_ms: float
    itl_p95_ms: float
    itl_target_ms: float
    slo_attainment: float
    requests: int
    cost_per_hour: float
    outcome: str
    """The actuator's outcome for this server this cycle (``noop``, ``applied``...), or the cycle's."""
    ttft_mean_ms: float = math.nan
    """Mean TTFT of the requests whose first token came in the period (what a mean target bounds)."""
    itl_mean_ms: float = math.nan
    """Mean gap between output tokens produced in the period, token-weighted (vLLM's ITL sum/count)."""
    arrivals: int = 0
    failed: int = 0
    """Requests rejected (no ready replica) or aborted (drained out) in the period."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rows_of(
    system: SystemData,
    engine: FleetEngine,
    cluster: EmulatedCluster,
    decision: Decision,
    *,
    t0_s: float,
    t1_s: float,
) -> list[Row]:
    classes = system.class_by_name()
    unit_cost = {a.name: a.cost for a in system.accelerators.accelerators}
    units = {(m.name, m.acc): m.acc_count for m in system.models.models}
    outcomes = decision.actions
    rows: list[Row] = []
    for state in cluster.deployments(t1_s):
        spec = classes.get(state.service_class)
        target = spec.target_for(state.model) if spec else None
        ttft_target = target.slo_ttft_ms if target else 0.0
        itl_target = target.slo_itl_ms if target else 0.0
        w = engine.window(state.server, t0_s, t1_s, ttft_target, itl_target)
        cost = sum(
            unit_cost.get(p.accelerator, 0.0) * units.get((state.model, p.accelerator), 1)
            for p in state.pods
            if p.ready_since_s is not None
        )
        rows.append(
            Row(
                t_s=t1_s,
                server=state.server,
                service_class=state.service_class,
                load_rpm=w.arrival_rpm,
                replicas=state.replicas,
                ready=sum(1 for p in state.pods if p.ready_since_s is not None and p.ready_since_s <= t1_s),
                accelerator=state.accelerator,
                max_batch=state.max_batch,
                ttft_p50_ms=w.ttft_p50_ms,
                ttft_p95_ms=w.ttft_p95_ms,
                ttft_target_ms=ttft_target,
                itl_p50_ms=w.itl_p50_ms,
                itl_p95_ms=w.itl_p95_ms,
                itl_target_ms=itl_target,
                slo_attainment=w.slo_attainment,
                requests=w.completed + w.rejected + w.aborted,
                cost_per_hour=cost,
                outcome=outcomes.get(state.name, decision.outcome),
                ttft_mean_ms=w.ttft_mean_ms,
                itl_mean_ms=w.itl_mean_ms,
                arrivals=w.arrivals,
                failed=w.rejected + w.aborted,
            )
        )
    return rows


def by_server(rows: Iterable[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.server, []).append(row)
    return out


def replica_changes(rows: list[Row]) -> int:
    """How many cycles changed one server's replica count (scaling churn)."""
    return sum(1 for a, b in itertools.pairwise(rows) if a.replicas != b.replicas)


def template_changes(rows: list[Row]) -> int:
    """How many cycles changed one server's accelerator or batch size (each rolls every pod)."""
    return sum(
        1 for a, b in itertools.pairwise(rows) if (a.accelerator, a.max_batch) != (b.accelerator, b.max_batch)
    )


@dataclass(frozen=True)
class Summary:
    server: str
    service_class: str
    requests: int
    slo_attainment: float
    """Request-weighted over the cycles; NaN when no request finished."""
    mean_cost_per_hour: float
    replica_changes: int
    template_changes: int
    min_replicas: int
    max_replicas: int


def summarize(rows: Iterable[Row], t_from_s: float = 0.0) -> list[Summary]:
    out: list[Summary] = []
    for server, mine in by_server(rows).items():
        kept = [r for r in mine if r.t_s > t_from_s] or mine
        weighted = [
            (r.slo_attainment, r.requests) for r in kept if r.requests and not math.isnan(r.slo_attainment)
        ]
        total = sum(n for _, n in weighted)
        out.append(
            Summary(
                server=server,
                service_class=kept[0].service_class,
                requests=sum(r.requests for r in kept),
                slo_attainment=sum(a * n for a, n in weighted) / total if total else math.nan,
                mean_cost_per_hour=sum(r.cost_per_hour for r in kept) / len(kept),
                replica_changes=replica_changes(kept),
                template_changes=template_changes(kept),
                min_replicas=min(r.replicas for r in kept),
                max_replicas=max(r.replicas for r in kept),
            )
        )
    return out
