"""What the API server does to an object on its way into the store, as pure functions.

Create stamps the metadata (uid, resourceVersion, generation, creationTimestamp, a name from
``generateName``) and applies the kinds' create strategies (a Deployment's status is dropped and
``spec.replicas`` defaults to 1; a Pod starts ``Pending``). Update keeps what clients cannot change
(uid, creationTimestamp), keeps the status on the main resource and everything but the status on
``/status``, and bumps ``generation`` when the spec changed. :func:`validate` is the small subset
of apiserver validation that catches what tests and drivers get wrong (422 Invalid). The
``autoscaling/v1`` ``Scale`` view of a Deployment or ReplicaSet is here too. Called by
:mod:`.store`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .errors import bad_request, invalid
from .resources import DEPLOYMENTS, EVENTS_V1, PODS, REPLICASETS, ResourceType
from .selectors import format_selector, labels_match, selector_from_label_selector

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SERVER_META = ("uid", "creationTimestamp", "resourceVersion", "generation", "managedFields")


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's metadata map, created if absent."""
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


def prepare_create(rt: ResourceType, obj: dict[str, Any], *, uid: str, now: str) -> dict[str, Any]:
    """A copy of ``obj`` as stored at creation (the resourceVersion is set by the store)."""
    out = copy.deepcopy(obj)
    out["apiVersion"], out["kind"] = rt.api_version, rt.kind
    m = meta(out)
    for key in _SERVER_META:
        m.pop(key, None)
    m["uid"], m["creationTimestamp"] = uid, now
    if rt.has_spec:
        m["generation"] = 1
    if rt in (DEPLOYMENTS, REPLICASETS):
        out.pop("status", None)
        spec = out.setdefault("spec", {})
        if spec.get("replicas") is None:
            spec["replicas"] = 1
    elif rt is PODS:
        out["status"] = {"phase": "Pending"}
    return out


def prepare_update(
    rt: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str = ""
) -> dict[str, Any]:
    """The object to store when ``new`` replaces ``old`` (main resource or ``/status``)."""
    if subresource == "status":
        out = copy.deepcopy(old)
        if "status" in new:
            out["status"] = copy.deepcopy(new["status"])
        else:
            out.pop("status", None)
        return out
    out = copy.deepcopy(new)
    out["apiVersion"], out["kind"] = rt.api_version, rt.kind
    m, old_m = meta(out), old.get("metadata") or {}
    for key in ("uid", "creationTimestamp", "name", "namespace", "generation"):
        if key in old_m:
            m[key] = old_m[key]
        else:
            m.pop(key, None)
    m.pop("managedFields", None)
    if rt.status_subresource:
        if "status" in old:
            out["status"] = copy.deepcopy(old["status"])
        else:
            out.pop("status", None)
    if rt.has_spec and out.get("spec") != old.get("spec"):
        m["generation"] = int(old_m.get("generation") or 0) + 1
    return out


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal but for the resourceVersion: an update that changes nothing is not written."""
    a, b = dict(a), dict(b)
    a["metadata"] = {k: v for k, v in (a.get("metadata") or {}).items() if k != "resourceVersion"}
    b["metadata"] = {k: v for k, v in (b.get("metadata") or {}).items() if k != "resourceVersion"}
    return a == b


def validate(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Raise 422 Invalid with the field errors the apiserver would report (a small subset)."""
    m = obj.get("metadata") or {}
    name = str(m.get("name") or "")
    causes: list[tuple[str, str]] = []
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must '
                "consist of lower case alphanumeric characters, '-' or '.'",
            )
        )
    for field in ("labels", "annotations"):
        values = m.get(field) or {}
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            causes.append((f"metadata.{field}", "Invalid value: values must be strings"))
    if rt in (DEPLOYMENTS, REPLICASETS):
        causes += _workload_causes(obj.get("spec") or {})
    elif rt is PODS:
        causes += _containers_causes("spec", (obj.get("spec") or {}).get("containers"))
    elif rt is EVENTS_V1 and not obj.get("eventTime"):
        causes.append(("eventTime", "Required value"))
    if causes:
        raise invalid(rt.kind, rt.group, name, causes)


def _workload_causes(spec: dict[str, Any]) -> list[tuple[str, str]]:
    causes: list[tuple[str, str]] = []
    replicas = spec.get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        causes.append(("spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0"))
    selector = spec.get("selector")
    template = spec.get("template") or {}
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        causes.append(("spec.selector", "Required value"))
    else:
        labels = (template.get("metadata") or {}).get("labels") or {}
        if not labels_match(selector_from_label_selector(selector), labels):
            causes.append(
                (
                    "spec.template.metadata.labels",
                    "Invalid value: `selector` does not match template `labels`",
                )
            )
    causes += _containers_causes("spec.template.spec", (template.get("spec") or {}).get("containers"))
    return causes


def _containers_causes(path: str, containers: Any) -> list[tuple[str, str]]:
    if not isinstance(containers, list) or not containers:
        return [(f"{path}.containers", "Required value")]
    return [
        (f"{path}.containers[{i}].name", "Required value")
        for i, c in enumerate(containers)
        if not isinstance(c, dict) or not c.get("name")
    ]


def to_scale(obj: dict[str, Any]) -> dict[str, Any]:
    """The ``autoscaling/v1`` ``Scale`` of a Deployment or ReplicaSet."""
    m = obj.get("metadata") or {}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m
        },
        "spec": {"replicas": int(spec.get("replicas") or 0)},
        "status": {
            "replicas": int(status.get("replicas") or 0),
            "selector": format_selector(spec.get("selector")),
        },
    }


def scale_replicas(scale: dict[str, Any]) -> int:
    """``spec.replicas`` of a Scale body; 422 unless a non-negative integer."""
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        name = str((scale.get("metadata") or {}).get("name") or "")
        raise invalid(
            "Scale",
            "autoscaling",
            name,
            [("spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0")],
        )
    return replicas


def check_identity(rt: ResourceType, obj: Any, namespace: str, name: str | None) -> dict[str, Any]:
    """400 unless ``obj`` is an object whose namespace and name agree with the URL's."""
    if not isinstance(obj, dict):
        raise bad_request("the request body must be a JSON object")
    m = obj.get("metadata") or {}
    if rt.namespaced and m.get("namespace") not in (None, "", namespace):
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if name is not None and m.get("name") not in (None, name):
        raise bad_request(
            f"the name of the object ({m.get('name')}) does not match the name on the URL ({name})"
        )
    return obj
