"""The collect result (``GET /collect``): the optimizer's input plus what the actuator needs.

The controller sends ``system`` (with the scale-down window's floors) to the optimizer, and the
solution with ``servers`` and ``placement`` to the actuator (see :mod:`contract`).

``system`` is a typed :class:`~contract.data.system.SystemData`, inferno's JSON on the wire (its
models serialise by alias). ``servers`` maps each
inferno server name back to its Deployment and says how far its data can be trusted: the actuator
never changes a server whose ``trusted`` is false.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.calibration import CalibrationData, MeasuredWindow
from contract.data.system import SystemData
from contract.steps import Step
from contract.targets import TargetRef

CALIBRATION_PARAM = "calibration"
"""``GET /collect?calibration=off``: the controller's online calibration is off, so the collector
does not send the queries only calibration reads (``on``, the default, sends them)."""

LoadSource = Literal["prometheus", "labels", "last-known", "demand", "none"]
"""``demand``: a server at zero replicas, from its demand query (collector/wake.py)."""


class Placement(BaseModel):
    """How an accelerator card type is requested on a node (static data ``placement-data.json``)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    type: str = Field(min_length=1, description="card type, as in accelerator-data 'type' (e.g. A100)")
    node_label_key: str = Field(default="nvidia.com/gpu.product", alias="nodeLabelKey")
    node_label_value: str = Field(
        min_length=1, alias="nodeLabelValue", description="e.g. NVIDIA-A100-SXM4-80GB"
    )
    resource: str = Field(default="nvidia.com/gpu", description="extended resource counted per card")


class ManagedServer(BaseModel):
    """One managed Deployment, as the collector found it this cycle."""

    model_config = ConfigDict(frozen=True)

    server: str = Field(description="inferno server name (label inferno.server.name)")
    namespace: str
    deployment: str = Field(description="name of the scale target (a Deployment or another kind: `target`)")
    target: TargetRef = Field(default_factory=TargetRef, description="the object's kind; default Deployment")
    model: str
    service_class: str
    current_replicas: int = Field(ge=0, description="spec.replicas")
    ready_replicas: int = Field(default=0, ge=0)
    rolling_out: bool = Field(default=False, description="pods of an older template remain")
    current_accelerator: str = Field(default="", description="accelerator unit name from the label")
    current_max_batch: int = Field(default=0, ge=0)
    min_replicas: int = Field(default=0, ge=0)
    max_replicas: int = Field(default=0, ge=0, description="0: no limit")
    keep_accelerator: bool = False
    accelerator_changed_at_s: float | None = Field(
        default=None,
        description="unix time of the last accelerator change (annotation "
        "inferno.server/accelerator-changed-at, written by the actuator); None: never",
    )
    load_source: LoadSource = "none"
    trusted: bool = Field(description="the load is fresh enough to act on")
    arrival_rpm: float | None = Field(default=None, ge=0)
    observed_ttft_ms: float | None = Field(default=None, ge=0)
    observed_itl_ms: float | None = Field(default=None, ge=0)
    measured: MeasuredWindow | None = Field(
        default=None,
        description="the vLLM metrics of the rate window, as measured, for online calibration; None: "
        "no Prometheus or no series",
    )
    notes: list[str] = Field(default_factory=list, description="where each value came from, staleness")
    hold: Step | None = Field(
        default=None,
        description="why the server may not scale down or change its GPU type or batch this cycle "
        "(code unreported_pods: fewer pods report metrics than are Ready); None: no hold",
    )


class SkippedDeployment(BaseModel):
    """A labelled scale target the collector could not use (bad labels...). It is never scaled.
    A whole kind that cannot be listed (CRD not installed, no /scale) has an empty namespace and
    name, and ``kind`` names it."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    deployment: str
    reason: str
    kind: str = "Deployment"


class CollectResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    collected_at_s: float = Field(description="unix time the collection finished")
    system: SystemData = Field(description="the optimizer's input; inferno's SystemData JSON on the wire")
    servers: list[ManagedServer] = Field(default_factory=list)
    skipped: list[SkippedDeployment] = Field(default_factory=list)
    placement: list[Placement] = Field(default_factory=list)
    degraded: bool = Field(default=False, description="some source failed; affected servers are untrusted")
    errors: list[str] = Field(default_factory=list, description="source failures, e.g. Prometheus down")
    calibration: CalibrationData | None = Field(
        default=None,
        description="calibration-data.json of the dynamic ConfigMap (learned performance, read back "
        "after a restart or a leader change); None: the key is absent or unreadable",
    )
