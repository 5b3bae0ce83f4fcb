"""A Deployment and its pods, as Kubernetes JSON, turned into the engine's :class:`DeploymentState` (pure).

One conversion for every cluster view: the in-memory API server's store and the real cluster's
raw-JSON snapshot (:mod:`load_emulator.demo.store_view`) and the official client's typed objects
(:mod:`load_emulator.k8s_cluster`, serialised to the same JSON first).

Rules. A Deployment without ``inferno.server.model`` is not a server (None). Batch: the
``--max-num-seqs`` that vLLM runs with (the first container's args, the pod's own for a pod, as
pods of an old template keep theirs during a rollout), else ``inferno.server.allocation.maxbatchsize``,
else 0 (the model data's batch). Accelerator: the pod's ``inferno.server.allocation.accelerator``
label, else the Deployment's. A pod serves from the ``lastTransitionTime`` of its ``Ready=True``
condition, in engine seconds (unix time minus ``origin_wall_s``); Pending, not-Ready and terminating
(``deletionTimestamp``) pods serve nothing. E.g. args ``--max-num-seqs 16`` and the label 24: 16.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from load_emulator.cluster import (
    LABEL_ACCELERATOR,
    LABEL_CLASS,
    LABEL_MAX_BATCH,
    LABEL_MODEL,
    LABEL_NAME,
    DeploymentState,
    PodState,
    parse_max_num_seqs,
)

Obj = Mapping[str, Any]


def deployment_state(dep: Obj, pods: Sequence[Obj], origin_wall_s: float) -> DeploymentState | None:
    """The server a Deployment's JSON describes, with the pods its selector matches; see the module."""
    meta, spec = dep.get("metadata") or {}, dep.get("spec") or {}
    labels: dict[str, str] = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    model = labels.get(LABEL_MODEL, "")
    if not model:
        return None
    template = (spec.get("template") or {}).get("spec")
    dep_batch = parse_max_num_seqs(_args(template)) or _int(labels.get(LABEL_MAX_BATCH))
    accelerator = labels.get(LABEL_ACCELERATOR, "")
    selector = dict((spec.get("selector") or {}).get("matchLabels") or {})
    mine = [p for p in pods if selector and selector.items() <= dict(_meta(p).get("labels") or {}).items()]
    pod_states = tuple(
        PodState(
            name=str(_meta(p).get("name", "")),
            accelerator=str((_meta(p).get("labels") or {}).get(LABEL_ACCELERATOR) or accelerator),
            max_batch=parse_max_num_seqs(_args(p.get("spec"))) or dep_batch,
            ready_since_s=ready_since_s(p, origin_wall_s),
        )
        for p in sorted(mine, key=lambda p: str(_meta(p).get("name", "")))
    )
    replicas = spec.get("replicas")
    return DeploymentState(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        model=model,
        accelerator=accelerator,
        max_batch=dep_batch,
        replicas=int(replicas) if replicas is not None else 1,
        server_name=labels.get(LABEL_NAME, ""),
        service_class=labels.get(LABEL_CLASS, "Free"),
        pods=pod_states,
        labels=labels,
    )


def ready_since_s(pod: Obj, origin_wall_s: float) -> float | None:
    """Engine seconds since the pod became Ready; None when it is not Ready or terminating."""
    if _meta(pod).get("deletionTimestamp"):
        return None
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            stamp = str(cond.get("lastTransitionTime") or "")
            try:
                return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - origin_wall_s
            except ValueError:
                return 0.0
    return None


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _args(pod_spec: Obj | None) -> list[str]:
    containers = (pod_spec or {}).get("containers") or []
    return [str(a) for a in containers[0].get("args") or []] if containers else []


def _int(value: str | None) -> int:
    try:
        return max(int(value), 0) if value is not None else 0
    except ValueError:
        return 0
