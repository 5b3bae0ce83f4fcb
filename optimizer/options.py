"""The sizing stage's records: a server's context and its (server, accelerator) options, before
and after sizing.

One (server, accelerator) pair goes through these records, in order:

1. :class:`OptionToSize` (here): the pair and the sizing requests to run for it;
2. :class:`SizedOption` (here): a feasible pair, sized, with its batch and replica count;
3. :class:`~optimizer.solver.problem.Candidate`: the solver's record of it, with the predictions
   at the load;
4. :class:`~optimizer.solver.views.PricedCandidate`: the candidate at the replica count serving
   the whole demand, priced with the switching penalty;
5. :class:`~optimizer.solver.problem.Assignment`: the solver's choice and its replicas.

Shared by :mod:`optimizer.candidates` (which builds them) and :mod:`optimizer.type_changes` (the
type-change hold-down and hysteresis that filter them). Pure data plus the one replica rule both
use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from contract.data.catalog import AcceleratorSpec, ModelPerfEntry
from contract.data.workload import ServerSpec
from contract.steps import Step
from optimizer.model.service_time import GEOMETRIC, LengthSpread, ServiceModel
from optimizer.model.sizing import SizingRequest, SizingResult, Targets


@dataclass(frozen=True, slots=True)
class ServerContext:
    """What the decision report needs beyond the solver's :class:`ServerProblem`."""

    name: str
    service_class: str
    model: str
    priority: int
    demand_rps: float
    in_tokens: float
    out_tokens: float
    targets: Targets
    spread: LengthSpread = GEOMETRIC
    """The spread of the lengths (the load's cv^2 and correlation where given)."""
    reasons: tuple[Step, ...] = ()
    """Server-level notes: missing class or targets, assumed tokens, throughput demand."""
    candidate_notes: Mapping[str, str] = field(default_factory=dict)
    """Per offered accelerator: batch, what limits its rate, and whether it is capped."""


@dataclass(frozen=True, slots=True)
class OptionToSize:
    """Stage 1, unsized: one (server, accelerator) pair and the sizing requests to run for it."""

    server: int
    entry: ModelPerfEntry
    spec: AcceleratorSpec
    service: ServiceModel
    requests: tuple[SizingRequest, ...]
    """One request (the batch) or, for the optimal policy, one per N = 1..ceiling."""
    batch_note: str = ""
    """Set when ``max_batch_cap`` clamped the batch."""


@dataclass(frozen=True, slots=True)
class SizedOption:
    """Stage 2, sized: a feasible (server, accelerator) pair with its batch, sizing result and
    replica count."""

    option: OptionToSize
    request: SizingRequest
    result: SizingResult
    replicas: int

    @property
    def cost_per_replica(self) -> float:
        return self.option.spec.cost * self.option.entry.acc_count

    @property
    def cards_per_replica(self) -> int:
        return self.option.entry.acc_count * self.option.spec.multiplicity


def replicas_for(server: ServerSpec, demand: float, rate: float) -> int:
    """Replicas serving the whole demand: ``max(ceil(demand/rate), minNumReplicas)``, at least one
    when there is demand; ``maxNumReplicas`` is the solver's to apply."""
    if demand <= 0:
        return server.min_num_replicas
    return max(math.ceil(demand / rate - 1e-9), server.min_num_replicas, 1)
