"""Typed input and output of the allocation solvers (internal, frozen, no pydantic).

The sizing stage (:mod:`optimizer.candidates`) turns each server into a :class:`ServerProblem`
with one :class:`Candidate` per feasible accelerator. A :class:`Solver` picks at most one candidate
per server, and a replica count, within the card capacity per type. Rates are requests per second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from contract.data.catalog import SaturationPolicy
from contract.steps import Step


@dataclass(frozen=True, slots=True)
class Candidate:
    """Serving one server's whole demand on one accelerator unit type."""

    accelerator: str
    acc_type: str
    replicas: int
    max_batch: int
    cost_per_replica: float
    cards_per_replica: int
    max_rate_per_replica_rps: float
    itl_ms: float
    ttft_ms: float
    utilization: float
    ttft_percentile_ms: float = 0.0
    floor_replicas: int = 0
    """Replicas the controller's scale-down window keeps on this (the current) accelerator this
    cycle. The solvers compare and allocate ``replicas``; the floor gets the cards left after all
    allocations (:mod:`optimizer.solver.floors`), so a scale-down the window holds neither looks like a reason
    to move nor takes cards another server needs."""

    @property
    def cost(self) -> float:
        return self.replicas * self.cost_per_replica

    @property
    def cards(self) -> int:
        return self.replicas * self.cards_per_replica


@dataclass(frozen=True, slots=True)
class ServerProblem:
    name: str
    priority: int
    demand_rps: float
    min_replicas: int
    max_replicas: int
    current_accelerator: str
    current_replicas: int
    candidates: tuple[Candidate, ...]
    """Feasible candidates, cheapest first."""
    infeasible: tuple[str, ...] = ()
    """One reason per accelerator that was considered and rejected."""


@dataclass(frozen=True)
class AllocationProblem:
    servers: tuple[ServerProblem, ...]
    capacity_cards: Mapping[str, int]
    unlimited: bool
    saturation_policy: SaturationPolicy
    switching_threshold: float = 0.10
    time_limit_s: float = 10.0
    seed: int = 0
    running_cards: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    """Per running server: (card type, cards per replica) of its current accelerator, from the
    data. Needed only for a server with no candidate there (see :mod:`optimizer.solver.reservations`);
    ``optimize`` fills it in, a problem without it reserves nothing for such servers."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Cards a running server keeps whatever this cycle's solution, reserved before allocating.

    ``candidate`` set: the candidate on its current accelerator; the actuator never takes the
    server below ``replicas`` (min_replicas, at least 1), so those cards are never free. None:
    the server has no candidate on its current accelerator; left without an allocation it is kept
    as it is (all its ``replicas``). An allocation of the same server on ``acc_type`` uses these
    cards first (:class:`optimizer.solver.capacity.CardLedger`)."""

    acc_type: str
    cards: int
    replicas: int
    priority: int
    candidate: Candidate | None


@dataclass(frozen=True, slots=True)
class Assignment:
    """What a solver gave one server. ``candidate`` None means nothing was allocated."""

    server: str
    candidate: Candidate | None
    replicas: int
    reasons: tuple[Step, ...] = ()

    @property
    def complete(self) -> bool:
        return self.candidate is not None and self.replicas >= self.candidate.replicas


@dataclass(frozen=True)
class SolverResult:
    assignments: Mapping[str, Assignment]
    status: str
    objective: float = 0.0
    lower_bound: float | None = None
    notes: tuple[Step, ...] = field(default_factory=tuple)
    reserved_cards: Mapping[str, int] = field(default_factory=dict)
    """Cards per type held by running servers beyond their assignments (kept as they are, or
    moving to another type this cycle): in use, though no assignment counts them."""


class Solver(Protocol):
    name: str

    def solve(self, problem: AllocationProblem) -> SolverResult: ...
