"""The collector's ports: what it needs from Kubernetes and Prometheus, as small Protocols.

The core (:mod:`collector.core`) talks only to these; :mod:`collector.kube_adapter` and
:mod:`collector.prom_adapter` implement them over the real clients, and the unit tests over
hand-written fakes that record their calls. Adapters translate the clients' objects into the plain
frozen records below, so nothing past this line knows the ``kubernetes`` object model.

Errors: an adapter raises :class:`SourceError` (with the source named in the message) for anything
that went wrong talking to its system; a missing ConfigMap is not an error (``None``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from contract.targets import DEPLOYMENT, TargetRef


class SourceError(Exception):
    """A call to the Kubernetes API or Prometheus failed (timeout, refused, 5xx, 403...)."""


@dataclass(frozen=True)
class DeploymentInfo:
    """One managed scale target: a Deployment, or another kind (``target``) read the same way."""

    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    ready_replicas: int = 0
    rolling_out: bool = False
    """Pods of an older template remain (or the controller has not seen the last change yet)."""
    target: TargetRef = DEPLOYMENT


@dataclass(frozen=True)
class KindProblem:
    """A configured kind of scale target that cannot be listed at all: its CRD is not installed,
    or it has no /scale subresource. None of its objects is managed; the reason is reported."""

    target: TargetRef
    reason: str


@dataclass(frozen=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    allocatable: Mapping[str, float] = field(default_factory=dict, metadata={"unit": "resource units"})
    ready: bool = True
    unschedulable: bool = False


@dataclass(frozen=True)
class PodInfo:
    """A pod that is not finished. ``deployment`` is its owning Deployment, when it has one.
    ``ready_since_s``: unix time its ``Ready`` condition last turned True, or a container last
    (re)started if later; None when it is not Ready or the time is unknown."""

    namespace: str
    name: str
    node_name: str = ""
    deployment: str | None = None
    requests: Mapping[str, float] = field(default_factory=dict, metadata={"unit": "resource units"})
    ready_since_s: float | None = None
    serves: bool = True
    """Whether the pod runs the server that exports vLLM metrics: False for a LeaderWorkerSet's
    worker pods (only a group's leader serves), which hold cards but never report."""
    created_s: float | None = None
    """Unix time the pod was created (``metadata.creationTimestamp``); None: unknown."""


class KubePort(Protocol):
    """Deployments to manage and the data ConfigMaps."""

    async def list_managed_deployments(
        self, namespaces: tuple[str, ...]
    ) -> Sequence[DeploymentInfo | KindProblem]:
        """Scale targets of every configured kind labelled ``inferno.server.managed=true``, and a
        :class:`KindProblem` per kind that cannot be listed; ``()``: all namespaces."""
        ...

    async def read_config_map(self, namespace: str, name: str) -> dict[str, str] | None:
        """The ConfigMap's ``data``; ``None`` when it does not exist."""
        ...


class ClusterPort(Protocol):
    """Nodes and pods, for capacity derived from the cluster and for pod -> Deployment mapping."""

    async def list_nodes(self) -> list[NodeInfo]: ...

    async def list_pods(self, namespaces: tuple[str, ...]) -> list[PodInfo]:
        """Pods not yet finished; ``()``: all namespaces."""
        ...


class MetricsPort(Protocol):
    """One PromQL instant query -> the raw ``data.result`` list of a vector answer."""

    async def query(self, promql: str) -> list[dict[str, Any]]: ...
