"""The emulated fleet at virtual time: a whole sample fleet, and a driver stepping it through changes."""

from __future__ import annotations

import time

import pytest

from contract.data.loader import load_system_dir
from load_emulator.engine import EngineConfig, FleetEngine, catalog_of
from load_emulator.fleet import build_fleet
from tests.conftest import SAMPLES

pytestmark = pytest.mark.sim


def test_large_fleet_carries_its_load_fast() -> None:
    system = load_system_dir(SAMPLES / "large")
    fleet = build_fleet(system, limited=False, startup_delay_s=0, target_utilization=0.5, seed=1)
    engine = FleetEngine(catalog_of(system), fleet.cluster, fleet.workloads, EngineConfig(), seed=1)
    start = time.process_time()
    engine.advance_to(600.0)
    cpu_s = time.process_time() - start
    assert len(engine.servers()) == 27
    for server in engine.servers():
        w = engine.window(server, 120.0, 600.0)
        # Sized at half of full-batch throughput: everything offered is carried, no queue build-up.
        assert w.throughput_rps == pytest.approx(w.arrival_rpm / 60, rel=0.1), server
        assert w.rejected == 0 and w.ttft_p50_ms < 2000, server
    # 27 servers x 10 virtual minutes; generous bound for a shared 2-core machine.
    assert cpu_s < 30.0


def test_driver_scales_a_server_through_a_load_step() -> None:
    """What the phase-2 what-if loop does: advance, read a window, change the cluster, repeat."""
    system = load_system_dir(SAMPLES / "small")
    fleet = build_fleet(system, pattern="steps", params={"factors": "1,3", "step_s": "600"},
                        limited=False, startup_delay_s=60, seed=2)  # fmt: skip
    engine = FleetEngine(catalog_of(system), fleet.cluster, fleet.workloads, EngineConfig(), seed=2)
    alloc = next(a for a in fleet.allocations if a.server == "Bronze-granite_13b")
    p95: list[float] = []
    for step in range(1, 31):  # 30 windows of 60 s
        engine.advance_to(step * 60.0)
        w = engine.window(alloc.server, (step - 1) * 60.0, step * 60.0)
        p95.append(w.ttft_p95_ms)
        if step == 12:  # two minutes into the tripled load: triple the replicas
            fleet.cluster.scale(fleet.namespace, alloc.deployment, alloc.replicas * 3, engine.now_s)
            engine.sync()
    before, overloaded, after = max(p95[2:10]), max(p95[11:13]), max(p95[20:])
    assert overloaded > 5 * before  # the step overloads the old allocation
    assert after < 2 * before  # new replicas (ready 60 s later) bring TTFT back
