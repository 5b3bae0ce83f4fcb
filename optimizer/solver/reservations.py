"""Capacity reservations: cards a running server keeps whatever this cycle's solution says.

Not the scale-down window's floor (:mod:`optimizer.solver.floors`) nor the type-change hold-down
(:mod:`optimizer.type_changes`). Callers: :func:`optimizer.solver.views.build_views` (each view
carries its reservation) and, through
the views, every ledger and the MILP's capacity rows. Pure.

Why: the actuator never scales a server to zero for capacity (nor below ``min_replicas``), and it
leaves a server without an allocation exactly as it is. Without a reservation, a server the solvers
leave out keeps its pods while its cards count as free, and another server's new pods on them wait
Pending (e.g. a higher-priority move onto A100 waits Pending while an unallocated Free server still
holds the A100s). So, before allocating, each running server (``current_replicas > 0`` on a known
accelerator, limited mode) reserves:

- with a candidate on its current accelerator: its *capacity floor*, ``keep = max(min_replicas,
  1)`` replicas (at most ``max_replicas``) of that candidate. If the solvers cannot serve it, it
  gets at least this floor there (:mod:`optimizer.solver.floors`): scaled down to it, never kept
  above what was counted. E.g. Free runs 4 x A100, min 1: 1 A100 card is reserved; with no cards
  for its demand it is brought down to 1 x A100 and its other 3 cards serve others.
- without one (its accelerator is infeasible for the load, or has no performance data): all it
  runs, ``current_replicas * cards per replica`` (from the data, ``running_cards``). Left without an
  allocation it is kept as it is, so its cards are never free.

An allocation of the same server on the reservation's card type uses the reserved cards first; only the
rest comes from the capacity. A server that moves to another type keeps its reservation this cycle (its
old pods run until the new ones are Ready); the next cycle sees it on the new type. So no
solution ever counts on cards that running pods hold.
"""

from __future__ import annotations

from optimizer.solver.problem import AllocationProblem, Reservation, ServerProblem


def keep_replicas(server: ServerProblem) -> int:
    """Fewest replicas the actuator runs: ``max(min_replicas, 1)``, within ``max_replicas`` (0: none).

    >>> from optimizer.solver.problem import ServerProblem
    >>> keep_replicas(ServerProblem("s", 1, 1.0, 0, 0, "A100", 3, ()))
    1
    """
    keep = max(server.min_replicas, 1)
    return min(keep, server.max_replicas) if server.max_replicas > 0 else keep


def reservations_by_server(problem: AllocationProblem) -> dict[str, Reservation]:
    """The reservation of every running server (none in unlimited mode); see the module docstring."""
    if problem.unlimited:
        return {}
    reservations: dict[str, Reservation] = {}
    for server in problem.servers:
        if server.current_replicas <= 0 or not server.current_accelerator:
            continue
        current = next((c for c in server.candidates if c.accelerator == server.current_accelerator), None)
        if current is not None:
            keep = keep_replicas(server)
            reservations[server.name] = Reservation(
                current.acc_type, keep * current.cards_per_replica, keep, server.priority, current
            )
        elif server.name in problem.running_cards:
            acc_type, per_replica = problem.running_cards[server.name]
            replicas = server.current_replicas
            reservations[server.name] = Reservation(
                acc_type, replicas * per_replica, replicas, server.priority, None
            )
    return reservations


def unreserved_capacity(
    capacity_cards: dict[str, int], reservations: dict[str, Reservation]
) -> dict[str, int]:
    """Capacity left per type once every reservation is taken off (at least 0): what the solvers share.

    >>> from optimizer.solver.problem import Reservation
    >>> unreserved_capacity({"A100": 8}, {"free": Reservation("A100", 3, 3, 3, None)})
    {'A100': 5}
    """
    left = dict(capacity_cards)
    for reservation in reservations.values():
        left[reservation.acc_type] = left.get(reservation.acc_type, 0) - reservation.cards
    return {kind: max(0, n) for kind, n in left.items()}
