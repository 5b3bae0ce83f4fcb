"""Rollout budget: at most so many running servers roll their pods (type or batch change) at a time.

Fixture (``test_candidates.system``): granite_13b on A100 at 10 req/min. Running at batch 4 it needs
3 replicas (120/h) for its targets; the computed batch 16 serves the same load with 1 (40/h), so
every server wants a batch change (a rollout) that saves 80/h.
"""

from __future__ import annotations

from typing import Any

import pytest

from contract.data.catalog import CapacityData
from contract.solution import DecisionStatus, Solution
from contract.steps import StepCode
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings
from tests.unit.optimizer.test_candidates import server, system

TARGETS = [{"model": "granite_13b", "slo-itl": 40, "slo-ttft": 1000}]
CLASSES = [
    {"name": "High", "priority": 1, "modelTargets": TARGETS},
    {"name": "Low", "priority": 5, "modelTargets": TARGETS},
]


def running(i: int, *, batch: int = 4, rpm: float = 10, cls: str = "High", **fields: Any) -> dict[str, Any]:
    spec = server(f"s{i:02d}", rpm=rpm, **{"class": cls, **fields})
    current = {"accelerator": "A100", "numReplicas": 1, "maxBatch": batch}
    spec["currentAlloc"] = {**spec["currentAlloc"], **current}
    return spec


def solve(
    *servers: dict[str, Any], budget: int = 3, share: float = 0.0, a100_cards: int | None = None
) -> Solution:
    data = system(*servers, classes=CLASSES)
    if a100_cards is not None:
        count = [{"type": "A100", "count": a100_cards}, {"type": "L4", "count": 64}]
        data = data.model_copy(update={"capacity": CapacityData.model_validate({"count": count})})
    return optimize(data, OptimizerSettings(rollout_budget_min=budget, rollout_budget_share=share))


def rolled(solution: Solution) -> list[str]:
    """Servers whose allocation changes their accelerator or batch (all run A100 at batch 4 or 0)."""
    out = []
    for d in solution.decisions:
        a = d.allocation
        if a is not None and (a.accelerator != "A100" or a.max_batch != 4):
            out.append(d.server)
    return out


def budget_reasons(solution: Solution, name: str) -> list[str]:
    decision = next(d for d in solution.decisions if d.server == name)
    return [s.text for s in decision.steps if s.code is StepCode.ROLLOUT_BUDGET]


def test_changes_beyond_the_budget_wait_on_what_runs() -> None:
    solution = solve(*[running(i) for i in range(12)])
    assert rolled(solution) == ["s00", "s01", "s02"]
    waiting = [d for d in solution.decisions if d.server not in {"s00", "s01", "s02"}]
    for decision in waiting:
        a = decision.allocation
        assert a is not None and decision.status is DecisionStatus.ALLOCATED
        # sized as it runs: batch 4 needs 3 replicas for the load (a replica change is not deferred)
        assert (a.accelerator, a.max_batch, a.num_replicas) == ("A100", 4, 3)
        (why,) = budget_reasons(solution, decision.server)
        assert why.startswith("rollout budget: ") and "3 of 12 running servers may roll at a time" in why
        assert "the move to A100 batch 16 x1 (saves 80/h) waits; stays on A100 batch 4" in why
    assert any(
        n.startswith("rollout budget: 3 of 12") and "3 start this cycle, 9 wait" in n
        for n in solution.solver.notes
    ), solution.solver.notes


def test_unfinished_rollouts_use_the_budget() -> None:
    servers = [running(i, rollingOut=i in {10, 11}) for i in range(12)]
    assert rolled(solve(*servers)) == ["s00"]
    assert rolled(solve(*servers, budget=2)) == []


def test_higher_priority_first_then_the_larger_saving() -> None:
    # s00-s05 are Low; s06-s11 High, of which s09-s11 carry 20 req/min: batch 4 needs 5 replicas
    # (200/h), batch 16 one or two: the larger saving goes first within the class.
    servers = [running(i, cls="Low") for i in range(6)]
    servers += [running(i, rpm=10 if i < 9 else 20) for i in range(6, 12)]
    assert rolled(solve(*servers, budget=4)) == ["s06", "s09", "s10", "s11"]


def test_the_share_scales_with_the_fleet() -> None:
    # 25% of 12 running servers: 3; min 0.
    assert len(rolled(solve(*[running(i) for i in range(12)], budget=0, share=0.25))) == 3


def test_budget_off_or_not_binding_changes_nothing() -> None:
    servers = [running(i) for i in range(12)]
    assert len(rolled(solve(*servers, share=1.0))) == 12
    small = solve(*servers[:3])  # 3 running servers, budget 3: cannot bind
    assert len(rolled(small)) == 3
    assert not any(s.code is StepCode.ROLLOUT_BUDGET for s in small.solver.steps)


def test_a_status_quo_that_cannot_serve_goes_first() -> None:
    # maxNumReplicas 2: batch 4 would need 3 replicas, so s11 misses its target as it runs: its
    # change takes the room before the larger savings of the others.
    servers = [running(i) for i in range(11)] + [running(11, maxNumReplicas=2)]
    solution = solve(*servers)
    assert rolled(solution) == ["s00", "s01", "s11"]
    assert not budget_reasons(solution, "s11")
    alone = solve(*servers, budget=1)
    assert rolled(alone) == ["s11"]


def test_status_quos_that_cannot_serve_wait_too_beyond_the_room() -> None:
    # All 12 at maxNumReplicas 2: every change fixes a missed target, 3 go, 9 wait as they run
    # (partial at batch 4: the capacity floor keeps the 1 replica each runs), saying so.
    solution = solve(*[running(i, maxNumReplicas=2) for i in range(12)])
    assert rolled(solution) == ["s00", "s01", "s02"]
    waiting = [d for d in solution.decisions if d.server not in {"s00", "s01", "s02"}]
    for decision in waiting:
        assert decision.status is DecisionStatus.PARTIAL and decision.allocation is not None
        assert (decision.allocation.max_batch, decision.allocation.num_replicas) == (4, 1)
        (why,) = budget_reasons(solution, decision.server)
        assert why.endswith("which cannot serve its whole load: a later cycle moves it first"), why
    notes = solution.solver.notes
    assert any("9 wait (9 of them cannot serve their whole load as they run)" in n for n in notes), notes


def test_an_unknown_running_batch_rolls_anyway() -> None:
    # maxBatch 0: the actuator sets --max-num-seqs whatever the plan, so waiting saves nothing.
    servers = [running(i) for i in range(11)] + [running(11, batch=0)]
    solution = solve(*servers)
    assert rolled(solution) == ["s00", "s01", "s11"]
    assert any("1 with an unknown running batch roll anyway" in n for n in solution.solver.notes)


@pytest.mark.parametrize("a100_cards", [12, 14, 16, 20, 40])
def test_the_plan_fits_the_cards_and_the_budget_holds(a100_cards: int) -> None:
    # Each server runs 1 of the A100 cards; staying at batch 4 needs 3 each. With few cards the
    # re-plan leaves waiting servers short (they go first next time); the budget still holds, the
    # plan fits the cards and nobody drops below the replica it runs.
    solution = solve(*[running(i) for i in range(12)], a100_cards=a100_cards)
    assert len(rolled(solution)) == 3
    assert solution.cards_by_type.get("A100", 0) <= a100_cards
    waiting = [d.server for d in solution.decisions if budget_reasons(solution, d.server)]
    assert len(waiting) == 9
    for decision in solution.decisions:
        assert decision.allocation is not None and decision.allocation.num_replicas >= 1
    if a100_cards >= 30:  # room for everyone as they run: nobody short
        assert all(d.status is DecisionStatus.ALLOCATED for d in solution.decisions)
