"""Pod objects as the kubelet and the ReplicaSet controller shape them (pure edits of dicts).

:func:`make_pod` builds a pod from a ReplicaSet's template; :func:`bind`, :func:`mark_ready` and
:func:`mark_unschedulable` write the status a scheduled, started or unschedulable pod shows
(phase, podIP, conditions, containerStatuses); :func:`pick_victims` orders pods for scale-down as
the ReplicaSet controller does. Used by :mod:`.controller`; drivers may use them to edit pods.
"""

from __future__ import annotations

import copy
from typing import Any

Obj = dict[str, Any]


def make_pod(rs: Obj, name: str, owner: dict[str, Any]) -> Obj:
    """A new pod of ReplicaSet ``rs`` (template labels and annotations, controlling owner)."""
    template = rs["spec"].get("template") or {}
    tmeta = template.get("metadata") or {}
    spec = copy.deepcopy(template.get("spec") or {})
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    meta: dict[str, Any] = {
        "name": name,
        "namespace": rs["metadata"]["namespace"],
        "labels": dict(tmeta.get("labels") or {}),
        "ownerReferences": [owner],
    }
    if tmeta.get("annotations"):
        meta["annotations"] = dict(tmeta["annotations"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def _condition(kind: str, value: bool, now: str, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": "True" if value else "False", "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _set_condition(status: dict[str, Any], cond: dict[str, Any]) -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]]
    old = next((c for c in status.get("conditions") or [] if c.get("type") == cond["type"]), None)
    if old is not None and old.get("status") == cond["status"]:
        cond["lastTransitionTime"] = old.get("lastTransitionTime", cond["lastTransitionTime"])
    status["conditions"] = [*conditions, cond]


def _container_statuses(pod: Obj, ready: bool, now: str) -> list[dict[str, Any]]:
    return [
        {
            "name": c.get("name", ""),
            "image": c.get("image", ""),
            "imageID": "",
            "ready": ready,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": now}},
        }
        for c in (pod.get("spec") or {}).get("containers") or []
    ]


def bind(pod: Obj, node: str, ip: str, now: str) -> None:
    """Scheduled on ``node`` and started (not yet Ready): phase Running, the pod's loopback IP."""
    pod["spec"]["nodeName"] = node
    status = pod.setdefault("status", {})
    status.update(phase="Running", podIP=ip, podIPs=[{"ip": ip}], hostIP="127.0.0.1", startTime=now)
    status["hostIPs"] = [{"ip": "127.0.0.1"}]
    status["qosClass"] = status.get("qosClass", "Burstable")
    for kind, value in (
        ("PodScheduled", True),
        ("Initialized", True),
        ("ContainersReady", False),
        ("Ready", False),
    ):
        _set_condition(status, _condition(kind, value, now))
    status["containerStatuses"] = _container_statuses(pod, False, now)


def mark_ready(pod: Obj, now: str) -> None:
    """Readiness probe passed: ``ContainersReady`` and ``Ready`` True."""
    status = pod.setdefault("status", {})
    for kind in ("ContainersReady", "Ready"):
        _set_condition(status, _condition(kind, True, now))
    for cs in status.get("containerStatuses") or []:
        cs["ready"] = True


def mark_unschedulable(pod: Obj, message: str, now: str) -> None:
    """No node fits: Pending with ``PodScheduled=False, reason Unschedulable``."""
    status = pod.setdefault("status", {})
    status["phase"] = "Pending"
    _set_condition(status, _condition("PodScheduled", False, now, "Unschedulable", message))


def is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pick_victims(pods: list[Obj], count: int) -> list[Obj]:
    """The ``count`` pods to delete on scale-down: unscheduled, then not ready, then newest first."""
    if count <= 0:
        return []

    def rank(pod: Obj) -> tuple[int, int, int]:
        scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
        created = -int((pod.get("metadata") or {}).get("resourceVersion") or 0)
        return (scheduled, 1 if is_ready(pod) else 0, created)

    return sorted(pods, key=rank)[:count]
