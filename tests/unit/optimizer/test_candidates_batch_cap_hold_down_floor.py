"""Loop controls in the sizing stage: batch cap, type-change hold-down, stabilisation floor.

Fixture (``tests.unit.optimizer.test_candidates.system``): granite_13b, Premium (ITL 40 ms, TTFT
1000 ms). At 60 req/min the A100 candidate needs 3 replicas (120/h) and 2xA100 one (80/h), so a
server on A100 moves to 2xA100 (saves 33% > the 10% switching threshold) unless held, or unless the
type-change hysteresis (on by default, 25%) sees 2xA100 dearer at 75 req/min (2 x 80/h > 3 x 40/h):
the hold-down tests turn the hysteresis off to see the hold-down alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from contract.data.catalog import CapacityData
from contract.data.system import SystemData
from contract.solution import ServerDecision
from contract.steps import texts
from optimizer.candidates import build_problem, build_problem_with_context
from optimizer.optimize import optimize
from optimizer.settings import OptimizerSettings
from tests.unit.optimizer.test_candidates import server, system

ON_A100 = {"accelerator": "A100", "numReplicas": 3}


def on_a100(**fields: Any) -> dict[str, Any]:
    spec = server(rpm=fields.pop("rpm", 60), **fields)
    spec["currentAlloc"] = {**spec["currentAlloc"], **ON_A100}
    return spec


def decide(
    *servers: dict[str, Any], settings: OptimizerSettings | None = None, **capacity: int
) -> list[ServerDecision]:
    data = system(*servers)
    if capacity:
        count = [{"type": t, "count": n} for t, n in capacity.items()]
        data = data.model_copy(update={"capacity": CapacityData.model_validate({"count": count})})
    return optimize(data, settings or OptimizerSettings()).decisions


# --- batch cap ---------------------------------------------------------------------------------


def a100_batch(settings: OptimizerSettings, **fields: Any) -> tuple[int, str]:
    # A100: maxBatchSize 32 at 512 tokens; 10 output tokens -> floor(32 * 512 / 10) = 1638.
    sp_ctx = build_problem_with_context(system(server(out=10, **fields)), settings)
    (sp,), contexts = sp_ctx[0].servers, sp_ctx[1]
    a100 = next(c for c in sp.candidates if c.accelerator == "A100")
    return a100.max_batch, contexts[sp.name].candidate_notes["A100"]


@pytest.mark.parametrize(
    ("settings", "fields", "batch", "capped"),
    [
        (OptimizerSettings(), {}, 256, True),
        (OptimizerSettings(max_batch_cap=100), {}, 100, True),
        (OptimizerSettings(max_batch_cap=0), {}, 1638, False),
        (OptimizerSettings(), {"maxBatchSize": 1000}, 1000, False),
        (OptimizerSettings(batch_policy="optimal", max_batch_cap=64), {}, None, True),
    ],
    ids=["default-256", "setting", "off", "server-override-kept", "optimal-searches-below-cap"],
)
def test_batch_is_capped_with_a_reason(
    settings: OptimizerSettings, fields: dict[str, Any], batch: int | None, capped: bool
) -> None:
    got, note = a100_batch(settings, **fields)
    if batch is None:
        assert 1 <= got <= settings.max_batch_cap
    else:
        assert got == batch
    assert ("capped at" in note) is capped, note


def test_cap_applies_to_a_kept_running_batch_too() -> None:
    # out 40 tokens: computed 409 -> capped 256; a server running 300 (within 25% of 256) is capped.
    current = {"accelerator": "A100", "maxBatch": 300, "load": {"arrivalRate": 60, "avgOutTokens": 40}}
    problem = build_problem(system(server(out=40, currentAlloc=current)), OptimizerSettings())
    assert all(c.max_batch <= 256 for c in problem.servers[0].candidates)


def test_capped_batch_reaches_the_decision_reasons() -> None:
    (decision,) = decide(server(out=10))
    assert decision.allocation is not None and decision.allocation.max_batch <= 256
    assert any("capped at 256" in r for r in decision.reasons), decision.reasons


# --- type-change hold-down ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age_s", "hold_s", "accelerator"),
    [(None, 600, "2xA100"), (100, 600, "A100"), (599, 600, "A100"), (600, 600, "2xA100"), (100, 0, "2xA100")],
    ids=["no-annotation", "held", "just-inside", "hold-over", "hold-off"],
)
def test_recent_type_change_holds_the_accelerator(
    age_s: float | None, hold_s: float, accelerator: str
) -> None:
    (decision,) = decide(
        on_a100(acceleratorAgeS=age_s),
        settings=OptimizerSettings(type_change_hold_s=hold_s, type_change_margin=0),
    )
    assert decision.allocation is not None
    assert decision.allocation.accelerator == accelerator
    held = [r for r in decision.reasons if r.startswith("type-change hold-down")]
    assert bool(held) == (accelerator == "A100"), decision.reasons
    if held:
        assert "stays on A100" in held[0]


def test_hold_down_lifts_when_the_current_type_cannot_serve_within_max_replicas() -> None:
    (decision,) = decide(on_a100(acceleratorAgeS=100, maxNumReplicas=2))
    assert decision.allocation is not None and decision.allocation.accelerator == "2xA100"
    assert any("cannot serve the load (needs 3 replicas > maxNumReplicas 2)" in r for r in decision.reasons)


def test_hold_down_lifts_when_the_current_type_exceeds_the_whole_capacity() -> None:
    # 480 req/min: A100 needs 19 one-card replicas, 2xA100 8 x 2 cards = 16; capacity 18 A100 cards.
    (decision,) = decide(on_a100(acceleratorAgeS=100, rpm=480), A100=18)
    assert decision.allocation is not None and decision.allocation.accelerator == "2xA100"
    assert any("needs 19 A100 cards, 18 left by servers" in r for r in decision.reasons), decision.reasons


def test_hold_down_lifts_when_servers_that_come_first_hold_the_cards() -> None:
    # 4 A100 cards; Premium runs 2 A100 replicas, so the held Bronze server (60 req/min needs 3
    # A100 cards, or one 2xA100 replica of 2 cards) may count on 2: A100 cannot serve, 2xA100 can.
    first = on_a100(name="first", rpm=30)
    first["currentAlloc"]["numReplicas"] = 2
    held = on_a100(name="held", acceleratorAgeS=100, **{"class": "Bronze"})
    targets = [{"model": "granite_13b", "slo-itl": 40, "slo-ttft": 1000}]
    classes = [
        {"name": "Premium", "priority": 1, "modelTargets": targets},
        {"name": "Bronze", "priority": 2, "modelTargets": targets},
    ]
    data = system(first, held, classes=classes)
    capacity = CapacityData.model_validate(
        {"count": [{"type": "A100", "count": 4}, {"type": "L4", "count": 0}]}
    )
    data = data.model_copy(update={"capacity": capacity})
    _, contexts = build_problem_with_context(data, OptimizerSettings(type_change_margin=0))
    reasons = texts(contexts["held"].reasons)
    assert any(
        "A100 cannot serve the load (needs 3 A100 cards, 2 left by servers of equal or higher priority)" in r
        and "other accelerators offered" in r
        for r in reasons
    ), reasons
    # Premium comes first: Bronze's cards do not count against it.
    _, contexts = build_problem_with_context(data, OptimizerSettings())
    assert not any("cannot serve" in r for r in texts(contexts["first"].reasons)), contexts["first"].reasons


def test_hold_down_stays_when_no_other_accelerator_can_serve_either() -> None:
    # 480 req/min, 9 A100 cards: neither A100 (19 cards) nor 2xA100 (16) fits, and 4 x 2xA100
    # (~258 req/min) serve less than 1.25 x 9 x A100 (~229): a move would not help
    # (test_candidates_hold_down_partly_served: when it serves clearly more, it is offered).
    (decision,) = decide(on_a100(acceleratorAgeS=100, rpm=480), A100=9)
    # Saturation policy None: nothing fits in full, so the server is kept as it is (on A100).
    assert decision.allocation is None or decision.allocation.accelerator == "A100"
    assert any(
        "but no other accelerator can, nor serves more than (1 + 0.25) x what it serves: stays on A100" in r
        for r in decision.reasons
    ), decision.reasons


def test_hold_down_keeps_only_the_current_candidate() -> None:
    problem = build_problem(system(on_a100(acceleratorAgeS=10)), OptimizerSettings())
    assert [c.accelerator for c in problem.servers[0].candidates] == ["A100"]


# --- stabilisation floor -----------------------------------------------------------------------


def test_floor_is_a_lower_bound_on_the_current_accelerator_with_the_demand_count_kept() -> None:
    # 30 req/min on A100 needs 2 replicas; the window holds 5.
    (decision,) = decide(on_a100(rpm=30, floorReplicas=5))
    a = decision.allocation
    assert a is not None and a.accelerator == "A100"
    assert (a.num_replicas, a.demand_replicas) == (5, 2)
    assert any("stabilisation window holds 5" in r for r in decision.reasons), decision.reasons


def test_no_floor_given_leaves_demand_replicas_unset() -> None:
    (decision,) = decide(on_a100(rpm=30))
    assert decision.allocation is not None and decision.allocation.demand_replicas is None


def test_held_replicas_do_not_make_staying_look_dearer() -> None:
    # 30 req/min: A100 x2 and 2xA100 x1 both cost 80/h; held at 5 x A100 the server still stays.
    (decision,) = decide(on_a100(rpm=30, floorReplicas=5))
    assert decision.allocation is not None and decision.allocation.accelerator == "A100"


def test_held_cards_are_taken_from_capacity_for_other_servers() -> None:
    """``bulk`` (needs 2) is held at 6 A100 cards; ``prem`` needs 3; both Premium, 8 or 9 cards.

    Without the floor the optimizer gives bulk 2 and prem 3 while the actuator keeps 6 for bulk:
    9 cards for 8, a pod Pending. With it, what is allocated is what runs: the window holds on
    spare cards only (5 of 6 with 8 cards, all 6 with 9), whatever the solver order.
    """
    bulk = on_a100(name="bulk", rpm=30, floorReplicas=6, keepAccelerator=True)
    bulk["currentAlloc"]["numReplicas"] = 6
    prem = on_a100(name="prem", keepAccelerator=True)
    for solver in ("greedy", "milp"):
        settings = OptimizerSettings(solver=solver)
        decisions = {d.server: d for d in decide(bulk, prem, settings=settings, A100=8, L4=0)}
        allocated = {n: d.allocation.num_replicas for n, d in decisions.items() if d.allocation}
        assert allocated == {"prem": 3, "bulk": 5}, (solver, allocated)
        held = decisions["bulk"].allocation
        assert held is not None and held.demand_replicas == 2
        assert any("holds 5 of 6 x A100" in r for r in decisions["bulk"].reasons), decisions["bulk"].reasons
        # With room for both, the window holds: 6 + 3 = 9 cards of 9.
        decisions = {d.server: d for d in decide(bulk, prem, settings=settings, A100=9, L4=0)}
        allocated = {n: d.allocation.num_replicas for n, d in decisions.items() if d.allocation}
        assert allocated == {"prem": 3, "bulk": 6}, (solver, allocated)


def test_floor_is_not_applied_off_the_current_accelerator_or_above_max_replicas() -> None:
    spec = on_a100(rpm=30, floorReplicas=9, maxNumReplicas=4)
    problem = build_problem(system(spec), OptimizerSettings(type_change_margin=0))
    floors = {c.accelerator: c.floor_replicas for c in problem.servers[0].candidates}
    assert floors == {"A100": 4, "2xA100": 0}


def test_system_json_round_trips_the_new_fields() -> None:
    data = system(on_a100(acceleratorAgeS=12.5, floorReplicas=3))
    again = SystemData.model_validate(data.model_dump(by_alias=True))
    (spec,) = again.servers.servers
    assert (spec.accelerator_age_s, spec.floor_replicas) == (12.5, 3)
