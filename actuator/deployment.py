"""Read the parts of a Deployment (JSON dict, as the API server returns it) the actuator manages.

Pure helpers, used by :mod:`actuator.patch`: :func:`view_of` extracts replicas, labels, node
selector, the vLLM container's args/command/env/resources and the resourceVersion;
:func:`flag_value` / :func:`with_flag_value` read and rewrite a ``--flag N`` or ``--flag=N``
argument in place, keeping the form that is there; :func:`planned_on_moved` tells whether a
Deployment moved, since it was read, in anything a plan is made from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class DeploymentShapeError(ValueError):
    """The Deployment lacks something the actuator needs (e.g. the named container)."""


def valid_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


@dataclass(frozen=True)
class DeploymentView:
    namespace: str
    name: str
    resource_version: str
    uid: str
    replicas: int
    labels: dict[str, str]
    node_selector: dict[str, str]
    container: str
    args: list[str]
    command: list[str]
    env: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)
    pods_per_replica: int = 1
    """Pods in one replica: a LeaderWorkerSet group's size; 1 for every other kind."""


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _strs(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def view_of(deployment: Mapping[str, Any], container_name: str = "") -> DeploymentView:
    """Extract the managed fields; ``container_name`` empty means the first container."""
    meta = _dict(deployment.get("metadata"))
    spec = _dict(deployment.get("spec"))
    pod_spec = _dict(_dict(spec.get("template")).get("spec"))
    containers = [c for c in pod_spec.get("containers") or [] if isinstance(c, Mapping)]
    if not containers:
        raise DeploymentShapeError("the pod template has no containers")
    if container_name:
        chosen = next((c for c in containers if c.get("name") == container_name), None)
        if chosen is None:
            names = [str(c.get("name")) for c in containers]
            raise DeploymentShapeError(f"no container named {container_name!r} (has {names})")
    else:
        chosen = containers[0]
    resources = _dict(chosen.get("resources"))
    env = {str(e["name"]): dict(e) for e in chosen.get("env") or [] if isinstance(e, Mapping) and "name" in e}
    replicas = spec.get("replicas")
    return DeploymentView(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        resource_version=str(meta.get("resourceVersion", "")),
        uid=str(meta.get("uid", "")),
        replicas=replicas if isinstance(replicas, int) else 1,  # the API server's default
        labels={str(k): str(v) for k, v in _dict(meta.get("labels")).items()},
        node_selector={str(k): str(v) for k, v in _dict(pod_spec.get("nodeSelector")).items()},
        container=str(chosen.get("name", "")),
        args=_strs(chosen.get("args")),
        command=_strs(chosen.get("command")),
        env=env,
        requests={str(k): str(v) for k, v in _dict(resources.get("requests")).items()},
        limits={str(k): str(v) for k, v in _dict(resources.get("limits")).items()},
    )


def planned_on_moved(read: Mapping[str, Any] | None, fresh: Mapping[str, Any]) -> list[str]:
    """What of the Deployment a plan is made from differs between ``read`` (what the plan used)
    and ``fresh``: its identity (``uid``), ``spec``, labels or deletion. Empty: only what no plan
    reads moved (status, annotations, managedFields), so the plan still holds as it is.

    The API server answers a patch carrying the old resourceVersion with 409 even when only the
    Deployment controller wrote its status (it does so at each pod readiness change of a rollout).
    """
    if read is None:
        return ["the object"]
    old_meta, new_meta = _dict(read.get("metadata")), _dict(fresh.get("metadata"))
    moved = [
        name for name in ("uid", "labels", "deletionTimestamp") if old_meta.get(name) != new_meta.get(name)
    ]
    if read.get("spec") != fresh.get("spec"):
        moved.append("spec")
    return moved


def flag_value(args: list[str], flag: str) -> str | None:
    """The last value given to ``flag`` (argparse keeps the last), in either form; None if absent."""
    found: str | None = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith(flag + "="):
            found = arg[len(flag) + 1 :]
    return found


def with_flag_value(args: list[str], flag: str, value: str) -> tuple[list[str], bool]:
    """``args`` with every occurrence of ``flag`` set to ``value``; second item: was it present."""
    out = list(args)
    present = False
    for i, arg in enumerate(out):
        if arg == flag and i + 1 < len(out):
            out[i + 1] = value
            present = True
        elif arg.startswith(flag + "="):
            out[i] = f"{flag}={value}"
            present = True
    return out, present


def quantity_int(value: str | None) -> int | None:
    """A whole-card quantity ('2') as an int; None for absent or fractional/suffixed values."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
