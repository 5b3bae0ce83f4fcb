"""Scheduling, the kube-scheduler part of the built-in controller (pure functions over dicts).

A pod fits a node when the node is schedulable and Ready (a node without conditions counts as
Ready), the pod's ``nodeSelector`` labels are on the node, its required node affinity terms
(``In``, ``NotIn``, ``Exists``, ``DoesNotExist``) match, it tolerates the node's ``NoSchedule`` and
``NoExecute`` taints, and its requests fit in allocatable minus what the pods already bound there
request. Requests per container default to its limits (as Kubernetes does); a pod requests the
larger of its containers' sum and any init container. Extended resources (``nvidia.com/gpu``,
``amd.com/gpu``: any name with a ``/``) that a node does not list are 0 there; ``cpu``, ``memory``,
``pods`` and ``ephemeral-storage`` a node does not list are unlimited. Nodes are tried in name
order, first fit (deterministic bin packing, not the real scheduler's scoring). Used by
:mod:`.controller`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

_SUFFIXES = {
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity as a number: ``"500m"`` -> 0.5, ``"80Gi"`` -> 85899345920.0, ``2`` -> 2.0."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2) or ""]


def _container_requests(container: Mapping[str, Any]) -> dict[str, float]:
    resources = container.get("resources") or {}
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return {name: parse_quantity(q) for name, q in merged.items()}


def pod_requests(pod_spec: Mapping[str, Any]) -> dict[str, float]:
    """What a pod asks for: sum over containers, at least each init container's; plus one ``pods``."""
    total: dict[str, float] = {"pods": 1.0}
    for container in pod_spec.get("containers") or []:
        for name, q in _container_requests(container).items():
            total[name] = total.get(name, 0.0) + q
    for container in pod_spec.get("initContainers") or []:
        for name, q in _container_requests(container).items():
            total[name] = max(total.get(name, 0.0), q)
    return total


def _unlimited_if_absent(resource: str) -> bool:
    return "/" not in resource or resource.startswith("kubernetes.io/")


def _node_ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = [c for c in conditions if c.get("type") == "Ready"]
    return not ready or ready[0].get("status") == "True"


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return key in labels and labels[str(key)] in values
    if op == "NotIn":
        return key not in labels or labels[str(key)] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False


def _affinity_matches(pod_spec: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    node_affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    return not terms or any(
        all(_expression_matches(e, labels) for e in term.get("matchExpressions") or []) for term in terms
    )


def _tolerates(pod_spec: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    for tol in pod_spec.get("tolerations") or []:
        if tol.get("effect") not in (None, "", taint.get("effect")):
            continue
        if tol.get("operator") == "Exists" and tol.get("key") in (None, "", taint.get("key")):
            return True
        if tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def misfit(pod_spec: Mapping[str, Any], node: Mapping[str, Any], used: Mapping[str, float]) -> str | None:
    """Why the pod cannot go on this node (a short reason, as the scheduler reports), or ``None``."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    if (node.get("spec") or {}).get("unschedulable") or not _node_ready(node):
        return "node(s) were unschedulable or not ready"
    selector = pod_spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()) or not _affinity_matches(pod_spec, labels):
        return "node(s) didn't match Pod's node affinity/selector"
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(pod_spec, taint):
            return "node(s) had untolerated taint"
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    for resource, amount in pod_requests(pod_spec).items():
        if amount <= 0 or (resource not in allocatable and _unlimited_if_absent(resource)):
            continue
        capacity = parse_quantity(allocatable.get(resource, 0))
        if used.get(resource, 0.0) + amount > capacity + 1e-9:
            return f"Insufficient {resource}"
    return None


def choose_node(
    pod_spec: Mapping[str, Any], nodes: Iterable[Mapping[str, Any]], used: Mapping[str, Mapping[str, float]]
) -> tuple[str | None, str]:
    """(the first node in name order that fits, "") or (None, the scheduler's failure message)."""
    reasons: dict[str, int] = {}
    count = 0
    for node in sorted(nodes, key=lambda n: str((n.get("metadata") or {}).get("name"))):
        count += 1
        name = str((node.get("metadata") or {}).get("name"))
        reason = misfit(pod_spec, node, used.get(name, {}))
        if reason is None:
            return name, ""
        reasons[reason] = reasons.get(reason, 0) + 1
    detail = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
    return None, f"0/{count} nodes are available: {detail}." if detail else f"0/{count} nodes are available."


def add_usage(used: dict[str, dict[str, float]], node: str, pod_spec: Mapping[str, Any]) -> None:
    """Count a pod bound to ``node`` in the running totals."""
    totals = used.setdefault(node, {})
    for resource, amount in pod_requests(pod_spec).items():
        totals[resource] = totals.get(resource, 0.0) + amount
