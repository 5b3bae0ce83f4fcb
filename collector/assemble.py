"""One cycle's inputs -> :class:`CollectResult`: the pure part of the collector.

Called by :func:`collector.core.collect` after all I/O is done; tests call it with plain records.
No clock (``now_s`` is an argument), no I/O, no mutation of its inputs: it returns the result and
the next last-known store.

Untrusted servers (no load from Prometheus, or from labels when Prometheus is configured) are left
out of the optimizer's input, and the cards they hold now are kept out of the capacity: the
optimizer then plans the other servers exactly as if the untrusted ones kept their current
allocation, which is what happens, since the actuator does not touch them. Giving the optimizer an
estimated load for them instead could plan their cards away (or more cards for them) and so change
what everyone else gets, on data nobody trusts. They still appear in ``servers`` with their
best-effort load, its source and notes.

Servers with fewer pods reporting than Ready (:mod:`collector.coverage`) are held instead: their
load is scaled up to the Ready pods and their entry plans them as they run, with room to grow
only (``keepAccelerator``, ``maxBatchSize`` = the running batch, ``minNumReplicas`` = the current
replicas), so a real rise still scales them up while a share missing from the sums never scales
them down. ``ManagedServer.hold`` carries the reason to the controller and the actuator.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from collector.capacity import node_capacity, reserve, server_cards
from collector.coverage import GRACE_WINDOWS, Hold, PodCounts, check, pod_counts, reporting_pods
from collector.load import KnownLoad, Observation, ResolvedLoad, observe, remember, resolve_load, scaled
from collector.measured import measured_window
from collector.metrics import Key, MetricsSnapshot
from collector.ports import DeploymentInfo, KindProblem, NodeInfo, PodInfo
from collector.servers import Candidate, select_servers
from collector.settings import CollectorSettings
from collector.static_data import CAPACITY_KEY, ConfigDataError, StaticData, validate_documents
from collector.wake import Demand, load_at_zero
from contract.calibration import MeasuredWindow
from contract.collect import CollectResult, ManagedServer, SkippedDeployment


@dataclass(frozen=True)
class CycleInputs:
    """What the I/O stage fetched. ``snapshot`` is None when Prometheus is not configured or
    failed as a whole; ``nodes``/``pods`` are None when not needed."""

    deployments: list[DeploymentInfo]
    static: StaticData
    snapshot: MetricsSnapshot | None = None
    nodes: list[NodeInfo] | None = None
    pods: list[PodInfo] | None = None
    errors: list[str] = field(default_factory=list)
    demand: dict[Key, Demand] = field(default_factory=dict)
    """Demand query answers of the servers at zero replicas (collector/wake.py)."""
    kind_problems: list[KindProblem] = field(default_factory=list)
    """Configured kinds that cannot be listed (CRD not installed, no /scale): reported as skipped."""
    check_reporting_pods: bool = False
    """Compare the pods that report with the Ready ones (:mod:`collector.coverage`); needs ``pods``."""


class Assembled(NamedTuple):
    result: CollectResult
    last_known: dict[Key, KnownLoad]
    warnings: list[str]  # for the log: capacity left out or reserved, skipped Deployments


def _managed(
    cand: Candidate,
    resolved: ResolvedLoad,
    observed: Observation,
    hold: Hold | None,
    measured: MeasuredWindow | None = None,
) -> ManagedServer:
    dep, lab = cand.deployment, cand.labels
    return ManagedServer(
        server=lab.server,
        namespace=dep.namespace,
        deployment=dep.name,
        target=dep.target,
        model=lab.model,
        service_class=lab.service_class,
        current_replicas=dep.replicas,
        ready_replicas=dep.ready_replicas,
        rolling_out=dep.rolling_out,
        current_accelerator=lab.accelerator,
        current_max_batch=lab.current_max_batch,
        min_replicas=lab.min_replicas,
        max_replicas=lab.max_replicas,
        keep_accelerator=lab.keep_accelerator,
        accelerator_changed_at_s=lab.accelerator_changed_at_s,
        load_source=resolved.source,
        trusted=resolved.trusted,
        arrival_rpm=resolved.load.arrival_rpm if resolved.load else None,
        observed_ttft_ms=observed.ttft_ms,
        observed_itl_ms=observed.itl_ms,
        measured=measured,
        notes=list(resolved.notes),
        hold=hold.step if hold else None,
    )


def _runs_known(cand: Candidate) -> bool:
    """Whether the server's running GPU type and batch are known, so it can be planned as it runs."""
    return bool(cand.labels.accelerator) and cand.labels.current_max_batch > 0


def measured_startup_s(pods: Sequence[PodInfo]) -> dict[Key, float]:
    """Each Deployment's start-up time: the median over its Ready pods of creation -> Ready, seconds.

    A pod whose container restarted reads long (Ready turns True again later), so the median, not
    the mean. Example: pods Ready 95, 100 and 400 s after creation -> 100 s.
    """
    spans: dict[Key, list[float]] = {}
    for pod in pods:
        if pod.deployment is None or pod.created_s is None or pod.ready_since_s is None:
            continue
        spans.setdefault((pod.namespace, pod.deployment), []).append(
            max(pod.ready_since_s - pod.created_s, 0.0)
        )
    return {key: statistics.median(values) for key, values in spans.items()}


def _server_entry(
    server: ManagedServer, cand: Candidate, resolved: ResolvedLoad, now_s: float, startup_s: float | None
) -> dict[str, Any]:
    assert resolved.load is not None  # trusted servers always have a load
    current: dict[str, Any] = {
        "accelerator": server.current_accelerator,
        "numReplicas": server.current_replicas,
        "maxBatch": server.current_max_batch,
        "load": {
            "arrivalRate": resolved.load.arrival_rpm,
            "avgInTokens": resolved.load.avg_in_tokens,
            "avgOutTokens": resolved.load.avg_out_tokens,
        },
    }
    spreads = (("inTokensCv2", resolved.load.in_tokens_cv2), ("outTokensCv2", resolved.load.out_tokens_cv2))
    current["load"].update({name: value for name, value in spreads if value is not None})
    if server.observed_ttft_ms is not None:
        current["ttftAverage"] = server.observed_ttft_ms
    if server.observed_itl_ms is not None:
        current["itlAverage"] = server.observed_itl_ms
    entry: dict[str, Any] = {
        "name": server.server,
        "class": server.service_class,
        "model": server.model,
        "keepAccelerator": server.keep_accelerator,
        "minNumReplicas": server.min_replicas,
        "maxNumReplicas": server.max_replicas,
        "maxBatchSize": cand.labels.max_batch_cap,
        "currentAlloc": current,
    }
    if server.hold is not None:  # planned as it runs, with room to grow only
        held = min(server.current_replicas, server.max_replicas or server.current_replicas)
        entry.update(
            keepAccelerator=True,
            minNumReplicas=max(server.min_replicas, held),
            maxBatchSize=server.current_max_batch,
        )
    if server.accelerator_changed_at_s is not None:  # a clock skewed ahead counts as "just now"
        entry["acceleratorAgeS"] = max(0.0, now_s - server.accelerator_changed_at_s)
    if server.rolling_out:  # counted against the optimizer's rollout budget
        entry["rollingOut"] = True
    if server.current_replicas > server.ready_replicas:  # coming capacity: loading their model
        entry["startingReplicas"] = server.current_replicas - server.ready_replicas
    if startup_s is not None:
        entry["startupS"] = startup_s
    return entry


def _capacity(
    inputs: CycleInputs, settings: CollectorSettings, servers: list[ManagedServer], optimized: set[Key]
) -> tuple[dict[str, Any], list[str]]:
    """The capacity document and notes on what was reserved or left out.

    With no server to optimize nothing is reserved (there is nobody to reserve from), so a cycle in
    which every load is untrusted still yields a valid, if empty, system data.
    """
    static = inputs.static
    if settings.capacity_source == "nodes":
        replanned = optimized or {(s.namespace, s.deployment) for s in servers}
        cards, notes = node_capacity(inputs.nodes or [], inputs.pods or [], static.placement, replanned)
    else:
        cards, notes = static.system.capacity.cards_by_type(), []
        held = []
        for s in servers:
            if s.trusted or not s.current_replicas or not optimized:
                continue
            cards_held = server_cards(static.system, s.model, s.current_accelerator, s.current_replicas)
            if cards_held is None:
                notes.append(f"{s.server}: cards it holds are unknown (no accelerator label or model entry)")
            else:
                held.append((s.server, *cards_held))
        cards, reserve_notes = reserve(cards, held)
        notes += reserve_notes
    return {"count": [{"type": t, "count": n} for t, n in sorted(cards.items())]}, notes


def _errors(inputs: CycleInputs) -> list[str]:
    """What went wrong reading this cycle's inputs: the result is degraded when any did."""
    errors = list(inputs.errors)
    if inputs.static.calibration_error:
        errors.append(inputs.static.calibration_error)
    snapshot = inputs.snapshot
    if snapshot is not None:
        errors += [f"prometheus query {name} failed: {err}" for name, err in sorted(snapshot.failed.items())]
        if snapshot.malformed:
            errors.append(f"prometheus: {snapshot.malformed} malformed series ignored")
    return errors


def assemble(
    now_s: float, inputs: CycleInputs, settings: CollectorSettings, last_known: dict[Key, KnownLoad]
) -> Assembled:
    """Build the result; raises ``ConfigDataError`` if the system data does not validate."""
    static = inputs.static
    candidates, skipped = select_servers(inputs.deployments, static.system)
    skipped += [
        SkippedDeployment(namespace="", deployment="", kind=p.target.kind or p.target.name, reason=p.reason)
        for p in inputs.kind_problems
    ]
    servers: list[ManagedServer] = []
    entries: list[dict[str, Any]] = []
    resolved_by_key: dict[Key, ResolvedLoad] = {}
    counts: dict[Key, PodCounts] | None = None
    grace_s = 0.0
    if inputs.check_reporting_pods and inputs.pods is not None:
        grace_s = GRACE_WINDOWS * settings.rate_window_s
        counts = pod_counts(inputs.pods, now_s, grace_s)
    startups = measured_startup_s(inputs.pods or [])
    for cand in candidates:
        observed = observe(inputs.snapshot, cand.key, settings.staleness_s, settings.backlog_drain_s)
        hold = None
        if counts is not None:
            reporting = reporting_pods(inputs.snapshot, cand.key)
            hold = check(counts.get(cand.key, PodCounts()), reporting, grace_s)
        if hold is not None and hold.scale != 1.0:
            observed = scaled(observed, hold.scale, "pods not reporting")
        resolved = resolve_load(
            observed,
            cand.labels.load,
            last_known.get(cand.key),
            now_s,
            max_age_s=settings.last_known_max_age_s,
            labels_trusted=not settings.prometheus_enabled,
        )
        if cand.deployment.replicas == 0 and cand.key in inputs.demand:
            resolved = load_at_zero(
                resolved,
                inputs.demand[cand.key],
                cand.labels.load,
                last_known.get(cand.key),
                settings.demand_default_tokens,
            )
        if hold is not None and resolved.trusted and not _runs_known(cand):
            note = "held, but its running GPU type or batch is unknown (labels): kept as it is"
            resolved = replace(resolved, trusted=False, notes=(*resolved.notes, note))
        if hold is not None and not resolved.trusted:  # kept as it is anyway: untrusted is why
            resolved = replace(resolved, notes=(*resolved.notes, hold.step.text))
            hold = None
        resolved_by_key[cand.key] = resolved
        measured = measured_window(inputs.snapshot, cand.key, settings.rate_window_s)
        server = _managed(cand, resolved, observed, hold, measured)
        servers.append(server)
        if server.trusted:
            entries.append(_server_entry(server, cand, resolved, now_s, startups.get(cand.key)))
    optimized = {(s.namespace, s.deployment) for s in servers if s.trusted}
    capacity_doc, capacity_notes = _capacity(inputs, settings, servers, optimized)
    if not static.system.optimizer.optimizer.unlimited and not any(c["count"] for c in capacity_doc["count"]):
        detail = "; ".join(capacity_notes) or "no cards in the capacity source"
        raise ConfigDataError(
            f"no free cards of any type (capacity from {settings.capacity_source}, after reserving "
            f"what untrusted servers hold): the optimizer could allocate nothing; {detail}"
        )
    documents = {**static.documents, CAPACITY_KEY: capacity_doc, "server-data.json": {"servers": entries}}
    system = validate_documents(documents, settings)
    errors = _errors(inputs)
    result = CollectResult(
        collected_at_s=now_s,
        system=system,
        servers=servers,
        skipped=skipped,
        placement=static.placement,
        degraded=bool(errors),
        errors=errors,
        calibration=static.calibration,
    )
    warnings = capacity_notes + [f"skipped {s.namespace}/{s.deployment}: {s.reason}" for s in skipped]
    next_known = remember(last_known, resolved_by_key, now_s, settings.last_known_max_age_s)
    return Assembled(result, next_known, warnings)
