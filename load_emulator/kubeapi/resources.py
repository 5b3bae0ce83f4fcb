"""The resource kinds this API server serves, and the discovery documents that describe them.

One :class:`ResourceType` per kind: its group/version, plural, kind, scope and subresources. The
store (:mod:`.store`) keys objects by type, the routes (:mod:`.routes`) are built from this table,
and ``/api``, ``/apis``, ``/apis/<group>/<version>`` and ``/version`` are answered from it. Drivers
use the constants (``DEPLOYMENTS``, ``PODS``, ...) with the store's Python API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    has_spec: bool = True  # whether spec changes bump metadata.generation

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def status_subresource(self) -> bool:
        return "status" in self.subresources


NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", False, ("ns",), ("status",), has_spec=False)
NODES = ResourceType("", "v1", "nodes", "Node", False, ("no",), ("status",))
PODS = ResourceType("", "v1", "pods", "Pod", True, ("po",), ("status",))
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap", True, ("cm",), has_spec=False)
EVENTS = ResourceType("", "v1", "events", "Event", True, ("ev",), has_spec=False)
DEPLOYMENTS = ResourceType("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("scale", "status"))
REPLICASETS = ResourceType("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("scale", "status"))
EVENTS_V1 = ResourceType("events.k8s.io", "v1", "events", "Event", True, ("ev",), has_spec=False)
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True)

ALL_TYPES: tuple[ResourceType, ...] = (
    NAMESPACES,
    NODES,
    PODS,
    CONFIGMAPS,
    EVENTS,
    DEPLOYMENTS,
    REPLICASETS,
    EVENTS_V1,
    LEASES,
)
VERBS = ["create", "delete", "get", "list", "patch", "update"]
SERVER_VERSION = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.0-inferno-emulated",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.26",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def by_api_version_kind(api_version: str, kind: str) -> ResourceType | None:
    for rt in ALL_TYPES:
        if rt.api_version == api_version and rt.kind == kind:
            return rt
    return None


def by_group_plural(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in ALL_TYPES:
        if (rt.group, rt.version, rt.plural) == (group, version, plural):
            return rt
    return None


def group_versions() -> dict[str, list[str]]:
    """Named groups (not the core group) and their versions, in table order."""
    out: dict[str, list[str]] = {}
    for rt in ALL_TYPES:
        if rt.group and rt.version not in out.setdefault(rt.group, []):
            out[rt.group].append(rt.version)
    return out


def api_versions_doc() -> dict[str, Any]:
    """``GET /api``: the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    }


def api_group_list_doc() -> dict[str, Any]:
    """``GET /apis``: every named group with its preferred version."""
    groups = []
    for group, versions in group_versions().items():
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list_doc(group: str, version: str) -> dict[str, Any] | None:
    """``GET /api/v1`` or ``/apis/<group>/<version>``: the resources of one group version."""
    types = [rt for rt in ALL_TYPES if (rt.group, rt.version) == (group, version)]
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        resources.append(
            {
                "name": rt.plural,
                "singularName": rt.kind.lower(),
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": VERBS,
                "shortNames": list(rt.short_names),
            }
        )
        for sub in rt.subresources:
            kind = "Scale" if sub == "scale" else rt.kind
            group_fields = {"group": "autoscaling", "version": "v1"} if sub == "scale" else {}
            resources.append(
                {
                    "name": f"{rt.plural}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": kind,
                    "verbs": ["get", "patch", "update"],
                    **group_fields,
                }
            )
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
