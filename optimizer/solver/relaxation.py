"""LP relaxation and rounding: a near-optimal starting plan for the CP-SAT stages.

Caller: :class:`optimizer.solver.milp.MilpSolver`, before its CP-SAT stages. Why: with a single
CP-SAT worker (needed for repeatable results) the search finds good plans slowly, while the LP
relaxation of this model is almost integral. With ``m`` card types, a basic LP solution has at
most ``m`` + (number of count rows) servers with fractional values, so rounding loses only a few
servers against the LP optimum (measured: 8 of 1,000 and 9 of 5,000 in the benchmark).

Relaxation, same notation as :mod:`optimizer.solver.milp` with ``0 <= x_so <= 1``: the leading
priority levels the start plan (the greedy's) fully serves are fixed to ``y_s = 1``; each later
level ``P_k`` in order solves ``z_k = max sum_{p(s) = P_k} y_s`` with servers of lower levels at
0 and ``sum_{p(s) = P_j} y_s >= z_j`` for the levels before; a last LP minimises the effective
cost under all of these. Solved by HiGHS (scipy), dual simplex.

Rounding: servers whose ``x_so`` is 1 keep that option; the others, level by level in solver
order, take their cheapest option that fits, and if none fits, the first option that fits after
evicting servers of strictly lower priority on that card type (those go back to their own level's
queue). Then, for a level that serves fewer than ``floor(z_k)``, each unserved server of it that
the LP partly serves may take a type's cards by moving one served server to an option of another
type with room (the moved server stays served, so no level loses). Last, each served server in
turn takes its cheapest option that fits (a better cost hint for CP-SAT). The result is a
feasible plan. The caller keeps it only if it is lexicographically better (served counts per
level, then cost) than the start plan.

Bounds: ``z_k`` is an upper bound on the servers of level ``P_k`` any integer plan serves, given
that every level before it serves at least what the LP required of it (``LpStart.required``:
all members for the fixed leading levels, ``z_j`` less a 1e-6 share for the others). The caller
uses ``z_k`` to end a priority stage without a search when its plan already serves
``floor(z_k)`` and its own constraints on the earlier levels are at least as tight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix, vstack

from optimizer.solver.views import PricedCandidate

_ONE = 1 - 1e-6
_SLACK = 1e-6  # share of z_j a later LP may fall short of on level j (HiGHS' tolerances)


@dataclass(frozen=True)
class LpStart:
    """The rounded plan, and per priority level its LP bound and what the LP required of it."""

    plan: dict[int, int]
    bound: dict[int, float]
    required: dict[int, float]

    def proves(self, level: int, served: int, required: Mapping[int, int]) -> bool:
        """Whether ``served`` servers of ``level`` is optimal by the LP bound, for an integer
        problem that requires ``required[j]`` servers of each earlier level ``j``."""
        z = self.bound.get(level)
        if z is None:
            return False
        earlier = [j for j in self.required if j < level]
        tighter = all(j in required and required[j] >= self.required[j] - 1e-9 for j in earlier)
        return tighter and served >= int(np.floor(z + _SLACK))


def lp_rounded_plan(
    options: Sequence[tuple[PricedCandidate, ...]],
    priorities: Sequence[int],
    capacity_cards: Mapping[str, int],
    start: Mapping[int, int],
    time_limit_s: float,
) -> LpStart | None:
    """A rounded LP plan with the LP's per-level bounds, or None when an LP did not solve."""
    srv = np.array([i for i, opts in enumerate(options) for _ in opts], dtype=np.int64)
    if srv.size == 0:
        return None
    types = sorted({o.acc_type for opts in options for o in opts})
    tix = {t: j for j, t in enumerate(types)}
    typ = np.array([tix[o.acc_type] for opts in options for o in opts], dtype=np.int64)
    cards = np.array([o.cards for opts in options for o in opts], dtype=float)
    cost = np.array([o.effective_cost_per_h for opts in options for o in opts], dtype=float)
    prio = np.asarray(priorities)[srv]
    n_vars, n_servers = srv.size, len(options)
    cols = np.arange(n_vars)
    rows_ub = [csr_matrix((cards, (typ, cols)), shape=(len(types), n_vars))]
    rhs_ub = [np.array([capacity_cards.get(t, 0) for t in types], dtype=float)]
    one = csr_matrix((np.ones(n_vars), (srv, cols)), shape=(n_servers, n_vars))
    eq_servers = _fully_served_prefix(options, priorities, start)
    eq = np.zeros(n_servers, dtype=bool)
    eq[list(eq_servers)] = True
    rows_eq, rhs_eq = one[eq], np.ones(int(eq.sum()))
    rows_ub.append(one[~eq])
    rhs_ub.append(np.ones(int((~eq).sum())))
    upper = np.ones(n_vars)
    required: dict[int, float] = {}
    for i in eq_servers:
        required[priorities[i]] = required.get(priorities[i], 0.0) + 1.0
    bound: dict[int, float] = {}
    for level in sorted({priorities[i] for i in range(n_servers)} - {priorities[i] for i in eq_servers}):
        in_level = (prio == level).astype(float)
        upper_level = np.where(prio > level, 0.0, upper)
        x = _solve(
            -in_level,
            rows_ub=rows_ub,
            rhs_ub=rhs_ub,
            rows_eq=rows_eq,
            rhs_eq=rhs_eq,
            upper=upper_level,
            time_limit_s=time_limit_s,
        )
        if x is None:
            return None
        served = float(in_level @ x)
        bound[level] = served
        required[level] = served - _SLACK * max(1.0, served)
        rows_ub.append(csr_matrix(-in_level))
        rhs_ub.append(np.array([-required[level]]))
    x = _solve(
        cost,
        rows_ub=rows_ub,
        rhs_ub=rhs_ub,
        rows_eq=rows_eq,
        rhs_eq=rhs_eq,
        upper=upper,
        time_limit_s=time_limit_s,
    )
    if x is None:
        return None
    plan = _round(options, priorities, capacity_cards, srv, x, bound=bound)
    return LpStart(plan=plan, bound=bound, required=required)


def _fully_served_prefix(
    options: Sequence[tuple[PricedCandidate, ...]], priorities: Sequence[int], start: Mapping[int, int]
) -> set[int]:
    """Servers of the leading levels in which ``start`` serves every servable server."""
    fixed: set[int] = set()
    for level in sorted(set(priorities)):
        members = [i for i, p in enumerate(priorities) if p == level and options[i]]
        if not all(i in start for i in members):
            break
        fixed.update(members)
    return fixed


def _solve(
    objective: np.ndarray,
    *,
    rows_ub: list[csr_matrix],
    rhs_ub: list[np.ndarray],
    rows_eq: csr_matrix,
    rhs_eq: np.ndarray,
    upper: np.ndarray,
    time_limit_s: float,
) -> np.ndarray | None:
    result = linprog(
        objective,
        A_ub=vstack(rows_ub).tocsr(),
        b_ub=np.concatenate(rhs_ub),
        A_eq=rows_eq if rows_eq.shape[0] else None,
        b_eq=rhs_eq if rows_eq.shape[0] else None,
        bounds=np.column_stack([np.zeros_like(upper), upper]),
        method="highs-ds",
        options={"time_limit": max(time_limit_s, 0.01)},
    )
    return np.asarray(result.x) if result.status == 0 else None


def _round(
    options: Sequence[tuple[PricedCandidate, ...]],
    priorities: Sequence[int],
    capacity_cards: Mapping[str, int],
    srv: np.ndarray,
    x: np.ndarray,
    *,
    bound: Mapping[int, float],
) -> dict[int, int]:
    first = np.searchsorted(srv, np.arange(len(options)))
    rounding = _Rounding(options, priorities, capacity_cards)
    for j in np.flatnonzero(x >= _ONE):
        i = int(srv[j])
        rounding.take(i, int(j - first[i]))
    pending = sorted((priorities[i], i) for i in range(len(options)) if options[i] and i not in rounding.plan)
    while pending:
        _, i = pending.pop(0)
        fitting = next((k for k, o in enumerate(options[i]) if o.cards <= rounding.left(o.acc_type)), None)
        if fitting is None:
            fitting, evicted = rounding.evict_for(i)
            pending = sorted(pending + [(priorities[e], e) for e in evicted])
        if fitting is not None:
            rounding.take(i, fitting)
    share = np.bincount(srv, weights=x, minlength=len(options))  # the LP's y_s
    for level, z in sorted(bound.items()):
        short = int(np.floor(z + _SLACK)) - sum(1 for i in rounding.plan if priorities[i] == level)
        partly = [
            i for i in np.argsort(-share, kind="stable") if share[i] > _SLACK and priorities[i] == level
        ]
        for i in (int(i) for i in partly if i not in rounding.plan):
            if short <= 0:
                break
            short -= rounding.place_by_moving(i)
    rounding.cheapen()
    return rounding.plan


class _Rounding:
    """A plan under construction, with the cards each priority holds per type."""

    def __init__(
        self,
        options: Sequence[tuple[PricedCandidate, ...]],
        priorities: Sequence[int],
        capacity: Mapping[str, int],
    ) -> None:
        self.options, self.priorities, self.capacity = options, priorities, capacity
        self.plan: dict[int, int] = {}
        self.on_type: dict[str, set[int]] = {}
        self.used: dict[str, int] = {}
        self.lowest = max(priorities, default=0)

    def left(self, kind: str) -> int:
        return self.capacity.get(kind, 0) - self.used.get(kind, 0)

    def take(self, i: int, k: int) -> None:
        option = self.options[i][k]
        self.plan[i] = k
        self.on_type.setdefault(option.acc_type, set()).add(i)
        self.used[option.acc_type] = self.used.get(option.acc_type, 0) + option.cards

    def drop(self, i: int) -> None:
        option = self.options[i][self.plan.pop(i)]
        self.on_type[option.acc_type].discard(i)
        self.used[option.acc_type] -= option.cards

    def cheapen(self) -> None:
        """Move each served server, in index order, to its cheapest option that fits in the
        cards left plus its own; one pass (each move only frees cards for later servers' types
        or takes cards nobody holds, so the plan stays feasible)."""
        for i in sorted(self.plan):
            k = self.plan[i]
            current = self.options[i][k]
            for a, option in enumerate(self.options[i][:k]):
                room = self.left(option.acc_type) + (
                    current.cards if option.acc_type == current.acc_type else 0
                )
                if option.cards <= room:
                    self.drop(i)
                    self.take(i, a)
                    break

    def place_by_moving(self, i: int) -> bool:
        """Serve ``i`` where its type gets room when one served server moves to an option of
        another type that fits, at the least added cost; False (nothing changed) when no such
        move exists."""
        best: tuple[float, int, int, int] | None = None  # (added cost, option of i, mover, its option)
        for k, option in enumerate(self.options[i]):
            kind = option.acc_type
            need = option.cards - self.left(kind)
            for e in sorted(self.on_type.get(kind, ())):
                current = self.options[e][self.plan[e]]
                if current.cards < need:
                    continue
                for a, alt in enumerate(self.options[e]):
                    if alt.acc_type != kind and alt.cards <= self.left(alt.acc_type):
                        added = (
                            option.effective_cost_per_h
                            + alt.effective_cost_per_h
                            - current.effective_cost_per_h
                        )
                        if best is None or added < best[0]:
                            best = (added, k, e, a)
                        break  # options are cheapest first: the first that fits is e's best move
        if best is None:
            return False
        _, k, e, a = best
        self.drop(e)
        self.take(e, a)
        self.take(i, k)
        return True

    def evict_for(self, i: int) -> tuple[int | None, list[int]]:
        """First option of ``i`` that fits once lower-priority servers on its type leave."""
        prio = self.priorities[i]
        if prio >= self.lowest:
            return None, []
        for k, option in enumerate(self.options[i]):
            kind = option.acc_type
            victims = sorted(
                (e for e in self.on_type.get(kind, ()) if self.priorities[e] > prio),
                key=lambda e: (-self.priorities[e], -self.options[e][self.plan[e]].cards, e),
            )
            room, chosen = self.left(kind), []
            for e in victims:
                if room >= option.cards:
                    break
                room += self.options[e][self.plan[e]].cards
                chosen.append(e)
            if room >= option.cards:
                for e in chosen:
                    self.drop(e)
                return k, chosen
        return None, []
