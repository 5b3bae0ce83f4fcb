"""Do the metrics cover every pod? Pods that report against pods that are Ready, per Deployment.

Called by :mod:`collector.assemble`, once per Deployment, with the pod list (from the cluster
port), the ``reporting_pods`` reading of :mod:`collector.promql` and ``now_s``. Pure: no clock,
no I/O.

A pod that drops out of the scrape (its target gone, a network policy, a relabelling change, a
Prometheus shard restarting) takes its share out of every sum within one scrape, while the sum
stays fresh and plausible: with 4 Ready pods and one unscraped, the load reads a quarter low and
the loop would scale down under an unchanged load. So, like the HPA (a pod without metrics counts
as fully used when scaling down):

- ``reporting`` = pods with a ``vllm:num_requests_running`` sample now and one a rate window ago:
  the pods whose rates cover the whole window (a pod dropped from the scrape leaves the count at
  once; one back from an outage or a restart rejoins it a window later, its rates whole again);
- ``settled`` = pods Ready for at least ``grace_s`` = :data:`GRACE_WINDOWS` rate windows (a pod
  that has just started or restarted has no full window yet; the half window more covers the
  scrape that follows its start by up to a scrape interval or two);
- fewer reporting than settled: the server is **held** (no scale-down, no GPU-type or batch
  change; :data:`contract.steps.StepCode.UNREPORTED_PODS`) and its load is scaled up to the Ready
  pods, ``arrival * ready / reporting``, so a scale-up still follows a real rise. E.g. 4 Ready
  pods, 3 reporting 90 rpm in all: 120 rpm, held at its replicas or above. A pod left out of the
  count may still have part of its window in the sums (one dropped a moment ago): the scaled load
  then reads high by up to that part, for at most a window, on the side of more replicas.

A count that is bad data (the query failed, NaN, negative) holds the server too, its load as
measured: bad data never scales down. Pods not listed check nothing (the collect says so in its
errors), and no series at all is not a count: the load is unknown already and the server
untrusted (:mod:`collector.load`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.metrics import Key, MetricsSnapshot
from collector.ports import PodInfo
from contract.steps import Step, StepCode

REPORTING_QUERY = "reporting_pods"
GRACE_WINDOWS = 1.5
"""A pod is expected to report once Ready for this many rate windows."""


@dataclass(frozen=True)
class PodCounts:
    """A Deployment's pods: ``ready`` now, and ``settled`` (Ready for at least the grace)."""

    ready: int = 0
    settled: int = 0


@dataclass(frozen=True)
class Hold:
    """Why the server is held, and the factor its measured arrival rate is scaled by."""

    step: Step
    scale: float


def pod_counts(pods: Iterable[PodInfo], now_s: float, grace_s: float) -> dict[Key, PodCounts]:
    """Ready and settled pods per (namespace, deployment); pods of no Deployment are left out.
    A ready time in the future (clock skew) counts as just now."""
    counts: dict[Key, PodCounts] = {}
    for pod in pods:
        if pod.deployment is None or pod.ready_since_s is None or not pod.serves:
            continue
        key = (pod.namespace, pod.deployment)
        old = counts.get(key, PodCounts())
        settled = now_s - pod.ready_since_s >= grace_s
        counts[key] = PodCounts(old.ready + 1, old.settled + int(settled))
    return counts


@dataclass(frozen=True)
class Reporting:
    """The pods with a sample now and a rate window ago (None: unknown), and why unknown when that
    is bad data."""

    pods: int | None
    problem: str = ""


def reporting_pods(snapshot: MetricsSnapshot | None, key: Key) -> Reporting:
    """The ``reporting_pods`` reading of one Deployment: a count; unknown with a problem (the query
    failed, a garbage value); or unknown without one (no Prometheus, no series)."""
    if snapshot is None:
        return Reporting(None)
    if REPORTING_QUERY in snapshot.failed:
        return Reporting(None, f"query failed: {snapshot.failed[REPORTING_QUERY]}")
    reading = snapshot.get(REPORTING_QUERY, key)
    if reading is None:
        return Reporting(None)
    if reading.value is None:
        return Reporting(None, f"rejected {reading.problem}")
    return Reporting(round(reading.value))


def check(counts: PodCounts | None, reporting: Reporting, grace_s: float) -> Hold | None:
    """The hold when fewer pods report than have been Ready for ``grace_s``, or when how many
    report is bad data; None otherwise."""
    if counts is None or counts.settled <= 0:
        return None
    if reporting.problem:
        text = (
            f"pods reporting metrics unknown ({reporting.problem}), {counts.settled} pod(s) Ready for "
            f"{grace_s:g} s: held, no scale-down, GPU-type or batch change until the count is known"
        )
        return Hold(Step(stage="collect", code=StepCode.UNREPORTED_PODS, text=text), 1.0)
    pods = reporting.pods
    if pods is None or pods <= 0 or pods >= counts.settled:
        return None
    scale = counts.ready / pods
    text = (
        f"{pods} of {counts.settled} pod(s) Ready for {grace_s:g} s report metrics "
        f"({counts.ready} Ready in all): load scaled x{scale:.3g} to the Ready pods; held, no "
        "scale-down, GPU-type or batch change until every pod reports"
    )
    return Hold(Step(stage="collect", code=StepCode.UNREPORTED_PODS, text=text), scale)
