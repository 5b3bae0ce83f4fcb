"""Allocation solvers: registry, unlimited mode, switching penalty, capacity with priorities.

Instances are built by hand with the small builders below (other solver tests import them).
"""

from __future__ import annotations

import pytest

from contract.data.catalog import SaturationPolicy
from contract.steps import texts
from optimizer.solver.assemble import used_cards
from optimizer.solver.milp import MilpSolver
from optimizer.solver.problem import AllocationProblem, Candidate, ServerProblem, SolverResult
from optimizer.solver.registry import UnknownSolverError, get_solver, solver_names
from optimizer.solver.relaxation import LpStart, _Rounding
from optimizer.solver.views import PricedCandidate

SOLVERS = ["greedy", "milp"]


def cand(acc: str = "A100", replicas: int = 1, cost_per_replica: float = 40.0, cards: int = 1) -> Candidate:
    """A candidate on unit ``acc``; the card type is the unit name without an ``Nx`` prefix."""
    acc_type = acc.split("x", 1)[1] if acc[:1].isdigit() and "x" in acc else acc
    return Candidate(acc, acc_type, replicas, 16, cost_per_replica, cards, 2.0, 20.0, 200.0, 0.6)


def pc(acc: str, cards: int, cost_per_h: float) -> PricedCandidate:
    """A one-replica option of ``cards`` cards on type ``acc``."""
    return PricedCandidate(cand(acc, 1, cost_per_h, cards), 1, cost_per_h, 0.0, True)


def server(
    name: str,
    *candidates: Candidate,
    priority: int = 1,
    current: str = "",
    min_replicas: int = 0,
    max_replicas: int = 0,
    infeasible: tuple[str, ...] = (),
) -> ServerProblem:
    ordered = tuple(sorted(candidates, key=lambda c: c.cost))
    return ServerProblem(name, priority, 1.0, min_replicas, max_replicas, current, 0, ordered, infeasible)


def problem(
    *servers: ServerProblem,
    capacity: dict[str, int] | None = None,
    policy: SaturationPolicy = SaturationPolicy.NONE,
    threshold: float = 0.10,
) -> AllocationProblem:
    """Limited mode when ``capacity`` is given, unlimited otherwise."""
    return AllocationProblem(servers, capacity or {}, capacity is None, policy, threshold, 5.0, 0)


def solve(name: str, prob: AllocationProblem) -> SolverResult:
    return get_solver(name).solve(prob)


def chosen(result: SolverResult) -> dict[str, tuple[str | None, int]]:
    return {
        n: (a.candidate.accelerator if a.candidate else None, a.replicas)
        for n, a in result.assignments.items()
    }


def test_registry_by_name_and_unknown_name_fails_clearly() -> None:
    assert solver_names() == ("greedy", "milp")
    assert get_solver(" MILP ").name == "milp"
    assert get_solver("greedy").name == "greedy"
    with pytest.raises(UnknownSolverError, match=r"unknown solver 'cplex': choose one of greedy, milp"):
        get_solver("cplex")


SWITCHING = [
    pytest.param(("L40S", 100.0), ("H100", 96.0), 0.10, "L40S", "H100 would save 4% <= 10%", id="keeps-4pct"),
    pytest.param(("L40S", 100.0), ("H100", 85.0), 0.10, "H100", "saves 15% > 10%", id="moves-15pct"),
    pytest.param(("L40S", 100.0), ("H100", 90.0), 0.10, "L40S", "would save 10%", id="boundary-keeps"),
    pytest.param(("L40S", 100.0), ("H100", 99.0), 0.0, "H100", "saves 1%", id="threshold-0-moves"),
    pytest.param(("L40S", 100.0), ("H100", 1.0), 1.0, "L40S", "would save 99%", id="threshold-1-never"),
    pytest.param(("A100", 100.0), ("2xA100", 95.0), 0.10, "A100", "2xA100 would save 5%", id="per-unit-name"),
]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(("current", "other", "threshold", "expected", "reason"), SWITCHING)
@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "limited"])
def test_switching_threshold_keeps_or_moves(
    solver: str,
    current: tuple[str, float],
    other: tuple[str, float],
    threshold: float,
    expected: str,
    reason: str,
    limited: bool,
) -> None:
    s = server("s", cand(current[0], 2, current[1] / 2), cand(other[0], 2, other[1] / 2), current=current[0])
    capacity = {"L40S": 8, "H100": 8, "A100": 8} if limited else None
    result = solve(solver, problem(s, capacity=capacity, threshold=threshold))
    assignment = result.assignments["s"]
    assert assignment.candidate is not None and assignment.candidate.accelerator == expected
    assert any(reason in r for r in texts(assignment.reasons)), assignment.reasons


@pytest.mark.parametrize("solver", SOLVERS)
def test_unlimited_takes_the_cheapest_and_says_so(solver: str) -> None:
    s = server("s", cand("H100", 2, 75), cand("A100", 3, 40), cand("L4", 12, 6), cand("L40S", 4, 32))
    result = solve(solver, problem(s, server("new", cand("L4", 1, 6))))
    assert chosen(result) == {"s": ("L4", 12), "new": ("L4", 1)}
    assert result.assignments["s"].reasons[1].text == "cheapest of 4 feasible: L4 x12 at 72/h"
    assert result.status == "optimal"
    assert result.objective == pytest.approx(78.0) and result.lower_bound == pytest.approx(78.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_infeasible_server_is_reported_not_dropped(solver: str) -> None:
    bad = server("bad", infeasible=("A100: ITL 45 ms > target 30 ms", "L4: model does not fit"))
    for capacity in (None, {"A100": 4}):
        result = solve(solver, problem(server("ok", cand("A100")), bad, capacity=capacity))
        assert list(result.assignments) == ["ok", "bad"]
        assert result.assignments["bad"].candidate is None
        assert tuple(texts(result.assignments["bad"].reasons[:2])) == bad.infeasible


PRIORITY_CASES = [
    pytest.param(
        # H100 is the cheapest for both; only one fits; only P1 cannot go elsewhere... nor can P2.
        [server("p2", cand("H100", 4, 10), priority=2), server("p1", cand("H100", 4, 30), priority=1)],
        {"H100": 4},
        {"p1": ("H100", 4), "p2": (None, 0)},
        id="priority-1-wins-scarce-type-over-cheaper-priority-2",
    ),
    pytest.param(
        [
            server("p2", cand("H100", 4, 10), cand("A100", 4, 40), priority=2),
            server("p1", cand("H100", 4, 30), priority=1),
        ],
        {"H100": 4, "A100": 4},
        {"p1": ("H100", 4), "p2": ("A100", 4)},
        id="priority-2-falls-through-to-a100",
    ),
    pytest.param(
        [server("a", cand("A100", 4, 10), priority=3), server("b", cand("A100", 1, 10), priority=3)],
        {"A100": 3},
        {"a": (None, 0), "b": ("A100", 1)},
        id="same-level-what-fits",
    ),
]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(("servers", "capacity", "expected"), PRIORITY_CASES)
def test_capacity_limits_with_priorities(
    solver: str,
    servers: list[ServerProblem],
    capacity: dict[str, int],
    expected: dict[str, tuple[str | None, int]],
) -> None:
    result = solve(solver, problem(*servers, capacity=capacity))
    assert chosen(result) == expected
    assert all(used_cards(result).get(t, 0) <= c for t, c in capacity.items())


def test_greedy_fall_through_names_the_shortfall() -> None:
    p1 = server("p1", cand("A100", 3, 40, cards=4), priority=1)
    p2 = server("p2", cand("A100", 3, 40, cards=4), cand("L40S", 3, 50), priority=2)
    result = solve("greedy", problem(p1, p2, capacity={"A100": 16, "L40S": 8}))
    assert chosen(result) == {"p1": ("A100", 3), "p2": ("L40S", 3)}
    reason = result.assignments["p2"].reasons[-1].text
    assert reason == (
        "capacity: A100 x3 needs 12 A100 cards, 4 of 16 left (used by priority 1: 12); "
        "fell through to L40S x3 at 150/h"
    )
    assert result.status == "heuristic" and result.lower_bound is None


def test_milp_serves_more_where_the_greedy_order_fails() -> None:
    # All single-option (infinite regret): the greedy goes by name and x blocks y and z.
    servers = [server(n, cand("A100", r, 10)) for n, r in (("x", 3), ("y", 2), ("z", 2))]
    prob = problem(*servers, capacity={"A100": 4})
    assert sum(a.complete for a in solve("greedy", prob).assignments.values()) == 1
    result = solve("milp", prob)
    assert chosen(result) == {"x": (None, 0), "y": ("A100", 2), "z": ("A100", 2)}
    assert result.status == "optimal" and result.lower_bound == pytest.approx(result.objective)


def test_milp_minimises_cost_once_priorities_are_served() -> None:
    # Both are served either way: the MILP gives the scarce H100 to whoever saves more (p2),
    # the greedy to the higher priority (p1).
    p1 = server("p1", cand("H100", 2, 45), cand("A100", 2, 50), priority=1)
    p2 = server("p2", cand("H100", 2, 10), cand("A100", 2, 50), priority=2)
    prob = problem(p1, p2, capacity={"H100": 2, "A100": 2})
    assert chosen(solve("greedy", prob)) == {"p1": ("H100", 2), "p2": ("A100", 2)}
    milp = solve("milp", prob)
    assert chosen(milp) == {"p1": ("A100", 2), "p2": ("H100", 2)}
    assert any("MILP: cheaper H100 x2 at 90/h not taken" in r for r in texts(milp.assignments["p1"].reasons))


@pytest.mark.parametrize("solver", SOLVERS)
def test_min_and_max_replicas(solver: str) -> None:
    low = server("low", cand("A100", 1, 40), min_replicas=3)
    capped = server("capped", cand("A100", 6, 40), max_replicas=4)
    result = solve(
        solver, problem(low, capped, capacity={"A100": 20}, policy=SaturationPolicy.PRIORITY_EXHAUSTIVE)
    )
    assert chosen(result) == {"low": ("A100", 3), "capped": ("A100", 4)}
    assert result.assignments["low"].complete and not result.assignments["capped"].complete
    assert "max_replicas 4 < 6 replicas needed on A100" in result.assignments["capped"].reasons[0].text


def test_milp_is_deterministic() -> None:
    servers = [
        server(
            f"s{i:02d}",
            cand("A100", 1 + i % 4, 40),
            cand("L40S", 2 + i % 3, 32),
            cand("H100", 1 + i % 2, 75),
            priority=1 + i % 3,
            current="L40S" if i % 2 else "",
        )
        for i in range(40)
    ]
    prob = problem(
        *servers, capacity={"A100": 30, "L40S": 25, "H100": 8}, policy=SaturationPolicy.ROUND_ROBIN
    )
    first, second = solve("milp", prob), solve("milp", prob)
    assert first.assignments == second.assignments
    assert (first.status, first.objective, first.lower_bound) == (
        second.status,
        second.objective,
        second.lower_bound,
    )


@pytest.mark.parametrize("lp_start", [True, False], ids=["lp-start", "greedy-start"])
def test_milp_stages_find_the_lexicographic_optimum_from_either_start(lp_start: bool) -> None:
    # Priority 1: x (3 cards) or y+z (2 each) on 4 A100s; the greedy takes x. Priority 2: w fits
    # only in what y+z leave on H100 if y and z go to A100.
    servers = [
        server("x", cand("A100", 3, 10)),
        server("y", cand("A100", 2, 10), cand("H100", 2, 30)),
        server("z", cand("A100", 2, 10), cand("H100", 2, 30)),
        server("w", cand("H100", 2, 50), priority=2),
    ]
    prob = problem(*servers, capacity={"A100": 4, "H100": 2})
    greedy = solve("greedy", prob)
    assert chosen(greedy) == {"x": ("A100", 3), "y": ("H100", 2), "z": (None, 0), "w": (None, 0)}
    result = MilpSolver(lp_start=lp_start).solve(prob)
    assert chosen(result) == {"x": (None, 0), "y": ("A100", 2), "z": ("A100", 2), "w": ("H100", 2)}
    assert result.status == "optimal"
    assert result.objective == pytest.approx(140.0) and result.lower_bound == pytest.approx(140.0)


def test_milp_out_of_time_keeps_a_valid_plan_and_says_so() -> None:
    servers = [server(n, cand("A100", r, 10)) for n, r in (("x", 3), ("y", 2), ("z", 2))]
    prob = AllocationProblem(tuple(servers), {"A100": 4}, False, SaturationPolicy.NONE, 0.1, 1e-9, 0)
    result = MilpSolver(lp_start=False).solve(prob)
    assert result.status == "timeout"
    assert chosen(result) == chosen(solve("greedy", prob))
    assert any("no time left" in note for note in texts(result.notes))


def test_milp_ends_a_priority_stage_on_the_lp_bound() -> None:
    # Three servers of 2 A100s on 5 cards: the LP serves 2.5, so a plan serving 2 is optimal
    # without a CP-SAT search; the one left out is the one whose absence costs least.
    servers = [server(n, cand("A100", 2, c)) for n, c in (("a", 10), ("b", 20), ("c", 30))]
    prob = problem(*servers, capacity={"A100": 5})
    result = MilpSolver().solve(prob)
    notes = texts(result.notes)
    assert any("2 of 3 servable servers fully served (optimal: the LP bound is 2.50)" in n for n in notes)
    assert not any(n.startswith("stage priority") for n in notes)
    assert result.status == "optimal"
    assert sum(a.complete for a in result.assignments.values()) == 2
    assert chosen(result)["c"] == (None, 0)


def test_lp_bound_proves_a_stage_only_under_constraints_as_tight_as_the_lps() -> None:
    # The LP served 1.5 of level 1 and then 0 of level 2 with level 1 at >= 1.5: an integer plan
    # holding level 1 to 1 server may serve level 2, so 0 is proven only if level 1 keeps 2.
    lp = LpStart(plan={}, bound={1: 1.5, 2: 0.0}, required={1: 1.5 - 1e-6, 2: 0.0})
    assert lp.proves(1, 1, {}) and not lp.proves(1, 0, {})
    assert not lp.proves(2, 0, {1: 1})
    assert lp.proves(2, 0, {1: 2})
    assert not lp.proves(3, 0, {1: 2, 2: 0})  # no LP bound for that level


def test_rounding_repair_moves_one_server_to_make_room_at_the_least_cost() -> None:
    # b holds 2 of the 2 A100s and could go to H100 (2 free) or L4 (4 free, dearer); a fits only
    # on A100: b moves to H100, the cheaper move, and a is served.
    a = (pc("A100", 2, 10.0),)
    b = (pc("A100", 2, 10.0), pc("H100", 2, 20.0), pc("L4", 4, 25.0))
    rounding = _Rounding([a, b], [1, 1], {"A100": 2, "H100": 2, "L4": 4})
    rounding.take(1, 0)
    assert rounding.place_by_moving(0)
    assert rounding.plan == {0: 0, 1: 1}
    assert rounding.left("A100") == 0 and rounding.left("H100") == 0 and rounding.left("L4") == 4


def test_rounding_cheapen_moves_servers_to_cheaper_options_that_fit() -> None:
    a = (pc("A100", 2, 10.0), pc("H100", 2, 20.0))
    rounding = _Rounding([a], [1], {"A100": 2, "H100": 2})
    rounding.take(0, 1)
    rounding.cheapen()
    assert rounding.plan == {0: 0} and rounding.left("H100") == 2 and rounding.left("A100") == 0
