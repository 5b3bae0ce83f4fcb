"""Inferno's greedy allocation: priority first, then regret, cheapest option that still fits.

Caller: the registry (``get_solver("greedy")``), and the MILP, which starts from this solution.

Algorithm, limited mode:

1. Order servers by priority (1 first), then by regret descending (the effective-cost gap between
   a server's best and second-best full option: the server that loses most by not getting its
   first choice goes first), then name.
2. Each server, in that order, takes the first of its full options (cheapest after the switching
   penalty, see :mod:`optimizer.solver.views`) whose cards fit in what is left; an option that
   does not fit is skipped ("fell through"). A server none of whose options fits is unserved.
3. The saturation policy shares the cards left among the unserved servers.

Unlimited mode is the same for every solver (:func:`optimizer.solver.assemble.solve_unlimited`).
Complexity O(S * C) after sorting, for S servers and C candidates each. No bound: the status is
``heuristic`` and ``lower_bound`` is None.
"""

from __future__ import annotations

from optimizer.solver.assemble import assemble, solve_unlimited
from optimizer.solver.capacity import CardLedger
from optimizer.solver.explain import choice, fell_through
from optimizer.solver.problem import AllocationProblem, SolverResult
from optimizer.solver.views import PricedCandidate, ServerView, build_views, reservations_of


class GreedySolver:
    name = "greedy"

    def solve(self, problem: AllocationProblem) -> SolverResult:
        if problem.unlimited:
            return solve_unlimited(problem)
        views = build_views(problem)
        ledger = CardLedger(problem.capacity_cards, reservations=reservations_of(views))
        full, reasons = greedy_full(views, ledger, problem.switching_threshold)
        return assemble(problem, views, full, reasons, ledger, status="heuristic")


def greedy_full(
    views: list[ServerView], ledger: CardLedger, threshold: float
) -> tuple[dict[str, PricedCandidate], dict[str, list[str]]]:
    """Full allocations in solver order; ``ledger`` is charged for each one taken."""
    full: dict[str, PricedCandidate] = {}
    reasons: dict[str, list[str]] = {}
    for view in views:
        fitting = next((o for o in view.options if ledger.fits(o.candidate, o.replicas, view.name)), None)
        if fitting is None:
            continue
        why = choice(view, fitting, threshold)
        skipped = list(view.options[: view.options.index(fitting)])
        if skipped:
            why.append(fell_through(skipped, fitting, ledger, view.name))
        ledger.take(fitting.candidate, fitting.replicas, view.priority, view.name)
        full[view.name] = fitting
        reasons[view.name] = why
    return full, reasons
