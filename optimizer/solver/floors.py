"""Floors: what running servers keep before anyone grows into spare cards.

Caller: :func:`optimizer.solver.assemble.assemble`, after the full allocations and *before* the
saturation policy, for every solver. Two floors, both on a server's current accelerator:

- the *stabilisation window* floor (``Candidate.floor_replicas``, from the controller): the highest
  recent recommendation the controller's scale-down window still holds;
- the *capacity* floor of a running server the solvers could not serve: ``keep = max(min_replicas,
  1)`` replicas (:mod:`optimizer.solver.reservations`; their cards were reserved before allocating).

The solvers compare and allocate the *demand's* count; then, in solver order, a fully served
server whose window floor is above that count gets the extra replicas as far as the cards left
allow, and an unserved running server starts its partial allocation on its current accelerator at
``max(keep, window floor)`` (the window part as far as cards allow), unless another type fits a
strictly larger share of its demand (then the saturation policy moves it). Only then does the saturation
policy share what is left (:mod:`optimizer.solver.saturation`), growing those partial allocations.

Why before saturation: with the floors after it, a server whose demand dips by one replica gives
that replica's cards to a partial server at once, and takes them back when the dip passes: under
a constant load with the usual measurement noise both change every few cycles
(``tests/unit/optimizer/test_partial_churn.py``; the 1,000-server benchmark in
``benchmarks/README.md``, "History notes"). The window exists to ride out such dips, so a held
replica is not spare. Still no pod Pending: floors only take cards no full allocation needs, and
what the solution allocates is what will run.

Example: A100 capacity 8; ``prem`` needs 3, ``bulk`` needs 2 but is held at 6. Full allocations
take 5 cards, 3 are left: bulk gets 2 + 3 = 5 replicas ("the window holds 5 of 6").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contract.steps import Step, StepCode
from optimizer.solver.capacity import CardLedger
from optimizer.solver.problem import Assignment
from optimizer.solver.reservations import keep_replicas
from optimizer.solver.views import PricedCandidate, ServerView


@dataclass(frozen=True, slots=True)
class FloorStart:
    """Where an unserved running server's partial allocation starts: its current option, the
    replicas its floors keep (already charged to the ledger), and why."""

    option: PricedCandidate
    replicas: int
    reasons: tuple[Step, ...]


def apply_floors(
    views: list[ServerView],
    full: Mapping[str, PricedCandidate],
    assignments: dict[str, Assignment],
    ledger: CardLedger,
) -> tuple[float, dict[str, FloorStart]]:
    """Raise full assignments towards their window floor with the cards left, and start every
    unserved running server at its floors; returns the cost/h the window added and the starts."""
    added = 0.0
    starts: dict[str, FloorStart] = {}
    for view in views:
        option = full.get(view.name)
        if option is None:
            start = floor_start(view, ledger)
            if start is not None:
                starts[view.name] = start
            continue
        floor = option.candidate.floor_replicas
        if floor <= option.replicas:
            continue
        extra = ledger.replicas_that_fit(option.candidate, floor - option.replicas, view.name)
        base = assignments[view.name]
        if extra > 0:
            ledger.take(option.candidate, extra, view.priority, view.name)
            added += extra * option.candidate.cost_per_replica
        held = option.replicas + extra
        if held == floor:
            text = (
                f"stabilisation window: holds {floor} x {option.accelerator} (load needs "
                f"{option.replicas}) on cards no other server needs"
            )
        else:
            text = (
                f"stabilisation window: holds {held} of {floor} x {option.accelerator} (load needs "
                f"{option.replicas}); the other cards are allocated to other servers"
            )
        why = Step(stage="solve", code=StepCode.WINDOW_FLOOR, text=text)
        assignments[view.name] = Assignment(view.name, option.candidate, held, (*base.reasons, why))
    return added, starts


def floor_start(view: ServerView, ledger: CardLedger, *, force: bool = False) -> FloorStart | None:
    """An unserved server that runs on an accelerator it has a candidate for starts there, unless
    another type fits a strictly larger share of its demand (then the saturation policy moves it;
    its reservation stays this cycle). ``force``: start there anyway (the fallback when the
    policy gave it nothing elsewhere: it must not be left to the actuator as it is)."""
    reservation, current = view.reservation, view.current
    if reservation is None or reservation.candidate is None or current is None:
        return None
    best = None if force else best_fitting(view, ledger)
    if best is not None and best[0] is not current:
        here = ledger.replicas_that_fit(current.candidate, view.replica_cap(current), view.name)
        if _share(best[0], best[1]) > _share(current, here):
            return None
    cap = view.replica_cap(current)
    keep = min(keep_replicas(view.server), cap)
    if keep <= 0:
        return None
    window = min(current.candidate.floor_replicas, cap)
    # At least ``keep``: the reservation kept those cards for this server (its credit).
    replicas = ledger.replicas_that_fit(current.candidate, max(keep, window), view.name)
    ledger.take(current.candidate, replicas, view.priority, view.name)
    acc = current.accelerator
    reasons = [
        Step(
            stage="solve",
            code=StepCode.CAPACITY_FLOOR,
            text=f"capacity floor: runs on {acc}, so it keeps at least {keep} replica(s) there (min_replicas "
            f"{view.server.min_replicas}, never 0 for capacity); their cards were reserved before allocating",
        )
    ]
    if window > keep:
        held = "holds" if replicas >= window else f"holds {replicas} of"
        reasons.append(
            Step(
                stage="solve",
                code=StepCode.WINDOW_FLOOR,
                text=f"stabilisation window: {held} {window} x {acc} (partial) on cards no demand needs",
            )
        )
    return FloorStart(current, replicas, tuple(reasons))


def best_fitting(view: ServerView, ledger: CardLedger) -> tuple[PricedCandidate, int] | None:
    """The candidate serving the largest share of demand with the cards left (plus the server's own
    reserved cards), and its replicas; None when none fits ``first_block`` replicas."""
    best: tuple[PricedCandidate, int] | None = None
    best_share = -1.0
    for option in view.all_options:
        fit = ledger.replicas_that_fit(option.candidate, view.replica_cap(option), view.name)
        if fit < view.first_block:
            continue
        share = _share(option, fit)
        if share > best_share:  # strict: on a tie the earlier (cheaper) option stays
            best, best_share = (option, fit), share
    return best


def _share(option: PricedCandidate, replicas: int) -> float:
    return replicas / option.replicas if option.replicas > 0 else 1.0
