"""The seam between the plan and each kind of scale target (:mod:`contract.targets`).

Pure; called by :mod:`actuator.plan`. Planning works on one :class:`DeploymentView` whatever the
kind (:func:`view_of_target` reads it from the object), and :func:`actuator.patch.build_patch`
writes a Deployment-shaped strategic merge patch. :func:`patch_for` then puts that patch where
the kind keeps each field:

- Deployment: the patch as built (strategic merge; lists merged by container name).
- LeaderWorkerSet, InferenceService: custom resources take no strategic merge, so the change is
  applied to a copy of the object as read and sent as a JSON merge patch
  (``application/merge-patch+json``) of the difference: a list that changes (containers, args) is
  sent whole, as read plus the change. It carries the resourceVersion as read, so a concurrent
  writer still makes it fail with 409.
- ``/scale`` only: ``{"spec": {"replicas": n}}`` on the ``scale`` subresource; nothing else.

A LeaderWorkerSet replica is a group of ``size`` pods: the plan's cards per replica are split
evenly over them (16 cards at size 2 -> 8 GPUs per pod), and a count that does not divide is a
reason to keep the server as it is.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actuator.deployment import DeploymentShapeError, DeploymentView, view_of
from actuator.patch import PATCH_CONTENT_TYPE
from actuator.rollout import surge_pods
from contract.targets import (
    KSERVE_AUTOSCALER_CLASS,
    KSERVE_AUTOSCALER_OFF,
    KSERVE_DEPLOYMENT_MODE,
    Shape,
    TargetRef,
)

MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json"
RAW_DEPLOYMENT_MODES = frozenset({"RawDeployment", "Standard"})  # Standard: KServe's newer name for it
SCALE_ONLY_NOTE = (
    "replicas only: {kind} is scaled through its /scale subresource; its GPU type, GPU requests "
    "and batch size are not changed"
)


@dataclass(frozen=True)
class TargetPatch:
    """One write: the body, its content type and the subresource it goes to ("" = the object)."""

    body: dict[str, Any]
    content_type: str
    subresource: str = ""


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _lws_templates(obj: Mapping[str, Any]) -> tuple[int, list[tuple[str, ...]]]:
    """(size, paths of the pod templates' specs, the serving one first)."""
    lwt = _dict(_dict(obj.get("spec")).get("leaderWorkerTemplate"))
    size = lwt.get("size", 1)
    if not isinstance(size, int) or size < 1:
        raise DeploymentShapeError(f"leaderWorkerTemplate.size {size!r} is not a whole number >= 1")
    paths: list[tuple[str, ...]] = []
    if isinstance(lwt.get("leaderTemplate"), Mapping):
        paths.append(("spec", "leaderWorkerTemplate", "leaderTemplate", "spec"))
    paths.append(("spec", "leaderWorkerTemplate", "workerTemplate", "spec"))
    return size, paths


def _get(obj: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node: Any = obj
    for key in path:
        node = _dict(node).get(key)
    return _dict(node)


def _as_deployment(obj: Mapping[str, Any], replicas: Any, pod_spec: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": pod_spec}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": obj.get("metadata"), "spec": spec}


def _isvc_pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The predictor as a pod spec: its ``model`` container (default name kserve-container) first."""
    predictor = _get(obj, ("spec", "predictor"))
    containers = [c for c in predictor.get("containers") or [] if isinstance(c, Mapping)]
    if isinstance(predictor.get("model"), Mapping):
        model = {"name": "kserve-container", **predictor["model"]}
        containers = [model, *containers]
    return {**predictor, "containers": containers}


def _isvc_problem(obj: Mapping[str, Any]) -> str | None:
    annotations = _dict(_dict(obj.get("metadata")).get("annotations"))
    mode = annotations.get(KSERVE_DEPLOYMENT_MODE, "")
    if mode not in RAW_DEPLOYMENT_MODES:
        return (
            f"InferenceService is not in RawDeployment mode (annotation {KSERVE_DEPLOYMENT_MODE}="
            f"{mode or 'unset'}): its replicas belong to Knative; set it to RawDeployment"
        )
    autoscaler = annotations.get(KSERVE_AUTOSCALER_CLASS, "hpa")
    if autoscaler not in KSERVE_AUTOSCALER_OFF:
        return (
            f"KServe's own autoscaler is on ({KSERVE_AUTOSCALER_CLASS}={autoscaler}): it would write "
            f"replicas too; set the annotation to 'none' or 'external'"
        )
    return None


def view_of_target(ref: TargetRef, obj: Mapping[str, Any], container_name: str = "") -> DeploymentView:
    """The managed fields of any kind, as a Deployment's; raises :class:`DeploymentShapeError`."""
    if ref.shape is Shape.DEPLOYMENT:
        return view_of(obj, container_name)
    if ref.shape is Shape.SCALE:
        return _scale_view(obj)
    spec = _dict(obj.get("spec"))
    if ref.shape is Shape.LEADER_WORKER_SET:
        size, paths = _lws_templates(obj)
        replicas = spec.get("replicas", 1)
        shaped = _as_deployment(obj, replicas, _get(obj, paths[0]))
        view = view_of(shaped, container_name)
        return dataclasses.replace(view, pods_per_replica=size)
    problem = _isvc_problem(obj)
    if problem:
        raise DeploymentShapeError(problem)
    predictor = _dict(spec.get("predictor"))
    replicas = predictor.get("minReplicas", 1)
    return view_of(_as_deployment(obj, replicas, _isvc_pod_spec(obj)), container_name)


def _scale_view(scale: Mapping[str, Any]) -> DeploymentView:
    """A ``/scale`` object: replicas and identity only, no pod template."""
    meta = _dict(scale.get("metadata"))
    replicas = _dict(scale.get("spec")).get("replicas", 0)
    return DeploymentView(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        resource_version=str(meta.get("resourceVersion", "")),
        uid=str(meta.get("uid", "")),
        replicas=replicas if isinstance(replicas, int) else 0,
        labels={},
        node_selector={},
        container="",
        args=[],
        command=[],
        pods_per_replica=1,
    )


def gpus_per_pod(ref: TargetRef, cards_per_replica: int, pods_per_replica: int) -> int:
    """Cards each pod requests: a replica's cards split evenly over its pods."""
    if cards_per_replica % pods_per_replica:
        raise DeploymentShapeError(
            f"{ref.kind} groups have {pods_per_replica} pod(s): {cards_per_replica} card(s) per "
            "replica do not split evenly over them"
        )
    return cards_per_replica // pods_per_replica


# -- applying a Deployment-shaped patch to another kind ---------------------------------------


def _merge_map(current: Any, change: Mapping[str, Any]) -> dict[str, Any]:
    out = _dict(current)
    for key, value in change.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            out[key] = _merge_map(out.get(key), value)
        else:
            out[key] = value
    return out


def _apply_container(container: dict[str, Any], change: Mapping[str, Any]) -> None:
    for key, value in change.items():
        if key == "name":
            continue
        if key == "env":  # merged by name; valueFrom None drops it
            env = [dict(e) for e in container.get("env") or [] if isinstance(e, Mapping)]
            for entry in value:
                old = next((e for e in env if e.get("name") == entry["name"]), None)
                if old is None:
                    env.append({k: v for k, v in entry.items() if v is not None})
                else:
                    old.update({k: v for k, v in entry.items() if v is not None})
                    for k in [k for k, v in entry.items() if v is None]:
                        old.pop(k, None)
            container["env"] = env
        elif key == "resources":
            container["resources"] = _merge_map(container.get("resources"), value)
        else:
            container[key] = value


def _apply_pod(pod: dict[str, Any], change: Mapping[str, Any], with_batch: bool) -> None:
    if "nodeSelector" in change:
        pod["nodeSelector"] = _merge_map(pod.get("nodeSelector"), change["nodeSelector"])
    for part in change.get("containers") or []:
        for container in pod.get("containers") or []:
            if container.get("name") == part["name"]:
                wanted = part if with_batch else {k: v for k, v in part.items() if k == "resources"}
                _apply_container(container, wanted)


def merge_diff(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7386) that turns ``old`` into ``new``; ``{}`` when equal."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return new
    out: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        out[key] = None
    for key, value in new.items():
        if key not in old:
            out[key] = value
        elif old[key] != value:
            sub = merge_diff(old[key], value)
            if not (isinstance(sub, dict) and not sub and isinstance(value, Mapping)):
                out[key] = sub
    return out


def _applied(ref: TargetRef, obj: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` with the Deployment-shaped ``patch`` put where ``ref``'s kind keeps each field."""
    new = copy.deepcopy(dict(obj))
    meta = new.setdefault("metadata", {})
    for part in ("labels", "annotations"):
        if part in patch.get("metadata", {}):
            meta[part] = _merge_map(meta.get(part), patch["metadata"][part])
    spec_change = _dict(patch.get("spec"))
    pod_change = _get(spec_change, ("template", "spec"))
    spec = new.setdefault("spec", {})
    if ref.shape is Shape.LEADER_WORKER_SET:
        if "replicas" in spec_change:
            spec["replicas"] = spec_change["replicas"]
        _, paths = _lws_templates(new)
        for i, path in enumerate(paths):
            pod = new
            for key in path:
                pod = pod.setdefault(key, {})
            # the serving template takes the batch; every template the GPUs and node selector
            _apply_pod(pod, pod_change, with_batch=i == 0)
        return new
    predictor = spec.setdefault("predictor", {})
    if "replicas" in spec_change:
        predictor["minReplicas"] = predictor["maxReplicas"] = spec_change["replicas"]
    if "nodeSelector" in pod_change:
        predictor["nodeSelector"] = _merge_map(predictor.get("nodeSelector"), pod_change["nodeSelector"])
    for part in pod_change.get("containers") or []:
        model = predictor.get("model")
        if isinstance(model, dict) and part["name"] == model.get("name", "kserve-container"):
            _apply_container(model, part)
        else:
            _apply_pod(predictor, {"containers": [part]}, with_batch=True)
    return new


def patch_for(ref: TargetRef, obj: Mapping[str, Any], patch: dict[str, Any]) -> TargetPatch:
    """Where the Deployment-shaped ``patch`` goes for ``ref``'s kind (see the module docstring)."""
    if ref.shape is Shape.DEPLOYMENT:
        return TargetPatch(patch, PATCH_CONTENT_TYPE)
    version = patch["metadata"]["resourceVersion"]
    if ref.shape is Shape.SCALE:
        body = {"metadata": {"resourceVersion": version}, "spec": {"replicas": patch["spec"]["replicas"]}}
        return TargetPatch(body, MERGE_PATCH_CONTENT_TYPE, "scale")
    diff = merge_diff(obj, _applied(ref, obj, patch))
    diff.setdefault("metadata", {})["resourceVersion"] = version
    return TargetPatch(diff, MERGE_PATCH_CONTENT_TYPE)


def surge_replicas(ref: TargetRef, obj: Mapping[str, Any], replicas: int) -> int:
    """Extra replicas a pod-template rollout of this kind starts (:func:`surge_pods` on its
    strategy): a Deployment's own; a LeaderWorkerSet's ``rolloutStrategy`` (maxSurge default 0,
    in groups); an InferenceService's Deployment, which KServe creates with the default 25%."""
    if ref.shape is Shape.DEPLOYMENT:
        return surge_pods(obj, replicas)
    if ref.shape is Shape.LEADER_WORKER_SET:
        rolling = _get(obj, ("spec", "rolloutStrategy", "rollingUpdateConfiguration"))
        surge = rolling.get("maxSurge", 0)
        return surge_pods({"spec": {"strategy": {"rollingUpdate": {"maxSurge": surge}}}}, replicas)
    if ref.shape is Shape.INFERENCE_SERVICE:
        return surge_pods({}, replicas)
    return 0


def write_of(ref: TargetRef) -> tuple[str, str]:
    """(content type, subresource) of this kind's patches."""
    if ref.shape is Shape.DEPLOYMENT:
        return PATCH_CONTENT_TYPE, ""
    return MERGE_PATCH_CONTENT_TYPE, "scale" if ref.shape is Shape.SCALE else ""
