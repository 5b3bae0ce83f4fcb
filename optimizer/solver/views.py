"""Per-server view shared by every solver: full-service options, switching penalty, solver order.

Callers: :mod:`greedy`, :mod:`milp`, :mod:`saturation` and :mod:`assemble`. Pure functions of the
:class:`~optimizer.solver.problem.AllocationProblem`; nothing here looks at capacity.

A :class:`PricedCandidate` (an *option*, in the solvers' variables) is one candidate at the replica
count that serves the server's whole demand: ``replicas = max(candidate.replicas, min_replicas)``.
It is a *full* option only when that count is within ``max_replicas`` (0 = no limit); otherwise the
candidate can only ever serve part of the demand and is left to the saturation policy.

Switching penalty (compared per accelerator **unit name**, e.g. ``2xA100`` vs ``A100`` counts as a
switch, because the Deployment changes either way). A server currently on unit A, whose A option
costs ``c_A`` per hour, pays ``t * c_A`` on top of every other option's cost, with ``t`` the
switching threshold. So it moves to B exactly when ``c_B + t*c_A < c_A``, i.e.
``c_B < (1 - t) * c_A``: with t = 0.10 and c_A = 100/h, B must cost under 90/h. A server whose
current unit has no candidate (or that has no current unit) pays no penalty. On a tie in
effective cost the server stays (the move must be strictly cheaper). The additive form
keeps the penalty finite for t = 1 (never move unless forced) and is linear for the MILP.

Reservations (:mod:`optimizer.solver.reservations`): a running server's view carries the cards it
keeps whatever happens; an option on that card type needs only the cards beyond them
(``PricedCandidate.cards``), and the solvers share the capacity minus every reservation.

Solver order (inferno's greedy): priority ascending (1 is highest), then regret descending (the
effective-cost gap between a server's best and second-best full option; a single option has
infinite regret, it has nowhere to fall back to), then name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from optimizer.solver.problem import AllocationProblem, Candidate, Reservation, ServerProblem
from optimizer.solver.reservations import reservations_by_server


@dataclass(frozen=True, slots=True)
class PricedCandidate:
    """Stage 4 of a (server, accelerator) pair (see :mod:`optimizer.options`): one candidate at the
    replica count that serves the server's whole demand, with its cost and switching penalty."""

    candidate: Candidate
    replicas: int
    cost_per_h: float
    penalty_per_h: float
    within_max: bool
    reservation_cards: int = 0
    """Cards of this option's type the server's reservation holds, 0 on other types."""

    @property
    def effective_cost_per_h(self) -> float:
        """Cost plus switching penalty: what the solvers minimise."""
        return self.cost_per_h + self.penalty_per_h

    @property
    def cards(self) -> int:
        """Cards this option needs beyond the server's reservation: what it takes from the shared capacity."""
        return max(0, self.replicas * self.candidate.cards_per_replica - self.reservation_cards)

    @property
    def acc_type(self) -> str:
        return self.candidate.acc_type

    @property
    def accelerator(self) -> str:
        return self.candidate.accelerator


@dataclass(frozen=True, slots=True)
class ServerView:
    server: ServerProblem
    options: tuple[PricedCandidate, ...]
    """Full options (within max_replicas), best effective cost first."""
    all_options: tuple[PricedCandidate, ...]
    """Every candidate, best effective cost first, including those over max_replicas."""
    current: PricedCandidate | None
    """The option on the server's current accelerator unit, if it has one."""
    regret_per_h: float
    reservation: Reservation | None = None
    """Cards the server keeps whatever happens (:mod:`optimizer.solver.reservations`); None: not running."""

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def priority(self) -> int:
        return self.server.priority

    def replica_cap(self, option: PricedCandidate) -> int:
        """Most replicas this server may get on ``option`` (its full count, or max_replicas)."""
        cap = self.server.max_replicas
        return option.replicas if cap <= 0 else min(option.replicas, cap)

    @property
    def first_block(self) -> int:
        """Fewest replicas worth giving: min_replicas, at least one."""
        return max(1, self.server.min_replicas)


def build_views(problem: AllocationProblem) -> list[ServerView]:
    """One view per server, in solver order (priority, regret descending, name).

    Raises ValueError on duplicate server names: results are keyed by name.
    """
    names = [s.name for s in problem.servers]
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate server names in the allocation problem: {dupes}")
    reservations = reservations_by_server(problem)
    views = [
        _view(server, problem.switching_threshold, reservations.get(server.name))
        for server in problem.servers
    ]
    views.sort(key=lambda v: (v.priority, -v.regret_per_h, v.name))
    return views


def reservations_of(views: list[ServerView]) -> dict[str, Reservation]:
    """Each view's reservation by server name, for a :class:`~optimizer.solver.capacity.CardLedger`."""
    return {v.name: v.reservation for v in views if v.reservation is not None}


def _view(server: ServerProblem, threshold: float, reservation: Reservation | None = None) -> ServerView:
    on_current = [c for c in server.candidates if c.accelerator == server.current_accelerator]
    current_cost = min((_option(server, c, 0.0).cost_per_h for c in on_current), default=None)
    options: list[PricedCandidate] = []
    for candidate in server.candidates:
        moves = current_cost is not None and candidate.accelerator != server.current_accelerator
        penalty = threshold * current_cost if moves and current_cost is not None else 0.0
        held = (
            reservation.cards if reservation is not None and reservation.acc_type == candidate.acc_type else 0
        )
        options.append(_option(server, candidate, penalty, held))
    options.sort(key=_preference)
    current = next((o for o in options if o.accelerator == server.current_accelerator), None)
    full = tuple(o for o in options if o.within_max)
    if len(full) >= 2:
        regret = full[1].effective_cost_per_h - full[0].effective_cost_per_h
    else:
        regret = math.inf if full else 0.0
    return ServerView(server, full, tuple(options), current, regret, reservation)


def _option(
    server: ServerProblem, candidate: Candidate, penalty_per_h: float, reservation_cards: int = 0
) -> PricedCandidate:
    replicas = max(candidate.replicas, server.min_replicas)
    within = server.max_replicas <= 0 or replicas <= server.max_replicas
    return PricedCandidate(
        candidate, replicas, replicas * candidate.cost_per_replica, penalty_per_h, within, reservation_cards
    )


def _preference(option: PricedCandidate) -> tuple[float, bool, float, int, str]:
    # On an effective-cost tie the server stays: it moves only when strictly cheaper.
    moves = option.penalty_per_h > 0
    return (option.effective_cost_per_h, moves, option.cost_per_h, option.cards, option.accelerator)


def undominated(options: tuple[PricedCandidate, ...]) -> tuple[PricedCandidate, ...]:
    """Drop options another option of the same card type beats on both cards and effective cost.

    Safe for every lexicographic objective: swapping a dominated option for its dominator serves
    the same server with no more cards and no more cost. Keeps the input order.
    """
    kept: list[PricedCandidate] = []
    for option in options:
        if not any(_dominates(other, option) for other in kept):
            kept.append(option)
    return tuple(kept)


def _dominates(a: PricedCandidate, b: PricedCandidate) -> bool:
    # ``options`` are sorted best first, so an earlier ``a`` already has cost <= b's.
    return (
        a.acc_type == b.acc_type and a.cards <= b.cards and a.effective_cost_per_h <= b.effective_cost_per_h
    )
