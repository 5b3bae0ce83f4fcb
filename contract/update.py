"""Wire types of the actuator: the ``POST /update`` body and the per-server actions it answers.

An action is planned by :func:`actuator.plan.plan_updates` (``kind``) and then carried out by
:func:`actuator.executor.execute` (``outcome``). Every action carries ``reasons``: what the
solution asked for and every rule that changed or blocked it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contract.collect import ManagedServer, Placement
from contract.solution import Solution
from contract.steps import Step
from contract.targets import TargetRef


class ActionKind(StrEnum):
    UPDATE = "update"  # a patch is needed
    NOOP = "noop"  # everything already in place
    SKIP = "skip"  # a safety rule keeps the Deployment as it is


class Outcome(StrEnum):
    PLANNED = "planned"
    APPLIED = "applied"
    DRY_RUN = "dry-run"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    CONFLICT = "conflict"  # 409 and what the plan read moved (or kept moving): retried next cycle
    FAILED = "failed"


class FieldChange(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str = Field(
        description="replicas, accelerator, node-selector, gpus-per-replica, max-batch, label:..."
    )
    old: str
    new: str
    rolls_pods: bool = Field(description="true when the change is in the pod template")


class ServerAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    server: str
    namespace: str = ""
    deployment: str = Field(default="", description="name of the scale target (its kind: `target`)")
    target: TargetRef = Field(default_factory=TargetRef, description="the object's kind; default Deployment")
    kind: ActionKind
    outcome: Outcome = Outcome.PLANNED
    replicas_now: int | None = None
    replicas_recommended: int | None = Field(default=None, description="the solution's count")
    replicas_bounded: int | None = Field(default=None, description="after min/max and the zero guard")
    replicas_target: int | None = Field(default=None, description="after bounds and scale-down rules")
    replicas_needed: int | None = Field(
        default=None,
        description="what the load needs, within min/max and the zero guard: the solution's "
        "demand_replicas when the optimizer held replicas for the scale-down window, else its count; "
        "the controller's window records it. None: the server was skipped",
    )
    accelerator_target: str = ""
    max_batch_target: int | None = None
    changes: list[FieldChange] = Field(default_factory=list)
    rolls_pods: bool = False
    patch: dict[str, Any] | None = Field(
        default=None,
        description="the patch, if any: strategic merge for a Deployment, JSON merge for other kinds "
        "(to the scale subresource for /scale-only kinds)",
    )
    reasons: list[str] = Field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    hold: Step | None = Field(
        default=None,
        description="the collector's hold on the server (fewer pods report metrics than are "
        "Ready): no scale-down, GPU-type or batch change; a Warning Event each cycle it holds",
    )

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.deployment)


class UpdateRequest(BaseModel):
    """Body of ``POST /update``."""

    model_config = ConfigDict(frozen=True)

    cycle_id: str = Field(min_length=1, max_length=128)
    solution: Solution
    servers: list[ManagedServer]
    placement: list[Placement] = Field(default_factory=list)
    dry_run: bool = Field(default=False, description="only report; cannot turn off a dry-run setting")
    deadline_s: float | None = Field(
        default=None,
        ge=0,
        description="unix time after which the caller no longer waits (its timeout): a request "
        "read later (e.g. by an actuator that was hung) is not acted on; None: no deadline",
    )


class UpdateResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    cycle_id: str
    dry_run: bool
    actions: list[ServerAction]
    counts: dict[str, int] = Field(description="actions per outcome")
