"""Scale targets of every kind as the collector reads them (pure; :mod:`contract.targets`).

Called by :mod:`collector.kube_adapter`: each listed object (the API server's JSON) becomes a
:class:`DeploymentInfo` carrying its ``target``, and each pod is mapped to the scale target it
belongs to (:func:`owning_target`), whatever the kind:

- Deployment: ``spec.replicas`` (absent: 1), ready and rollout state from its status.
- LeaderWorkerSet: ``spec.replicas`` groups (absent: 1); ``status.readyReplicas`` counts groups
  whose pods are all ready; it is rolling out while fewer groups are updated or ready than wanted.
  Its pods carry ``leaderworkerset.sigs.k8s.io/name``; only the leader (worker index 0) serves.
- InferenceService: ``spec.predictor.minReplicas`` (absent: 1); ready when its ``Ready``
  condition is True (then all its replicas count as ready). Its pods carry
  ``serving.kserve.io/inferenceservice``.
- ``/scale`` only: ``spec.replicas`` and ``status.replicas`` of the ``scale`` object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.ports import DeploymentInfo
from contract.targets import KSERVE_ISVC_LABEL, LWS_NAME_LABEL, LWS_WORKER_INDEX_LABEL, Shape, TargetRef


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def to_target(
    ref: TargetRef, obj: Mapping[str, Any], scale: Mapping[str, Any] | None = None
) -> DeploymentInfo:
    """A listed object of ``ref``'s kind (not a Deployment: see ``kube_adapter.to_deployment``);
    ``scale``: its ``/scale`` object, for a /scale-only kind."""
    meta, spec, status = (_dict(obj.get(k)) for k in ("metadata", "spec", "status"))
    if ref.shape is Shape.LEADER_WORKER_SET:
        replicas = _count(spec.get("replicas"), 1)
        ready = _count(status.get("readyReplicas"), 0)
        updated = _count(status.get("updatedReplicas"), 0)
        rolling = updated < replicas or ready < replicas
    elif ref.shape is Shape.INFERENCE_SERVICE:
        replicas = _count(_dict(spec.get("predictor")).get("minReplicas"), 1)
        conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
        is_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        ready, rolling = (replicas if is_ready else 0), False
    else:
        scale_spec, scale_status = _dict(_dict(scale).get("spec")), _dict(_dict(scale).get("status"))
        replicas = _count(scale_spec.get("replicas"), 0)
        ready, rolling = _count(scale_status.get("replicas"), 0), False
    return DeploymentInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        labels={str(k): str(v) for k, v in _dict(meta.get("labels")).items()},
        annotations={str(k): str(v) for k, v in _dict(meta.get("annotations")).items()},
        replicas=replicas,
        ready_replicas=min(ready, replicas),
        rolling_out=rolling,
        target=ref,
    )


def owning_target(labels: Mapping[str, str], replica_set_deployment: str | None) -> tuple[str | None, bool]:
    """(name of the scale target a pod belongs to, whether it serves): a LeaderWorkerSet's or an
    InferenceService's by their labels, else the Deployment of its ReplicaSet."""
    if LWS_NAME_LABEL in labels:
        return labels[LWS_NAME_LABEL], labels.get(LWS_WORKER_INDEX_LABEL, "0") == "0"
    if KSERVE_ISVC_LABEL in labels:
        return labels[KSERVE_ISVC_LABEL], True
    return replica_set_deployment, True
