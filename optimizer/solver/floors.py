"""Stabilisation floors: replicas the actuator's scale-down window keeps, given only spare cards.

Caller: :func:`optimizer.solver.assemble.assemble`, after the full allocations and the saturation
policy, for every solver. A candidate on the server's current accelerator may carry
``floor_replicas`` (the highest recent recommendation the window still holds, from the
controller). The solvers compare and allocate the *demand's* count; then, in solver order, each
fully served server whose floor is above that count gets the extra replicas as far as the cards
left allow. So the window holds only cards no other server's demand needs, and what the solution
allocates is what will run: no pod Pending because the window held cards given to someone else.

Example: A100 capacity 8; ``prem`` needs 3, ``bulk`` needs 2 but is held at 6. Full allocations
take 5 cards, 3 are left: bulk gets 2 + 3 = 5 replicas ("the window holds 5 of 6").
"""

from __future__ import annotations

from collections.abc import Mapping

from optimizer.solver.capacity import CardLedger
from optimizer.solver.options import Option, ServerView
from optimizer.solver.problem import Assignment


def hold_floors(
    views: list[ServerView],
    full: Mapping[str, Option],
    assignments: dict[str, Assignment],
    ledger: CardLedger,
) -> float:
    """Raise full assignments towards their floor with the cards left; returns the added cost/h."""
    added = 0.0
    for view in views:
        option = full.get(view.name)
        if option is None:
            continue
        floor = option.candidate.floor_replicas
        if floor <= option.replicas:
            continue
        extra = ledger.replicas_that_fit(option.candidate, floor - option.replicas)
        base = assignments[view.name]
        if extra > 0:
            ledger.take(option.candidate, extra, view.priority)
            added += extra * option.candidate.cost_per_replica
        held = option.replicas + extra
        if held == floor:
            why = (
                f"stabilisation window: holds {floor} x {option.accelerator} (load needs "
                f"{option.replicas}) on cards no other server needs"
            )
        else:
            why = (
                f"stabilisation window: holds {held} of {floor} x {option.accelerator} (load needs "
                f"{option.replicas}); the other cards are allocated to other servers"
            )
        assignments[view.name] = Assignment(view.name, option.candidate, held, (*base.reasons, why))
    return added
