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
- Per-pod queries (``per_pod``) keep each pod's reading too (its ``pod`` label, else its
  ``instance``), beside the Deployment's merged one.
- Histogram bucket queries (``per_bucket``) keep one cumulative rate per ``le`` edge and
  Deployment (several pods' series of one edge add up): a :class:`Buckets`. A bad value spoils the
  Deployment's histogram; an entry without a numeric ``le`` is malformed.
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
class Buckets:
    """One histogram of one Deployment: ``(le, rate of observations <= le)`` in ascending ``le``
    (the last is ``+Inf``: every observation). ``problem``: why it is unusable ("" if usable)."""

    cumulative: tuple[tuple[float, float], ...]
    problem: str = ""


@dataclass(frozen=True)
class MetricsSnapshot:
    readings: Mapping[str, Mapping[Key, Reading]] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict, metadata={"doc": "query name -> error"})
    malformed: int = 0
    labels: Mapping[str, Mapping[Key, frozenset[str]]] = field(default_factory=dict)
    """Per query with a ``label`` (:class:`collector.promql.QuerySpec`): its values per Deployment."""
    buckets: Mapping[str, Mapping[Key, Buckets]] = field(default_factory=dict)
    pods: Mapping[str, Mapping[Key, Mapping[str, Reading]]] = field(default_factory=dict)
    """Per ``per_pod`` query: each pod's reading per Deployment (their sum is in ``readings``)."""

    def get(self, query: str, key: Key) -> Reading | None:
        return self.readings.get(query, {}).get(key)

    def per_pod(self, query: str, key: Key) -> Mapping[str, Reading]:
        return self.pods.get(query, {}).get(key, {})

    def histogram(self, query: str, key: Key) -> Buckets | None:
        return self.buckets.get(query, {}).get(key)


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


def parse_per_pod(spec: QuerySpec, result: Iterable[Any], key_of: KeyOf) -> dict[Key, dict[str, Reading]]:
    """Each pod's reading per Deployment (the pod named by its ``pod`` label, else its
    ``instance``); the malformed entries are :func:`parse_vector`'s to count."""
    out: dict[Key, dict[str, Reading]] = {}
    for entry in result:
        parsed = _parse_entry(entry, key_of)
        if parsed is None:
            continue
        labels = entry["metric"]
        pod = labels.get("pod") or labels.get("instance")
        if not isinstance(pod, str):
            continue
        key, at_s, value = parsed
        problem = _check(spec, value)
        reading = Reading(None if problem else value, at_s, problem)
        pods = out.setdefault(key, {})
        pods[pod] = _merge(spec, pods[pod], reading) if pod in pods else reading
    return out


def parse_buckets(result: Iterable[Any], key_of: KeyOf) -> tuple[dict[Key, Buckets], int]:
    """Histograms per Deployment (series of one ``le`` added up) and the number of malformed entries."""
    rates: dict[Key, dict[float, float]] = {}
    problems: dict[Key, str] = {}
    malformed = 0
    for entry in result:
        parsed = _parse_entry(entry, key_of)
        le = _edge(entry["metric"].get("le")) if parsed is not None else None
        if parsed is None or le is None:
            malformed += 1
            continue
        key, _, value = parsed
        if not math.isfinite(value) or value < 0:
            problems.setdefault(key, f"bucket le={le:g}: {describe_bad(value)}")
        edges = rates.setdefault(key, {})
        edges[le] = edges.get(le, 0.0) + value
    out = {key: Buckets(tuple(sorted(edges.items())), problems.get(key, "")) for key, edges in rates.items()}
    return out, malformed


def _edge(le: Any) -> float | None:
    """A bucket's upper edge from its ``le`` label (``"+Inf"`` included); None if not a number."""
    try:
        edge = float(le)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(edge) else edge


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
    buckets: dict[str, dict[Key, Buckets]] = {}
    pods: dict[str, dict[Key, dict[str, Reading]]] = {}
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
        if spec.per_bucket:
            buckets[name], bad = parse_buckets(answer, key_of)
        else:
            readings[name], bad = parse_vector(spec, answer, key_of)
        if spec.per_pod:
            pods[name] = parse_per_pod(spec, answer, key_of)
        malformed += bad
        if spec.label:
            labels[name] = label_values(answer, spec.label, key_of)
    return MetricsSnapshot(readings, failed, malformed, labels, buckets, pods)


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
