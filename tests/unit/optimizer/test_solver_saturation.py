"""Saturation policies on hand-built instances, with the exact replica split each must give."""

from __future__ import annotations

import pytest

from contract.data.catalog import SaturationPolicy
from optimizer.solver.assemble import used_cards
from tests.unit.optimizer.test_solver import SOLVERS, cand, chosen, problem, server, solve

NONE = SaturationPolicy.NONE
PE = SaturationPolicy.PRIORITY_EXHAUSTIVE
RR = SaturationPolicy.ROUND_ROBIN
PRR = SaturationPolicy.PRIORITY_ROUND_ROBIN

# 9 one-card A100s; P1 and P2 (priority 1) and Q (priority 2) each need 10: nobody fits in full.
THREE_SHORT = [
    server("q", cand("A100", 10, 40), priority=2),
    server("p1", cand("A100", 10, 40), priority=1),
    server("p2", cand("A100", 10, 40), priority=1),
]

SPLITS = [
    pytest.param(NONE, {"q": 0, "p1": 0, "p2": 0}, id="None"),
    pytest.param(PE, {"q": 0, "p1": 9, "p2": 0}, id="PriorityExhaustive"),
    pytest.param(RR, {"q": 3, "p1": 3, "p2": 3}, id="RoundRobin"),
    pytest.param(PRR, {"q": 0, "p1": 5, "p2": 4}, id="PriorityRoundRobin"),
]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(("policy", "expected"), SPLITS)
def test_policy_splits_the_cards_left(
    solver: str, policy: SaturationPolicy, expected: dict[str, int]
) -> None:
    result = solve(solver, problem(*THREE_SHORT, capacity={"A100": 9}, policy=policy))
    assert {n: a.replicas for n, a in result.assignments.items()} == expected
    for name, replicas in expected.items():
        a = result.assignments[name]
        assert (a.candidate is None) == (replicas == 0)
        assert not a.complete
        if replicas:
            assert f"partial: {replicas} of 10 replicas ({policy.value})" in a.reasons[-1].text
        assert a.reasons[0].text == "capacity: A100 x10 needs 10 A100 cards, 9 of 9 left"
    if policy is NONE:
        assert result.assignments["q"].reasons[-1].text == "saturation policy None: no partial allocation"


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        pytest.param(
            PE, {"full": ("A100", 4), "big": ("A100", 8), "late": (None, 0)}, id="PriorityExhaustive"
        ),
        pytest.param(RR, {"full": ("A100", 4), "big": ("A100", 4), "late": ("A100", 4)}, id="RoundRobin"),
        pytest.param(
            PRR, {"full": ("A100", 4), "big": ("A100", 8), "late": (None, 0)}, id="PriorityRoundRobin"
        ),
    ],
)
def test_saturation_comes_after_the_full_allocations(
    solver: str, policy: SaturationPolicy, expected: dict[str, tuple[str | None, int]]
) -> None:
    servers = [
        server("full", cand("A100", 4, 40), priority=1),
        server("big", cand("A100", 20, 40), priority=2),
        server("late", cand("A100", 10, 40), priority=3),
    ]
    result = solve(solver, problem(*servers, capacity={"A100": 12}, policy=policy))
    assert chosen(result) == expected
    assert result.assignments["full"].complete


@pytest.mark.parametrize("solver", SOLVERS)
def test_round_robin_first_grant_is_min_replicas_and_max_replicas_caps(solver: str) -> None:
    servers = [
        server("a", cand("A100", 10, 40), min_replicas=3),
        server("b", cand("A100", 10, 40), max_replicas=2),
        server("c", cand("A100", 10, 40)),
    ]
    result = solve(solver, problem(*servers, capacity={"A100": 9}, policy=RR))
    # Rounds (order a, b, c by name): a+3 b+1 c+1 | a+1 b+1 c+1 | a+1 (b at max) c+0 (cards out).
    assert {n: a.replicas for n, a in result.assignments.items()} == {"a": 5, "b": 2, "c": 2}
    assert used_cards(result) == {"A100": 9}


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("policy", [PE, RR, PRR], ids=lambda p: p.value)
def test_best_fitting_candidate_serves_the_largest_share(solver: str, policy: SaturationPolicy) -> None:
    # A100 is cheaper but only 2 cards are left there: 2 of 4 replicas (50%); L40S fits 5 of 6 (83%).
    s = server("s", cand("A100", 4, 40), cand("L40S", 6, 32))
    result = solve(solver, problem(s, capacity={"A100": 2, "L40S": 5}, policy=policy))
    assert chosen(result) == {"s": ("L40S", 5)}


@pytest.mark.parametrize("solver", SOLVERS)
def test_partial_with_multi_card_units_counts_cards(solver: str) -> None:
    s = server("s", cand("4xA100", 3, 160, cards=4))
    result = solve(solver, problem(s, capacity={"A100": 11}, policy=PE))
    assert chosen(result) == {"s": ("4xA100", 2)}
    assert used_cards(result) == {"A100": 8}
