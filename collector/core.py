"""One collection: fetch everything through the ports, concurrently, then :func:`assemble` it.

Called by :mod:`collector.app` on ``GET /collect`` (and by tests with fakes). ``now_s`` is an
argument; the last-known store goes in and the next one comes out (in :class:`Assembled`).

What a failing source does:

- Deployments or a data ConfigMap unreadable, a ConfigMap broken, or Nodes/pods unreadable with
  node-derived capacity: :class:`CollectError`; no result, the controller skips the cycle.
- Prometheus down or a query failing: the result is ``degraded``, the affected values fall back
  (labels, last known) and the servers concerned are untrusted.
- Pods unreadable with ``metrics_grouping=pod`` only: degraded; series map to Deployments by pod
  name alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from collector.assemble import Assembled, CycleInputs, assemble
from collector.load import KnownLoad
from collector.metrics import Key, MetricsSnapshot, build_snapshot, key_resolver
from collector.ports import (
    ClusterPort,
    DeploymentInfo,
    KindProblem,
    KubePort,
    MetricsPort,
    PodInfo,
    SourceError,
)
from collector.promql import build_queries
from collector.settings import CollectorSettings
from collector.static_data import ConfigDataError, parse_static
from collector.wake import Demand, demand_from_answer
from contract.labels import DEMAND_QUERY

T = TypeVar("T")


class CollectError(Exception):
    """The collection failed as a whole. ``kind``: ``source`` (an API call) or ``data`` (bad data)."""

    def __init__(self, kind: Literal["source", "data"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Ports:
    kube: KubePort
    cluster: ClusterPort | None = None
    metrics: MetricsPort | None = None


async def _required(what: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except SourceError as exc:
        raise CollectError("source", f"{what}: {exc}") from None


async def _optional(what: str, call: Awaitable[T | None]) -> tuple[T | None, str | None]:
    """``call``'s answer, or None and an error note when its source fails (what it feeds is optional)."""
    try:
        return await call, None
    except SourceError as exc:
        return None, f"{what}: {exc}"


async def _pods(
    cluster: ClusterPort, namespaces: tuple[str, ...], required: bool
) -> tuple[list[PodInfo], str | None]:
    """The pod list; when only pod grouping needs it, a failure is an error note, not the end."""
    try:
        return await cluster.list_pods(namespaces), None
    except SourceError as exc:
        if required:
            raise CollectError("source", f"listing pods: {exc}") from None
        return [], (
            f"listing pods failed, series mapped to Deployments by pod name only and reporting pods "
            f"not checked: {exc}"
        )


async def _queries(
    metrics: MetricsPort, queries: dict[str, str], concurrency: int
) -> dict[str, list[Any] | BaseException]:
    """Every query's answer, or the exception it raised; at most ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one(promql: str) -> list[dict[str, Any]]:
        async with gate:
            return await metrics.query(promql)

    answers = await asyncio.gather(*(one(q) for q in queries.values()), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, Exception):
            raise answer  # cancellation and the like are not a query's failure
    return dict(zip(queries, answers, strict=True))


async def _demand(
    metrics: MetricsPort | None, deployments: list[DeploymentInfo], concurrency: int
) -> dict[Key, Demand]:
    """The demand query of each scale target at zero replicas that has one (collector/wake.py);
    a failing query is a missing value, never an error of the collect."""
    asked = {
        (d.namespace, d.name): d.annotations[DEMAND_QUERY].strip()
        for d in deployments
        if d.replicas == 0 and d.annotations.get(DEMAND_QUERY, "").strip()
    }
    if metrics is None or not asked:
        return {}
    answers = await _queries(metrics, {f"{ns}/{name}": q for (ns, name), q in asked.items()}, concurrency)
    return {key: demand_from_answer(answers[f"{key[0]}/{key[1]}"]) for key in asked}


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The CollectError of a failed task group if there is one, else its first exception."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return next((e for e in leaves if isinstance(e, CollectError)), leaves[0])


def checks_pods(settings: CollectorSettings, ports: Ports) -> bool:
    """Whether this collect compares reporting with Ready pods (:mod:`collector.coverage`)."""
    return settings.check_reporting_pods and settings.prometheus_enabled and ports.cluster is not None


async def collect(
    now_s: float,
    ports: Ports,
    settings: CollectorSettings,
    last_known: dict[Key, KnownLoad],
    *,
    calibration: bool = True,
) -> Assembled:
    """Fetch, then assemble. Raises :class:`CollectError` when no usable result can be built.
    ``calibration``: send the queries online calibration alone reads (each server's
    ``measured`` window); false when the controller's calibration is off."""
    kube, cfg_ns = ports.kube, settings.config_namespace
    need_nodes = settings.capacity_source == "nodes"
    cluster = ports.cluster
    if (need_nodes or settings.metrics_grouping == "pod") and cluster is None:
        raise CollectError("data", "node-derived capacity and pod grouping need the cluster port")
    metrics = ports.metrics if settings.prometheus_enabled else None
    # the reporting-pods check reads pods too; without a cluster port it checks nothing
    need_pods = need_nodes or settings.metrics_grouping == "pod" or checks_pods(settings, ports)
    queries = build_queries(
        settings.namespaces,
        settings.rate_window_s,
        settings.metrics_grouping,
        settings.token_window_s,
        calibration=calibration,
    )
    dynamic_t = learned_t = nodes_t = pods_t = answers_t = None
    try:
        async with asyncio.TaskGroup() as tg:
            deployments_t = tg.create_task(
                _required("listing Deployments", kube.list_managed_deployments(settings.namespaces))
            )
            static_t = tg.create_task(
                _required(
                    "reading the static ConfigMap", kube.read_config_map(cfg_ns, settings.static_configmap)
                )
            )
            if not need_nodes:
                dynamic_t = tg.create_task(
                    _required(
                        "reading the dynamic ConfigMap",
                        kube.read_config_map(cfg_ns, settings.dynamic_configmap),
                    )
                )
            elif calibration:  # with capacity from Nodes only calibration's learned values are read from it
                learned_t = tg.create_task(
                    _optional(
                        "reading the dynamic ConfigMap (learned performance)",
                        kube.read_config_map(cfg_ns, settings.dynamic_configmap),
                    )
                )
            if cluster is not None and need_nodes:
                nodes_t = tg.create_task(_required("listing Nodes", cluster.list_nodes()))
            if cluster is not None and need_pods:
                pods_t = tg.create_task(_pods(cluster, () if need_nodes else settings.namespaces, need_nodes))
            if metrics is not None:
                answers_t = tg.create_task(_queries(metrics, queries, settings.prometheus_concurrency))
    except BaseExceptionGroup as group:
        raise _first_error(group) from None

    deployments = [d for d in deployments_t.result() if isinstance(d, DeploymentInfo)]
    demand = await _demand(metrics, deployments, settings.prometheus_concurrency)
    try:
        dynamic_cm, learned_error = learned_t.result() if learned_t else (None, None)
        if dynamic_t is not None:
            dynamic_cm = dynamic_t.result()
        static = parse_static(static_t.result(), dynamic_cm, settings)
    except ConfigDataError as exc:
        raise CollectError("data", str(exc)) from None
    pods, pod_error = pods_t.result() if pods_t else ([], None)
    snapshot: MetricsSnapshot | None = None
    if answers_t is not None:
        snapshot = build_snapshot(answers_t.result(), key_resolver(settings.metrics_grouping, pods))
    inputs = CycleInputs(
        deployments=deployments,
        demand=demand,
        kind_problems=[p for p in deployments_t.result() if isinstance(p, KindProblem)],
        static=static,
        snapshot=snapshot,
        nodes=nodes_t.result() if nodes_t else None,
        pods=pods if pods_t else None,
        errors=[e for e in (pod_error, learned_error) if e],
        check_reporting_pods=checks_pods(settings, ports) and not pod_error,
    )
    try:
        return assemble(now_s, inputs, settings, last_known)
    except ConfigDataError as exc:
        raise CollectError("data", str(exc)) from None
