"""The cycle loop: coalescing of concurrent requests, waking on request and stop, never dying."""

from __future__ import annotations

import asyncio

import pytest

from contract.cycle import CycleReport
from controller.cycle import CycleRunner
from controller.loop import CycleLoop, LoopStoppedError
from tests.unit.controller.fakes import FakeStages, controller_settings


def _counting(gate: asyncio.Event | None = None) -> tuple[list[float], CycleLoop]:
    calls: list[float] = []

    async def run_cycle(now_s: float) -> CycleReport:
        calls.append(now_s)
        if gate is not None:
            await gate.wait()
        return CycleReport(cycle_id=f"c{len(calls)}", started_at_s=now_s)

    return calls, CycleLoop(run_cycle, period_s=0, clock=lambda: 42.0)


async def test_concurrent_requests_join_one_cycle() -> None:
    gate = asyncio.Event()
    calls, loop = _counting(gate)
    loop.start()
    futures = [loop.request() for _ in range(50)]
    await asyncio.sleep(0.01)  # the cycle is now in flight, blocked on the gate
    futures += [loop.request() for _ in range(50)]
    gate.set()
    reports = await asyncio.gather(*futures)
    assert len(calls) == 1
    assert {r.cycle_id for r in reports} == {"c1"}
    await loop.stop(1.0)


async def test_real_cycle_coalesces_too() -> None:
    stages = FakeStages()
    stages.gate = asyncio.Event()
    loop = CycleLoop(CycleRunner(stages, controller_settings()).run_cycle, period_s=0)
    loop.start()
    waiters = [asyncio.ensure_future(asyncio.shield(loop.request())) for _ in range(20)]
    await asyncio.sleep(0.01)
    stages.gate.set()
    reports = await asyncio.gather(*waiters)
    assert stages.calls.count("collect") == 1
    assert len({r.cycle_id for r in reports}) == 1
    await loop.stop(1.0)


async def test_period_zero_runs_only_on_demand_and_wakes_at_once() -> None:
    calls, loop = _counting()
    loop.start()
    await asyncio.sleep(0.05)
    assert calls == []
    async with asyncio.timeout(0.5):  # a request wakes the sleeping loop at once
        await loop.request()
    assert calls == [42.0]
    await loop.stop(1.0)


async def test_timer_runs_first_cycle_then_waits_for_the_period_or_a_request() -> None:
    calls, loop = _counting()
    loop.period_s = 3600
    loop.start()
    await asyncio.sleep(0.02)
    assert len(calls) == 1  # one cycle at start
    async with asyncio.timeout(0.5):
        await loop.request()  # the hour-long sleep is cut short
    assert len(calls) == 2
    await loop.stop(1.0)


async def test_timer_period_elapses() -> None:
    calls, loop = _counting()
    loop.period_s = 0.02
    loop.start()
    await asyncio.sleep(0.15)
    await loop.stop(1.0)
    assert len(calls) >= 3


async def test_loop_never_dies() -> None:
    attempts = 0

    async def flaky(now_s: float) -> CycleReport:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("bug in a stage adapter")
        return CycleReport(cycle_id="ok", started_at_s=now_s)

    loop = CycleLoop(flaky, period_s=0)
    loop.start()
    first = await loop.request()
    assert first.outcome == "failed" and "bug in a stage adapter" in first.errors[0].message
    second = await loop.request()
    assert second.cycle_id == "ok"
    assert loop.running
    await loop.stop(1.0)


async def test_stop_is_immediate_and_refuses_new_requests() -> None:
    _, loop = _counting()
    loop.period_s = 3600
    task = loop.start()
    await asyncio.sleep(0.01)
    async with asyncio.timeout(0.5):
        await loop.stop(1.0)
    assert task.done()
    with pytest.raises(LoopStoppedError):
        loop.request()


async def test_stop_cancels_a_hung_cycle_after_grace() -> None:
    gate = asyncio.Event()
    _, loop = _counting(gate)
    loop.start()
    future = loop.request()
    await asyncio.sleep(0.01)
    await loop.stop(0.05)
    with pytest.raises(LoopStoppedError):
        await future
