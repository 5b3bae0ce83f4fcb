"""Prometheus answers -> per-Deployment readings, with garbage rejected per series.

Called by :mod:`collector.core` with the raw ``data.result`` lists of the queries in
:mod:`collector.promql` (or the exception a query raised). Each answer entry looks like
``{"metric": {"namespace": "ns", "deployment": "d"}, "value": [1712000000.0, "12.5"]}``; the value
is a string and may be ``"NaN"``, ``"+Inf"`` or ``"-Inf"``.

Rules, per (query, Deployment):

- NaN, +-Inf, or a negative value where the quantity cannot be negative: the reading is kept with
  ``value=None`` and a ``problem`` that the load stage turns into a note and a fallback.
- Several series for one Deployment (one per pod with ``metrics_grouping=pod``) merge by the
  query's ``combine`` (sum or max); one bad series spoils the merged reading.
- Entries without the grouping labels, or that are not ``[timestamp, "number"]``, are counted as
  malformed and ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from collector.ports import PodInfo
from collector.promql import QUERY_BY_NAME, QuerySpec

Key = tuple[str, str]  # (namespace, deployment)
KeyOf = Callable[[Mapping[str, Any]], Key | None]


@dataclass(frozen=True)
class Reading:
    """One query's value for one Deployment. ``at_s``: Prometheus's evaluation time."""

    value: float | None
    at_s: float
    problem: str = ""


@dataclass(frozen=True)
class MetricsSnapshot:
    readings: Mapping[str, Mapping[Key, Reading]] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict, metadata={"doc": "query name -> error"})
    malformed: int = 0
    labels: Mapping[str, Mapping[Key, frozenset[str]]] = field(default_factory=dict)
    """Per query with a ``label`` (:class:`collector.promql.QuerySpec`): its values per Deployment."""

    def get(self, query: str, key: Key) -> Reading | None:
        return self.readings.get(query, {}).get(key)


def describe_bad(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"negative ({value:g})"


def _check(spec: QuerySpec, value: float) -> str:
    if not math.isfinite(value) or (value < 0 and not spec.signed):
        return describe_bad(value)
    return ""


def _merge(spec: QuerySpec, old: Reading, new: Reading) -> Reading:
    if old.value is None or new.value is None:
        return old if old.value is None else new
    merged = old.value + new.value if spec.combine == "sum" else max(old.value, new.value)
    return Reading(merged, max(old.at_s, new.at_s))


def parse_vector(spec: QuerySpec, result: Iterable[Any], key_of: KeyOf) -> tuple[dict[Key, Reading], int]:
    """Readings per Deployment and the number of malformed entries."""
    out: dict[Key, Reading] = {}
    malformed = 0
    for entry in result:
        parsed = _parse_entry(entry, key_of)
        if parsed is None:
            malformed += 1
            continue
        key, at_s, value = parsed
        problem = _check(spec, value)
        reading = Reading(None if problem else value, at_s, problem)
        out[key] = _merge(spec, out[key], reading) if key in out else reading
    return out, malformed


def _parse_entry(entry: Any, key_of: KeyOf) -> tuple[Key, float, float] | None:
    if not isinstance(entry, dict):
        return None
    labels, pair = entry.get("metric"), entry.get("value")
    if not isinstance(labels, dict) or not isinstance(pair, list | tuple) or len(pair) != 2:
        return None
    key = key_of(labels)
    if key is None:
        return None
    try:
        at_s, value = float(pair[0]), float(pair[1])
    except (TypeError, ValueError):
        return None
    if isinstance(pair[1], bool) or not math.isfinite(at_s):
        return None
    return key, at_s, value


def build_snapshot(answers: Mapping[str, list[Any] | BaseException], key_of: KeyOf) -> MetricsSnapshot:
    """Parse every answer; an exception (or a non-list answer) marks its query failed."""
    readings: dict[str, dict[Key, Reading]] = {}
    labels: dict[str, dict[Key, frozenset[str]]] = {}
    failed: dict[str, str] = {}
    malformed = 0
    for name, answer in answers.items():
        if isinstance(answer, BaseException):
            failed[name] = str(answer) or type(answer).__name__
            continue
        if not isinstance(answer, list):
            failed[name] = f"unexpected answer of type {type(answer).__name__}"
            continue
        spec = QUERY_BY_NAME[name]
        readings[name], bad = parse_vector(spec, answer, key_of)
        malformed += bad
        if spec.label:
            labels[name] = label_values(answer, spec.label, key_of)
    return MetricsSnapshot(readings, failed, malformed, labels)


def label_values(result: Iterable[Any], label: str, key_of: KeyOf) -> dict[Key, frozenset[str]]:
    """The values of ``label`` per Deployment in an answer (entries without it are skipped)."""
    out: dict[Key, set[str]] = {}
    for entry in result:
        labels = entry.get("metric") if isinstance(entry, dict) else None
        if not isinstance(labels, dict):
            continue
        key, value = key_of(labels), labels.get(label)
        if key is not None and isinstance(value, str) and value:
            out.setdefault(key, set()).add(value)
    return {key: frozenset(values) for key, values in out.items()}


def key_resolver(grouping: Literal["deployment", "pod"], pods: Iterable[PodInfo]) -> KeyOf:
    """How a series' labels name its Deployment.

    ``deployment``: the ``namespace`` and ``deployment`` labels (set by relabeling).
    ``pod``: the ``namespace`` and ``pod`` labels, mapped through the pod list (owner references);
    a pod missing from the list maps by name, ``<deployment>-<replicaset hash>-<pod suffix>``.
    """
    if grouping == "deployment":

        def by_deployment(labels: Mapping[str, Any]) -> Key | None:
            ns, dep = labels.get("namespace"), labels.get("deployment")
            return (ns, dep) if isinstance(ns, str) and isinstance(dep, str) and ns and dep else None

        return by_deployment

    owners = {(p.namespace, p.name): p.deployment for p in pods if p.deployment}

    def by_pod(labels: Mapping[str, Any]) -> Key | None:
        ns, pod = labels.get("namespace"), labels.get("pod")
        if not (isinstance(ns, str) and isinstance(pod, str) and ns and pod):
            return None
        owner = owners.get((ns, pod))
        if owner is None:
            parts = pod.rsplit("-", 2)
            owner = parts[0] if len(parts) == 3 and parts[0] else None
        return (ns, owner) if owner else None

    return by_pod
