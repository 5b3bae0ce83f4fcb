"""Type-change hysteresis: a move must pay off across demand x (1 -/+ margin), not at one point.

Fixture (``test_candidates.system``): granite_13b, Premium. One A100 replica serves up to 25.4
req/min (40/h), one 2xA100 replica 64.6 req/min (80/h). At 60 req/min staying on A100 costs
3 x 40 = 120/h and 2xA100 80/h; at 75 req/min (60 x 1.25) 2xA100 needs 2 (160/h), A100 3 (120/h).
"""

from __future__ import annotations

import pytest

from contract.data.system import SystemData
from contract.steps import texts
from optimizer.candidates import build_problem_with_context
from optimizer.settings import OptimizerSettings
from tests.unit.optimizer.test_candidates import system
from tests.unit.optimizer.test_candidates_batch_cap_hold_down_floor import decide, on_a100


def offered(rpm: float, margin: float, **fields: object) -> tuple[list[str], tuple[str, ...]]:
    problem, contexts = build_problem_with_context(
        system(on_a100(rpm=rpm, **fields)), OptimizerSettings(type_change_margin=margin)
    )
    (context,) = contexts.values()
    return [c.accelerator for c in problem.servers[0].candidates], texts(context.reasons)


def test_move_that_pays_only_at_the_measured_point_is_not_offered() -> None:
    names, reasons = offered(60, 0.25)
    assert names == ["A100"]
    assert any(
        "type-change hysteresis: 2xA100 not offered: dearer than A100 somewhere in 45-75 req/min" in r
        for r in reasons
    ), reasons
    (decision,) = decide(on_a100(rpm=60))
    assert decision.allocation is not None and decision.allocation.accelerator == "A100"


def test_move_that_pays_across_the_band_is_offered() -> None:
    # 40 req/min, band 30-50: A100 2-2 replicas (80/h), 2xA100 1 (80/h): never dearer, offered.
    names, reasons = offered(40, 0.25)
    assert sorted(names) == ["2xA100", "A100"]
    assert not any("hysteresis" in r for r in reasons), reasons


@pytest.mark.parametrize("margin", [0.0, 0.05])
def test_small_or_no_margin_leaves_the_move_to_the_solver(margin: float) -> None:
    # 60 x 1.05 = 63 req/min still fits one 2xA100 replica (64.6): cheaper everywhere in the band.
    names, _ = offered(60, margin)
    assert sorted(names) == ["2xA100", "A100"]
    (decision,) = decide(on_a100(rpm=60), settings=OptimizerSettings(type_change_margin=margin))
    assert decision.allocation is not None and decision.allocation.accelerator == "2xA100"


def test_a_current_type_that_cannot_serve_keeps_every_move_on_offer() -> None:
    # maxNumReplicas 2: A100 needs 3 at 60 req/min, so the server must move whatever the band says.
    names, reasons = offered(60, 0.25, maxNumReplicas=2)
    assert "2xA100" in names
    assert not any("hysteresis" in r for r in reasons), reasons


def test_a_server_without_a_current_accelerator_is_not_restricted() -> None:
    problem, _ = build_problem_with_context(
        system({**on_a100(rpm=60), "currentAlloc": {"load": {"arrivalRate": 60, "avgOutTokens": 512}}}),
        OptimizerSettings(),
    )
    assert sorted(c.accelerator for c in problem.servers[0].candidates) == ["2xA100", "A100"]


def with_b100(*servers: dict[str, object], b100_cards: int) -> SystemData:
    """The fixture plus "B100": A100's performance in a card type of its own at 30/h (A100: 40/h)."""
    data = system(*servers).model_dump(by_alias=True)
    data["accelerators"]["accelerators"].append({"name": "B100", "type": "B100", "cost": 30})
    a100 = next(m for m in data["models"]["models"] if m["acc"] == "A100")
    data["models"]["models"].append({**a100, "acc": "B100"})
    data["capacity"] = {"count": [{"type": "A100", "count": 8}, {"type": "B100", "count": b100_cards}]}
    return SystemData.model_validate(data)


@pytest.mark.parametrize(("b100_cards", "offered_b100"), [(1, False), (2, True)])
def test_a_move_needs_the_cards_for_the_band_top(b100_cards: int, offered_b100: bool) -> None:
    # 40 req/min on A100: 2 x 40/h; B100: 2 x 30/h, cheaper across 30-50 req/min. At 50 req/min
    # B100 needs 2 cards: with 1 card left the move would be forced back as soon as load grows.
    problem, contexts = build_problem_with_context(
        with_b100(on_a100(rpm=40), b100_cards=b100_cards), OptimizerSettings()
    )
    names = [c.accelerator for c in problem.servers[0].candidates]
    assert ("B100" in names) is offered_b100, names
    (context,) = contexts.values()
    cramped = [
        r for r in texts(context.reasons) if "B100 not offered: too few cards left there for 50 req/min" in r
    ]
    assert bool(cramped) is not offered_b100, context.reasons
