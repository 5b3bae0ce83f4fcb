"""Turn a solver's full allocations into a SolverResult with one Assignment per server.

Callers: :mod:`greedy` and :mod:`milp`. Both decide which servers get a *full* option; this
module adds the reasons for the servers left out, gives the floors of running servers (window and
capacity, :mod:`floors`) what is left, runs the saturation policy on the rest, says why a server
keeps cards with no assignment (:mod:`reservations`), and totals the objective. It also
holds the unlimited mode, which both solvers share: with no capacity, every server independently
takes its best full option (cheapest after the switching penalty), which is optimal, so the
status is ``optimal`` and the lower bound equals the objective.

Objective (both solvers): cost per hour of the full allocations plus their switching penalties,
i.e. the quantity the MILP minimises; partial allocations are reported in the notes only.
"""

from __future__ import annotations

from contract.data.catalog import SaturationPolicy
from contract.steps import Step, StepCode
from optimizer.solver.capacity import CardLedger
from optimizer.solver.explain import choice, money, not_served, solve_notes
from optimizer.solver.floors import apply_floors, floor_start
from optimizer.solver.problem import AllocationProblem, Assignment, SolverResult
from optimizer.solver.saturation import saturate
from optimizer.solver.stability import keep_status_quo, yield_to_running
from optimizer.solver.views import PricedCandidate, ServerView, build_views, reservations_of


def assemble(
    problem: AllocationProblem,
    views: list[ServerView],
    full: dict[str, PricedCandidate],
    reasons: dict[str, list[str]],
    ledger: CardLedger,
    *,
    status: str,
    lower_bound: float | None = None,
    notes: tuple[str, ...] = (),
    policy: SaturationPolicy | None = None,
) -> SolverResult:
    """``ledger`` must already hold the full allocations; saturation takes from what is left."""
    if ledger.limited:
        before = set(full)
        in_place = keep_status_quo(views, full)
        if in_place:  # a tie went to the server that changes nothing; count the cards again
            ledger = _charged(problem, views, full)
        left = {kind: ledger.left(kind) for kind in problem.capacity_cards}
        dropped = yield_to_running(views, full, left)
        if dropped:
            ledger = _charged(problem, views, full)
        left_out = before - set(full)  # once, not per server: 1,000 servers made it ~25 ms a solve
        for view in views:
            if view.name in in_place:
                chose = choice(view, full[view.name], problem.switching_threshold)
                reasons[view.name] = [*chose, in_place[view.name]]
            elif view.name in left_out:
                reasons[view.name] = [dropped[view.name]] if view.name in dropped else []
    assignments: dict[str, Assignment] = {}
    unserved: list[ServerView] = []
    for view in views:
        option = full.get(view.name)
        if option is None:
            reasons.setdefault(view.name, []).extend(not_served(view, ledger))
            unserved.append(view)
        else:
            why = tuple(solve_notes(reasons.get(view.name, ())))
            assignments[view.name] = Assignment(view.name, option.candidate, option.replicas, why)
    window_cost_per_h, starts = apply_floors(views, full, assignments, ledger)
    assignments.update(saturate(policy or problem.saturation_policy, unserved, ledger, reasons, starts))
    for view in unserved:
        reservation, base = view.reservation, assignments[view.name]
        if reservation is None or base.candidate is not None:
            continue
        start = floor_start(view, ledger, force=True) if reservation.candidate is not None else None
        if start is not None:  # meant to move, but the policy gave it nothing: its floor, here
            why = (*base.reasons, *start.reasons, _at_floor(start.replicas))
            assignments[view.name] = Assignment(view.name, start.option.candidate, start.replicas, why)
        elif reservation.candidate is None:
            kept = Step(
                stage="solve",
                code=StepCode.KEPT_AS_IS,
                text=f"kept as it is: no candidate on its current {view.server.current_accelerator}, so the "
                f"actuator leaves its {reservation.replicas} replica(s) running; their {reservation.cards} "
                f"{reservation.acc_type} cards were reserved before allocating",
            )
            assignments[view.name] = Assignment(view.name, None, 0, (*base.reasons, kept))
    reserved = ledger.reserved_cards()

    cost = sum(o.cost_per_h for o in full.values())
    penalty = sum(o.penalty_per_h for o in full.values())
    partial = (
        sum(a.replicas * a.candidate.cost_per_replica for a in assignments.values() if a.candidate)
        - cost
        - window_cost_per_h
    )
    summary = (
        f"{len(full)} of {len(views)} servers fully served at {money(cost)}/h"
        f" (+{money(penalty)}/h switching penalty); partial allocations {money(partial)}/h"
    )
    if window_cost_per_h > 0:
        summary += f"; replicas held by the stabilisation window {money(window_cost_per_h)}/h"
    if reserved:
        summary += "; cards kept by running servers beyond their assignments: " + ", ".join(
            f"{kind} {n}" for kind, n in reserved.items()
        )
    objective = cost + penalty
    if lower_bound is not None:
        lower_bound = min(lower_bound, objective)
    ordered = {s.name: assignments[s.name] for s in problem.servers}
    return SolverResult(
        ordered, status, objective, lower_bound, tuple(solve_notes((summary, *notes))), reserved
    )


def _at_floor(replicas: int) -> Step:
    """Why a server the saturation policy gave nothing elsewhere starts at its floor."""
    return Step(stage="solve", code=StepCode.PARTIAL, text=f"partial: {replicas} replica(s), its floor")


def _charged(
    problem: AllocationProblem, views: list[ServerView], full: dict[str, PricedCandidate]
) -> CardLedger:
    """A fresh ledger holding the reservations and ``full``."""
    ledger = CardLedger(problem.capacity_cards, reservations=reservations_of(views))
    for view in views:
        if view.name in full:
            ledger.take(full[view.name].candidate, full[view.name].replicas, view.priority, view.name)
    return ledger


def solve_unlimited(problem: AllocationProblem) -> SolverResult:
    """Each server takes its best full option; a server over max_replicas gets max_replicas."""
    views = build_views(problem)
    ledger = CardLedger(problem.capacity_cards, limited=False)
    full: dict[str, PricedCandidate] = {}
    reasons: dict[str, list[str]] = {}
    for view in views:
        if view.options:
            best = view.options[0]
            full[view.name] = best
            ledger.take(best.candidate, best.replicas, view.priority)
            reasons[view.name] = ["unlimited mode", *choice(view, best, problem.switching_threshold)]
    # No capacity to share: capping at max_replicas is all that is left, whatever the policy.
    result = assemble(
        problem, views, full, reasons, ledger, status="optimal", policy=SaturationPolicy.PRIORITY_EXHAUSTIVE
    )
    return SolverResult(
        result.assignments,
        result.status,
        result.objective,
        result.objective,
        result.notes,
        result.reserved_cards,
    )


def used_cards(result: SolverResult) -> dict[str, int]:
    """Cards per type the result's assignments use (full and partial)."""
    out: dict[str, int] = {}
    for a in result.assignments.values():
        if a.candidate is not None:
            out[a.candidate.acc_type] = (
                out.get(a.candidate.acc_type, 0) + a.replicas * a.candidate.cards_per_replica
            )
    return dict(sorted(out.items()))
