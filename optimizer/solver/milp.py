"""Exact allocation with OR-Tools CP-SAT: priorities lexicographic, then least cost.

Caller: the registry (``get_solver("milp")``). Unlimited mode is shared with the greedy
(:func:`optimizer.solver.assemble.solve_unlimited`); this module handles limited mode.

Formulation. Servers ``s`` (priority level ``p(s)``), full options ``o in O(s)`` (a candidate at
the replica count serving the whole demand), card types ``t`` with capacity ``C_t``; option ``o``
uses ``n_o`` cards of type ``t(o)`` and has effective cost ``c_o`` = cost + switching penalty
(:mod:`optimizer.solver.views`). Variables ``x_so in {0, 1}``::

    sum_{o in O(s)} x_so <= 1                                  for every server s
    sum_{s, o : t(o) = t} n_o x_so <= C_t                       for every card type t
    y_s = sum_{o in O(s)} x_so                                  (1 = fully served)

Stage k, for the priority levels P_1 < P_2 < ... in order (1 is the highest priority)::

    z_k* = max sum_{s : p(s) = P_k} y_s   s.t. the above and sum_{p(s) = P_j} y_s >= z_j*, j < k

Final stage: ``min sum_so c_o x_so`` subject to all of the above. The optimum is lexicographic:
no plan serves more servers of a level without serving fewer of a higher one, and among plans
serving as many per level, none is cheaper. So priority decides *who is served*; when a server
of priority 1 is served either way, the cheaper plan may give the scarce type to priority 2.

Procedure: (1) the greedy plan; (2) the rounded LP plan (:mod:`optimizer.solver.relaxation`)
if lexicographically better; (3) one CP-SAT solve per level, hinted with the best plan so far,
skipped when that plan already serves every servable server of the level (then ``y_s = 1`` for
them) or as many as the floor of the level's LP bound, when that bound holds for the stage (the
earlier levels' constraints are at least as tight as the LP's); a stage's plan replaces the
previous one only when it serves strictly more of its level, so the result never falls behind
the greedy, even when stages stop early; (4) the cost stage.

Solver choice: CP-SAT rather than SCIP. Both are exact on this pure 0/1 model; proving the
lexicographic optimum of the benchmark's 1,000-server instance takes SCIP (via pywraplp) 8 s,
HiGHS 11 s and CP-SAT (tuned: LP level 2, rows not lazy, no presolve) 7-11 s, so none meets a
2 s budget by proof alone. CP-SAT takes a full solution hint, stops on a deterministic-time budget
(repeatable results, which SCIP's wall-clock limit is not) and reports its best bound. The
near-optimal start comes from the LP relaxation, which on this model is almost integral.

Budgets: the problem's ``time_limit_s`` bounds the whole solve on the wall clock (a priority
stage may use half of what is left, the cost stage the rest); CP-SAT also gets a deterministic
budget, ``deterministic_per_s * time_limit_s``, shared the same way.

Determinism: ``random_seed = problem.seed``, a fixed ``num_workers`` (1 by default; more use
``interleave_search``), the deterministic budget, HiGHS (deterministic). Runs that end by proof
or by the deterministic budget repeat exactly; a stage stopped by the wall clock says so in the
notes, and only then may a result differ between runs.

Costs are scaled to integers for CP-SAT, resolution 10^-6 of the dearest option (see
:mod:`optimizer.solver.milp_model`).

Status: ``optimal`` (every stage proved, cost within ``relative_gap`` of the bound),
``feasible`` (a stage hit its budget with a plan; the bound gives the gap), ``timeout`` (a stage
found nothing in budget; the best earlier plan, at worst the greedy's, is kept), ``error``
(CP-SAT rejected the model; the best earlier plan is kept). ``lower_bound``: CP-SAT's bound on
the effective cost of the full allocations given the served counts the stages fixed.
"""

from __future__ import annotations

import time
from itertools import groupby

from ortools.sat.python import cp_model

from optimizer.solver.assemble import assemble, solve_unlimited
from optimizer.solver.capacity import CardLedger
from optimizer.solver.explain import choice, describe, money
from optimizer.solver.greedy import greedy_full
from optimizer.solver.milp_model import AllocationModel
from optimizer.solver.problem import AllocationProblem, SolverResult
from optimizer.solver.relaxation import LpStart, lp_rounded_plan
from optimizer.solver.reservations import unreserved_capacity
from optimizer.solver.views import PricedCandidate, ServerView, build_views, reservations_of

_STATUS = {cp_model.OPTIMAL: "optimal", cp_model.FEASIBLE: "feasible"}
_RANK = {"optimal": 0, "feasible": 1, "timeout": 2, "error": 3}


class MilpSolver:
    name = "milp"

    def __init__(
        self,
        num_workers: int = 1,
        relative_gap: float = 2e-3,
        deterministic_per_s: float = 0.25,
        lp_start: bool = True,
    ) -> None:
        """``num_workers``: CP-SAT threads (fixed, for repeatable results); ``relative_gap``:
        the cost stage stops once within this share of the bound (2e-3 = 0.2%: at 1,000 servers
        proving 0.01% takes the cost stage past its budget for 0.05% of cost, while 0.2% ends in
        about a second, well inside benchmark 1's 1% target);
        ``deterministic_per_s``: CP-SAT deterministic time granted per second of the problem's
        time limit (measured 0.4-0.6 deterministic s per wall s on the loaded 2-core CI host, so
        the deterministic budget, not the wall clock, normally ends the search); ``lp_start``:
        start from the rounded LP plan when it beats the greedy's (off: the greedy's only)."""
        self.num_workers = num_workers
        self.relative_gap = relative_gap
        self.deterministic_per_s = deterministic_per_s
        self.lp_start = lp_start

    def solve(self, problem: AllocationProblem) -> SolverResult:
        if problem.unlimited:
            return solve_unlimited(problem)
        started_s = time.perf_counter()  # elapsed time only: the limit covers the whole solve
        views = build_views(problem)
        greedy_ledger = CardLedger(problem.capacity_cards, reservations=reservations_of(views))
        greedy, _ = greedy_full(views, greedy_ledger, problem.switching_threshold)
        run = _Run(self, problem, views, started_s)
        name_to_index = {v.name: i for i, v in enumerate(views)}
        plan = run.start(run.model.plan_from({name_to_index[n]: o for n, o in greedy.items()}))
        plan, lower_units = run.stages(plan)

        ledger = CardLedger(problem.capacity_cards, reservations=reservations_of(views))
        full: dict[str, PricedCandidate] = {}
        for i, k in sorted(plan.items()):
            option = run.model.options[i][k]
            full[views[i].name] = option
            ledger.take(option.candidate, option.replicas, views[i].priority, views[i].name)
        reasons = {
            n: _why(views[name_to_index[n]], o, ledger, problem.switching_threshold) for n, o in full.items()
        }
        lower = None if lower_units is None else lower_units / run.model.scale
        greedy_cost = sum(o.effective_cost_per_h for o in greedy.values())
        notes = (
            *run.notes,
            f"CP-SAT wall time {run.cpsat_s:.3f} s (deterministic {run.det_used:.3f}) over "
            f"{run.solves} solve(s), {run.variables} variables; LP rounding {run.lp_s:.3f} s",
            f"greedy start: {len(greedy)} servers fully served at {money(greedy_cost)}/h (effective)",
        )
        return assemble(
            problem, views, full, reasons, ledger, status=run.status, lower_bound=lower, notes=notes
        )


class _Run:
    """One solve: the model, the time left, and the worst stage status so far."""

    def __init__(
        self, config: MilpSolver, problem: AllocationProblem, views: list[ServerView], started_s: float
    ) -> None:
        self.config = config
        self.started_s = started_s
        self.det_budget = config.deterministic_per_s * problem.time_limit_s
        self.det_used = 0.0
        self.cpsat_s = 0.0
        self.problem = problem
        # Reservations are off the capacity; options count only the cards beyond their server's reservation.
        self.model = AllocationModel(
            views, unreserved_capacity(dict(problem.capacity_cards), reservations_of(views))
        )
        self.variables = sum(len(xs) for xs in self.model.x)
        self.status = "optimal"
        self.notes: list[str] = []
        self.lp_s = 0.0
        self.solves = 0
        self.lp: LpStart | None = None

    def start(self, greedy: dict[int, int]) -> dict[int, int]:
        """The better start of the greedy plan and the rounded LP plan (lexicographically)."""
        model = self.model
        if not self.config.lp_start:
            return greedy
        started = time.perf_counter()
        rounded = lp_rounded_plan(
            model.options,
            [v.priority for v in model.views],
            model.capacity_cards,
            greedy,
            self._wall_left_s() / 2,
        )
        self.lp_s = time.perf_counter() - started
        if rounded is None:
            self.notes.append("LP relaxation did not solve in time; starting from the greedy plan")
            return greedy
        self.lp = rounded
        if model.standing(rounded.plan) < model.standing(greedy):
            self.notes.append("start: rounded LP plan (better than the greedy's)")
            return rounded.plan
        self.notes.append("start: greedy plan (the rounded LP plan was not better)")
        return greedy

    def stages(self, plan: dict[int, int]) -> tuple[dict[int, int], float | None]:
        """Run the priority stages and the cost stage; returns the plan and the cost bound (units)."""
        model = self.model
        required: dict[int, int] = {}
        for priority, members in groupby(range(len(model.views)), key=lambda i: model.views[i].priority):
            level = [i for i in members if model.servable(i)]
            if all(i in plan for i in level):
                model.require_all(level)
                required[priority] = len(level)
                continue
            served = model.served(level)
            before = sum(1 for i in level if i in plan)
            if self.lp is not None and self.lp.proves(priority, before, required):
                model.model.add(served >= before)
                required[priority] = before
                self.notes.append(
                    f"priority {priority}: {before} of {len(level)} servable servers fully served "
                    f"(optimal: the LP bound is {self.lp.bound[priority]:.2f})"
                )
                continue
            model.model.maximize(served)
            found = self._solve(plan, f"priority {priority}")
            if found is not None and sum(1 for i in level if i in found[0]) > before:
                # Only a strict gain replaces the plan: the previous one, as good on this level,
                # keeps what it served below it, so the result never falls behind the greedy.
                plan = model.fill(found[0])
            best = sum(1 for i in level if i in plan)
            model.model.add(served >= best)
            required[priority] = best
            self.notes.append(f"priority {priority}: {best} of {len(level)} servable servers fully served")
        model.model.minimize(model.cost())
        found = self._solve(plan, "cost")
        if found is None:
            return plan, None
        return found[0], found[1]

    def _wall_left_s(self) -> float:
        return self.problem.time_limit_s - (time.perf_counter() - self.started_s)

    def _solve(self, plan: dict[int, int], stage: str) -> tuple[dict[int, int], float] | None:
        wall_s, det_s = self._wall_left_s(), self.det_budget - self.det_used
        if stage != "cost":
            wall_s, det_s = wall_s / 2, det_s / 2  # leave at least half to the later stages
        if wall_s <= 0 or det_s <= 0:
            self._worsen("timeout", f"stage {stage}: no time left, kept the previous plan")
            return None
        self.model.hint(plan)
        solver = cp_model.CpSolver()
        params = solver.parameters
        params.random_seed = self.problem.seed
        params.num_workers = self.config.num_workers
        params.interleave_search = self.config.num_workers > 1
        params.max_time_in_seconds = wall_s
        params.max_deterministic_time = det_s
        # Measured on the benchmark (1,000 and 5,000 servers): the LP with cuts (level 2) and all
        # rows from the start finds and proves stage optima several times faster and gives a
        # tight cost bound; presolve (probing) costs more than it saves on this reduced model.
        params.linearization_level = 2
        params.add_lp_constraints_lazily = False
        params.cp_model_presolve = False
        if stage == "cost":
            params.relative_gap_limit = self.config.relative_gap
        code = solver.solve(self.model.model)
        self.cpsat_s += solver.wall_time
        self.det_used += solver.deterministic_time
        self.solves += 1
        status = _STATUS.get(code)
        if status is None:
            bad = code not in (cp_model.UNKNOWN,)
            self._worsen("error" if bad else "timeout", f"stage {stage}: CP-SAT {solver.status_name(code)}")
            return None
        if status != "optimal":
            by_det = solver.deterministic_time >= 0.99 * det_s
            limit = "deterministic budget" if by_det else "wall clock; results may vary between runs"
            self._worsen(status, f"stage {stage}: stopped by the {limit} after {solver.wall_time:.2f} s")
        else:
            self.notes.append(f"stage {stage}: optimal in {solver.wall_time:.2f} s")
        return self.model.read_plan(solver), solver.best_objective_bound

    def _worsen(self, status: str, note: str) -> None:
        self.notes.append(note)
        if _RANK[status] > _RANK[self.status]:
            self.status = status


def _why(view: ServerView, chosen: PricedCandidate, ledger: CardLedger, threshold: float) -> list[str]:
    """Choice reasons, plus why the MILP passed over cheaper options (their card type is full)."""
    reasons = choice(view, chosen, threshold)
    cheaper = [o for o in view.options if o.effective_cost_per_h < chosen.effective_cost_per_h]
    if cheaper:
        first = cheaper[0]
        kind = first.acc_type
        reasons.append(
            f"MILP: cheaper {describe(first.candidate, first.replicas)} not taken: the plan leaves "
            f"{max(ledger.left(kind), 0)} of {ledger.capacity(kind)} {kind} cards, its cards serve "
            "other servers"
        )
    return reasons
