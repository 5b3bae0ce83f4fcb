"""Status quo on ties: among servers of one priority level, fully serve the one already running.

Caller: :func:`optimizer.solver.assemble.assemble`, on the solvers' full allocations, limited mode.

Why: when capacity runs out, servers with equal demand and equal options (the 1,000-server
benchmark has many) tie: the solvers serve the same *number* per priority level at the same cost
whichever of them they pick, and the pick followed the cycle's state. With the capacity floors
(:mod:`optimizer.solver.holds`) the one left out is brought down to its floor, so two such servers
swapped every cycle: 1 -> 6 and 6 -> 1 replicas, then back (seen on the 300-server benchmark,
cycles 3-5). Before the floors the loser was left unallocated and kept as it was, which hid the
swap but left its cards counted twice.

Rule: a server left without a full allocation that already runs its full count on its current
accelerator (so serving it changes nothing) takes the place of a served server of the same
priority whose allocation is a change (it grows or moves), when its option is on the same card
type, needs no more cards beyond its hold than the other's, and costs no more (effective cost).
The served count per level does not change, the cost does not rise, the capacity still holds:
the solvers' lexicographic optimum is kept. Example: twins need 6 x L4 each, 5 cards are left
beyond their floors; A runs 6, B runs 1; the MILP picked B. After the swap A stays at 6 and B
stays at its floor of 1: no patch.
"""

from __future__ import annotations

from itertools import groupby

from optimizer.solver.options import Option, ServerView

EPSILON_PER_H = 1e-9


def keep_status_quo(views: list[ServerView], full: dict[str, Option]) -> dict[str, str]:
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


def _in_place(view: ServerView, option: Option) -> bool:
    """True when ``option`` is what the server runs now (or fewer replicas of it)."""
    server = view.server
    return option.accelerator == server.current_accelerator and server.current_replicas >= option.replicas
