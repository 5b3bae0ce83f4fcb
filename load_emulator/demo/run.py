"""The demo loop: emulated cluster + the four real services + the fleet engine, in real time.

:func:`run_demo` (called by :mod:`load_emulator.demo.cli`):

1. fills an in-memory API server (:mod:`load_emulator.kubeapi`, built-in controller with a pod
   start-up delay) with GPU nodes, the data ConfigMaps and the servers' Deployments
   (:mod:`.world`), on 127.0.0.1, and writes a kubeconfig;
2. starts collector, optimizer, actuator and controller as subprocesses (:mod:`.services`) and
   waits for their ``/healthz``;
3. runs the :class:`~load_emulator.engine.FleetEngine` on the wall clock over the store
   (:class:`.store_view.StoreClusterView`), writing each server's offered load into its load
   labels every ``label_period_s`` (the collector, without Prometheus, trusts them);
4. every ``cycle_s`` asks the optimizer for its predictions of the current state (``GET /collect``
   then ``POST /optimize``: the cycle report carries no latencies), calls the controller's
   ``GET /invoke`` (collect -> optimize -> act), and prints the table (:mod:`.table`).

Everything stops by pid at the end, on error and on Ctrl-C. Network: loopback only.
"""

from __future__ import annotations

import asyncio
import math
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from load_emulator.demo import services as svc
from load_emulator.demo.loop_state import DemoResult, DemoSettings, make_workloads, replica_changes
from load_emulator.demo.store_view import StoreClusterView
from load_emulator.demo.table import Row, render
from load_emulator.demo.world import DEFAULT_CARDS, NAMESPACE, DemoServer, demo_servers, load_labels, populate
from load_emulator.engine import Catalog, EngineConfig, FleetEngine, catalog_of
from load_emulator.kubeapi import BuiltinController, ControllerSettings, ObjectStore, start_kubeapi
from optimizer.data.loader import load_system_dir

__all__ = ["DemoResult", "DemoSettings", "run_demo"]


@dataclass
class _Cycle:
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)


async def predict(services: Mapping[str, svc.Service]) -> dict[str, dict[str, Any]]:
    """The optimizer's allocation (with predicted latencies) per server, for the current state."""
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(f"{services['collector'].url}/collect") as resp:
            collected = await resp.json(content_type=None)
        if resp.status != 200:
            return {}
        async with http.post(f"{services['optimizer'].url}/optimize", json=collected["system"]) as resp:
            solution = await resp.json(content_type=None)
        if resp.status != 200:
            return {}
    return {d["server"]: d.get("allocation") or {} for d in solution.get("decisions") or []}


async def run_demo(settings: DemoSettings, out: TextIO = sys.stdout) -> DemoResult:
    """Run the whole demo; see the module docstring. Raises on set-up failures (after clean-up)."""
    started = time.monotonic()
    result = DemoResult()
    system = load_system_dir(settings.data_dir)
    servers = demo_servers(system, settings.servers)
    store = ObjectStore()
    populate(store, settings.data_dir, system, servers, settings.cards or DEFAULT_CARDS)
    delay = ControllerSettings(startup_delay_s=settings.startup_delay_s)
    controller = BuiltinController(store, time.monotonic, delay)
    api = await start_kubeapi("127.0.0.1", 0, store=store, controller=controller)
    services: list[svc.Service] = []
    with tempfile.TemporaryDirectory(prefix="inferno-demo-") as tmp:
        workdir = Path(settings.workdir or tmp)
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        try:
            kubeconfig = api.write_kubeconfig(workdir / "kubeconfig", NAMESPACE)
            services = await svc.start_services(
                workdir, kubeconfig, settings.scale_down_window_s, settings.solver
            )
            await svc.wait_healthy(services, settings.health_timeout_s)
            result.startup_s = time.monotonic() - started
            ports = ", ".join(f"{s.name}:{s.port}" for s in services)
            print(f"demo: API server {api.url}, services {ports}; ready in {result.startup_s:.1f} s; "
                  f"logs in {workdir}", file=out, flush=True)  # fmt: skip
            loop = DemoLoop(settings, servers, StoreClusterView(store, NAMESPACE, time.time()), out)
            await loop.run(catalog_of(system), {s.name: s for s in services}, result)
        finally:
            result.exit_codes = await svc.stop_services(services)
            await api.close()
    return result


class DemoLoop:
    """The real-time part: engine ticks, load labels, cycles and tables."""

    def __init__(
        self, settings: DemoSettings, servers: list[DemoServer], view: StoreClusterView, out: TextIO
    ):
        self.settings, self.servers, self.view, self.out = settings, servers, view, out
        self.workloads = make_workloads(settings, servers)

    async def run(self, catalog: Catalog, services: Mapping[str, svc.Service], result: DemoResult) -> None:
        st = self.settings
        engine = FleetEngine(catalog, self.view, self.workloads, EngineConfig(sync_period_s=1.0), st.seed)
        origin = time.monotonic()
        next_label, next_cycle = 0.0, st.first_cycle_s
        while (t_s := time.monotonic() - origin) < st.duration_s:
            engine.advance_to(t_s)
            if t_s >= next_label:
                next_label += st.label_period_s
                self.write_load_labels(t_s)
            if t_s >= next_cycle:
                next_cycle += st.cycle_s
                cycle = _Cycle()
                try:
                    cycle.predictions = await predict(services)
                except (aiohttp.ClientError, TimeoutError, KeyError) as exc:
                    print(f"demo: predictions unavailable: {exc}", file=self.out)
                try:
                    cycle.report = await svc.invoke(services["controller"])
                except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:  # the demo goes on
                    cycle.report = {"outcome": "failed", "errors": [{"stage": "invoke", "message": str(exc)}]}
                result.cycles += 1
                result.replica_changes += replica_changes(cycle.report)
                t_s = time.monotonic() - origin
                engine.advance_to(t_s)
                engine.sync()
                title = (
                    f"\n=== t={t_s:5.1f}s  cycle {result.cycles}  (observed: last {st.window_s:.0f} s) ==="
                )
                notes = [
                    f"{name}: {n} pod(s) Pending, no node with free cards"
                    for name, n in sorted(self.view.unschedulable().items())
                ]
                text = render(title, self.rows(engine, t_s, cycle), cycle.report, notes)
                print(text, file=self.out, flush=True)
                result.tables += 1
            await asyncio.sleep(st.tick_s)

    def write_load_labels(self, t_s: float) -> None:
        """The offered load of each server now, into its load labels (what the collector reads)."""
        for s in self.servers:
            rpm = self.workloads[s.name].rate_rpm(t_s)
            self.view.set_labels(NAMESPACE, s.deployment, load_labels(rpm, s.in_tokens, s.out_tokens))

    def rows(self, engine: FleetEngine, t_s: float, cycle: _Cycle) -> list[Row]:
        states = {st.server: st for st in self.view.deployments(t_s)}
        costs = {d["server"]: d.get("cost") for d in cycle.report.get("decisions") or []}
        window_s = self.settings.window_s
        rows = []
        for s in self.servers:
            st = states.get(s.name)
            w = engine.window(s.name, max(0.0, t_s - window_s), t_s, s.ttft_target_ms, s.itl_target_ms)
            pred = cycle.predictions.get(s.name, {})
            cost = costs.get(s.name)
            rows.append(Row(
                s.name, s.service_class, self.workloads[s.name].rate_rpm(t_s), st.accelerator if st else "?",
                st.ready_replicas if st else 0, st.replicas if st else 0, st.max_batch if st else 0,
                float(pred.get("ttft_ms", math.nan)), w.ttft_p50_ms, w.ttft_p95_ms, s.ttft_target_ms,
                float(pred.get("itl_ms", math.nan)), w.itl_p50_ms, w.itl_p95_ms, s.itl_target_ms,
                w.slo_attainment, float(cost) if cost is not None else math.nan,
            ))  # fmt: skip
        return rows
