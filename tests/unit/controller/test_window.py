"""The scale-down window (controller/window.py): its rule, its state from cycle to cycle, its
settings, and how the cycle hands it to the optimizer and records the actuator's answer."""

from __future__ import annotations

import asyncio

import pytest

from actuator.__main__ import main as actuator_main
from actuator.app import Actuator
from actuator.settings import misplaced_variables
from contract.update import ActionKind, ServerAction
from controller import window
from controller.cycle import CycleRunner
from controller.settings import ENV_PREFIX, ControllerSettings
from controller.window import Need, ServerWindow, WindowPolicy
from plumbing.client import ErrorKind, UpstreamError
from plumbing.settings import SettingsError, load_settings
from tests.unit.actuator.fakes import FakeKube, decision, deployment, server, solution
from tests.unit.controller.fakes import FakeStages, collect_result, controller_settings, system_data

KEY = ("team-a", "llama")
POLICY = WindowPolicy(300.0, {"Free": 0.0})


def needed(replicas: int | None, accelerator: str = "A100", name: str = "llama") -> ServerAction:
    """The actuator's answer for one server: acted on (``replicas`` needed) or skipped (None)."""
    kind = ActionKind.SKIP if replicas is None else ActionKind.NOOP
    return ServerAction(
        server=name,
        namespace="team-a",
        deployment=name,
        kind=kind,
        accelerator_target=accelerator,
        replicas_needed=replicas,
    )


@pytest.mark.parametrize(
    ("state", "accelerator", "current", "floor"),
    [
        (ServerWindow((Need(0, "A100", 6), Need(60, "A100", 2)), acted=True), "A100", 5, 5),
        (ServerWindow((Need(0, "A100", 6), Need(60, "A100", 2)), acted=True), "A100", 8, 6),
        (ServerWindow((Need(60, "A100", 2), Need(60, "L4", 9)), acted=True), "A100", 5, 2),
        (ServerWindow((Need(60, "L4", 9),), acted=True), "A100", 5, 0),
        (ServerWindow((), acted=True), "A100", 5, 0),
        (ServerWindow((), acted=False), "A100", 5, 5),
    ],
    ids=[
        "capped-by-current",
        "highest",
        "own-accelerator-only",
        "other-accelerator",
        "nothing-held",
        "not-yet-acted",
    ],
)
def test_floor_of(state: ServerWindow, accelerator: str, current: int, floor: int) -> None:
    assert window.floor_of(state, accelerator, current) == floor


@pytest.mark.parametrize(
    ("service_class", "expected"), [("Premium", [10, 10, 10, 6, 6, 3]), ("Free", [10, 4, 6, 4, 3, 3])]
)
def test_the_highest_need_of_the_window_holds_on_the_way_down(
    service_class: str, expected: list[int]
) -> None:
    """Needs 10, 4, 6, 4, 3, 3 at 0..601 s; the server runs what it needs or what the window holds.
    Premium (300 s): t=301 keeps the 6 of t=200 (the 10 of t=0 has left), t=601 only the 3 of t=420.
    Free (0 s): held at its count on first sight only, then it follows its needs."""
    current, seen, state = 10, [], dict[tuple[str, str], ServerWindow]()
    for now_s, need in [(0, 10), (60, 4), (200, 6), (301, 4), (420, 3), (601, 3)]:
        srv = server(service_class=service_class, current_replicas=current, current_accelerator="A100")
        opened = window.open_cycle(state, [srv], POLICY, float(now_s))
        floor = window.floors(opened, [srv])["llama"]
        current = max(need, floor)  # what an optimizer with spare cards allocates
        seen.append(current)
        state = window.record(opened, [needed(need)], float(now_s))
    assert seen == expected


def test_open_cycle_prunes_seeds_and_forgets() -> None:
    state = {
        KEY: ServerWindow((Need(0, "A100", 6), Need(200, "A100", 3)), acted=True),
        ("team-a", "gone"): ServerWindow((Need(200, "A100", 1),), acted=True),
        ("team-a", "idle"): ServerWindow((Need(0, "A100", 4),), acted=True),
    }
    servers = [
        server(current_replicas=5, current_accelerator="A100"),
        server("idle", current_replicas=2, current_accelerator="A100"),
        server("fresh", current_replicas=0, current_accelerator="A100"),  # nothing running: no entry
        server("free", service_class="Free", current_replicas=3, current_accelerator="A100"),  # window 0
    ]
    opened = window.open_cycle(state, servers, POLICY, 400.0)
    assert opened == {
        KEY: ServerWindow((Need(200, "A100", 3),), acted=True),
        ("team-a", "idle"): ServerWindow(
            (Need(400.0, "A100", 2),), acted=True
        ),  # empty: entered at its count
        ("team-a", "fresh"): ServerWindow(),
        ("team-a", "free"): ServerWindow(),
    }
    assert state[KEY].needs[0].at_s == 0  # the state given is not changed
    assert window.floors(opened, servers) == {"llama": 3, "idle": 2, "fresh": 0, "free": 3}


def test_record_enters_acted_servers_and_leaves_skipped_ones() -> None:
    state = {KEY: ServerWindow((Need(0, "A100", 6),), acted=False)}
    skipped = window.record(state, [needed(None)], 60.0)
    assert skipped == state
    acted = window.record(state, [needed(2, accelerator="L4")], 60.0)
    assert acted == {KEY: ServerWindow((Need(0, "A100", 6), Need(60.0, "L4", 2)), acted=True)}


def test_cycle_gives_the_optimizer_the_window_and_records_the_answer() -> None:
    """Cycle 1 sees the server for the first time (5 running): floor 5, and the actuator's answer
    (needs 6) enters the window. Cycle 2: held 6, capped by the 5 running."""
    stages = FakeStages(solution(decision(replicas=6)))
    stages.kube = FakeKube(deployment(replicas=6))
    stages.actuator = Actuator(stages.kube, stages.actuator.settings)
    collected = collect_result(
        system=system_data("llama", replicas=5),
        servers=[server(current_replicas=5, current_accelerator="A100")],
    )
    stages.collect_answer = collected
    runner = CycleRunner(stages, controller_settings())
    first = asyncio.run(runner.run_cycle(1000.0))
    assert [s.floor_replicas for s in stages.systems[0].servers.servers] == [5]
    assert [d.window_floor_replicas for d in first.decisions] == [5]
    assert collected.system.servers.servers[0].floor_replicas is None  # the collect result is not changed
    stages.solution = solution(decision(replicas=2))
    asyncio.run(runner.run_cycle(1060.0))
    assert [s.floor_replicas for s in stages.systems[1].servers.servers] == [5]
    assert runner.window[KEY].needs[-1] == Need(1060.0, "A100", 2)


def test_a_failed_update_leaves_the_window_as_it_was() -> None:
    stages = FakeStages()
    stages.collect_answer = collect_result(servers=[server(current_replicas=4, current_accelerator="A100")])
    stages.fail["update"] = UpstreamError(ErrorKind.TRANSIENT, "actuator down")
    runner = CycleRunner(stages, controller_settings())
    report = asyncio.run(runner.run_cycle(1000.0))
    assert report.outcome == "failed" and runner.window == {}


def test_class_windows_from_the_environment() -> None:
    env = {f"{ENV_PREFIX}SCALE_DOWN_WINDOW_BY_CLASS_S": " Free=0 ,Bronze=120.5,"}
    policy = load_settings(ControllerSettings, ENV_PREFIX, env).window_policy()
    assert [policy.window_s(c) for c in ("Free", "Bronze", "Premium")] == [0.0, 120.5, 300.0]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("Free", "is not Class=seconds"),
        ("=5", "is not Class=seconds"),
        ("Free=-1", "seconds >= 0"),
        ("Free=x", ""),
    ],
)
def test_class_windows_are_checked(raw: str, problem: str) -> None:
    name = f"{ENV_PREFIX}SCALE_DOWN_WINDOW_BY_CLASS_S"
    with pytest.raises(SettingsError, match=name) as caught:
        load_settings(ControllerSettings, ENV_PREFIX, {name: raw})
    assert problem in str(caught.value)


def test_the_actuator_refuses_the_window_variables_with_the_name_to_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert misplaced_variables({"INFERNO_ACTUATOR_DRY_RUN": "true"}) == []
    monkeypatch.setenv("INFERNO_ACTUATOR_SCALE_DOWN_WINDOW_BY_CLASS_S", "Free=0")
    assert actuator_main([]) == 2
    assert "INFERNO_CONTROLLER_SCALE_DOWN_WINDOW_BY_CLASS_S" in capsys.readouterr().err
