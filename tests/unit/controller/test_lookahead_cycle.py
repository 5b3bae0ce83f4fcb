"""The forecast in the cycle: the history survives a leader change, and a lost or corrupt history
falls back to reactive sizing with a reason and scales nothing down (issue 18's fault test)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract.collect import CollectResult
from contract.data.system import SystemData
from controller.cycle import CycleRunner
from controller.history import MemoryHistoryStore
from tests.unit.actuator.fakes import PLACEMENT, server
from tests.unit.controller.fakes import SMALL, FakeStages, controller_settings

T0_S = 1_700_000_000.0
REPLICAS = 5


def forecast_system(quantile: float = 0.9, rpm: float = 100.0) -> SystemData:
    """samples/small with Premium asking for the forecast and one Premium server, llama, 5 x A100."""
    doc = SMALL.model_dump()
    for c in doc["serviceClasses"]["serviceClasses"]:
        if c["name"] == "Premium":
            c["forecastQuantile"] = quantile
    doc["servers"] = {
        "servers": [
            {
                "name": "llama",
                "class": "Premium",
                "model": "llama_13b",
                "currentAlloc": {
                    "accelerator": "A100",
                    "numReplicas": REPLICAS,
                    "load": {"arrivalRate": rpm},
                },
            }
        ]
    }
    return SystemData.model_validate(doc)


def collected(rpm: float, quantile: float = 0.9) -> CollectResult:
    return CollectResult(
        collected_at_s=T0_S,
        system=forecast_system(quantile, rpm),
        servers=[server(current_replicas=REPLICAS, current_accelerator="A100", arrival_rpm=rpm)],
        placement=PLACEMENT,
    )


def runner(stages: FakeStages, store: MemoryHistoryStore, leader: list[bool] | None = None) -> CycleRunner:
    flag = leader if leader is not None else [True]
    settings = controller_settings(scale_down_window_s=0.0, control_period_s=60.0)
    return CycleRunner(stages, settings, is_leader=lambda: flag[0], history_store=store)


async def cycles(r: CycleRunner, stages: FakeStages, start_s: float, n: int, rpm: float = 100.0) -> Any:
    report = None
    for i in range(n):
        stages.collect_answer = collected(rpm + i)
        report = await r.run_cycle(start_s + 60.0 * i)
    return report


def sent(stages: FakeStages) -> Any:
    (spec,) = stages.systems[-1].servers.servers
    return spec


async def test_the_forecast_comes_once_the_history_is_long_enough_and_survives_a_leader_change() -> None:
    store, stages = MemoryHistoryStore(), FakeStages()
    r = runner(stages, store)
    report = await cycles(r, stages, T0_S, 9)
    assert sent(stages).forecast is None and sent(stages).floor_replicas == REPLICAS
    assert any(
        "no stored load history (first start, or the store was emptied); 540 s of history, 600 s needed" in n
        for n in report.notes
    )
    await cycles(r, stages, T0_S + 540.0, 1, rpm=109.0)
    spec = sent(stages)
    assert spec.forecast is not None and spec.forecast.quantile == 0.9
    assert spec.forecast.arrival_rate_rpm > 109.0  # a rising series: above the last measurement
    assert spec.forecast.horizon_s == pytest.approx(120.0 + 60.0)  # default start-up + one period
    assert spec.floor_replicas == 0  # no hold, no window (0 s): the forecast sizes it
    assert store.saves == 10

    other = FakeStages()  # another replica takes over: its first cycle reads what the old one wrote
    await cycles(runner(other, store), other, T0_S + 600.0, 1, rpm=110.0)
    assert sent(other).forecast is not None


async def test_the_history_keeps_only_servers_whose_class_asks_for_a_forecast() -> None:
    store, stages = MemoryHistoryStore(), FakeStages()
    r = runner(stages, store)
    await cycles(r, stages, T0_S, 2)
    assert store.text is not None and set(json.loads(store.text)["servers"]) == {"llama"}

    stages.collect_answer = collected(100.0, quantile=0.0)  # Premium stops asking: its history goes
    await r.run_cycle(T0_S + 120.0)
    assert store.text is not None and json.loads(store.text)["servers"] == {}
    assert sent(stages).forecast is None and sent(stages).floor_replicas == 0


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ('{"version": 1, "bucketS": 60.0', "stored load history unreadable: not JSON"),
        ('{"version": 7}', "stored load history unreadable: version 7"),
        (None, "no stored load history"),
    ],
    ids=["truncated", "foreign-version", "lost"],
)
async def test_a_lost_or_corrupt_history_means_reactive_sizing_and_no_scale_down(
    stored: str | None, reason: str
) -> None:
    store, stages = MemoryHistoryStore(), FakeStages()
    leader = [True]
    r = runner(stages, store, leader)
    await cycles(r, stages, T0_S, 12)
    assert sent(stages).forecast is not None
    leader[0] = False  # leadership lost; meanwhile the store is emptied or overwritten with garbage
    await r.run_cycle(T0_S + 720.0)
    store.text = stored
    leader[0] = True
    stages.collect_answer = collected(50.0)  # the load halved: reactive sizing alone would scale down
    report = await r.run_cycle(T0_S + 780.0)
    spec = sent(stages)
    assert spec.forecast is None
    assert spec.floor_replicas == REPLICAS  # held: nothing scales down because the forecast is missing
    note = next(n for n in report.notes if n.startswith("llama: no forecast"))
    assert reason in note and f"held at {REPLICAS} replica(s)" in note
    if stored is not None:  # garbage is also said once, as the cycle's own note
        assert any(n.startswith(f"forecast: {reason}") for n in report.notes)
    assert report.outcome == "ok"


async def test_a_failing_store_does_not_stop_the_cycle() -> None:
    class Broken(MemoryHistoryStore):
        async def load(self) -> str | None:
            raise ConnectionError("refused")

        async def save(self, text: str) -> None:
            raise ConnectionError("refused")

    stages = FakeStages()
    stages.collect_answer = collected(100.0)
    report = await runner(stages, Broken()).run_cycle(T0_S)
    assert report.outcome == "ok" and stages.calls == ["collect", "optimize", "update"]
    assert any("load history store failed: ConnectionError: refused" in n for n in report.notes)
    assert any("load history not saved" in n for n in report.notes)
    assert sent(stages).floor_replicas == REPLICAS


async def test_a_class_that_does_not_ask_is_untouched() -> None:
    store, stages = MemoryHistoryStore(), FakeStages()
    r = runner(stages, store)
    for i in range(12):
        stages.collect_answer = collected(100.0, quantile=0.0)
        report = await r.run_cycle(T0_S + 60.0 * i)
    assert sent(stages).forecast is None and sent(stages).floor_replicas == 0
    assert not any("forecast" in n for n in report.notes)
