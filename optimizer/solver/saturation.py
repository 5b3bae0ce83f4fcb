"""Saturation policies: what servers that could not be fully served get from the cards left over.

Caller: :func:`optimizer.solver.assemble.assemble`, after a solver has made its full allocations.
Input: the unserved servers in solver order (priority, regret, name) and the card ledger after the
full allocations. Output: exactly one :class:`Assignment` per input server.

A server's partial allocation uses a single candidate, its *best-fitting* one
(:func:`optimizer.solver.floors.best_fitting`): the candidate whose replicas that still fit (capped
by ``max_replicas``; a running server's own reserved cards count for it) serve the largest share of its
demand, ``fit / full_replicas``; ties go to the lower effective cost. A running server whose current
accelerator fits a share as large as any other already has a start there (its capacity and window
floors, :mod:`optimizer.solver.floors`) and grows on it. Any other server's first grant is its
``min_replicas`` (at least 1) at once, or nothing; later grants add one replica.

- ``None``: nothing beyond the starts; the Assignment has no candidate (or its start) and says why.
- ``PriorityExhaustive``: in solver order, each server takes as many replicas as fit.
- ``RoundRobin``: rounds over all unserved servers in solver order, one grant per server per
  round, until a round grants nothing.
- ``PriorityRoundRobin``: RoundRobin within each priority level, levels in priority order.

Example (hand-checked in the tests): 9 one-card A100s left; P1 and P2 (priority 1) and Q
(priority 2) each need 10 one-card replicas, so none was fully served. PriorityExhaustive: P1 9,
P2 0, Q 0. RoundRobin: 3, 3, 3. PriorityRoundRobin: P1 5, P2 4, Q 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

from contract.data.catalog import SaturationPolicy
from contract.steps import Step, StepCode
from optimizer.solver.capacity import CardLedger
from optimizer.solver.explain import describe, solve_notes
from optimizer.solver.floors import FloorStart, best_fitting
from optimizer.solver.problem import Assignment
from optimizer.solver.views import PricedCandidate, ServerView


@dataclass(slots=True)
class _Grant:
    view: ServerView
    option: PricedCandidate | None = None
    replicas: int = 0
    active: bool = True
    reasons: list[Step] = field(default_factory=list)
    started: int = 0


def saturate(
    policy: SaturationPolicy,
    unserved: list[ServerView],
    ledger: CardLedger,
    reasons: dict[str, list[str]],
    starts: dict[str, FloorStart] | None = None,
) -> dict[str, Assignment]:
    """One Assignment per unserved server; ``reasons`` holds why each was not fully served.
    ``starts``: partial allocations the floors began (already charged to ``ledger``)."""
    grants = []
    for view in unserved:
        start = (starts or {}).get(view.name)
        grant = _Grant(view, reasons=solve_notes(reasons.get(view.name, [])))
        if start is not None:
            grant.option, grant.replicas, grant.started = start.option, start.replicas, start.replicas
            grant.reasons.extend(start.reasons)
        grants.append(grant)
    if policy is SaturationPolicy.PRIORITY_EXHAUSTIVE:
        for grant in grants:
            _grant_exhaustively(grant, ledger)
    elif policy is SaturationPolicy.ROUND_ROBIN:
        _round_robin(grants, ledger)
    elif policy is SaturationPolicy.PRIORITY_ROUND_ROBIN:
        for _, level in groupby(grants, key=lambda g: g.view.priority):
            _round_robin(list(level), ledger)
    return {g.view.name: _assignment(g, policy) for g in grants}


def _grant_exhaustively(grant: _Grant, ledger: CardLedger) -> None:
    view = grant.view
    if grant.option is not None:  # grows from its start on the current accelerator
        room = view.replica_cap(grant.option) - grant.replicas
        more = ledger.replicas_that_fit(grant.option.candidate, room, view.name) if room > 0 else 0
        if more > 0:
            ledger.take(grant.option.candidate, more, view.priority, view.name)
            grant.replicas += more
        return
    found = best_fitting(view, ledger)
    if found is not None:
        grant.option, grant.replicas = found
        ledger.take(found[0].candidate, found[1], view.priority, view.name)


def _round_robin(grants: list[_Grant], ledger: CardLedger) -> None:
    progress = True
    while progress:
        progress = False
        for grant in grants:
            if grant.active and _grant_one_step(grant, ledger):
                progress = True
            else:
                grant.active = False


def _grant_one_step(grant: _Grant, ledger: CardLedger) -> bool:
    view = grant.view
    if grant.option is None:
        found = best_fitting(view, ledger)
        if found is None:
            return False
        grant.option, step = found[0], min(found[1], view.first_block)
    else:
        step = 1
        if grant.replicas + step > view.replica_cap(grant.option) or not ledger.fits(
            grant.option.candidate, step, view.name
        ):
            return False
    ledger.take(grant.option.candidate, step, view.priority, view.name)
    grant.replicas += step
    return True


def _assignment(grant: _Grant, policy: SaturationPolicy) -> Assignment:
    name = grant.view.name
    option = grant.option
    if option is None or grant.replicas <= 0:
        if policy is SaturationPolicy.NONE:
            grant.reasons.append(Step.note("solve", "saturation policy None: no partial allocation"))
        elif grant.view.server.candidates:
            none_left = f"{policy.value}: no cards left for even {grant.view.first_block} replica(s)"
            grant.reasons.append(Step.note("solve", none_left))
        return Assignment(name, None, 0, tuple(grant.reasons))
    what = describe(option.candidate, grant.replicas)
    if grant.started and grant.replicas == grant.started and grant.replicas < option.replicas:
        grant.reasons.append(
            Step(
                stage="solve",
                code=StepCode.PARTIAL,
                text=f"partial: {grant.replicas} of {option.replicas} replicas, its floor ({policy.value} "
                f"gave it no more): {what}",
            )
        )
    elif grant.replicas >= option.replicas:
        grant.reasons.append(Step.note("solve", f"full after all ({policy.value}): {what}"))
    else:
        grant.reasons.append(
            Step(
                stage="solve",
                code=StepCode.PARTIAL,
                text=f"partial: {grant.replicas} of {option.replicas} replicas ({policy.value}): {what}",
            )
        )
    return Assignment(name, option.candidate, grant.replicas, tuple(grant.reasons))
