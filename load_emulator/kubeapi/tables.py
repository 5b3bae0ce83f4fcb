"""Server-side printing: ``meta.k8s.io/v1`` ``Table`` answers, so ``kubectl get`` shows columns.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, application/json``; the
real apiserver then answers a Table (column definitions, one row of cells per object, and the
object's metadata). Without this, kubectl prints only NAME and AGE. Columns follow kubectl's for
Deployments (READY, UP-TO-DATE, AVAILABLE), ReplicaSets, Pods (READY, STATUS, RESTARTS, IP,
NODE) and Nodes (STATUS, ROLES, VERSION); other kinds get NAME and AGE. Used by :mod:`.routes`
and :mod:`.watch` when the request's Accept header asks for a Table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .resources import DEPLOYMENTS, NODES, PODS, REPLICASETS, SERVER_VERSION, ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj], Any]]  # (name, type, priority, cell)


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def human_age(seconds: float) -> str:
    """kubectl's short durations: ``45s``, ``3m20s``, ``42m``, ``5h10m``, ``30h``, ``3d4h``, ``12d``."""
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    minutes, hours = s // 60, s // 3600
    if s < 600:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    return f"{days}d{hours % 24}h" if days < 8 and hours % 24 else f"{days}d"


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def _pod_ready(pod: Obj) -> str:
    statuses = _status(pod).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def _restarts(pod: Obj) -> str:
    return str(sum(c.get("restartCount", 0) for c in _status(pod).get("containerStatuses") or []))


def _node_status(node: Obj) -> str:
    ready = [c for c in _status(node).get("conditions") or [] if c.get("type") == "Ready"]
    text = "Ready" if not ready or ready[0].get("status") == "True" else "NotReady"
    return text + (",SchedulingDisabled" if (node.get("spec") or {}).get("unschedulable") else "")


def _columns(rt: ResourceType) -> list[Column]:
    if rt is DEPLOYMENTS:
        return [
            (
                "Ready",
                "string",
                0,
                lambda o: f"{_status(o).get('readyReplicas', 0)}/{o['spec'].get('replicas', 0)}",
            ),
            ("Up-to-date", "integer", 0, lambda o: _status(o).get("updatedReplicas", 0)),
            ("Available", "integer", 0, lambda o: _status(o).get("availableReplicas", 0)),
        ]
    if rt is REPLICASETS:
        return [
            ("Desired", "integer", 0, lambda o: o["spec"].get("replicas", 0)),
            ("Current", "integer", 0, lambda o: _status(o).get("replicas", 0)),
            ("Ready", "integer", 0, lambda o: _status(o).get("readyReplicas", 0)),
        ]
    if rt is PODS:
        return [
            ("Ready", "string", 0, _pod_ready),
            ("Status", "string", 0, lambda o: _status(o).get("phase", "Unknown")),
            ("Restarts", "string", 0, _restarts),
            ("IP", "string", 1, lambda o: _status(o).get("podIP", "<none>")),
            ("Node", "string", 1, lambda o: (o.get("spec") or {}).get("nodeName", "<none>")),
        ]
    if rt is NODES:
        return [
            ("Status", "string", 0, _node_status),
            ("Roles", "string", 0, lambda _o: "<none>"),
            ("Version", "string", 0, lambda _o: SERVER_VERSION["gitVersion"]),
        ]
    return []


def to_table(rt: ResourceType, items: list[Obj], now_s: float, resource_version: str = "") -> Obj:
    """A Table of ``items``: NAME, the kind's columns, then AGE (as kubectl orders them)."""
    columns = _columns(rt)
    age_at = {PODS: 4, NODES: 3}.get(rt, len(columns) + 1)  # kubectl's place for AGE
    definitions = [
        {"name": n, "type": t, "format": "", "description": n, "priority": p} for n, t, p, _ in columns
    ]
    definitions.insert(
        0, {"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}
    )
    definitions.insert(
        age_at, {"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0}
    )
    rows = []
    for obj in items:
        meta = obj.get("metadata") or {}
        created = meta.get("creationTimestamp")
        age = "<unknown>"
        if created:
            age = human_age(
                now_s - datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
            )
        cells: list[Any] = [meta.get("name", ""), *(cell(obj) for _, _, _, cell in columns)]
        cells.insert(age_at, age)
        partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}
        rows.append({"cells": cells, "object": partial})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
