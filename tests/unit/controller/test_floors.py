"""The actuator's window holds become next cycle's floorReplicas in the optimizer's input."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from actuator.app import Actuator
from contract.update import ActionKind, ServerAction, WindowHold
from controller.cycle import CycleRunner
from controller.floors import WindowFloors, floor_of
from tests.unit.actuator.fakes import FakeKube, decision, deployment, settings, solution
from tests.unit.controller.fakes import FakeStages, collect_result, controller_settings

HOLDS = [
    WindowHold(accelerator="A100", replicas=6, until_s=400.0),
    WindowHold(accelerator="A100", replicas=2, until_s=460.0),
    WindowHold(accelerator="L4", replicas=9, until_s=460.0),
]


@pytest.mark.parametrize(
    ("accelerator", "current", "now_s", "floor"),
    [
        ("A100", 5, 300.0, 5),
        ("A100", 8, 300.0, 6),
        ("A100", 5, 420.0, 2),
        ("A100", 5, 460.0, 0),
        ("G2", 5, 0.0, 0),
    ],
    ids=["capped-by-current", "highest-hold", "first-expired", "all-expired", "other-accelerator"],
)
def test_floor_of(accelerator: str, current: int, now_s: float, floor: int) -> None:
    assert floor_of(HOLDS, accelerator, current, now_s) == floor


def system(*names: str, wrapped: bool = False) -> dict[str, Any]:
    servers = [{"name": n, "currentAlloc": {"accelerator": "A100", "numReplicas": 5}} for n in names]
    body = {"servers": {"servers": servers}}
    return {"spec": body} if wrapped else body


@pytest.mark.parametrize("wrapped", [False, True])
def test_apply_floors_known_servers_by_their_holds_and_unknown_ones_at_their_count(wrapped: bool) -> None:
    floors = WindowFloors()
    floors.remember([], [])
    given = system("a", "b", wrapped=wrapped)

    def floors_in(out: dict[str, Any]) -> list[object]:
        body = out["spec"] if wrapped else out
        return [s.get("floorReplicas") for s in body["servers"]["servers"]]

    # Nothing known (first cycle after a start): the actuator's first-sight seed holds the count.
    assert floors_in(floors.apply(given, 0.0)) == [5, 5]
    floors.remember([ServerAction(server="a", kind=ActionKind.NOOP, window_holds=HOLDS)], ["a", "b"])
    assert floors_in(floors.apply(given, 420.0)) == [2, 5]
    # Window off: the actuator answers [] (known, nothing held), so no floor from then on.
    floors.remember([ServerAction(server=n, kind=ActionKind.NOOP, window_holds=[]) for n in "ab"], ["a", "b"])
    assert floors_in(floors.apply(given, 420.0)) == [0, 0]
    assert "floorReplicas" not in str(given)


def test_remember_keeps_holds_of_skipped_servers_and_forgets_unmanaged_ones() -> None:
    floors = WindowFloors()
    floors.remember([ServerAction(server="a", kind=ActionKind.NOOP, window_holds=HOLDS)], ["a"])
    floors.remember([ServerAction(server="a", kind=ActionKind.SKIP)], ["a"])
    assert len(floors) == 1
    floors.remember([], ["b"])
    assert len(floors) == 0


def test_cycle_gives_the_optimizer_the_window_floor_of_the_previous_answer() -> None:
    """Cycle 1 recommends 6 (window records 6); cycle 2's optimizer input carries floorReplicas 6
    for the server, running 6 on A100, so the optimizer can count the held cards."""
    stages = FakeStages(solution(decision(replicas=6)))
    stages.kube = FakeKube(deployment(replicas=6))
    stages.actuator = Actuator(stages.kube, settings(scale_down_window_s=300.0))
    stages.collect_answer = collect_result(system=system("llama"))
    runner = CycleRunner(stages, controller_settings())
    asyncio.run(runner.run_cycle(1000.0))
    (first,) = stages.systems[0]["servers"]["servers"]
    assert first["floorReplicas"] == 5  # first sight: the count the actuator's seed will hold
    stages.solution = solution(decision(replicas=2))
    asyncio.run(runner.run_cycle(1060.0))
    (entry,) = stages.systems[1]["servers"]["servers"]
    assert entry["floorReplicas"] == 5  # held 6, capped by the 5 collected as running


@pytest.mark.parametrize("wrapped", [False, True])
def test_apply_adds_floor_replicas_and_nothing_else(wrapped: bool) -> None:
    given = system("a", "b", wrapped=wrapped)
    body = given["spec"] if wrapped else given
    body["capacity"] = {"count": [{"type": "A100", "count": 8}]}
    body["servers"]["servers"].append("not a server entry")
    before = copy.deepcopy(given)

    out = WindowFloors().apply(given, 0.0)

    out_body = out["spec"] if wrapped else out
    for entry in out_body["servers"]["servers"]:
        if isinstance(entry, dict):
            assert entry.pop("floorReplicas") == 5
    assert out == before
    assert given == before  # the collected system is not changed
