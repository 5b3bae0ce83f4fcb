"""Scale targets: the kinds of object a managed server can be, and where each keeps its replicas.

One vocabulary for the collector (which lists each configured kind with the managed selector),
the actuator (which reads and patches it through :mod:`actuator.targets`) and RBAC
(manifests/rbac.yaml grants exactly these resources). Labels and annotations
(:mod:`contract.labels`) mean the same on every kind.

Shapes:

- ``Deployment`` (``apps/v1``): ``spec.replicas``, pod template ``spec.template``.
- ``LeaderWorkerSet`` (``leaderworkerset.x-k8s.io/v1``): ``spec.replicas`` counts groups; a group
  is ``spec.leaderWorkerTemplate.size`` pods (default 1), so cards per replica = size x GPUs per
  pod. Node selector, GPU requests and ``--max-num-seqs`` live in ``workerTemplate`` and, when
  present, ``leaderTemplate``.
- ``InferenceService`` (``serving.kserve.io/v1beta1``, RawDeployment mode only): replicas are
  ``spec.predictor.minReplicas`` = ``maxReplicas`` with KServe's autoscaler off
  (``serving.kserve.io/autoscalerClass: none`` or ``external``); node selector in
  ``spec.predictor``, the container is ``spec.predictor.model`` (or ``.containers``).
- any other resource with a ``/scale`` subresource (``rollouts.argoproj.io/v1alpha1``): replicas
  only, through ``/scale``; its GPU type and batch are never changed, and the decision says so.

Settings name a kind by its name (``LeaderWorkerSet``) or, for the ``/scale``-only shape, as
``<plural>.<group>/<version>``; :func:`parse_target` turns either into a :class:`TargetRef`, and
an unknown name fails at start-up.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Shape(StrEnum):
    """Where a kind keeps replicas, pod templates and the vLLM container."""

    DEPLOYMENT = "deployment"
    LEADER_WORKER_SET = "leader-worker-set"
    INFERENCE_SERVICE = "inference-service"
    SCALE = "scale"  # /scale subresource only: replicas


class TargetRef(BaseModel):
    """The API coordinates of one kind of scale target."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(default="Deployment", description="LeaderWorkerSet...; empty until discovery names it")
    group: str = Field(default="apps", description="API group; empty for the core group")
    version: str = "v1"
    resource: str = Field(default="deployments", description="plural resource name")
    shape: Shape = Shape.DEPLOYMENT

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        """``leaderworkersets.leaderworkerset.x-k8s.io``: how RBAC and CRDs name the resource."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    def collection_path(self, namespace: str) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{prefix}/namespaces/{namespace}/{self.resource}"

    def object_path(self, namespace: str, name: str, subresource: str = "") -> str:
        path = f"{self.collection_path(namespace)}/{name}"
        return f"{path}/{subresource}" if subresource else path


DEPLOYMENT = TargetRef()
LEADER_WORKER_SET = TargetRef(
    kind="LeaderWorkerSet",
    group="leaderworkerset.x-k8s.io",
    version="v1",
    resource="leaderworkersets",
    shape=Shape.LEADER_WORKER_SET,
)
INFERENCE_SERVICE = TargetRef(
    kind="InferenceService",
    group="serving.kserve.io",
    version="v1beta1",
    resource="inferenceservices",
    shape=Shape.INFERENCE_SERVICE,
)
KNOWN: dict[str, TargetRef] = {ref.kind: ref for ref in (DEPLOYMENT, LEADER_WORKER_SET, INFERENCE_SERVICE)}

LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
"""On every pod of a LeaderWorkerSet (set by its controller): the LeaderWorkerSet's name."""
LWS_WORKER_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"
"""``0`` on a group's leader pod, the one that serves (and exports vLLM metrics)."""
KSERVE_ISVC_LABEL = "serving.kserve.io/inferenceservice"
KSERVE_DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
KSERVE_AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
KSERVE_AUTOSCALER_OFF = frozenset({"none", "external"})

_SCALE_SPEC = re.compile(r"^([a-z0-9-]+)\.([a-z0-9.-]+)/(v[0-9a-z]+)$")


class UnknownTargetKindError(ValueError):
    """A settings entry names no known kind and is not ``<plural>.<group>/<version>``."""


def parse_target(text: str) -> TargetRef:
    """``'LeaderWorkerSet'`` -> its ref; ``'rollouts.argoproj.io/v1alpha1'`` -> a /scale-only ref.

    >>> parse_target("rollouts.argoproj.io/v1alpha1").shape
    <Shape.SCALE: 'scale'>
    """
    name = text.strip()
    if name in KNOWN:
        return KNOWN[name]
    match = _SCALE_SPEC.match(name)
    if match is None:
        raise UnknownTargetKindError(
            f"unknown scale target kind {name!r}: use one of {', '.join(KNOWN)} or, for any "
            "resource with a /scale subresource, <plural>.<group>/<version> (rollouts.argoproj.io/v1alpha1)"
        )
    resource, group, version = match.groups()
    for ref in KNOWN.values():  # the known kinds keep their full shape when named this way
        if (ref.resource, ref.group, ref.version) == (resource, group, version):
            return ref
    return TargetRef(kind="", group=group, version=version, resource=resource, shape=Shape.SCALE)
