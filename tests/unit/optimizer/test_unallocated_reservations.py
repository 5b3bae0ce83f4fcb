"""Running servers keep cards whatever the solution: holds, capacity floors, kept-as-is servers.

Why: the actuator keeps a running server without an allocation as it is (it never scales down on
a missing allocation), so if the solvers counted its cards as free, the higher-priority server
given those cards would have its new pods Pending. Every running server's floor (or, without a
candidate on its accelerator, all it runs) is reserved before allocating, and what the solution
leaves to the actuator is exactly what was counted.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from contract.data.catalog import SaturationPolicy
from contract.steps import texts
from optimizer.solver.assemble import used_cards
from optimizer.solver.problem import AllocationProblem, Candidate, ServerProblem, SolverResult
from optimizer.solver.reservations import reservations_by_server
from tests.unit.optimizer.test_solver import SOLVERS, cand, chosen, problem, solve

PE = SaturationPolicy.PRIORITY_EXHAUSTIVE


def running(
    name: str,
    *candidates: Candidate,
    on: str,
    replicas: int,
    priority: int = 1,
    min_replicas: int = 0,
    max_replicas: int = 0,
) -> ServerProblem:
    """A server running ``replicas`` on unit ``on`` now."""
    ordered = tuple(sorted(candidates, key=lambda c: c.cost))
    return ServerProblem(name, priority, 1.0, min_replicas, max_replicas, on, replicas, ordered)


def what_runs(prob: AllocationProblem, result: SolverResult) -> dict[str, int]:
    """Cards per type once the actuator has acted: an allocated server runs its assignment; one
    without an allocation is kept as it is (its current replicas on its current accelerator)."""
    out: dict[str, int] = {}
    for s in prob.servers:
        a = result.assignments[s.name]
        if a.candidate is not None:
            kind, cards = a.candidate.acc_type, a.replicas * a.candidate.cards_per_replica
        elif s.current_replicas and s.name in prob.running_cards:
            kind, per = prob.running_cards[s.name]
            cards = s.current_replicas * per
        else:
            continue
        out[kind] = out.get(kind, 0) + cards
    return out


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("policy", list(SaturationPolicy), ids=lambda p: p.value)
def test_demo_case_unserved_server_comes_down_to_its_floor_and_its_cards_are_counted(
    solver: str, policy: SaturationPolicy
) -> None:
    """4 A100 cards. Free (priority 3) runs 4 x A100 and needs 4; Premium needs 3, Bronze 1.
    Without the reservation: Premium 3 and Bronze 1 in full, Free unallocated and kept at 4 by the
    actuator: 8 pods on 4 cards, 4 Pending. With it, Free's floor of 1 is reserved first: Premium 3,
    Free 1, Bronze none (the actuator never frees Free's last card, so Bronze cannot have it)."""
    free = running("free", cand("A100", 4), on="A100", replicas=4, priority=3)
    bronze = running("bronze", cand("A100", 1), on="", replicas=0, priority=2)
    prem = running("prem", cand("A100", 3), on="", replicas=0, priority=1)
    prob = replace(
        problem(prem, bronze, free, capacity={"A100": 4}, policy=policy), running_cards={"free": ("A100", 1)}
    )
    result = solve(solver, prob)
    assert chosen(result) == {"prem": ("A100", 3), "bronze": (None, 0), "free": ("A100", 1)}
    assert what_runs(prob, result) == {"A100": 4}
    why = texts(result.assignments["free"].reasons)
    assert any(r.startswith("capacity floor: runs on A100, so it keeps at least 1 replica") for r in why), why
    assert any("partial: 1 of 4 replicas, its floor" in r for r in why), why
    assert "capacity: A100 x1 needs 1 A100 cards, 0 of 4 left" in result.assignments["bronze"].reasons[0].text


@pytest.mark.parametrize("solver", SOLVERS)
def test_floor_is_min_replicas_and_the_server_grows_on_its_own_accelerator(solver: str) -> None:
    """Free runs 5 x A100 with min 2, needs 6; A100 8 cards; Premium takes 5 in full. Free keeps 2
    (reserved) and grows on A100 into the 1 card left: 3, not onto the dearer H100."""
    free = running(
        "free", cand("A100", 6), cand("H100", 6, 75), on="A100", replicas=5, priority=3, min_replicas=2
    )
    prem = running("prem", cand("A100", 5), on="", replicas=0, priority=1)
    prob = problem(prem, free, capacity={"A100": 8, "H100": 2}, policy=PE)
    result = solve(solver, prob)
    assert chosen(result) == {"prem": ("A100", 5), "free": ("A100", 3)}
    assert used_cards(result) == {"A100": 8}


@pytest.mark.parametrize("solver", SOLVERS)
def test_server_without_a_candidate_on_its_accelerator_is_kept_as_is_and_its_cards_reserved(
    solver: str,
) -> None:
    """``odd`` runs 2 x 2xA100 (4 cards) but its load is infeasible there; nothing else fits. It is
    left as it is, so Premium gets 2 of the 6 cards, not 6."""
    odd = running("odd", cand("H100", 3, 75), on="2xA100", replicas=2, priority=2)
    prem = running("prem", cand("A100", 6), on="", replicas=0, priority=1)
    prob = replace(problem(prem, odd, capacity={"A100": 6}, policy=PE), running_cards={"odd": ("A100", 2)})
    result = solve(solver, prob)
    assert chosen(result) == {"prem": ("A100", 2), "odd": (None, 0)}
    assert result.reserved_cards == {"A100": 4}
    assert what_runs(prob, result) == {"A100": 6}
    kept = result.assignments["odd"].reasons[-1].text
    assert kept.startswith("kept as it is: no candidate on its current 2xA100") and "4 A100 cards" in kept


@pytest.mark.parametrize("solver", SOLVERS)
def test_an_allocation_on_the_held_type_uses_the_held_cards_first(solver: str) -> None:
    """Runs 2 x A100 (min 1: 1 card held), needs 3; exactly 3 cards: fully served, nothing left over."""
    s = running("s", cand("A100", 3), on="A100", replicas=2)
    result = solve(solver, problem(s, capacity={"A100": 3}, policy=PE))
    assert chosen(result) == {"s": ("A100", 3)} and result.assignments["s"].complete
    assert result.reserved_cards == {}


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_server_moving_to_another_type_keeps_its_floor_cards_this_cycle(solver: str) -> None:
    """``mover`` runs 1 x A100 and moves to the much cheaper L4; its A100 card stays reserved this
    cycle (its old pod runs until the new one is Ready), so ``big`` gets 3 of the 4, not 4."""
    mover = running("mover", cand("A100", 1, 40), cand("L4", 1, 6), on="A100", replicas=1, priority=2)
    big = running("big", cand("A100", 4), on="", replicas=0, priority=1)
    result = solve(solver, problem(big, mover, capacity={"A100": 4, "L4": 4}, policy=PE))
    assert chosen(result) == {"big": ("A100", 3), "mover": ("L4", 1)}
    assert result.reserved_cards == {"A100": 1}
    assert any(
        "cards kept by running servers beyond their assignments: A100 1" in n for n in texts(result.notes)
    )


def test_holds_only_for_running_servers_and_not_in_unlimited_mode() -> None:
    idle = running("idle", cand("A100", 2), on="A100", replicas=0)
    held = running("held", cand("2xA100", 2, 80, cards=2), on="2xA100", replicas=3, min_replicas=2)
    unknown = running("unknown", cand("L4", 1), on="H100", replicas=2)  # no running_cards entry
    prob = problem(idle, held, unknown, capacity={"A100": 8})
    holds = reservations_by_server(prob)
    assert set(holds) == {"held"}
    assert (holds["held"].acc_type, holds["held"].cards, holds["held"].replicas) == ("A100", 4, 2)
    assert reservations_by_server(replace(prob, unlimited=True)) == {}


# --- property: what runs after the actuator never exceeds the capacity ------------------------------

UNITS = [
    ("L4", "L4", 1, 6.0),
    ("A100", "A100", 1, 40.0),
    ("2xA100", "A100", 2, 80.0),
    ("H100", "H100", 1, 75.0),
]


@st.composite
def running_instances(draw: st.DrawFn) -> AllocationProblem:
    """Up to 8 servers, some running (on a candidate's unit or on a unit without a candidate)."""
    servers = []
    running_cards: dict[str, tuple[str, int]] = {}
    for i in range(draw(st.integers(1, 8))):
        units = draw(st.lists(st.sampled_from(UNITS), max_size=3, unique=True))
        candidates = [
            Candidate(
                n,
                kind,
                draw(st.integers(1, 5)),
                8,
                cost * draw(st.sampled_from([0.8, 1.0, 1.2])),
                c,
                1,
                1,
                1,
                0.5,
            )
            for n, kind, c, cost in units
        ]
        on_unit = draw(st.sampled_from(UNITS))
        on, replicas = (on_unit[0], draw(st.integers(1, 4))) if draw(st.booleans()) else ("", 0)
        if replicas:
            running_cards[f"s{i}"] = (on_unit[1], on_unit[2])
        min_r, max_r = draw(st.sampled_from([(0, 0), (0, 0), (2, 0), (0, 3)]))
        ordered = tuple(sorted(candidates, key=lambda c: c.cost))
        servers.append(
            ServerProblem(f"s{i}", draw(st.sampled_from([1, 2, 3])), 1.0, min_r, max_r, on, replicas, ordered)
        )
    capacity = {k: draw(st.integers(0, 14)) for k in ("L4", "A100", "H100")}
    policy = draw(st.sampled_from(list(SaturationPolicy)))
    return AllocationProblem(tuple(servers), capacity, False, policy, 0.1, 5.0, 0, running_cards)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(running_instances())
def test_what_runs_after_acting_never_exceeds_the_capacity(prob: AllocationProblem) -> None:
    holds = reservations_by_server(prob)
    by_type: dict[str, int] = {}
    for hold in holds.values():
        by_type[hold.acc_type] = by_type.get(hold.acc_type, 0) + hold.cards
    assume(all(n <= prob.capacity_cards.get(kind, 0) for kind, n in by_type.items()))
    for solver in SOLVERS:
        result = solve(solver, prob)
        runs = what_runs(prob, result)
        for kind, cards in runs.items():
            assert cards <= prob.capacity_cards.get(kind, 0), (solver, kind, runs, prob.capacity_cards)
        for kind, cards in used_cards(result).items():  # the solution's own count, plus what it reserved
            assert cards + result.reserved_cards.get(kind, 0) <= prob.capacity_cards[kind], (solver, kind)
        for s in prob.servers:  # never to zero: a running server with a candidate there keeps one
            a = result.assignments[s.name]
            if s.current_replicas and any(c.accelerator == s.current_accelerator for c in s.candidates):
                assert a.candidate is not None and a.replicas >= 1, (solver, s.name, a.reasons)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    ("h100_cards", "policy", "expected", "reserved"),
    [
        pytest.param(4, PE, ("H100", 4), {"A100": 1}, id="moves-for-a-larger-share"),
        pytest.param(2, PE, ("A100", 2), {}, id="equal-share-stays"),
        pytest.param(4, SaturationPolicy.NONE, ("A100", 1), {}, id="policy-None-keeps-its-floor-here"),
    ],
)
def test_a_partial_running_server_moves_only_for_a_strictly_larger_share(
    solver: str,
    h100_cards: int,
    policy: SaturationPolicy,
    expected: tuple[str, int],
    reserved: dict[str, int],
) -> None:
    """Free runs 3 x A100 (floor 1) and needs 6; Premium takes 6 of the 8 A100 cards. On A100 Free
    reaches 2 of 6; on H100 as many as there are cards. It moves only when H100 serves more (its A100
    floor card stays reserved this cycle), and never ends with nothing: under policy None it keeps
    its floor where it runs."""
    free = running("free", cand("A100", 6), cand("H100", 6, 45), on="A100", replicas=3, priority=3)
    prem = running("prem", cand("A100", 6), on="", replicas=0, priority=1)
    prob = problem(prem, free, capacity={"A100": 8, "H100": h100_cards}, policy=policy)
    result = solve(solver, prob)
    assert chosen(result)["free"] == expected
    assert result.reserved_cards == reserved
    for kind, cards in used_cards(result).items():
        assert cards + reserved.get(kind, 0) <= prob.capacity_cards[kind]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("policy", [PE, SaturationPolicy.PRIORITY_ROUND_ROBIN], ids=lambda p: p.value)
def test_a_lower_priority_server_does_not_grow_into_cards_a_running_higher_one_loses(
    solver: str, policy: SaturationPolicy
) -> None:
    """3 A100 cards. Premium runs 3 and needs 3; Free runs 1 and needs 2. With both floors held,
    Premium cannot have its 3 in full; Free's 2 fit, and the solvers make full allocations first:
    Free 1 -> 2 and Premium 3 -> 1. Premium keeps what it can of what it runs first: 2, Free 1."""
    prem = running("prem", cand("A100", 3), on="A100", replicas=3, priority=1)
    free = running("free", cand("A100", 2), on="A100", replicas=1, priority=3)
    result = solve(solver, problem(prem, free, capacity={"A100": 3}, policy=policy))
    assert chosen(result) == {"prem": ("A100", 2), "free": ("A100", 1)}
    assert (
        result.assignments["free"]
        .reasons[0]
        .text.startswith("not served in full: prem (priority 1) runs 3 x A100")
    )
