"""The cycle report: what was collected, decided and done, and why. ``GET /invoke`` returns it.

Built by :mod:`controller.cycle`; read by :mod:`controller.metrics` and the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.calibration import CalibrationSummary
from contract.collect import CollectResult, SkippedDeployment
from contract.solution import Solution
from contract.steps import Step, StepCode
from contract.update import ServerAction

Stage = Literal["collect", "optimize", "update"]
CycleOutcome = Literal["ok", "degraded", "failed", "standby"]


class StageFailure(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: Stage
    kind: str = Field(description="transient (retried next cycle) | permanent | conflict")
    message: str


class ServerObserved(BaseModel):
    """One server as the collect found it: what the controller's per-server metrics show beside the
    optimizer's predictions."""

    model_config = ConfigDict(frozen=True)

    server: str
    namespace: str
    deployment: str
    service_class: str
    ready_replicas: int
    trusted: bool
    ttft_ms: float | None = Field(default=None, description="observed mean time to first token")
    itl_ms: float | None = Field(default=None, description="observed mean inter-token latency")


def skipped_line(skipped: SkippedDeployment) -> str:
    """``ns/name: reason`` for a Deployment, ``Kind ns/name: reason`` for another kind, and
    ``Kind: reason`` for a kind that cannot be listed at all."""
    if not skipped.namespace:
        return f"{skipped.kind}: {skipped.reason}"
    where = f"{skipped.namespace}/{skipped.deployment}"
    return f"{where if skipped.kind == 'Deployment' else f'{skipped.kind} {where}'}: {skipped.reason}"


class CollectedSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    servers: int
    trusted: int
    skipped: list[str] = Field(
        default_factory=list, description="namespace/deployment: reason (other kinds: Kind namespace/name)"
    )
    degraded: bool = False
    errors: list[str] = Field(default_factory=list)
    held: list[str] = Field(
        default_factory=list,
        description="namespace/deployment: why it is held (fewer pods report metrics than are Ready)",
    )
    observed: list[ServerObserved] = Field(
        default_factory=list, exclude=True, description="per server, for /metrics; not in the JSON"
    )

    @classmethod
    def of(cls, collect: CollectResult) -> CollectedSummary:
        return cls(
            servers=len(collect.servers),
            trusted=sum(s.trusted for s in collect.servers),
            skipped=[skipped_line(s) for s in collect.skipped],
            degraded=collect.degraded,
            errors=list(collect.errors),
            held=[f"{s.namespace}/{s.deployment}: {s.hold.text}" for s in collect.servers if s.hold],
            observed=[
                ServerObserved(
                    server=s.server,
                    namespace=s.namespace,
                    deployment=s.deployment,
                    service_class=s.service_class,
                    ready_replicas=s.ready_replicas,
                    trusted=s.trusted,
                    ttft_ms=s.observed_ttft_ms,
                    itl_ms=s.observed_itl_ms,
                )
                for s in collect.servers
            ],
        )


class DecisionSummary(BaseModel):
    """One server's decision as ``/invoke`` shows it: the allocation, its predictions, and why.

    The prediction fields are those of the optimizer's
    :class:`~contract.solution.ServerAllocation` (queueing model, at the demand it was sized for);
    they are ``None`` when the server got no allocation. Fields are only ever added here, so older
    readers of the JSON keep working.
    """

    model_config = ConfigDict(frozen=True)

    server: str
    status: str
    service_class: str = ""
    accelerator: str = ""
    replicas: int | None = None
    max_batch: int | None = None
    cost: float | None = None
    reasons: list[str] = Field(default_factory=list)
    codes: list[StepCode] = Field(default_factory=list, description="the code of each reason, in order")
    ttft_ms: float | None = Field(default=None, description="predicted mean time to first token")
    ttft_percentile_ms: float | None = Field(
        default=None, description="predicted TTFT at the class's target percentile (0: not computed)"
    )
    itl_ms: float | None = Field(default=None, description="predicted mean inter-token latency")
    utilization: float | None = Field(default=None, description="predicted mean share of batch slots busy")
    demand_rpm: float | None = Field(default=None, description="offered load the optimizer sized for")
    served_rpm: float | None = Field(
        default=None, description="predicted throughput within the targets (<= demand_rpm)"
    )
    capacity_rpm: float | None = Field(
        default=None, description="largest rate the allocation serves within the targets (all replicas)"
    )
    window_floor_replicas: int | None = Field(
        default=None,
        description="replicas the scale-down window held on the current accelerator (the optimizer's "
        "floorReplicas); None: not given",
    )

    @classmethod
    def all_of(
        cls,
        solution: Solution,
        floors: Mapping[str, int] | None = None,
        holds: Mapping[str, Step] | None = None,
    ) -> list[DecisionSummary]:
        """One summary per decision; a server's ``holds`` step (the collector's, by server name)
        comes first in its reasons, since it shaped what the optimizer was asked."""
        floors, holds = floors or {}, holds or {}
        out = []
        for d in solution.decisions:
            a = d.allocation
            steps = [holds[d.server], *d.steps] if d.server in holds else list(d.steps)
            out.append(
                cls(
                    server=d.server,
                    status=d.status.value,
                    service_class=d.service_class,
                    accelerator=a.accelerator if a else "",
                    replicas=a.num_replicas if a else None,
                    max_batch=a.max_batch if a else None,
                    cost=a.cost if a else None,
                    reasons=[s.text for s in steps],
                    codes=[s.code for s in steps],
                    ttft_ms=a.ttft_ms if a else None,
                    ttft_percentile_ms=a.ttft_percentile_ms if a else None,
                    itl_ms=a.itl_ms if a else None,
                    utilization=a.utilization if a else None,
                    demand_rpm=d.demand_rpm,
                    served_rpm=d.served_rpm,
                    capacity_rpm=a.max_rpm_per_replica * a.num_replicas if a else None,
                    window_floor_replicas=floors.get(d.server),
                )
            )
        return out


class CycleReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    cycle_id: str
    started_at_s: float = Field(description="unix time the cycle started")
    duration_s: float = 0.0
    outcome: CycleOutcome = "ok"
    dry_run: bool = False
    stage_ms: dict[str, float] = Field(default_factory=dict, description="time per stage")
    collected: CollectedSummary | None = None
    solver: str = ""
    total_cost: float | None = None
    cost_by_type: dict[str, float] = Field(default_factory=dict)
    decisions: list[DecisionSummary] = Field(default_factory=list)
    calibration: list[CalibrationSummary] = Field(
        default_factory=list,
        description="online calibration per (model, accelerator): prior, learned values, confidence, "
        "why, and the effect on sizing",
    )
    actions: list[ServerAction] = Field(default_factory=list)
    errors: list[StageFailure] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    rollout_budget: str = Field(
        default="", description="the rollout budget's totals when it bound this cycle (also in notes)"
    )
