"""The optimizer's output: one explicit decision per server, plus solver and capacity totals.

Consumers: the actuator (``POST /update`` takes a :class:`Solution`), the controller (cycle report,
metrics), the CLI. The contract the actuator relies on:

- ``allocated``: the allocation serves the whole demand; scale to it.
- ``partial``: capacity is short; the allocation is what the saturation policy could give. Scale
  to it (this is how a lower class shrinks when capacity shrinks).
- ``unallocated``: no allocation could be made: the server runs nothing, or runs on an accelerator
  with no candidate (infeasible for its load, no performance data). The actuator keeps the
  Deployment as it is, and the optimizer reserved the cards it runs on before allocating
  (``reserved_by_type``). A running server with a candidate on its accelerator is never left
  unallocated for capacity: it gets at least its floor there (``partial``, step
  ``capacity_floor``), since the actuator would never scale it to zero. ``steps`` say why.

Each decision's ``steps`` and the solver report's ``steps`` are typed (:mod:`contract.steps`): code
reacts to their ``code``, people read their ``text`` (``reasons`` and ``notes``: the sentences).

A server is never dropped: every server of the input has exactly one decision.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from contract.steps import Step, texts


class DecisionStatus(StrEnum):
    ALLOCATED = "allocated"
    PARTIAL = "partial"
    UNALLOCATED = "unallocated"


class ServerAllocation(BaseModel):
    """A chosen allocation and what the queueing model predicts for it at the server's load."""

    model_config = ConfigDict(frozen=True)

    accelerator: str = Field(description="accelerator unit name, e.g. '4xA100'")
    accelerator_type: str = Field(description="card type capacity is counted in, e.g. 'A100'")
    num_replicas: int = Field(ge=0)
    max_batch: int = Field(ge=1, description="batch size (vLLM --max-num-seqs)")
    cards_per_replica: int = Field(ge=1, description="cards of accelerator_type per replica")
    cost: float = Field(ge=0, description="cost per hour of all replicas")
    itl_ms: float = Field(ge=0, description="predicted mean inter-token latency")
    ttft_ms: float = Field(ge=0, description="predicted mean time to first token (wait + prefill)")
    ttft_percentile_ms: float = Field(default=0, ge=0, description="predicted TTFT at the target percentile")
    utilization: float = Field(ge=0, le=1, description="mean share of batch slots busy")
    max_rpm_per_replica: float = Field(ge=0, description="largest per-replica rate meeting the targets")
    demand_replicas: int | None = Field(
        default=None,
        ge=0,
        description="set when a stabilisation floor (floorReplicas) applied: the replicas the load "
        "alone needs; num_replicas may be higher (held). The actuator reports it within its bounds "
        "(replicas_needed) and the controller's scale-down window records it",
    )

    @property
    def cards(self) -> int:
        return self.num_replicas * self.cards_per_replica


class ServerDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    server: str
    service_class: str
    model: str
    priority: int
    status: DecisionStatus
    allocation: ServerAllocation | None = None
    current_accelerator: str = ""
    current_replicas: int = 0
    demand_rpm: float = Field(ge=0)
    served_rpm: float = Field(ge=0, description="rate the allocation can serve within targets, <= demand")
    steps: list[Step] = Field(default_factory=list, description="why: model result, solver choice, clips")
    startup_s: float | None = Field(
        default=None,
        ge=0,
        description="seconds until the replicas this decision adds (or that are starting) serve: "
        "model-data startupS, else the server's measured start-up time; None: unknown or nothing starts",
    )

    @property
    def reasons(self) -> list[str]:
        """The sentences of ``steps``, in order: what ``/invoke``, the log and the Events show."""
        return texts(self.steps)


class SolverReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    status: str = Field(description="optimal | feasible | heuristic | timeout | infeasible | error")
    objective: float = 0.0
    lower_bound: float | None = Field(default=None, description="LP bound on cost, when the solver has one")
    elapsed_ms: float = 0.0
    steps: list[Step] = Field(default_factory=list, description="the solver's notes, typed")

    @property
    def notes(self) -> list[str]:
        """The sentences of ``steps``, in order."""
        return texts(self.steps)


class Solution(BaseModel):
    model_config = ConfigDict(frozen=True)

    decisions: list[ServerDecision]
    solver: SolverReport
    total_cost: float = 0.0
    cost_by_type: dict[str, float] = Field(default_factory=dict)
    cards_by_type: dict[str, int] = Field(
        default_factory=dict, description="cards used per type, including reserved_by_type"
    )
    reserved_by_type: dict[str, int] = Field(
        default_factory=dict,
        description="cards running servers keep beyond their allocations (unallocated servers kept as "
        "they are, servers moving to another type this cycle), per type",
    )
    capacity_by_type: dict[str, int] = Field(default_factory=dict, description="cards available per type")
    unlimited: bool = False

    def with_elapsed_ms(self, elapsed_ms: float) -> Solution:
        """A copy whose solver report carries the wall time the caller measured around optimize()."""
        return self.model_copy(update={"solver": self.solver.model_copy(update={"elapsed_ms": elapsed_ms})})

    def by_server(self) -> dict[str, ServerDecision]:
        return {d.server: d for d in self.decisions}

    def inferno_allocations(self) -> dict[str, Any]:
        """inferno's AllocationSolution JSON: ``{"allocations": {server: allocation-data}}``."""
        out: dict[str, Any] = {}
        for d in self.decisions:
            if d.allocation is None:
                continue
            a = d.allocation
            out[d.server] = {
                "accelerator": a.accelerator,
                "numReplicas": a.num_replicas,
                "maxBatch": a.max_batch,
                "cost": a.cost,
                "itlAverage": a.itl_ms,
                "ttftAverage": a.ttft_ms,
            }
        return {"allocations": out}
