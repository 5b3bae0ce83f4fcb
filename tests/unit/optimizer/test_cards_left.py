"""``cards_left``: what each server may count on before solving, from the one ``running_cards``.

Fixture (``test_candidates.system``): granite_13b with entries on L4 (2 cards per replica), A100
(1) and 2xA100 (1 x multiplicity 2); capacity L4 64, A100 64.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from contract.data.system import SystemData
from optimizer.candidates import build_problem_with_context
from optimizer.settings import OptimizerSettings
from optimizer.type_changes import cards_left, running_cards
from tests.unit.optimizer.test_candidates import server, system

CLASSES = [
    {
        "name": f"P{p}",
        "priority": p,
        "modelTargets": [{"model": "granite_13b", "slo-itl": 40, "slo-ttft": 1000}],
    }
    for p in (1, 2, 3)
]


def on(name: str, unit: str, replicas: int, priority: int) -> dict[str, Any]:
    spec = server(name, rpm=10, **{"class": f"P{priority}"})
    spec["currentAlloc"] = {**spec["currentAlloc"], "accelerator": unit, "numReplicas": replicas}
    return spec


def left_of(data: SystemData) -> list[dict[str, int]]:
    _, contexts = build_problem_with_context(data, OptimizerSettings())
    return cards_left(data, [contexts[s.name] for s in data.servers.servers])


def test_higher_priority_and_ties_count_others_do_not() -> None:
    data = system(
        on("a", "A100", 3, 1),
        on("b", "2xA100", 2, 2),
        on("c", "L4", 4, 2),
        on("d", "A100", 5, 3),
        classes=CLASSES,
    )
    a, b, c, d = left_of(data)
    assert a == {"A100": 64, "L4": 64}  # nobody comes before priority 1
    assert b == {"A100": 64 - 3, "L4": 64 - 8}  # a, and c (a tie): 4 x 2 L4 cards
    assert c == {"A100": 64 - 3 - 4, "L4": 64}  # a and b (2 x 2 A100 cards), not itself
    assert d == {"A100": 64 - 3 - 4, "L4": 64 - 8}


def test_a_model_without_an_entry_on_its_accelerator_holds_no_known_cards() -> None:
    # "B100" exists but granite_13b has no entry on it: the solver's holds reserve nothing for it,
    # and cards_left (which once guessed 1 card per replica) agrees.
    data = system(on("x", "A100", 1, 1), classes=CLASSES).model_dump(by_alias=True)
    data["accelerators"]["accelerators"].append({"name": "B100", "type": "B100", "cost": 30})
    data["capacity"]["count"].append({"type": "B100", "count": 8})
    data["servers"]["servers"].append(on("y", "B100", 3, 1))
    data["servers"]["servers"].append(on("z", "A100", 1, 2))
    parsed = SystemData.model_validate(data)
    assert "y" not in running_cards(parsed)
    assert left_of(parsed)[2]["B100"] == 8


@pytest.mark.parametrize("seed", range(5))
def test_matches_the_pairwise_definition(seed: int) -> None:
    rng = random.Random(seed)
    units = ["A100", "2xA100", "L4"]
    servers = [on(f"s{i}", rng.choice(units), rng.randint(0, 4), rng.randint(1, 3)) for i in range(30)]
    data = system(*servers, classes=CLASSES)
    _, contexts = build_problem_with_context(data, OptimizerSettings())
    ordered = [contexts[s.name] for s in data.servers.servers]
    per = running_cards(data)
    expected = []
    for i, ci in enumerate(ordered):
        left = dict(data.capacity.cards_by_type())
        for j, (s, cj) in enumerate(zip(data.servers.servers, ordered, strict=True)):
            if j != i and cj.priority <= ci.priority and s.name in per:
                kind, n = per[s.name]
                left[kind] -= s.current_alloc.num_replicas * n
        expected.append(left)
    assert cards_left(data, ordered) == expected
