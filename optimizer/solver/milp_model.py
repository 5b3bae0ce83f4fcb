"""The CP-SAT model behind :mod:`optimizer.solver.milp`: variables, capacity rows, scaled costs.

Caller: :class:`optimizer.solver.milp.MilpSolver` only. One boolean per (server, full option)
after two exact reductions: options that need more cards than their type has are dropped, and
options another option of the same card type beats on both cards and effective cost are dropped
(:func:`optimizer.solver.views.undominated`).

Cost scaling: CP-SAT needs integer coefficients. Effective costs (per hour) are multiplied by
``scale = COST_UNITS / max effective cost`` and rounded, so the most expensive option becomes
10^6 units: the resolution is one millionth of the most expensive option (e.g. 0.0012/h when
the dearest option costs 1,200/h), and the rounding error of a plan is at most 0.5 unit per
server. Totals stay far below 2^63 (10^6 x 10^5 servers). An option that moves the server to
another accelerator unit costs one unit more, so that on a tie the server stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ortools.sat.python import cp_model

from optimizer.solver.views import PricedCandidate, ServerView, undominated

COST_UNITS = 1_000_000


class AllocationModel:
    """Variables ``x[i][k]``: server ``views[i]`` takes its option ``options[i][k]`` in full."""

    def __init__(self, views: Sequence[ServerView], capacity_cards: Mapping[str, int]) -> None:
        self.views = list(views)
        self.capacity_cards = dict(capacity_cards)
        self.model = cp_model.CpModel()
        self.options: list[tuple[PricedCandidate, ...]] = []
        self.x: list[list[cp_model.IntVar]] = []
        rows: dict[str, list[tuple[cp_model.IntVar, int]]] = {}
        for view in self.views:
            fitting = tuple(o for o in view.options if o.cards <= capacity_cards.get(o.acc_type, 0))
            kept = undominated(fitting)
            xs = [self.model.new_bool_var("") for _ in kept]
            if len(xs) > 1:
                self.model.add_at_most_one(xs)
            for var, option in zip(xs, kept, strict=True):
                if option.cards > 0:
                    rows.setdefault(option.acc_type, []).append((var, option.cards))
            self.options.append(kept)
            self.x.append(xs)
        for acc_type, terms in sorted(rows.items()):
            cap = capacity_cards.get(acc_type, 0)
            if sum(cards for _, cards in terms) > cap:
                vs, cs = zip(*terms, strict=True)
                self.model.add(cp_model.LinearExpr.weighted_sum(vs, cs) <= cap)
        top = max((o.effective_cost_per_h for opts in self.options for o in opts), default=0.0)
        self.scale = COST_UNITS / top if top > 0 else 1.0
        # A move costs one unit more, so a tie in effective cost keeps the current accelerator.
        self.cost_units = [
            [round(o.effective_cost_per_h * self.scale) + (o.penalty_per_h > 0) for o in opts]
            for opts in self.options
        ]

    def servable(self, i: int) -> bool:
        return bool(self.x[i])

    def served(self, indices: Sequence[int]) -> cp_model.LinearExpr:
        """Number of the given servers that are fully served."""
        return cp_model.LinearExpr.sum([v for i in indices for v in self.x[i]])

    def require_all(self, indices: Sequence[int]) -> None:
        for i in indices:
            if self.x[i]:
                self.model.add_exactly_one(self.x[i])

    def cost(self) -> cp_model.LinearExpr:
        vs = [v for xs in self.x for v in xs]
        cs = [c for units in self.cost_units for c in units]
        return cp_model.LinearExpr.weighted_sum(vs, cs)

    def hint(self, plan: Mapping[int, int]) -> None:
        """Hint a plan: server index -> chosen option index (absent = not served)."""
        self.model.clear_hints()  # type: ignore[no-untyped-call]
        for i, xs in enumerate(self.x):
            chosen = plan.get(i, -1)
            for k, var in enumerate(xs):
                self.model.add_hint(var, k == chosen)

    def plan_from(self, options_by_server: Mapping[int, PricedCandidate]) -> dict[int, int]:
        """Map a plan given as options (e.g. the greedy's) onto this model's variables.

        A dropped (dominated) option is replaced by the option that dominates it, which uses no
        more cards and costs no more, so the mapped plan stays feasible.
        """
        plan: dict[int, int] = {}
        for i, option in options_by_server.items():
            for k, kept in enumerate(self.options[i]):
                same = kept == option
                better = (
                    kept.acc_type == option.acc_type
                    and kept.cards <= option.cards
                    and kept.effective_cost_per_h <= option.effective_cost_per_h
                )
                if same or better:
                    plan[i] = k
                    break
        return plan

    def fill(self, plan: Mapping[int, int]) -> dict[int, int]:
        """``plan`` plus, in solver order, every unserved server whose best fitting option fits
        in the cards the plan leaves: a better hint for the next stage, still feasible."""
        left = dict(self.capacity_cards)
        for i, k in plan.items():
            option = self.options[i][k]
            left[option.acc_type] = left.get(option.acc_type, 0) - option.cards
        filled = dict(plan)
        for i, opts in enumerate(self.options):
            if i in filled:
                continue
            for k, option in enumerate(opts):
                if option.cards <= left.get(option.acc_type, 0):
                    left[option.acc_type] -= option.cards
                    filled[i] = k
                    break
        return filled

    def standing(self, plan: Mapping[int, int]) -> tuple[tuple[int, ...], float]:
        """Lexicographic rank of a plan, smaller is better: minus served per level, then cost."""
        levels = sorted({v.priority for v in self.views})
        served = dict.fromkeys(levels, 0)
        for i in plan:
            served[self.views[i].priority] += 1
        cost = sum(self.options[i][k].effective_cost_per_h for i, k in plan.items())
        return tuple(-served[level] for level in levels), cost

    def read_plan(self, solver: cp_model.CpSolver) -> dict[int, int]:
        values = solver.response_proto.solution
        plan: dict[int, int] = {}
        for i, xs in enumerate(self.x):
            for k, var in enumerate(xs):
                if values[var.index]:
                    plan[i] = k
                    break
        return plan
