"""Status quo rules on the solvers' full allocations: ties go to the server already running, and a
lower-priority server does not grow into cards a higher-priority running server would lose.

Caller: :func:`optimizer.solver.assemble.assemble`, on the solvers' full allocations, limited mode.

Why: when capacity runs out, servers with equal demand and equal options (the 1,000-server
benchmark has many) tie: the solvers serve the same *number* per priority level at the same cost
whichever of them they pick, and the pick follows the cycle's state. With the capacity floors
(:mod:`optimizer.solver.reservations`) the one left out is brought down to its floor, so without
this rule two such servers swap every cycle: 1 -> 6 and 6 -> 1 replicas, then back (the 300-server
benchmark, cycles 3-5).

Rule: a server left without a full allocation that already runs its full count on its current
accelerator (so serving it changes nothing) takes the place of a served server of the same
priority whose allocation is a change (it grows or moves), when its option is on the same card
type, needs no more cards beyond its reservation than the other's, and costs no more (effective cost).
The served count per level does not change, the cost does not rise, the capacity still holds:
the solvers' lexicographic optimum is kept. Example: twins need 6 x L4 each, 5 cards are left
beyond their floors; A runs 6, B runs 1; the MILP picked B. After the swap A stays at 6 and B
stays at its floor of 1: no patch.
"""

from __future__ import annotations

from itertools import groupby

from optimizer.solver.views import PricedCandidate, ServerView

EPSILON_PER_H = 1e-9


def keep_status_quo(views: list[ServerView], full: dict[str, PricedCandidate]) -> dict[str, str]:
    """Swap in place (``full`` is changed); returns a note per server swapped in, by name."""
    notes: dict[str, str] = {}
    for _, members in groupby(views, key=lambda v: v.priority):
        level = list(members)
        changing = [v for v in level if v.name in full and not _in_place(v, full[v.name])]
        for view in level:
            option = view.current
            if view.name in full or option is None or not option.within_max or not _in_place(view, option):
                continue
            for other in changing:
                theirs = full[other.name]
                if (
                    theirs.acc_type == option.acc_type
                    and option.cards <= theirs.cards
                    and option.effective_cost_per_h <= theirs.effective_cost_per_h + EPSILON_PER_H
                ):
                    del full[other.name]
                    full[view.name] = option
                    changing.remove(other)
                    runs = f"{view.server.current_replicas} x {option.accelerator}"
                    notes[view.name] = (
                        f"kept in full: it already runs {runs}, so {other.name} (same priority, same "
                        "cost, would change) is served in part instead"
                    )
                    break
    return notes


def _in_place(view: ServerView, option: PricedCandidate) -> bool:
    """True when ``option`` is what the server runs now (or fewer replicas of it)."""
    server = view.server
    return option.accelerator == server.current_accelerator and server.current_replicas >= option.replicas


def yield_to_running(
    views: list[ServerView], full: dict[str, PricedCandidate], left: dict[str, int]
) -> dict[str, str]:
    """Drop full allocations of lower priority that grow into cards a higher-priority running server
    needs to keep what it runs; returns a reason per dropped server. ``left``: cards left per type
    after the full allocations (changed in place).

    Why: the solvers make every full allocation before any partial one, so with the capacity
    floors reserved a lower-priority server can be served in full with the very cards a
    higher-priority server, unservable in full by one card, then loses: Premium runs 3 and needs 3,
    Free runs 1 and needs 2, 3 cards: Free 1 -> 2 and Premium 3 -> 1. So a running server not
    served in full first keeps ``min(current replicas, its need)`` on its current accelerator when
    dropping lower-priority allocations that are changes (they grow or move) frees the cards; the
    dropped server keeps its own floor. Here: Free stays at 1, Premium keeps 2.
    """
    dropped: dict[str, str] = {}
    for view in views:
        option, reservation = view.current, view.reservation
        if view.name in full or option is None or reservation is None or reservation.candidate is None:
            continue
        keep = min(view.server.current_replicas, view.replica_cap(option))
        kind, per_replica = option.acc_type, option.candidate.cards_per_replica
        short = keep * per_replica - reservation.cards - max(left.get(kind, 0), 0)
        if short <= 0:  # the usual case: no scan of the others (1,000 servers: 0.15 s per solve)
            continue
        lower = (
            v
            for v in reversed(views)
            if v.priority > view.priority
            and v.name in full
            and full[v.name].acc_type == kind
            and not _in_place(v, full[v.name])
        )
        for other in lower:
            if short <= 0:
                break
            freed = full.pop(other.name).cards
            left[kind] = left.get(kind, 0) + freed
            short -= freed
            dropped[other.name] = (
                f"not served in full: {view.name} (priority {view.priority}) runs "
                f"{view.server.current_replicas} x {option.accelerator} and keeps them before a "
                f"lower priority grows"
            )
    return dropped
